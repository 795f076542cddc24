"""Figures from the artifacts runs stored (outputs/distances.npz, outputs/embeddings.npz): ROC
curves and distance histograms of the claims' cells, and embeddings of a study's best and worst
cells. A missing artifact leaves a note in its panel and in the caption instead of failing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns

from siamese_bench.report.evidence import Evidence
from siamese_bench.report.figures import MAX_PLOT, Plot, cell_labels, cell_title, page
from siamese_bench.report.findings import Finding
from siamese_bench.report.load import ArtifactCache, Study

# (which, cell, mean test AUC, the run's row, its embeddings.npz, cells skipped for lacking one)
Pick = tuple[str, str, float, Any, dict[str, np.ndarray], int]


def _headline(found: list[Finding]) -> list[tuple[str, Evidence]]:
    out: list[tuple[str, Evidence]] = []
    seen: set[tuple[str, str]] = set()
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
    fig, axes, bottom = page(5.2, 1, 1, left=0.2, right=0.8)
    ax = axes[0, 0]
    colors = sns.color_palette("tab10", len(cells))
    notes = []
    for (claim, ev), color in zip(cells, colors, strict=True):
        drawn, lacking = 0, []
        run: Any  # a row of ev.runs; pandas-stubs types its cells as any scalar, not as their columns
        for run in ev.runs.itertuples(index=False):
            npz = cache.get(run.run_id, "distances.npz")
            if npz is None or "test_d" not in npz:
                lacking.append(str(run.seed))
                continue
            fpr, tpr, _ = roc_curve(npz["test_y"].astype(int), -npz["test_d"].astype(float))
            label = (
                None
                if drawn
                else (
                    f"{claim.split()[0]}: {cell_title(run.head, run.loss, run.margin)} — AUC "
                    f"{ev.auc.mean:.3f} ({ev.variant}, n={ev.auc.n})"
                )
            )
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
    caption = (
        "ROC curves on the test pairs of the claims' cells (the preferred data variant of each), from the "
        "final dissimilarities stored with each run; one thick line for the first seed, thin lines for the "
        "others. The dotted diagonal is chance."
    )
    if notes:
        caption += " Missing: " + "; ".join(notes) + "."
    return Plot(f"fig-{index:02d}-roc", "ROC curves of the claims' cells", caption, fig, bottom + 0.1, notes)


def distance_histograms(found: list[Finding], cache: ArtifactCache, index: int) -> Plot | None:
    cells = _headline(found)
    if not cells:
        return None
    ncols = 2
    nrows = math.ceil(len(cells) / ncols)
    fig, axes, bottom = page(min(MAX_PLOT, 2.1 * nrows), nrows, ncols, hspace=0.6, wspace=0.25)
    notes = []
    for k, ax in enumerate(axes.flat):
        if k >= len(cells):
            ax.set_axis_off()
            continue
        claim, ev = cells[k]
        run, npz = _first_distances(ev, cache)
        first = ev.runs.iloc[0]
        ax.set_title(
            f"{claim.split()[0]}: {cell_title(first['head'], first['loss'], first['margin'])}", fontsize=7.5, loc="left"
        )
        ax.tick_params(labelsize=6.5)
        if npz is None:
            notes.append(f"{ev.cell}: outputs/distances.npz missing")
            ax.text(0.5, 0.5, "distances.npz missing", ha="center", va="center", transform=ax.transAxes, color="grey")
            continue
        d = npz["test_d"].astype(float)
        pair = np.where(npz["test_y"].astype(int) == 1, "same", "different")
        sns.histplot(
            x=d,
            hue=pair,
            hue_order=["same", "different"],
            palette={"same": "#2a9d8f", "different": "#e76f51"},
            stat="density",
            common_norm=False,
            bins=40,
            element="step",
            ax=ax,
            legend=k == 0,
        )
        ax.axvline(0.5, color="black", ls=":", lw=0.9)
        thr = float(run.get("test/threshold", math.nan))
        if math.isfinite(thr):
            ax.axvline(thr, color="black", ls="--", lw=0.9)
        ax.set_xlabel(f"dissimilarity d ({ev.variant}, seed {run['seed']})", fontsize=7)
        ax.set_ylabel("density" if k % ncols == 0 else "", fontsize=7)
        if k == 0 and ax.get_legend():
            sns.move_legend(ax, "upper right", fontsize=6.5, title=None, frameon=False)
    caption = (
        "Test dissimilarities of same and different pairs (lower = more alike), first finished seed of each "
        "claim's cell. Dotted: the sources' fixed rule d = 0.5; dashed: the threshold chosen on validation."
    )
    if notes:
        caption += " Missing: " + "; ".join(notes) + "."
    return Plot(f"fig-{index:02d}-distances", "Distances of same and different pairs", caption, fig, bottom, notes)


def _first_embedding(done: pd.DataFrame, cell: str, cache: ArtifactCache):
    run: Any  # a row of `done`, as in roc_curves
    for run in done[done["cell"] == cell].sort_values("seed").itertuples(index=False):
        npz = cache.get(run.run_id, "embeddings.npz")
        if npz is not None and "embedding" in npz:
            return run, npz
    return None, None


def _embedding_picks(study: Study, cache: ArtifactCache) -> tuple[list[Pick], list[str]]:
    """(which, cell, auc, run, npz, skipped) for the best and worst cells by mean test AUC that
    stored embeddings; cells without them are skipped and named."""
    done = study.complete
    if done.empty or done["cell"].nunique() < 2:
        return [], []
    auc = done.groupby("cell", sort=False)["test/auc"].mean().dropna().sort_values(ascending=False)
    notes: list[str] = []
    picks: list[Pick] = []
    for which, order in (("best", list(auc.index)), ("worst", list(reversed(auc.index)))):
        skipped: list[str] = []
        for cell in order:
            if picks and cell == picks[0][1]:
                continue
            run, npz = _first_embedding(done, cell, cache)
            if npz is not None:
                picks.append((which, cell, float(auc[cell]), run, npz, len(skipped)))
                break
            skipped.append(cell)
        if skipped and picks and picks[-1][0] == which:
            notes.append(
                f"in {study.name}, {len(skipped)} {which} cell(s) by AUC stored no embeddings.npz "
                f"({'; '.join(skipped)}), so the {which} cell with embeddings is shown"
            )
    return picks, notes


def embeddings(studies: list[Study], cache: ArtifactCache, index: int) -> Plot:
    """PCA of test embeddings for the cells with the best and the worst mean test AUC, in the
    study with the most cells whose runs stored embeddings (runs from before embeddings.npz
    was logged have none: that is said in the caption, and on the page if no run has any)."""
    from sklearn.decomposition import PCA

    ranked = sorted(studies, key=lambda s: -(s.complete["cell"].nunique() if not s.complete.empty else 0))
    picks: list[Pick] = []
    notes: list[str] = []
    study: Study | None = None
    for candidate in ranked:
        picks, found_notes = _embedding_picks(candidate, cache)
        if len(picks) == 2:
            study, notes = candidate, notes + found_notes
            break
        if not candidate.complete.empty:
            notes.append(
                f"no two cells of {candidate.name} stored outputs/embeddings.npz (runs from before it was logged)"
            )
    fig, axes, bottom = page(3.7, 1, 2, wspace=0.15, left=0.06, right=0.86)
    if study is None:
        for ax in axes[0]:
            ax.set_axis_off()
        axes[0, 0].text(
            0,
            0.5,
            "No run of these studies stored outputs/embeddings.npz:\nno projection to show.",
            fontsize=10,
            color="grey",
            transform=axes[0, 0].transAxes,
            va="center",
        )
    for k, ax in enumerate(axes[0] if study is not None else []):
        ax.set_xticks([])
        ax.set_yticks([])
        which, cell, value, run, npz, skipped = picks[k]
        label = cell_labels(pd.DataFrame({"cell": [cell], "head": [run.head]})).iloc[0]
        ax.set_title(
            f"{which}{' with embeddings' if skipped else ''} by test AUC ({value:.3f}):\n"
            f"{cell_title(label, run.loss, run.margin)}",
            fontsize=7.5,
            loc="left",
        )
        emb = npz["embedding"].astype(np.float32)
        xy = (
            PCA(n_components=2, random_state=0).fit_transform(emb)
            if emb.shape[1] >= 2
            else np.c_[emb, np.zeros(len(emb))]
        )
        labels = npz["label"].astype(int)
        few = len(np.unique(labels)) <= 10  # beyond ten classes (alphabets, characters) no legend
        sns.scatterplot(
            x=xy[:, 0],
            y=xy[:, 1],
            hue=labels,
            palette="tab10" if few else "husl",
            s=6,
            linewidth=0,
            ax=ax,
            legend=k == 0 and few,
        )
        ax.set_xlabel(f"PC 1 ({run.dataset_variant}, seed {run.seed}, {len(emb)} test images)", fontsize=7)
        ax.set_ylabel("PC 2", fontsize=7)
        if ax.get_legend():
            sns.move_legend(
                ax,
                "upper left",
                bbox_to_anchor=(2.2, 1.0),
                title="class",
                fontsize=6.5,
                title_fontsize=7,
                frameon=False,
                markerscale=2,
            )
    name = study.name if study is not None else "no study"
    caption = (
        f"{name}: test embeddings (the first test images, up to 1,000) projected on their two principal "
        "components and coloured by class, for the cells with the best and the worst mean test ROC AUC."
    )
    if notes:
        caption += " Note: " + "; ".join(notes) + "."
    return Plot(
        f"fig-{index:02d}-embeddings", f"Embeddings of the best and worst cells: {name}", caption, fig, bottom, notes
    )
