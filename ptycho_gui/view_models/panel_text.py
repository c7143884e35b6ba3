"""Small text helpers of the data and settings panels (no Qt)."""

from __future__ import annotations

#: Zero-width space: a break opportunity that shows nothing.
BREAK = "\u200b"


def breakable(text: str) -> str:
    """``text`` with a zero-width space after each path separator, ``_``, ``.`` and ``-``, so
    that a word-wrapped label breaks a long file name instead of widening its dock."""
    for ch in "/\\_.-":
        text = text.replace(ch, ch + BREAK)
    return text


def position_text(index: int, count: int) -> str:
    """What the pattern slider shows for the scan position ``index`` (counted from 0) of
    ``count`` positions: ``"position 3 of 400 (#2)"``, the position counted from 1 and its
    index ``#`` counted from 0, the number the diffraction views show."""
    return f"position {index + 1} of {count} (#{index})"
