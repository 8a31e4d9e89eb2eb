"""FineWeb's extra rules (Penedo et al. 2024), as datatrove's FineWebQualityFilter with its defaults."""
from __future__ import annotations

from typing import Callable

from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision
from filters.gopher import find_duplicates
from filters.text import TERMINAL_PUNCTUATION, split_words


class FineWebConfig(StrictModel):
    enabled: bool = True
    line_punct_thr: float = Field(0.12, ge=0, le=1)
    line_punct_exclude_zero: bool = False
    short_line_thr: float = Field(0.67, ge=0, le=1)
    short_line_length: int = Field(30, ge=0)
    char_duplicates_ratio: float = Field(0.01, ge=0, le=1)
    new_line_ratio: float = Field(0.3, ge=0)  # newlines per word (can pass 1)
    stop_chars: list[str] | None = None  # line endings that count as punctuation; null: datatrove's TERMINAL_PUNCTUATION


_STOP_CHARS = tuple(TERMINAL_PUNCTUATION)


def fineweb_quality(text: str, cfg: FineWebConfig,
                    words: list[str] | Callable[[], list[str]] | None = None) -> Decision:
    """`words`: the tokens of `text`, or a function giving them; only asked for when the newline rule is
    close (see below)."""
    lines = [line for line in text.split("\n") if line.strip() != ""]
    if not lines:
        return Decision(False, "empty")
    stop_chars = _STOP_CHARS if cfg.stop_chars is None else tuple(cfg.stop_chars)
    ratio = sum(1 for line in lines if line.endswith(stop_chars)) / len(lines)
    scores = {"fineweb_line_punct_ratio": ratio}
    if ratio < cfg.line_punct_thr and not (ratio == 0 and cfg.line_punct_exclude_zero):
        return Decision(False, "line_punct_ratio", scores)
    ratio = sum(1 for line in lines if len(line) <= cfg.short_line_length) / len(lines)
    if ratio > cfg.short_line_thr:
        return Decision(False, "short_line_ratio", scores)
    denom = len(text) - text.count("\n")
    ratio = find_duplicates(lines)[1] / denom if denom else 0.0
    if ratio > cfg.char_duplicates_ratio:
        return Decision(False, "char_dup_ratio", scores)
    newlines = text.count("\n")
    # every whitespace chunk is at least one token: newlines / chunks <= the ratio means newlines / words is too
    # (same decision, without tokenising the text: after C4 it is a new text)
    chunks = len(text.split())
    if chunks and newlines / chunks <= cfg.new_line_ratio:
        return Decision(True, None, scores)
    if words is None:
        words = split_words(text)
    elif callable(words):
        words = words()
    n_words = len(words)
    if n_words == 0 or newlines / n_words > cfg.new_line_ratio:
        return Decision(False, "list_ratio", scores)
    return Decision(True, None, scores)
