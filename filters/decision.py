"""What a filter function returns."""
from __future__ import annotations

from typing import Any, NamedTuple


class Decision(NamedTuple):
    keep: bool
    reason: str | None = None  # the rule that removed the document (None when kept)
    scores: dict[str, Any] = {}  # columns written into the row, kept or not
    text: str | None = None  # a cleaned text when the filter modifies the document (C4 lines, PII masking)
    # what the filter found or would remove, as (start, end, label) character spans of the text it was given
    # (PII matches, C4's removed lines): written as attributes in tag-only mode (`attributes_only`)
    spans: tuple[tuple[int, int, str], ...] | None = None


KEEP = Decision(True)
