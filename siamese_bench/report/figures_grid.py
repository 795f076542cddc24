"""Figures of a study's grid: test metrics by head and loss at margin 1, and against the margin."""

from __future__ import annotations

import math

import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D

from siamese_bench.report.figures import (
    Palettes,
    Plot,
    cell_labels,
    clipped,
    labels_in_order,
    loss_order,
    ordered,
    page,
    study_heads,
)
from siamese_bench.report.load import Study
from siamese_bench.report.pdf import PORTRAIT
from siamese_bench.report.results import RESULT_METRICS
from siamese_bench.report.tables import slug


def _no_margin_note(losses: list[str]) -> str:
    """ " (bce has no margin)", naming the shown losses that take none."""
    if not losses:
        return ""
    names = ", ".join(losses[:-1]) + (" and " if len(losses) > 1 else "") + losses[-1]
    return f" ({names} {'has' if len(losses) == 1 else 'have'} no margin)"


def accuracy_by_head(study: Study, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty:
        return None
    at1 = done[~done["loss_uses_margin"].astype(bool) | np.isclose(done["margin"], 1.0)]  # and losses with none
    if at1["cell"].nunique() < 2:
        return None
    at1 = at1.assign(label=cell_labels(at1))
    heads = labels_in_order(at1, study)
    losses = loss_order(at1)
    fig, axes, bottom = page(7.3, len(RESULT_METRICS), 1, hspace=0.55, right=0.84)
    for k, (ax, (metric, title, scale, _)) in enumerate(zip(axes[:, 0], RESULT_METRICS, strict=True)):
        data = at1.assign(value=at1[metric] * scale)
        sns.pointplot(
            data=data,
            x="label",
            y="value",
            hue="loss",
            order=heads,
            hue_order=losses,
            palette=pal.losses,
            errorbar=clipped(scale),
            dodge=0.45 if len(losses) > 1 else False,
            linestyle="none",
            markersize=5,
            capsize=0.08,
            err_kws={"linewidth": 1.1},
            ax=ax,
            legend=k == 0,
        )
        ax.axhline(0.5 * scale, color="grey", ls=":", lw=0.8)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("")
        ax.set_ylabel(title.split(" (")[0], fontsize=8)
        ax.tick_params(axis="x", labelrotation=15, labelsize=7.5)
        ax.tick_params(axis="y", labelsize=7.5)
        if k == 0 and ax.get_legend():
            sns.move_legend(
                ax, "upper left", bbox_to_anchor=(1.01, 1.0), title="loss", fontsize=7, title_fontsize=7, frameon=False
            )
    variants = ", ".join(study.variants)
    no_margin = [x for x in losses if not at1.loc[at1["loss"] == x, "loss_uses_margin"].astype(bool).any()]
    caption = (
        f"{study.name} ({variants}): test metrics by head (with the cell's other factors) and loss at "
        f"margin 1{_no_margin_note(no_margin)}. "
        f"Points are means over seeds ({', '.join(map(str, study.seeds))}), bars 95 % t-intervals; "
        "the dotted line is chance. A point without a bar had one finished seed."
    )
    return Plot(
        f"fig-{index:02d}-accuracy-by-head-{slug(study.name)}",
        f"Accuracy by head and loss: {study.name}",
        caption,
        fig,
        bottom,
    )


def accuracy_by_margin(study: Study, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty:
        return None
    with_m = done[done["loss_uses_margin"].astype(bool) & done["margin"].notna()]
    losses = [x for x in loss_order(with_m) if with_m[with_m["loss"] == x]["margin"].nunique() >= 2]
    if not losses:
        return None
    margins = sorted(with_m["margin"].unique())
    metrics = [m for m in RESULT_METRICS if m[0] != "test/auc"]
    fig, axes, bottom = page(6.4, len(metrics), len(losses), hspace=0.45, wspace=0.25, sharey="row")
    for j, loss in enumerate(losses):
        d = with_m[with_m["loss"] == loss]
        heads = ordered(d["head"], study_heads(study))
        for i, (metric, title, scale, _) in enumerate(metrics):
            ax = axes[i, j]
            sns.lineplot(
                data=d.assign(value=d[metric] * scale),
                x="margin",
                y="value",
                hue="head",
                hue_order=heads,
                palette=pal.heads,
                marker="o",
                markersize=4,
                errorbar=clipped(scale),
                err_style="bars",
                err_kws={"capsize": 2, "linewidth": 0.9},
                ax=ax,
                legend=False,
            )
            ax.set_xscale("log", base=2)
            ax.set_xticks(margins, [f"{m:g}" for m in margins])
            ax.minorticks_off()
            ax.axhline(0.5 * scale, color="grey", ls=":", lw=0.8)
            ax.set_title(f"{loss}: {title}", fontsize=8.5, loc="left")
            ax.set_xlabel("margin" if i == len(metrics) - 1 else "", fontsize=8)
            ax.set_ylabel("%" if j == 0 else "", fontsize=8)
            ax.tick_params(labelsize=7.5)
    heads = ordered(with_m["head"], study_heads(study))
    handles = [Line2D([], [], color=pal.heads[hd], marker="o", markersize=4, lw=1.2, label=hd) for hd in heads]
    fig.legend(
        handles=handles,
        title="head",
        loc="upper center",
        ncols=min(4, len(heads)),
        fontsize=7,
        title_fontsize=7,
        frameon=False,
        bbox_to_anchor=(0.5, 1 - (bottom + 0.05) / PORTRAIT[1]),
    )
    bottom += 0.25 + 0.18 * math.ceil(len(heads) / 4)
    caption = (
        f"{study.name}: test accuracy against the margin, per head and loss (means over seeds, 95 % "
        "t-intervals). The fixed rule d < 0.5 interacts with the margin (it sets the scale of the "
        "distances), which the accuracy at the validation-chosen threshold removes."
    )
    return Plot(
        f"fig-{index:02d}-margin-{slug(study.name)}", f"Accuracy against margin: {study.name}", caption, fig, bottom
    )
