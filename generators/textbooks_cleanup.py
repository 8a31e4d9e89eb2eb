"""Parsing a textbooks completion (`clean`, a pure function): boilerplate openings stripped (`strip_boilerplate`;
the raw completion kept in `completion_unfiltered`), a minimum token length, optionally no truncated completions."""
from __future__ import annotations

import re
from typing import Any, Callable

from generators.textbooks_config import CleanupConfig

_BOILERPLATE = [
    # chatty preambles: "Sure! Here is the course unit:" / "Certainly, here's a blog post about ..."
    re.compile(r"^\s*(sure|certainly|of course|absolutely|okay|ok)\b[^\n]{0,200}?(:|\.|!)\s*\n+", re.I),
    re.compile(r"^\s*here(?:'s| is| are)\b[^\n]{0,200}?:\s*\n+", re.I),
    # a title line: markdown heading, "Title: ...", or a short line in bold
    re.compile(r"^\s*#{1,6}[^\n]*\n+"),
    re.compile(r"^\s*(title|chapter|unit|course unit|section)\s*\d*\s*:[^\n]*\n+", re.I),
    re.compile(r"^\s*\*\*[^\n*]{1,120}\*\*\s*\n+"),
    re.compile(r"^\s*(introduction|overview)\s*:?\s*\n+", re.I),
    # stock openings
    re.compile(r"^\s*once upon a time,?\s*(in [^,.]{1,60},\s*)?", re.I),
    re.compile(r"^\s*in this (unit|chapter|section|lesson|article|blog post|post|tutorial|guide)"
               r"[^.\n]{0,200}\.\s*", re.I),
    re.compile(r"^\s*welcome to [^.\n!]{1,120}[.!]\s*", re.I),
]


def strip_boilerplate(text: str, max_rounds: int = 4) -> str:
    """Remove boilerplate openings (preambles, titles, "Once upon a time", "In this unit we will ...") from the
    start of a completion; the rest is untouched. Repeats a few rounds (a preamble, then a title)."""
    out = text
    for _ in range(max_rounds):
        before = out
        for pattern in _BOILERPLATE:
            out = pattern.sub("", out, count=1)
        if out == before:
            break
    out = out.lstrip()
    if out and out[0].islower() and out != text.lstrip():
        out = out[0].upper() + out[1:]  # "Once upon a time, there was" -> "There was"
    return out


def clean(row: dict[str, Any], cfg: CleanupConfig, token_count: Callable[[str], int] | None = None
          ) -> tuple[dict[str, Any], str | None]:
    """(the row with its text cleaned, a reject reason or None). Adds `completion_unfiltered` and
    `text_token_length` (recounted with `token_count` after stripping; else the model's count scaled by the
    characters kept)."""
    raw = row["text"] or ""
    text = strip_boilerplate(raw).strip() if cfg.strip_boilerplate else raw.strip()
    tokens = row.get("completion_tokens") or 0
    if text != raw.strip():
        tokens = token_count(text) if token_count is not None else (
            int(round(tokens * len(text) / len(raw))) if raw else 0)
    row = {**row, "text": text, "completion_unfiltered": raw, "text_token_length": tokens}
    if tokens < cfg.min_tokens or not text:
        return row, "too_short"
    if cfg.drop_truncated and row.get("finish_reason") == "length":
        return row, "truncated"
    return row, None
