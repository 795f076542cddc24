"""PDF assembly with matplotlib alone (PdfPages): a title page with contents, numbered
sections, paragraphs, tables that wrap their text and continue over pages, figure pages.

Everything is laid out on A4 pages in inches: a full-page axes with y growing downwards,
text measured with the font's own metrics (FreeType via matplotlib) so wrapping is exact.
Fonts are embedded as TrueType (pdf.fonttype 42), so the text is selectable and extractable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.typing import RcKeyType

from siamese_bench.report.pdf_text import FAMILY, line_height, text_width, wrap
from siamese_bench.report.tables import Table

PORTRAIT = (8.27, 11.69)  # A4, inches
LANDSCAPE = (11.69, 8.27)
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 0.7, 0.75, 0.8
FIGURE_TOP_IN = 1.75  # figure pages: space kept above the plot for the headings
BODY, SMALL, H1, H2 = 9.5, 7.5, 15, 11.5
INK, MUTED, RULE_GREY, HEADER_FILL, STRIPE = "#1a1a1a", "#555555", "#9aa5b1", "#dfe6ee", "#f4f6f8"
RC: dict[RcKeyType, Any] = {"pdf.fonttype": 42, "ps.fonttype": 42, "font.family": FAMILY, "svg.fonttype": "none"}


@dataclass
class Page:
    figure: Figure
    width: float
    height: float
    y: float = MARGIN_TOP  # the cursor, inches from the top

    @property
    def bottom(self) -> float:
        return self.height - MARGIN_BOTTOM

    @property
    def room(self) -> float:
        return self.bottom - self.y

    def __post_init__(self) -> None:
        ax = self.figure.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, self.width)
        ax.set_ylim(self.height, 0)
        ax.set_axis_off()
        ax.patch.set_visible(False)  # figure pages: the plot underneath must show
        self.ax = ax

    def text(
        self,
        x: float,
        y: float,
        s: str,
        size: float = BODY,
        bold: bool = False,
        italic: bool = False,
        color: str = INK,
        ha: str = "left",
    ) -> None:
        self.ax.text(
            x,
            y,
            s,
            fontsize=size,
            fontweight="bold" if bold else "normal",
            fontstyle="italic" if italic else "normal",
            color=color,
            ha=ha,
            va="top",
            family=FAMILY,
        )


@dataclass
class Entry:
    level: int
    number: str
    title: str
    page: int


@dataclass
class ReportPdf:
    title: str
    subtitle: str
    pages: list[Page | Figure] = field(default_factory=list)
    contents: list[Entry] = field(default_factory=list)
    tables: int = 0
    figures: int = 0
    _pending: tuple[str, str] | None = None  # a level-2 heading waiting for its content

    # -- pages --------------------------------------------------------------------------------
    @property
    def page(self) -> Page:
        last = self.pages[-1] if self.pages else None
        if not isinstance(last, Page):
            return self.new_page()
        return last

    def new_page(self, landscape: bool = False) -> Page:
        size = LANDSCAPE if landscape else PORTRAIT
        page = Page(Figure(figsize=size), *size)
        self.pages.append(page)
        return page

    def ensure(self, height: float, landscape: bool | None = None) -> Page:
        page = self.page
        want_landscape = page.width > page.height if landscape is None else landscape
        if page.room < height or (page.width > page.height) != want_landscape:
            page = self.new_page(want_landscape)
        return page

    # -- flowing content ------------------------------------------------------------------------
    def heading(self, number: str, title: str, level: int = 1, landscape: bool = False) -> None:
        """A level-1 heading starts a page; a level-2 heading waits for what follows it, so it
        always lands on the same page as the start of its content."""
        if level == 1:
            self._draw_heading(self.new_page(landscape), number, title, level)
        else:
            self._pending = (number, title)

    def _draw_heading(self, page: Page, number: str, title: str, level: int) -> None:
        if level == 2 and page.y > MARGIN_TOP:
            page.y += 0.12
        size = H1 if level == 1 else H2
        page.text(MARGIN_X, page.y, f"{number}  {title}", size=size, bold=True)
        page.y += line_height(size) + (0.08 if level == 1 else 0.04)
        if level == 1:
            page.ax.plot([MARGIN_X, page.width - MARGIN_X], [page.y, page.y], color=RULE_GREY, lw=0.8)
            page.y += 0.14
        self.contents.append(Entry(level, number, title, len(self.pages)))

    def _start(self, need: float, landscape: bool | None = None) -> Page:
        """A page with room for a pending heading plus `need` inches of what follows it."""
        pending, self._pending = self._pending, None
        extra = line_height(H2) + 0.2 if pending else 0.0
        page = self.ensure(need + extra, landscape)
        if pending:
            self._draw_heading(page, *pending, level=2)
        return page

    def paragraph(
        self, text: str, size: float = BODY, italic: bool = False, color: str = INK, gap: float = 0.1
    ) -> None:
        page = self.page
        width = page.width - 2 * MARGIN_X
        lines = wrap(text, width, size, italic=italic)
        page = self._start(min(len(lines), 3) * line_height(size))
        for line in lines:
            if page.room < line_height(size):
                page = self.new_page(page.width > page.height)
            page.text(MARGIN_X, page.y, line, size=size, italic=italic, color=color)
            page.y += line_height(size)
        page.y += gap

    def table(self, table: Table, size: float = SMALL, landscape: bool | None = None) -> None:
        self.tables += 1
        number = self.tables
        view = table.view.astype(object).fillna("–").astype(str)  # pandas 3 keeps NaN through astype(str)
        if view.empty:
            self._start(3 * line_height(BODY)).text(
                MARGIN_X, self.page.y, f"Table {number}. {table.title}", size=BODY, bold=True
            )
            self.page.y += line_height(BODY) + 0.04
            note = f" {table.note}" if table.note else ""
            self.paragraph(
                f"No rows: nothing these studies ran falls in this table.{note}", size=SMALL, italic=True, color=MUTED
            )
            return
        page = self.page
        if landscape is not None and (page.width > page.height) != landscape:
            page = self.new_page(landscape)
        width = page.width - 2 * MARGIN_X
        cols = list(view.columns)
        pad = 0.032
        widths = self._column_widths(view, table, width, size, pad)
        lh = line_height(size)

        def cell_lines(i: int | None, col: str, value: str) -> list[str]:
            bold = i is None or (i, col) in table.best
            text = f"{value} *" if i is not None and (i, col) in table.best else value
            return wrap(text, widths[col] - 2 * pad, size, bold=bold)

        header = [cell_lines(None, c, c) for c in cols]
        header_h = max(len(h) for h in header) * lh + 2 * pad
        rows = [
            [cell_lines(i, c, v) for c, v in zip(cols, row, strict=True)]
            for i, row in enumerate(view.itertuples(index=False))
        ]
        heights = [max(len(x) for x in lines) * lh + 2 * pad for lines in rows]
        total = line_height(BODY) + 0.04 + header_h + sum(heights)
        first = line_height(BODY) + 0.04 + header_h + sum(heights[:2])
        whole_page = page.height - MARGIN_TOP - MARGIN_BOTTOM - 0.5
        page = self._start(total if total <= whole_page else first)  # keep a table that fits a page together

        def caption(page: Page, continued: bool) -> None:
            text = f"Table {number}. {table.title}" + (" (continued)" if continued else "")
            page.text(MARGIN_X, page.y, text, size=BODY, bold=True)
            page.y += line_height(BODY) + 0.04

        def draw_header(page: Page) -> None:
            x = MARGIN_X
            page.ax.add_patch(Rectangle((MARGIN_X, page.y), width, header_h, color=HEADER_FILL, lw=0))
            for col, lines in zip(cols, header, strict=True):
                for k, line in enumerate(lines):
                    page.text(x + pad, page.y + pad + k * lh, line, size=size, bold=True)
                x += widths[col]
            page.y += header_h
            page.ax.plot([MARGIN_X, MARGIN_X + width], [page.y, page.y], color=RULE_GREY, lw=0.6)

        caption(page, False)
        draw_header(page)
        for i, (lines, h) in enumerate(zip(rows, heights, strict=True)):
            if page.room < h:
                page = self.new_page(page.width > page.height)
                caption(page, True)
                draw_header(page)
            x = MARGIN_X
            if i % 2:
                page.ax.add_patch(Rectangle((MARGIN_X, page.y), width, h, color=STRIPE, lw=0))
            for col, cell in zip(cols, lines, strict=True):
                fill = table.fills.get((i, col))
                if fill:
                    page.ax.add_patch(Rectangle((x, page.y), widths[col], h, color=fill, lw=0))
                for k, line in enumerate(cell):
                    page.text(x + pad, page.y + pad + k * lh, line, size=size, bold=(i, col) in table.best)
                x += widths[col]
            page.y += h
        page.ax.plot([MARGIN_X, MARGIN_X + width], [page.y, page.y], color=RULE_GREY, lw=0.6)
        page.y += 0.08
        if table.note:
            self.paragraph(table.note, size=SMALL, italic=True, color=MUTED, gap=0.05)
        self.page.y += 0.15

    @staticmethod
    def _column_widths(view, table: Table, width: float, size: float, pad: float) -> dict[str, float]:
        """Relative widths (given, else by content) scaled to `width`; no column narrower than its
        longest word (so headers like "seed" never break mid-word when there is room)."""
        cols = list(view.columns)
        floor = {
            c: min(
                1.4,
                max(
                    [text_width(w, size, True) for w in str(c).split()]
                    + [text_width(w, size) for t in view[c][:300] for w in str(t).split()]
                    + [0.15]
                ),
            )
            + 2 * pad
            + 0.01
            for c in cols
        }
        if table.widths and all(c in table.widths for c in cols):
            rel = {c: table.widths[c] for c in cols}
        else:  # by content: the widest line of each column, capped
            rel = {}
            for c in cols:
                texts = [str(c)] + list(view[c])
                longest = max(text_width(line, size) for t in texts for line in t.split("\n"))
                rel[c] = max(min(longest, 2.6), 0.3) + 0.12
        total = sum(rel.values())
        out = {c: width * v / total for c, v in rel.items()}
        for _ in range(len(cols)):  # raise narrow columns to their floor, take it from the wide ones
            short = {c for c in cols if out[c] < floor[c] - 1e-9}
            if not short:
                break
            need = sum(floor[c] - out[c] for c in short)
            spare = {c: out[c] - floor[c] for c in cols if c not in short and out[c] > floor[c]}
            if sum(spare.values()) <= need:
                break
            for c in short:
                out[c] = floor[c]
            total_spare = sum(spare.values())
            for c, v in spare.items():
                out[c] -= need * v / total_spare
        return out

    # -- figures ---------------------------------------------------------------------------------
    def figure(
        self,
        figure: Figure,
        number: str,
        title: str,
        caption: str,
        bottom: float,
        section: tuple[str, str] | None = None,
    ) -> None:
        """A page holding one figure made by figures.py (page-sized, plot below FIGURE_TOP_IN,
        ending at `bottom` inches from the top); headings above it, the caption below it."""
        self.figures += 1
        w, h = figure.get_size_inches()
        page = Page(figure, w, h)
        self.pages.append(page)
        if section:
            page.text(MARGIN_X, page.y, f"{section[0]}  {section[1]}", size=H1, bold=True)
            page.y += line_height(H1) + 0.08
            page.ax.plot([MARGIN_X, page.width - MARGIN_X], [page.y, page.y], color=RULE_GREY, lw=0.8)
            page.y += 0.14
            self.contents.append(Entry(1, section[0], section[1], len(self.pages)))
        page.text(MARGIN_X, page.y, f"{number}  {title}", size=H2, bold=True)
        self.contents.append(Entry(2, number, title, len(self.pages)))
        page.y = bottom + 0.12
        self.paragraph(f"Figure {self.figures}. {caption}", size=SMALL + 0.5, color=MUTED)

    # -- output ------------------------------------------------------------------------------------
    def _title_page(self, lines: list[tuple[str, str]]) -> Page:
        page = Page(Figure(figsize=PORTRAIT), *PORTRAIT)
        page.y = 2.0
        page.ax.add_patch(Rectangle((0, 0), PORTRAIT[0], 0.35, color="#2f4b6e", lw=0))
        page.text(MARGIN_X, page.y, "siamese-bench", size=13, color=MUTED, bold=True)
        page.y += 0.35
        for line in wrap(self.title, PORTRAIT[0] - 2 * MARGIN_X, 24, bold=True):
            page.text(MARGIN_X, page.y, line, size=24, bold=True)
            page.y += line_height(24)
        page.y += 0.1
        for line in wrap(self.subtitle, PORTRAIT[0] - 2 * MARGIN_X, 12):
            page.text(MARGIN_X, page.y, line, size=12, color=MUTED)
            page.y += line_height(12)
        page.y += 0.35
        for key, value in lines:
            page.text(MARGIN_X, page.y, key, size=BODY, bold=True)
            for line in wrap(value, PORTRAIT[0] - 2 * MARGIN_X - 1.9, BODY):
                page.text(MARGIN_X + 1.9, page.y, line, size=BODY)
                page.y += line_height(BODY)
            page.y += 0.04
        page.y += 0.3
        page.text(MARGIN_X, page.y, "Contents", size=H2, bold=True)
        page.y += line_height(H2) + 0.05
        for k, e in enumerate(self.contents):
            if page.room < 2 * line_height(BODY) and k < len(self.contents) - 1:
                page.text(MARGIN_X, page.y, f"… and {len(self.contents) - k} more entries", size=BODY - 1, color=MUTED)
                break
            indent = 0.0 if e.level == 1 else 0.3
            size = BODY if e.level == 1 else BODY - 1
            label = f"{e.number}  {e.title}"
            label = wrap(label, PORTRAIT[0] - 2 * MARGIN_X - indent - 0.6, size, bold=e.level == 1)[0]
            page.text(MARGIN_X + indent, page.y, label, size=size, bold=e.level == 1)
            page.text(PORTRAIT[0] - MARGIN_X, page.y, str(e.page + 1), size=size, ha="right")
            page.y += line_height(size) + (0.03 if e.level == 1 else 0)
        return page

    def save(self, path: Path, lines: list[tuple[str, str]], name: str) -> Path:
        title = self._title_page(lines)
        pages = [title] + [p if isinstance(p, Page) else Page(p, *p.get_size_inches()) for p in self.pages]
        stamp = datetime.now(UTC).strftime("%Y-%m-%d")
        meta = {"Title": self.title, "Subject": self.subtitle, "Creator": "siamese-bench report"}
        with PdfPages(path, metadata=meta) as pdf:
            for k, page in enumerate(pages, start=1):
                if k > 1:
                    y = page.height - MARGIN_BOTTOM / 2
                    page.text(MARGIN_X, y, f"siamese-bench report · {name} · {stamp}", size=7, color=MUTED)
                    page.text(page.width - MARGIN_X, y, f"{k} / {len(pages)}", size=7, color=MUTED, ha="right")
                pdf.savefig(page.figure)
        return path
