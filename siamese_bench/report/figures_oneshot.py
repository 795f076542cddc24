"""K1's figure: 20-way one-shot accuracy on each of Lake's 20 official runs."""

from __future__ import annotations

import pandas as pd
import seaborn as sns

from siamese_bench.report.figures import Palettes, Plot, cell_labels, clipped, page
from siamese_bench.report.load import Study

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
                frames.append(
                    {"who": who, "run": col.rsplit("/run", 1)[1], "accuracy": 100 * values[col], "seed": values["seed"]}
                )
        pixels = [c for c in done.columns if c.startswith("oneshot_pixels/run")]
        first = done.iloc[0]
        for col in pixels:
            frames.append(
                {
                    "who": f"pixel nearest neighbour ({first['dataset_variant']})",
                    "run": col.rsplit("/run", 1)[1],
                    "accuracy": 100 * first[col],
                    "seed": 0,
                }
            )
    if not frames:
        return None
    data = pd.DataFrame(frames)
    fig, axes, bottom = page(4.2, 1, 1, right=0.97)
    ax = axes[0, 0]
    sns.pointplot(
        data=data,
        x="run",
        y="accuracy",
        hue="who",
        errorbar=clipped(100),
        dodge=0.4,
        linestyle="none",
        markersize=4,
        capsize=0.05,
        err_kws={"linewidth": 0.9},
        ax=ax,
    )
    ax.axhline(100 * K1_REPORTED, color="black", ls="--", lw=0.9)
    ax.text(0.2, 100 * K1_REPORTED + 1.5, "K1 reported (Koch et al.): 92 %", fontsize=7)
    ax.axhline(5, color="grey", ls=":", lw=0.8)
    ax.set_ylim(0, 100)
    ax.set_xlabel("official run (all_runs.zip)", fontsize=8)
    ax.set_ylabel("20-way one-shot accuracy, %", fontsize=8)
    ax.tick_params(labelsize=7.5)
    if ax.get_legend():
        sns.move_legend(ax, "upper center", bbox_to_anchor=(0.5, -0.13), ncols=1, fontsize=7, title=None, frameon=False)
    bottom += 0.2 * data["who"].nunique()
    caption = (
        "20-way one-shot accuracy on each of Lake et al.'s 20 official runs (20 test images each): cells "
        "trained on the background set (means over seeds, 95 % t-intervals), the same scoring on raw pixels, "
        "the dashed line at K1's reported 92 % and the dotted line at chance (5 %)."
    )
    return Plot(f"fig-{index:02d}-oneshot-by-run", "One-shot accuracy per official run", caption, fig, bottom)
