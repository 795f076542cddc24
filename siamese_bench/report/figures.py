"""Seaborn figures of a report, each on an A4 page-sized figure (plot area below the page's
headings) so the PDF can add its headings and caption around it; the PNG is cropped tight.

This module holds what every figure shares (the page, intervals, palettes, labels); the
figures themselves are in figures_grid (by head and margin), figures_curves (per epoch),
figures_artifacts (ROC curves, distances, embeddings) and figures_oneshot (K1 per run).

Intervals are the same 95 % t-intervals over seeds as in the tables (t_bounds below).
Artifacts (distances.npz, embeddings.npz) are fetched through load.ArtifactCache; a missing
one leaves a note in its panel and in the caption instead of failing the report.

Whether a loss takes a margin is what its runs say (load.py's loss_uses_margin column, and a
NaN margin), never its name: a user's loss without a margin is drawn as BCE is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.typing import ColorType

from siamese_bench.report.load import Study, parse_cell
from siamese_bench.report.pdf import FIGURE_TOP_IN, PORTRAIT
from siamese_bench.report.stats import t_interval

LABEL_ROOM = 0.55  # inches under the plot area for tick labels before the caption
MAX_PLOT = 7.6  # inches of plot area at most, so that labels and a caption still fit on the page
# A loss's colour by its kind (objective, uses a margin), so the built-in losses keep theirs in
# every report: contrastive (pairs, margin), bce (pairs, none), triplet (triplets, margin). The
# first loss of a kind takes its colour; any other loss a spare one.
KIND_COLOURS = {("pairs", True): "#1f77b4", ("pairs", False): "#d62728", ("triplets", True): "#2ca02c"}


def t_bounds(values) -> tuple[float, float]:
    """seaborn `errorbar=`: the 95 % t-interval (a point when n < 2), clipped at 0 below."""
    iv = t_interval(values)
    return (max(iv.lo, 0.0), iv.hi) if iv.has_interval else (iv.mean, iv.mean)


def clipped(top: float):
    """errorbar= for metrics bounded by `top` (100 % or AUC 1)."""

    def bounds(values) -> tuple[float, float]:
        lo, hi = t_bounds(values)
        return lo, min(hi, top)

    return bounds


@dataclass
class Plot:
    key: str  # PNG file stem
    title: str
    caption: str
    figure: Figure
    bottom: float  # inches from the page top where the plot (with its labels) ends
    notes: list[str] = field(default_factory=list)


def loss_kinds(runs: pd.DataFrame) -> dict[str, tuple[str, bool]]:
    """loss -> (objective, whether it takes a margin), as its runs were tagged, in order of first
    appearance. Runs from before the objective tag count as pair losses."""
    kinds: dict[str, tuple[str, bool]] = {}
    for loss, objective, uses in zip(runs["loss"], runs["objective"], runs["loss_uses_margin"], strict=True):
        kinds.setdefault(loss, (objective or "pairs", bool(uses)))
    return kinds


def _kind_rank(kind: tuple[str, bool]) -> tuple[bool, bool]:
    objective, uses_margin = kind
    return objective == "triplets", not uses_margin


def loss_order(runs: pd.DataFrame) -> list[str]:
    """The losses of `runs` as figures list them: pair losses with a margin, pair losses without
    one, then triplet losses (contrastive, bce, triplet); first seen first within a kind."""
    kinds = loss_kinds(runs)
    return sorted(kinds, key=lambda x: _kind_rank(kinds[x]))


@dataclass
class Palettes:
    heads: dict[str, ColorType]
    losses: dict[str, ColorType]  # a kind's hex colour (KIND_COLOURS) or a spare RGB tuple

    @classmethod
    def of(cls, studies: list[Study]) -> Palettes:
        heads: dict[str, None] = {}
        kinds: dict[str, tuple[str, bool]] = {}
        for s in studies:
            if not s.runs.empty:
                heads.update(dict.fromkeys(s.runs.sort_values("optuna_trial")["head"]))
                for loss, kind in loss_kinds(s.runs).items():
                    kinds.setdefault(loss, kind)
        spare = iter(sns.color_palette("Dark2", 8))
        losses: dict[str, ColorType] = {}
        taken: set[tuple[str, bool]] = set()
        for loss in sorted(kinds, key=lambda x: _kind_rank(kinds[x])):
            kind = kinds[loss]
            losses[loss] = KIND_COLOURS[kind] if kind in KIND_COLOURS and kind not in taken else next(spare)
            taken.add(kind)
        return cls(dict(zip(heads, sns.color_palette("tab10", max(10, len(heads))), strict=False)), losses)


def page(
    content_height: float,
    nrows: int,
    ncols: int,
    left: float = 0.1,
    right: float = 0.96,
    hspace: float = 0.45,
    wspace: float = 0.3,
    **kw,
):
    """A page-sized figure with an nrows x ncols grid in the plot area; returns (fig, axes, bottom)."""
    w, h = PORTRAIT
    fig = Figure(figsize=PORTRAIT)
    top, bottom = FIGURE_TOP_IN, FIGURE_TOP_IN + content_height
    axes = fig.subplots(
        nrows,
        ncols,
        squeeze=False,
        gridspec_kw=dict(left=left, right=right, top=1 - top / h, bottom=1 - bottom / h, hspace=hspace, wspace=wspace),
        **kw,
    )
    return fig, axes, bottom + LABEL_ROOM


def ordered(values, order) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def cell_title(head: str, loss: str, margin: float) -> str:
    """ "head + loss, m=1"; no margin where the loss has none (its margin is NaN, see load.py)."""
    m = "" if not math.isfinite(margin) else f", m={margin:g}"
    return f"{head} + {loss}{m}"


def cell_labels(frame: pd.DataFrame) -> pd.Series:
    """A short label per row: the head, plus the cell's other factor values that vary within
    the frame, except loss and margin (which figures show by colour or axis), e.g.
    "euclidean, semi-hard"."""
    parsed = [parse_cell(str(c)) for c in frame["cell"]]
    keys = {k for p in parsed for k in p} - {"head", "loss", "margin"}
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    labels = [
        ", ".join([str(h), *(str(p[k]) for k in sorted(varying) if k in p)])
        for p, h in zip(parsed, frame["head"], strict=True)
    ]
    return pd.Series(labels, index=frame.index, dtype=object)


def labels_in_order(frame: pd.DataFrame, study: Study) -> list[str]:
    heads = study_heads(study)
    labels = list(dict.fromkeys(frame.sort_values("optuna_trial")["label"]))
    return sorted(
        labels, key=lambda x: (heads.index(x.split(",")[0]) if x.split(",")[0] in heads else 99, labels.index(x))
    )


def study_heads(study: Study) -> list[str]:
    return list(dict.fromkeys(study.runs.sort_values("optuna_trial")["head"])) if not study.runs.empty else []
