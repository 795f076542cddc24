"""Training curves of a study: a metric per epoch, one panel per head and loss, a line per margin."""

from __future__ import annotations

import math

import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from siamese_bench.report.figures import (
    MAX_PLOT,
    Palettes,
    Plot,
    cell_labels,
    labels_in_order,
    loss_order,
    page,
    t_bounds,
)
from siamese_bench.report.load import Study
from siamese_bench.report.pdf import FIGURE_TOP_IN, PORTRAIT
from siamese_bench.report.tables import slug

CURVE_TITLES = {"val/auc": "validation ROC AUC", "train/loss": "training loss"}
NO_MARGIN = "–"  # the legend's entry for losses that take no margin


def curves(study: Study, history: pd.DataFrame, metric: str, pal: Palettes, index: int) -> Plot | None:
    done = study.complete
    if done.empty or history.empty:
        return None
    h = history[(history["metric"] == metric) & history["run_id"].isin(done["run_id"])]
    if h.empty:
        return None
    h = h.merge(
        done[["run_id", "head", "loss", "margin", "loss_uses_margin", "objective", "optuna_trial"]], on="run_id"
    )
    h["margin "] = [
        (NO_MARGIN if not uses or not math.isfinite(m) else f"{m:g}")
        for uses, m in zip(h["loss_uses_margin"].astype(bool), h["margin"], strict=True)
    ]
    h["label"] = cell_labels(h)
    heads = labels_in_order(h, study)
    losses = loss_order(h)
    margins = sorted(set(h["margin "]), key=lambda t: (t == NO_MARGIN, float(t) if t != NO_MARGIN else 0))
    margin_pal = dict(zip(margins, sns.color_palette("viridis", len(margins) + 1)[: len(margins)], strict=True))
    if NO_MARGIN in margin_pal:
        margin_pal[NO_MARGIN] = (0.55, 0.55, 0.55)
    present = set(zip(h["label"], h["loss"], strict=True))
    panels = [(hd, lo) for hd in heads for lo in losses if (hd, lo) in present]  # no panel for what did not run
    if len(losses) > 1 and len(panels) == len(heads) * len(losses):
        nrows, ncols = len(heads), len(losses)  # a full head x loss grid: a row per head
    else:
        ncols = min(4, len(panels))
        nrows = math.ceil(len(panels) / ncols)
    height = min(MAX_PLOT, nrows * 1.15 + 0.2)
    fig, axes, bottom = page(
        height, nrows, ncols, left=0.09, right=0.97, hspace=0.75, wspace=0.28, sharey=metric == "val/auc"
    )
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
            ax.text(
                0.5,
                0.5,
                f"{head} + {loss}:\nnot in the study",
                ha="center",
                va="center",
                fontsize=6.5,
                color="grey",
                transform=ax.transAxes,
            )
            continue
        sns.lineplot(
            data=d,
            x="epoch",
            y="value",
            hue="margin ",
            palette=margin_pal,
            errorbar=t_bounds,
            ax=ax,
            legend=False,
            linewidth=1,
        )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
        ax.set_xlabel("epoch" if k >= len(panels) - ncols else "", fontsize=7)
        ax.set_ylabel("")
    handles = [Line2D([], [], color=margin_pal[m], lw=1.5, label=m) for m in margins]
    fig.legend(
        handles=handles,
        title="margin",
        loc="upper right",
        ncols=len(margins),
        fontsize=7,
        title_fontsize=7,
        bbox_to_anchor=(0.97, 1 - (FIGURE_TOP_IN - 0.6) / PORTRAIT[1]),
        frameon=False,
    )
    caption = (
        f"{study.name}: {CURVE_TITLES.get(metric, metric)} per epoch, one panel per head and loss, one line "
        "per margin: mean over seeds with a 95 % t-band."
    )
    title = CURVE_TITLES.get(metric, metric)
    return Plot(
        f"fig-{index:02d}-curves-{metric.replace('/', '-')}-{slug(study.name)}",
        f"{title[0].upper()}{title[1:]} per epoch: {study.name}",
        caption,
        fig,
        bottom,
    )
