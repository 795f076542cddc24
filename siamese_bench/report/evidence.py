"""Evidence for a claim row: per data variant, the finished runs of the cell that tests it (the
one closest to C1's recipe, then with the most seeds; or the best one-shot cell), with
intervals over seeds of every metric a rule reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from siamese_bench.report.load import Study, diverged, parse_cell, variant_rank
from siamese_bench.report.looks import ONE_LOOK, Looks
from siamese_bench.report.select import match, rank_cells
from siamese_bench.report.stats import UNIT, Interval, oneshot_interval, t_interval

ONESHOT_TRIALS = 400  # Lake's 20 runs x 20 test images, when a run did not log oneshot/trials
RETRIEVAL_NAMES = {"retrieval/precision_at_1": "P@1", "retrieval/r_precision": "R-prec", "retrieval/map_at_r": "MAP@R"}


def pct(x: float) -> str:
    return f"{x * 100:.2f} %" if math.isfinite(x) else "–"


def num3(x: float) -> str:
    return f"{x:.3f}" if math.isfinite(x) else "–"


@dataclass(frozen=True)
class Evidence:
    """One cell's finished runs on one dataset variant."""

    study: str
    variant: str
    cell: str
    epochs: int
    runs: pd.DataFrame
    acc: Interval  # test/acc, fixed rule d < 0.5
    auc: Interval  # test/auc
    train: Interval  # train_eval/acc
    score: int = 0  # recipe values the cell keeps (see select.RECIPE): ranks cells across studies
    collapsed: int = 0  # runs whose embeddings collapsed (train.is_collapsed): reported as such
    oneshot: Interval | None = None  # 20-way one-shot accuracy (K1), when logged
    oneshot_pixels: float = math.nan  # the pixel nearest-neighbour baseline on the same runs
    diverged: int = 0  # seeds whose training diverged (NaN loss): outcomes of the method, not missing data
    retrieval: dict[str, Interval] | None = None  # retrieval/* metrics (precision@1, R-precision, MAP@R)
    looks: Looks = ONE_LOOK  # how often its verdict is looked at: every interval here is at looks.level()
    selected_from: int = 1  # cells this one was picked from as the best (K1's bar): the test accounts for it

    @property
    def level(self) -> float:
        """The two-sided level of every interval here (decide reads them at its looks' level)."""
        return self.looks.level()

    def trials(self) -> int:
        """The fixed one-shot trials every seed was scored on."""
        logged = self.runs["oneshot/trials"].dropna() if "oneshot/trials" in self.runs else pd.Series(dtype=float)
        return int(logged.iloc[0]) if len(logged) else ONESHOT_TRIALS

    def logged(self, metric: str) -> tuple[int, int]:
        """(finite values, runs) of `metric`: a NaN is dropped from the interval, and said."""
        return len(self.runs) - len(self.not_finite(metric)), len(self.runs)

    def not_finite(self, metric: str) -> list[int]:
        """The seeds whose run logged no finite `metric` (NaN, or none at all)."""
        n = len(self.runs)
        seeds = np.asarray(self.runs["seed"]) if "seed" in self.runs else np.arange(n)
        if metric not in self.runs:
            return sorted(int(s) for s in seeds)
        finite = np.isfinite(np.asarray(self.runs[metric], dtype=float))  # None -> NaN
        return sorted(int(s) for s in seeds[~finite])

    @property
    def rank(self) -> tuple[int, int]:
        """Closer to the recipe first, then more seeds (the key load.best_cell ranks cells by)."""
        return self.score, self.acc.n

    @property
    def seeds_tried(self) -> int:
        return self.acc.n + self.diverged

    def text(self) -> str:
        if self.auc.n == 0:
            auc = "– (not logged)"
        elif self.auc.has_interval:
            auc = self.auc.text(scale=1, digits=3)
        else:
            auc = num3(self.auc.mean)
        train = f"{self.train.mean * 100:.2f} %" if math.isfinite(self.train.mean) else "–"
        text = (
            f"{self.variant} ({self.study}, {self.epochs} ep.): test acc {self.acc.text(unit=' %')}, "
            f"AUC {auc}; train acc {train}"
        )
        if self.retrieval:
            parts = [f"{RETRIEVAL_NAMES[k]} {iv.mean:.3f}" for k, iv in self.retrieval.items() if iv.n]
            if parts:
                text += "; retrieval " + ", ".join(parts)
        if self.oneshot is not None and self.oneshot.n:
            background = (
                "the 30 background alphabets"
                if self.variant.startswith("omniglot-full")
                else "Lake's two 5-alphabet small sets (fallback)"
            )
            text += (
                f"; 20-way one-shot {self.oneshot.text(unit=' %')} (interval includes the 400 trials' "
                f"binomial error; pixel nearest neighbour {pct(self.oneshot_pixels)}; trained on {background})"
            )
        if self.collapsed:
            text += f"; COLLAPSED in {self.collapsed} of {self.acc.n} runs (embeddings shrank to a point)"
        if self.diverged:
            text += f"; DIVERGED in {self.diverged} of {self.seeds_tried} seeds (NaN loss)"
        return text


def _better(ev: Evidence, than: Evidence | None, pick: str = "recipe") -> bool:
    """Across studies, the same ranking as load.best_cell within one (or by mean one-shot
    accuracy); ties go to the study name first in sort order, so the order studies are listed
    in never decides."""
    if than is None:
        return True
    key = (lambda e: (e.oneshot.mean,)) if pick == "best-oneshot" else (lambda e: e.rank)
    return key(ev) > key(than) or (key(ev) == key(than) and (ev.study, ev.cell) < (than.study, than.cell))


def lever_note(study: Study, ev: Evidence) -> str:
    """Each cell's one-shot mean against the study's base cell (the one with the fewest keys:
    in a one-lever-at-a-time spec, the cell the others change one lever of; else the best
    cell), what each changes from it, and the change that moved accuracy most: which lever
    mattered most."""
    done = study.complete
    here = done[(done["dataset_variant"] == ev.variant) & done["oneshot/acc"].notna()]
    means = {str(cell): (float(v.mean()), len(v)) for cell, v in here.groupby("cell")["oneshot/acc"]}
    fewest = min(len(parse_cell(c)) for c in means)
    bases = [c for c in means if len(parse_cell(c)) == fewest]
    ref = bases[0] if len(bases) == 1 else ev.cell
    base, (base_mean, base_n) = parse_cell(ref), means[ref]
    others = []
    for cell, (mean, n) in means.items():
        if cell == ref:
            continue
        own = parse_cell(cell)
        changed = [f"{k}={v}" for k, v in own.items() if base.get(k) != v]
        changed += [f"{k} as {ref}" for k in base if k not in own]
        others.append((mean - base_mean, ", ".join(changed) or cell, n))
    if not others:
        return "no other cell to compare"
    others.sort(reverse=True)
    listed = "; ".join(f"{what} {100 * (base_mean + d):.1f} % ({100 * d:+.1f}, n = {n})" for d, what, n in others)
    top = max(others, key=lambda o: abs(o[0]))  # the first of a tie: the larger gain
    return (
        f"against the base cell {ref} ({100 * base_mean:.1f} %, n = {base_n}), each lever changed: {listed}; "
        f"the lever that mattered most: {top[1]} ({100 * top[0]:+.1f} points)"
    )


def in_variants(column: pd.Series, variants: tuple[str, ...]) -> pd.Series:
    """Exact names, or prefixes written with a trailing * ("omniglot-full-*": any image size)."""
    keep = column.isin([v for v in variants if not v.endswith("*")])
    for prefix in (v[:-1] for v in variants if v.endswith("*")):
        keep |= column.astype(str).str.startswith(prefix)
    return keep


def _unfinished_seeds(study: Study, cell: str, variant: str) -> tuple[set[int], set[int]]:
    """Seeds of a cell on one data variant that have a run but no finished one, split into
    (diverged: the training's NaN loss, an outcome of the method; lost: killed, lost or
    failed otherwise, which the sweep re-runs)."""
    runs, done = study.runs, study.complete
    if runs.empty:
        return set(), set()
    columns = [c for c in ("seed", "fail_reason") if c in runs]  # what is read below: a narrow copy
    mine = runs.loc[(runs["cell"] == cell) & (runs["dataset_variant"] == variant), columns]
    finished = (
        set(done.loc[(done["cell"] == cell) & (done["dataset_variant"] == variant), "seed"])
        if not done.empty
        else set()
    )
    open_seeds = set(mine["seed"]) - finished
    bad = set(mine.loc[diverged(mine), "seed"]) & open_seeds
    return bad, open_seeds - bad


def _oneshot_interval(runs: pd.DataFrame, level: float) -> Interval | None:
    values = runs["oneshot/acc"].dropna() if "oneshot/acc" in runs else pd.Series(dtype=float)
    if values.empty:
        return None
    trials = runs["oneshot/trials"].dropna() if "oneshot/trials" in runs else pd.Series(dtype=float)
    return oneshot_interval(values, int(trials.iloc[0]) if len(trials) else ONESHOT_TRIALS, level=level)


def _best_oneshot_cell(rows: pd.DataFrame) -> str | None:
    if "oneshot/acc" not in rows or rows["oneshot/acc"].isna().all():
        return None
    means = rows.groupby("cell")["oneshot/acc"].mean()
    return str(means.sort_index().idxmax())  # sorted first: a tie goes to the first cell id


def gather(
    studies: list[Study],
    select: dict[str, Any],
    variants: tuple[str, ...] | None = None,
    pick: str = "recipe",
    looks: Looks = ONE_LOOK,
) -> list[Evidence]:
    """Per dataset variant (only `variants`, when given: a cell of the same head and loss on
    other data, e.g. C4's vector pairs, is no evidence for an MNIST claim), the study and cell
    closest to the recipe, then with the most seeds; with pick="best-oneshot", the cell of
    highest mean one-shot accuracy, which records how many cells it was picked from. Intervals
    are at `looks`' level."""
    level = looks.level()
    best: dict[str, Evidence] = {}
    considered: dict[str, int] = {}  # variant -> cells with one-shot scores, over every study
    for study in studies:
        done = match(study.complete, select)
        if variants is not None:
            done = done[in_variants(done["dataset_variant"], variants)] if not done.empty else done
        for variant, rows in done.groupby("dataset_variant", sort=False):
            top = rank_cells(rows).iloc[0]
            cell = str(top["cell"])
            if pick == "best-oneshot":
                best_cell = _best_oneshot_cell(rows)
                if best_cell is None:
                    continue
                cell = best_cell
                considered[str(variant)] = considered.get(str(variant), 0) + int(
                    rows.loc[rows["oneshot/acc"].notna(), "cell"].nunique()
                )
                top = rank_cells(rows[rows["cell"] == cell]).iloc[0]
            runs = rows[rows["cell"] == cell].sort_values("seed")
            retrieval = {k: t_interval(runs[k], level=level, bounds=UNIT) for k in RETRIEVAL_NAMES if k in runs}
            ev = Evidence(
                study.name,
                str(variant),
                cell,
                int(runs["epochs"].iloc[0]),
                runs,
                t_interval(runs["test/acc"], level=level, bounds=UNIT),
                t_interval(runs["test/auc"], level=level, bounds=UNIT),
                t_interval(runs["train_eval/acc"], level=level, bounds=UNIT),
                score=int(top["score"]),
                collapsed=int((runs["collapsed"] > 0).sum()) if "collapsed" in runs else 0,
                oneshot=_oneshot_interval(runs, level),
                oneshot_pixels=float(runs["oneshot_pixels/acc"].mean()) if "oneshot_pixels/acc" in runs else math.nan,
                diverged=len(_unfinished_seeds(study, cell, str(variant))[0]),
                retrieval={k: iv for k, iv in retrieval.items() if iv.n} or None,
                looks=looks,
            )
            if _better(ev, best.get(str(variant)), pick):
                best[str(variant)] = ev
    best = {v: replace(ev, selected_from=max(1, considered.get(v, 1))) for v, ev in best.items()}
    return sorted(best.values(), key=lambda e: (variant_rank(e.variant), e.variant))


def unfinished(studies: list[Study], ev: Evidence | None, cells: tuple[str, ...]) -> int:
    """Seeds of the row's own cells (the claimed one and the one it is compared with) on the
    deciding study and data that have a run but no finished one, not counting divergence (an
    outcome, see Evidence.diverged): what the infrastructure lost and the verdict is missing."""
    if ev is None:
        return 0
    study = next(s for s in studies if s.name == ev.study)
    return sum(len(_unfinished_seeds(study, cell, ev.variant)[1]) for cell in filter(None, cells))
