"""Seaborn figures of a report, each on an A4 page-sized figure (plot area below the page's
headings) so the PDF can add its headings and caption around it; the PNG is cropped tight.

Intervals are the same 95 % t-intervals over seeds as in the tables (t_bounds below).
Artifacts (distances.npz, embeddings.npz) are fetched through load.ArtifactCache; a missing
one leaves a note in its panel and in the caption instead of failing the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from siamese_bench.report.findings import Finding
from siamese_bench.report.load import ArtifactCache, Study
from siamese_bench.report.pdf import FIGURE_TOP_IN, PORTRAIT
from siamese_bench.report.results import RESULT_METRICS
from siamese_bench.report.stats import t_interval
from siamese_bench.report.tables import slug

LABEL_ROOM = 0.55  # inches under the plot area for tick labels before the caption
MAX_PLOT = 7.6  # inches of plot area at most, so that labels and a caption still fit on the page
LOSS_ORDER = ("contrastive", "bce", "triplet")


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


@dataclass
class Palettes:
    heads: dict[str, tuple]
    losses: dict[str, tuple]

    @classmethod
    def of(cls, studies: list[Study]) -> Palettes:
        heads: dict[str, None] = {}
        losses: dict[str, None] = {}
        for s in studies:
            if not s.runs.empty:
                heads.update(dict.fromkeys(s.runs.sort_values("optuna_trial")["head"]))
                losses.update(dict.fromkeys(s.runs["loss"]))
        losses = sorted(losses, key=lambda x: LOSS_ORDER.index(x) if x in LOSS_ORDER else 99)
        known = {"contrastive": "#1f77b4", "bce": "#d62728", "triplet": "#2ca02c"}
        spare = iter(sns.color_palette("Dark2", 8))
        return cls(dict(zip(heads, sns.color_palette("tab10", max(10, len(heads))), strict=False)),
                   {x: known.get(x) or next(spare) for x in losses})


def _page(content_height: float, nrows: int, ncols: int, left: float = 0.1, right: float = 0.96,
          hspace: float = 0.45, wspace: float = 0.3, **kw):
    """A page-sized figure with an nrows x ncols grid in the plot area; returns (fig, axes, bottom)."""
    w, h = PORTRAIT
    fig = Figure(figsize=PORTRAIT)
    top, bottom = FIGURE_TOP_IN, FIGURE_TOP_IN + content_height
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw=dict(
        left=left, right=right, top=1 - top / h, bottom=1 - bottom / h, hspace=hspace, wspace=wspace), **kw)
    return fig, axes, bottom + LABEL_ROOM


def _ordered(values, order) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in order if v in seen] + [v for v in seen if v not in order]


def _cell_label(head: str, loss: str, margin: float) -> str:
    m = "" if loss == "bce" or not math.isfinite(margin) else f", m={margin:g}"
    return f"{head} + {loss}{m}"


def cell_labels(frame: pd.DataFrame) -> pd.Series:
    """A short label per row: the head, plus the cell's other factor values that vary within
    the frame, except loss and margin (which figures show by colour or axis), e.g.
    "euclidean, semi-hard"."""
    from siamese_bench.report.load import parse_cell

    parsed = [parse_cell(str(c)) for c in frame["cell"]]
    keys = {k for p in parsed for k in p} - {"head", "loss", "margin"}
    varying = [k for k in keys if len({p.get(k) for p in parsed}) > 1]
    labels = [", ".join([str(h), *(str(p[k]) for k in sorted(varying) if k in p)])
              for p, h in zip(parsed, frame["head"], strict=True)]
    return pd.Series(labels, index=frame.index, dtype=object)


def _labels_in_order(frame: pd.DataFrame, study: Study) -> list[str]:
    heads = _heads(study)
    labels = list(dict.fromkeys(frame.sort_values("optuna_trial")["label"]))
    return sorted(labels, key=lambda x: (heads.index(x.split(",")[0]) if x.split(",")[0] in heads else 99,
                                         labels.index(x)))


def _heads(study: Study) -> list[str]:
    return list(dict.fromkeys(study.runs.sort_values("optuna_trial")["head"])) if not study.runs.empty else []


def accuracy_by_head(study: Study, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty:
        return None
    at1 = done[np.isclose(done["margin"].fillna(1.0), 1.0)]  # margin 1, and bce (no margin)
    if at1["cell"].nunique() < 2:
        return None
    at1 = at1.assign(label=cell_labels(at1))
    heads = _labels_in_order(at1, study)
    losses = _ordered(at1["loss"], LOSS_ORDER)
    fig, axes, bottom = _page(7.3, len(RESULT_METRICS), 1, hspace=0.55, right=0.84)
    for k, (ax, (metric, title, scale, _)) in enumerate(zip(axes[:, 0], RESULT_METRICS, strict=True)):
        data = at1.assign(value=at1[metric] * scale)
        sns.pointplot(data=data, x="label", y="value", hue="loss", order=heads, hue_order=losses,
                      palette=pal.losses, errorbar=clipped(scale), dodge=0.45 if len(losses) > 1 else False,
                      linestyle="none", markersize=5,
                      capsize=0.08, err_kws={"linewidth": 1.1}, ax=ax, legend=k == 0)
        ax.axhline(0.5 * scale, color="grey", ls=":", lw=0.8)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("")
        ax.set_ylabel(title.split(" (")[0], fontsize=8)
        ax.tick_params(axis="x", labelrotation=15, labelsize=7.5)
        ax.tick_params(axis="y", labelsize=7.5)
        if k == 0 and ax.get_legend():
            sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1.0), title="loss", fontsize=7, title_fontsize=7,
                            frameon=False)
    variants = ", ".join(study.variants)
    caption = (f"{study.name} ({variants}): test metrics by head (with the cell's other factors) and loss at "
               "margin 1 (BCE has no margin). "
               f"Points are means over seeds ({', '.join(map(str, study.seeds))}), bars 95 % t-intervals; "
               "the dotted line is chance. A point without a bar had one finished seed.")
    return Plot(f"fig-{index:02d}-accuracy-by-head-{slug(study.name)}", f"Accuracy by head and loss: {study.name}",
                caption, fig, bottom)


def accuracy_by_margin(study: Study, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty:
        return None
    with_m = done[done["margin"].notna() & (done["loss"] != "bce")]
    losses = [x for x in _ordered(with_m["loss"], LOSS_ORDER) if with_m[with_m["loss"] == x]["margin"].nunique() >= 2]
    if not losses:
        return None
    margins = sorted(with_m["margin"].unique())
    metrics = [m for m in RESULT_METRICS if m[0] != "test/auc"]
    fig, axes, bottom = _page(6.4, len(metrics), len(losses), hspace=0.45, wspace=0.25, sharey="row")
    for j, loss in enumerate(losses):
        d = with_m[with_m["loss"] == loss]
        heads = _ordered(d["head"], _heads(study))
        for i, (metric, title, scale, _) in enumerate(metrics):
            ax = axes[i, j]
            sns.lineplot(data=d.assign(value=d[metric] * scale), x="margin", y="value", hue="head", hue_order=heads,
                         palette=pal.heads, marker="o", markersize=4, errorbar=clipped(scale), err_style="bars",
                         err_kws={"capsize": 2, "linewidth": 0.9}, ax=ax, legend=False)
            ax.set_xscale("log", base=2)
            ax.set_xticks(margins, [f"{m:g}" for m in margins])
            ax.minorticks_off()
            ax.axhline(0.5 * scale, color="grey", ls=":", lw=0.8)
            ax.set_title(f"{loss}: {title}", fontsize=8.5, loc="left")
            ax.set_xlabel("margin" if i == len(metrics) - 1 else "", fontsize=8)
            ax.set_ylabel("%" if j == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7.5)
    heads = _ordered(with_m["head"], _heads(study))
    handles = [Line2D([], [], color=pal.heads[hd], marker="o", markersize=4, lw=1.2, label=hd) for hd in heads]
    fig.legend(handles=handles, title="head", loc="upper center", ncols=min(4, len(heads)), fontsize=7,
               title_fontsize=7, frameon=False, bbox_to_anchor=(0.5, 1 - (bottom + 0.05) / PORTRAIT[1]))
    bottom += 0.25 + 0.18 * math.ceil(len(heads) / 4)
    caption = (f"{study.name}: test accuracy against the margin, per head and loss (means over seeds, 95 % "
               "t-intervals). The fixed rule d < 0.5 interacts with the margin (it sets the scale of the "
               "distances), which the accuracy at the validation-chosen threshold removes.")
    return Plot(f"fig-{index:02d}-margin-{slug(study.name)}", f"Accuracy against margin: {study.name}", caption, fig,
                bottom)


CURVE_TITLES = {"val/auc": "validation ROC AUC", "train/loss": "training loss"}


def curves(study: Study, history: pd.DataFrame, metric: str, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty or history.empty:
        return None
    h = history[(history["metric"] == metric) & history["run_id"].isin(done["run_id"])]
    if h.empty:
        return None
    h = h.merge(done[["run_id", "head", "loss", "margin", "optuna_trial"]], on="run_id")
    h["margin "] = [("–" if lo == "bce" or not math.isfinite(m) else f"{m:g}")
                    for lo, m in zip(h["loss"], h["margin"], strict=True)]
    h["label"] = cell_labels(h)
    heads = _labels_in_order(h, study)
    losses = _ordered(h["loss"], LOSS_ORDER)
    margins = sorted(set(h["margin "]), key=lambda t: (t == "–", float(t) if t != "–" else 0))
    margin_pal = dict(zip(margins, sns.color_palette("viridis", len(margins) + 1)[:len(margins)], strict=True))
    if "–" in margin_pal:
        margin_pal["–"] = (0.55, 0.55, 0.55)
    if len(losses) > 1:
        panels = [(hd, lo) for hd in heads for lo in losses]
        nrows, ncols = len(heads), len(losses)
    else:
        panels = [(hd, losses[0]) for hd in heads]
        ncols = min(4, len(panels))
        nrows = math.ceil(len(panels) / ncols)
    height = min(MAX_PLOT, nrows * 1.15 + 0.2)
    fig, axes, bottom = _page(height, nrows, ncols, left=0.09, right=0.97, hspace=0.75, wspace=0.28,
                              sharey=metric == "val/auc")
    for k, ax in enumerate(axes.flat):
        if k >= len(panels):
            ax.set_axis_off()
            continue
        head, loss = panels[k]
        d = h[(h["label"] == head) & (h["loss"] == loss)]
        ax.set_title(f"{head} + {loss}", fontsize=7, loc="left")
        ax.tick_params(labelsize=6.5)
        ax.set_xlabel("epoch" if k >= len(panels) - ncols else "", fontsize=7)
        ax.set_ylabel("")
        if d.empty:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{head} + {loss}:\nnot in the study", ha="center", va="center", fontsize=6.5,
                    color="grey", transform=ax.transAxes)
            continue
        sns.lineplot(data=d, x="epoch", y="value", hue="margin ", palette=margin_pal, errorbar=t_bounds,
                     ax=ax, legend=False, linewidth=1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.set_xlabel("epoch" if k >= len(panels) - ncols else "", fontsize=7)
        ax.set_ylabel("")
    handles = [Line2D([], [], color=margin_pal[m], lw=1.5, label=m) for m in margins]
    fig.legend(handles=handles, title="margin", loc="upper right", ncols=len(margins), fontsize=7, title_fontsize=7,
               bbox_to_anchor=(0.97, 1 - (FIGURE_TOP_IN - 0.6) / PORTRAIT[1]), frameon=False)
    caption = (f"{study.name}: {CURVE_TITLES.get(metric, metric)} per epoch, one panel per head and loss, one line "
               "per margin: mean over seeds with a 95 % t-band.")
    title = CURVE_TITLES.get(metric, metric)
    return Plot(f"fig-{index:02d}-curves-{metric.replace('/', '-')}-{slug(study.name)}",
                f"{title[0].upper()}{title[1:]} per epoch: {study.name}", caption, fig, bottom)


def _headline(found: list[Finding]) -> list[tuple[str, object]]:
    out, seen = [], set()
    for f in found:
        ev = f.headline
        if ev is not None and (ev.study, ev.cell) not in seen:
            seen.add((ev.study, ev.cell))
            out.append((f.row.id, ev))
    return out


def _first_distances(ev, cache: ArtifactCache):
    for run in ev.runs.to_dict("records"):
        npz = cache.get(run["run_id"], "distances.npz")
        if npz is not None and "test_d" in npz:
            return run, npz
    return None, None


def roc_curves(found: list[Finding], cache: ArtifactCache, index: int) -> Plot | None:
    from sklearn.metrics import roc_curve

    cells = _headline(found)
    if not cells:
        return None
    fig, axes, bottom = _page(5.2, 1, 1, left=0.2, right=0.8)
    ax = axes[0, 0]
    colors = sns.color_palette("tab10", len(cells))
    notes = []
    for (claim, ev), color in zip(cells, colors, strict=True):
        drawn, lacking = 0, []
        for run in ev.runs.itertuples(index=False):
            npz = cache.get(run.run_id, "distances.npz")
            if npz is None or "test_d" not in npz:
                lacking.append(str(run.seed))
                continue
            fpr, tpr, _ = roc_curve(npz["test_y"].astype(int), -npz["test_d"].astype(float))
            label = None if drawn else (f"{claim.split()[0]}: {_cell_label(run.head, run.loss, run.margin)} — AUC "
                                        f"{ev.auc.mean:.3f} ({ev.variant}, n={ev.auc.n})")
            ax.plot(fpr, tpr, color=color, lw=1.4 if not drawn else 0.7, alpha=1 if not drawn else 0.6, label=label)
            drawn += 1
        if lacking:
            notes.append(f"{ev.cell} seed {', '.join(lacking)}: outputs/distances.npz")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set_aspect("equal")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("false positive rate (different pairs called same)", fontsize=8)
    ax.set_ylabel("true positive rate (same pairs called same)", fontsize=8)
    ax.tick_params(labelsize=7.5)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), fontsize=7, frameon=False)
    bottom += 0.2 + 0.16 * len(cells)
    caption = ("ROC curves on the test pairs of the claims' cells (the preferred data variant of each), from the "
               "final dissimilarities stored with each run; one thick line for the first seed, thin lines for the "
               "others. The dotted diagonal is chance.")
    if notes:
        caption += " Missing: " + "; ".join(notes) + "."
    return Plot(f"fig-{index:02d}-roc", "ROC curves of the claims' cells", caption, fig, bottom + 0.1, notes)


def distance_histograms(found: list[Finding], cache: ArtifactCache, index: int) -> Plot | None:
    cells = _headline(found)
    if not cells:
        return None
    ncols = 2
    nrows = math.ceil(len(cells) / ncols)
    fig, axes, bottom = _page(min(MAX_PLOT, 2.1 * nrows), nrows, ncols, hspace=0.6, wspace=0.25)
    notes = []
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_axis_off()
            continue
        claim, ev = cells[k]
        run, npz = _first_distances(ev, cache)
        first = ev.runs.iloc[0]
        ax.set_title(f"{claim.split()[0]}: {_cell_label(first['head'], first['loss'], first['margin'])}",
                     fontsize=7.5, loc="left")
        ax.tick_params(labelsize=6.5)
        if npz is None:
            notes.append(f"{ev.cell}: outputs/distances.npz missing")
            ax.text(0.5, 0.5, "distances.npz missing", ha="center", va="center", transform=ax.transAxes, color="grey")
            continue
        d = npz["test_d"].astype(float)
        pair = np.where(npz["test_y"].astype(int) == 1, "same", "different")
        sns.histplot(x=d, hue=pair, hue_order=["same", "different"],
                     palette={"same": "#2a9d8f", "different": "#e76f51"},
                     stat="density", common_norm=False, bins=40, element="step", ax=ax, legend=k == 0)
        ax.axvline(0.5, color="black", ls=":", lw=0.9)
        thr = float(run.get("test/threshold", math.nan))
        if math.isfinite(thr):
            ax.axvline(thr, color="black", ls="--", lw=0.9)
        ax.set_xlabel(f"dissimilarity d ({ev.variant}, seed {run['seed']})", fontsize=7)
        ax.set_ylabel("density" if k % ncols == 0 else "", fontsize=7)
        if k == 0 and ax.get_legend():
            sns.move_legend(ax, "upper right", fontsize=6.5, title=None, frameon=False)
    caption = ("Test dissimilarities of same and different pairs (lower = more alike), first finished seed of each "
               "claim's cell. Dotted: the sources' fixed rule d = 0.5; dashed: the threshold chosen on validation.")
    if notes:
        caption += " Missing: " + "; ".join(notes) + "."
    return Plot(f"fig-{index:02d}-distances", "Distances of same and different pairs", caption, fig, bottom, notes)


def _first_embedding(done: pd.DataFrame, cell: str, cache: ArtifactCache):
    for run in done[done["cell"] == cell].sort_values("seed").itertuples(index=False):
        npz = cache.get(run.run_id, "embeddings.npz")
        if npz is not None and "embedding" in npz:
            return run, npz
    return None, None


def _embedding_picks(study: Study, cache: ArtifactCache) -> tuple[list, list[str]]:
    """(which, cell, auc, run, npz, skipped) for the best and worst cells by mean test AUC that
    stored embeddings; cells without them are skipped and named."""
    done = study.complete
    if done.empty or done["cell"].nunique() < 2:
        return [], []
    auc = done.groupby("cell", sort=False)["test/auc"].mean().dropna().sort_values(ascending=False)
    notes, picks = [], []
    for which, order in (("best", list(auc.index)), ("worst", list(reversed(auc.index)))):
        skipped = []
        for cell in order:
            if picks and cell == picks[0][1]:
                continue
            run, npz = _first_embedding(done, cell, cache)
            if npz is not None:
                picks.append((which, cell, float(auc[cell]), run, npz, len(skipped)))
                break
            skipped.append(cell)
        if skipped and picks and picks[-1][0] == which:
            notes.append(f"in {study.name}, {len(skipped)} {which} cell(s) by AUC stored no embeddings.npz "
                         f"({'; '.join(skipped)}), so the {which} cell with embeddings is shown")
    return picks, notes


def embeddings(studies: list[Study], cache: ArtifactCache, index: int) -> Plot:
    """PCA of test embeddings for the cells with the best and the worst mean test AUC, in the
    study with the most cells whose runs stored embeddings (runs from before embeddings.npz
    was logged have none: that is said in the caption, and on the page if no run has any)."""
    from sklearn.decomposition import PCA

    ranked = sorted(studies, key=lambda s: -(s.complete["cell"].nunique() if not s.complete.empty else 0))
    picks, notes, study = [], [], None
    for candidate in ranked:
        picks, found_notes = _embedding_picks(candidate, cache)
        if len(picks) == 2:
            study, notes = candidate, notes + found_notes
            break
        if not candidate.complete.empty:
            notes.append(f"no two cells of {candidate.name} stored outputs/embeddings.npz "
                         "(runs from before it was logged)")
    fig, axes, bottom = _page(3.7, 1, 2, wspace=0.15, left=0.06, right=0.86)
    if study is None:
        for ax in axes[0]:
            ax.set_axis_off()
        axes[0, 0].text(0, 0.5, "No run of these studies stored outputs/embeddings.npz:\nno projection to show.",
                        fontsize=10, color="grey", transform=axes[0, 0].transAxes, va="center")
    for k, ax in enumerate(axes[0] if study is not None else []):
        ax.set_xticks([])
        ax.set_yticks([])
        which, cell, value, run, npz, skipped = picks[k]
        label = cell_labels(pd.DataFrame({"cell": [cell], "head": [run.head]})).iloc[0]
        ax.set_title(f"{which}{' with embeddings' if skipped else ''} by test AUC ({value:.3f}):\n"
                     f"{_cell_label(label, run.loss, run.margin)}", fontsize=7.5, loc="left")
        emb = npz["embedding"].astype(np.float32)
        xy = (PCA(n_components=2, random_state=0).fit_transform(emb) if emb.shape[1] >= 2
              else np.c_[emb, np.zeros(len(emb))])
        labels = npz["label"].astype(int)
        few = len(np.unique(labels)) <= 10  # beyond ten classes (alphabets, characters) no legend
        sns.scatterplot(x=xy[:, 0], y=xy[:, 1], hue=labels, palette="tab10" if few else "husl", s=6, linewidth=0,
                        ax=ax, legend=k == 0 and few)
        ax.set_xlabel(f"PC 1 ({run.dataset_variant}, seed {run.seed}, {len(emb)} test images)", fontsize=7)
        ax.set_ylabel("PC 2", fontsize=7)
        if ax.get_legend():
            sns.move_legend(ax, "upper left", bbox_to_anchor=(2.2, 1.0), title="class", fontsize=6.5,
                            title_fontsize=7, frameon=False, markerscale=2)
    name = study.name if study is not None else "no study"
    caption = (f"{name}: test embeddings (the first test images, up to 1,000) projected on their two principal "
               "components and coloured by class, for the cells with the best and the worst mean test ROC AUC.")
    if notes:
        caption += " Note: " + "; ".join(notes) + "."
    return Plot(f"fig-{index:02d}-embeddings", f"Embeddings of the best and worst cells: {name}", caption, fig, bottom,
                notes)


K1_REPORTED = 0.92  # Koch et al. 2015, 20-way one-shot on Lake's evaluation runs


def oneshot_by_run(studies: list[Study], pal: Palettes, index: int) -> Plot | None:
    """20-way one-shot accuracy on each of Lake's 20 runs: every cell that logged it (mean over
    seeds), the pixel nearest-neighbour baseline, and K1's reported 92 %."""
    frames = []
    for study in studies:
        done = study.complete
        if done.empty or "oneshot/run01" not in done:
            continue
        done = done[done["oneshot/run01"].notna()]
        runs = sorted(c for c in done.columns if c.startswith("oneshot/run"))
        labels = cell_labels(done)
        for label, values in zip(labels, done.to_dict("records"), strict=True):
            who = f"{label} + {values['loss']} ({values['dataset_variant']})"
            for col in runs:
                frames.append({"who": who, "run": col.rsplit("/run", 1)[1], "accuracy": 100 * values[col],
                               "seed": values["seed"]})
        pixels = [c for c in done.columns if c.startswith("oneshot_pixels/run")]
        first = done.iloc[0]
        for col in pixels:
            frames.append({"who": f"pixel nearest neighbour ({first['dataset_variant']})",
                           "run": col.rsplit("/run", 1)[1], "accuracy": 100 * first[col], "seed": 0})
    if not frames:
        return None
    data = pd.DataFrame(frames)
    fig, axes, bottom = _page(4.2, 1, 1, right=0.97)
    ax = axes[0, 0]
    sns.pointplot(data=data, x="run", y="accuracy", hue="who", errorbar=clipped(100), dodge=0.4, linestyle="none",
                  markersize=4, capsize=0.05, err_kws={"linewidth": 0.9}, ax=ax)
    ax.axhline(100 * K1_REPORTED, color="black", ls="--", lw=0.9)
    ax.text(0.2, 100 * K1_REPORTED + 1.5, "K1 reported (Koch et al.): 92 %", fontsize=7)
    ax.axhline(5, color="grey", ls=":", lw=0.8)
    ax.set_ylim(0, 100)
    ax.set_xlabel("official run (all_runs.zip)", fontsize=8)
    ax.set_ylabel("20-way one-shot accuracy, %", fontsize=8)
    ax.tick_params(labelsize=7.5)
    if ax.get_legend():
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -0.13), ncols=1, fontsize=7, title=None,
                        frameon=False)
    bottom += 0.2 * data["who"].nunique()
    caption = ("20-way one-shot accuracy on each of Lake et al.'s 20 official runs (20 test images each): cells "
               "trained on the background set (means over seeds, 95 % t-intervals), the same scoring on raw pixels, "
               "the dashed line at K1's reported 92 % and the dotted line at chance (5 %).")
    return Plot(f"fig-{index:02d}-oneshot-by-run", "One-shot accuracy per official run", caption, fig, bottom)
