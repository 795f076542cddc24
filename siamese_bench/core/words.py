"""Counted nouns in messages: "1 epoch", "2 epochs" (one helper, so no message says "1 epochs")."""

from __future__ import annotations


def plural(count: int, word: str, many: str | None = None) -> str:
    """`count` and `word`, in the plural unless count is 1 (`many` for irregular plurals)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
