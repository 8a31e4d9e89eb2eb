"""What a filter function returns."""
from __future__ import annotations

from typing import Any, NamedTuple


class Decision(NamedTuple):
    keep: bool
    reason: str | None = None  # the rule that removed the document (None when kept)
    scores: dict[str, Any] = {}  # columns written into the row, kept or not
    text: str | None = None  # a cleaned text when the filter modifies the document (C4 lines, PII masking)


KEEP = Decision(True)
