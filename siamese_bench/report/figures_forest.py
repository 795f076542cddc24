"""Forest plots of what the findings' rows compare: each row's own metric with its interval, so a
figure fits any design (a grid, a one-lever-at-a-time study, a user's claims file).

- comparison rows: the seed-paired difference (claimed better - compared cell) with its
  interval, the no-difference band (-delta, delta) shaded;
- single-cell rows: the rule's metric minus its bar (or minus 0.5 inside the chance band);
- a best-cell row (K1's bar): each lever's effect against the base cell, paired by seed.
All in points (accuracy x 100, AUC x 100), at the level the findings were read at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from siamese_bench.report.figures import Plot, page
from siamese_bench.report.findings import RULE_METRIC, Finding
from siamese_bench.report.load import Study, parse_cell
from siamese_bench.report.rules import (
    CHANCE_AUC,
    CHANCE_MARGIN,
    CONTRADICTED,
    LEARNS_AUC,
    ONESHOT_BAR,
    REPRODUCED,
    WORKS_ACC,
)
from siamese_bench.report.stats import Interval, paired_comparison

BARS = {
    "works": WORKS_ACC,
    "learns": LEARNS_AUC,
    "oneshot": ONESHOT_BAR,
    "chance": CHANCE_AUC,
    "above-chance": CHANCE_AUC + CHANCE_MARGIN,
}
VERDICT_COLOURS = {REPRODUCED: "#2a7f3f", CONTRADICTED: "#b2352b"}
UNDECIDED = "#8a6d00"


@dataclass(frozen=True)
class Line:
    label: str
    estimate: Interval  # in points
    band: tuple[float, float] | None  # shaded: no difference that matters, or the chance band
    colour: str


def _points(iv: Interval, offset: float = 0.0) -> Interval:
    return Interval((iv.mean - offset) * 100, iv.sd * 100, iv.n, (iv.lo - offset) * 100, (iv.hi - offset) * 100)


def finding_line(f: Finding) -> Line | None:
    colour = VERDICT_COLOURS.get(f.verdict, UNDECIDED)
    if f.paired is not None:
        d = f.paired.diff
        if not d.n:
            return None
        delta = f.row.delta * 100
        return Line(f"{f.row.id}: {f.row.metric}, vs {f.versus_cell or '?'}", _points(d), (-delta, delta), colour)
    ev = f.decided_on
    if ev is None or f.row.rule not in BARS:
        return None
    metric = RULE_METRIC[f.row.rule]
    iv = ev.oneshot if metric == "oneshot/acc" else ev.auc if metric == "test/auc" else ev.acc
    if iv is None or not iv.n:
        return None
    bar = BARS[f.row.rule]
    band = (-CHANCE_MARGIN * 100, CHANCE_MARGIN * 100) if f.row.rule == "chance" else None
    return Line(f"{f.row.id}: {metric} − {bar:g}", _points(iv, bar), band, colour)


def lever_lines(study: Study, variant: str, metric: str = "oneshot/acc") -> list[Line]:
    """Each cell's effect against the study's base cell (the cell with the fewest keys), paired by seed."""
    done = study.complete
    here = done[(done["dataset_variant"] == variant) & done[metric].notna()] if metric in done else done.iloc[0:0]
    if here.empty:
        return []
    by_cell = {str(c): dict(zip(g["seed"], g[metric], strict=True)) for c, g in here.groupby("cell")}
    base = min(by_cell, key=lambda c: (len(parse_cell(c)), c))
    lines = []
    for cell, values in by_cell.items():
        if cell == base:
            continue
        p = paired_comparison(by_cell[base], values)
        changed = [f"{k}={v}" for k, v in parse_cell(cell).items() if parse_cell(base).get(k) != v] or [cell]
        lines.append(Line(", ".join(changed), _points(p.diff), None, UNDECIDED))
    return sorted(lines, key=lambda ln: -ln.estimate.mean if math.isfinite(ln.estimate.mean) else 0)


def _draw(lines: list[Line], title: str, index: int, key: str, caption: str) -> Plot:
    height = min(7.2, 0.8 + 0.32 * len(lines))
    fig, axes, bottom = page(height, 1, 1, left=0.42, right=0.97)
    ax = axes[0, 0]
    for y, line in enumerate(reversed(lines)):
        iv = line.estimate
        if line.band is not None:
            ax.fill_betweenx([y - 0.4, y + 0.4], *line.band, color="#dddddd", lw=0)
        if iv.has_interval:
            ax.plot([iv.lo, iv.hi], [y, y], color=line.colour, lw=1.6)
        ax.plot([iv.mean], [y], "o", color=line.colour, markersize=4.5)
    ax.axvline(0, color="grey", ls=":", lw=0.9)
    ax.set_yticks(range(len(lines)), [ln.label for ln in reversed(lines)], fontsize=7)
    ax.set_xlabel("points (accuracy or AUC × 100)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7.5)
    ax.set_ylim(-0.7, len(lines) - 0.3)
    return Plot(key, title, caption, fig, bottom)


def forest(found: list[Finding], index: int, level: float) -> Plot | None:
    lines = [line for f in found if (line := finding_line(f)) is not None]
    if not lines:
        return None
    caption = (
        f"Every row of the findings on its own metric, with its {level * 100:.4g} % interval over seeds "
        "(green: reproduced, red: contradicted, ochre: inconclusive). Comparison rows: the seed-paired "
        "difference, claimed better minus compared cell; the grey band is the no-difference band (±δ). "
        "Single-cell rows: the rule's metric minus its bar (for 'at chance', minus 0.5, the band ±0.05)."
    )
    return _draw(lines, "What each finding compares", index, f"fig-{index:02d}-forest", caption)


def levers(found: list[Finding], studies: list[Study], index: int) -> Plot | None:
    """K1's bar: each lever of the best cell's study against its base cell."""
    decided = next((f.decided_on for f in found if f.row.pick == "best-oneshot" and f.decided_on is not None), None)
    if decided is None:
        return None
    study = next(s for s in studies if s.name == decided.study)
    lines = lever_lines(study, decided.variant)
    if not lines:
        return None
    caption = (
        f"{study.name} ({decided.variant}): each cell's one-shot accuracy minus the base cell's, paired "
        "by seed, with its 95 % interval: which lever mattered, and by how much."
    )
    return _draw(lines, f"Levers against the base cell: {study.name}", index, f"fig-{index:02d}-levers", caption)
