"""Text measured with the font's own metrics (FreeType via matplotlib), so the PDF's wrapping is exact."""

from __future__ import annotations

from functools import lru_cache

from matplotlib.font_manager import FontProperties, findfont, get_font

FAMILY = "DejaVu Sans"


@lru_cache(maxsize=8)
def _font(bold: bool, italic: bool):
    prop = FontProperties(family=FAMILY, weight="bold" if bold else "normal", style="italic" if italic else "normal")
    return get_font(findfont(prop))


@lru_cache(maxsize=65536)
def text_width(text: str, size: float, bold: bool = False, italic: bool = False) -> float:
    """Width of one line of text in inches."""
    font = _font(bold, italic)
    font.set_size(size, 720)  # measured at 10x resolution: hinting rounds advances to whole pixels
    font.set_text(text, 0.0)
    return font.get_width_height()[0] / 64 / 720


def _split_long(word: str, width: float, size: float, bold: bool) -> list[str]:
    """Break a word wider than the line after , / = or -, else between characters."""
    pieces, current = [], ""
    for ch in word:
        if current and text_width(current + ch, size, bold) > width:
            cut = max(current.rfind(c) for c in ",/=-") + 1
            if 0 < cut < len(current):
                pieces.append(current[:cut])
                current = current[cut:]
            else:
                pieces.append(current)
                current = ""
        current += ch
    return pieces + [current] if current else pieces


def wrap(text: str, width: float, size: float, bold: bool = False, italic: bool = False) -> list[str]:
    """Greedy word wrap to `width` inches; keeps explicit newlines."""
    lines: list[str] = []
    for para in str(text).split("\n"):
        current = ""
        for word in para.split(" "):
            if not word:
                continue
            candidate = f"{current} {word}" if current else word
            if text_width(candidate, size, bold, italic) <= width:
                current = candidate
                continue
            if current:
                lines.append(current)
            if text_width(word, size, bold, italic) > width:
                *head, current = _split_long(word, width, size, bold)
                lines.extend(head)
            else:
                current = word
        lines.append(current)
    return lines


def line_height(size: float) -> float:
    return size * 1.28 / 72
