"""A report table: machine-readable data (CSV) plus a formatted view (Markdown and PDF)."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Table:
    key: str  # file stem, e.g. "findings" -> findings.csv, findings.md
    title: str
    data: pd.DataFrame  # numbers as numbers: what the CSV holds
    view: pd.DataFrame  # strings: what Markdown and the PDF show
    best: set[tuple[int, str]] = field(default_factory=set)  # (row position, view column) marked best
    widths: dict[str, float] = field(default_factory=dict)  # relative PDF column widths (default: by content)
    note: str = ""  # shown under the table
    fills: dict[tuple[int, str], str] = field(default_factory=dict)  # PDF cell background colours

    def markdown(self) -> str:
        return to_markdown(self.view, self.best)

    def write(self, folder: Path) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        csv, md = folder / f"{self.key}.csv", folder / f"{self.key}.md"
        self.data.to_csv(csv, index=False)
        text = f"## {self.title}\n\n{self.markdown()}\n"
        if self.note:
            text += f"\n{self.note}\n"
        md.write_text(text)
        return [csv, md]


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", "<br>")


def to_markdown(view: pd.DataFrame, best: AbstractSet[tuple[int, str]] = frozenset()) -> str:
    """A GitHub-flavoured Markdown table; cells in `best` are bold."""
    if view.empty:
        return "(no rows)"
    cols = list(view.columns)
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i, row in enumerate(view.itertuples(index=False)):
        cells = []
        for col, value in zip(cols, row, strict=True):
            text = _md_cell(value)
            cells.append(f"**{text}**" if (i, col) in best and text else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def slug(text: str) -> str:
    """A file-name-safe version of a study or cell name."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "x"
