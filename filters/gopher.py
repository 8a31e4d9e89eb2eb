"""Gopher rules (Rae et al. 2021, Table A1), with datatrove's defaults and reason names.

Same rules and order as datatrove's GopherQualityFilter / GopherRepetitionFilter; the repetition n-gram
statistics are computed on 64-bit rolling hashes of word ids with numpy instead of joined strings.
"""
from __future__ import annotations

import re
from functools import lru_cache
from itertools import compress
from typing import Annotated

import numpy as np
from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision
from filters.text import has_alpha, is_non_symbol, split_words

STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


class GopherQualityConfig(StrictModel):
    enabled: bool = True
    min_doc_words: int | None = Field(50, ge=0)
    max_doc_words: int | None = Field(100_000, ge=1)
    min_avg_word_length: float | None = Field(3, ge=0)
    max_avg_word_length: float | None = Field(10, gt=0)
    max_symbol_word_ratio: float | None = Field(0.1, ge=0)  # symbols per word (can pass 1)
    max_bullet_lines_ratio: float | None = Field(0.9, ge=0, le=1)
    max_ellipsis_lines_ratio: float | None = Field(0.3, ge=0, le=1)
    max_non_alpha_words_ratio: float | None = Field(0.8, ge=0, le=1)  # minimum share of words with an alphabetic character
    min_stop_words: int | None = Field(2, ge=0)
    stop_words: list[str] = STOP_WORDS


_NON_SYMBOL, _ALPHA = 1, 2


@lru_cache(maxsize=1 << 18)
def _word_flags(word: str) -> int:
    """is_non_symbol and has_alpha of a word as bits."""
    return (_NON_SYMBOL if is_non_symbol(word) else 0) | (_ALPHA if has_alpha(word) else 0)


def gopher_quality(text: str, cfg: GopherQualityConfig, words: list[str] | None = None) -> Decision:
    words = split_words(text) if words is None else words
    n_words = len(words)
    flags = list(map(_word_flags, words))  # one cached look-up per word for both properties
    n_non_symbol = n_words - flags.count(0) - flags.count(_ALPHA)
    scores = {"gopher_words": n_non_symbol}
    if cfg.min_doc_words and n_non_symbol < cfg.min_doc_words:
        return Decision(False, "gopher_short_doc", scores)
    if cfg.max_doc_words and n_non_symbol > cfg.max_doc_words:
        return Decision(False, "gopher_long_doc", scores)
    avg = (sum(map(len, compress(words, map(_NON_SYMBOL.__and__, flags)))) / n_non_symbol if n_non_symbol
           else float("nan"))
    if cfg.min_avg_word_length and avg < cfg.min_avg_word_length:
        return Decision(False, "gopher_below_avg_threshold", scores)
    if cfg.max_avg_word_length and avg > cfg.max_avg_word_length:
        return Decision(False, "gopher_above_avg_threshold", scores)
    if n_words == 0:
        return Decision(False, "gopher_short_doc", scores)
    if cfg.max_symbol_word_ratio and text.count("#") / n_words > cfg.max_symbol_word_ratio:
        return Decision(False, "gopher_too_many_hashes", scores)
    if cfg.max_symbol_word_ratio and (text.count("...") + text.count("…")) / n_words > cfg.max_symbol_word_ratio:
        return Decision(False, "gopher_too_many_ellipsis", scores)
    lines = text.splitlines()
    if cfg.max_bullet_lines_ratio and lines:
        bullets = sum(1 for s in lines if s.lstrip().startswith(("•", "-")))
        if bullets / len(lines) > cfg.max_bullet_lines_ratio:
            return Decision(False, "gopher_too_many_bullets", scores)
    if cfg.max_ellipsis_lines_ratio and lines:
        ell = sum(1 for s in lines if s.rstrip().endswith(("...", "…")))
        if ell / len(lines) > cfg.max_ellipsis_lines_ratio:
            return Decision(False, "gopher_too_many_end_ellipsis", scores)
    if cfg.max_non_alpha_words_ratio:
        alpha = flags.count(_ALPHA) + flags.count(_ALPHA | _NON_SYMBOL)
        if alpha / n_words < cfg.max_non_alpha_words_ratio:
            return Decision(False, "gopher_below_alpha_threshold", scores)
    if cfg.min_stop_words and len(set(cfg.stop_words).intersection(words)) < cfg.min_stop_words:
        return Decision(False, "gopher_enough_stop_words", scores)
    return Decision(True, None, scores)


class GopherRepetitionConfig(StrictModel):
    enabled: bool = True
    dup_line_frac: float | None = Field(0.3, ge=0, le=1)
    dup_para_frac: float | None = Field(0.3, ge=0, le=1)
    dup_line_char_frac: float | None = Field(0.2, ge=0, le=1)
    dup_para_char_frac: float | None = Field(0.2, ge=0, le=1)
    top_n_grams: list[tuple[Annotated[int, Field(ge=1)], Annotated[float, Field(ge=0, le=1)]]] = [(2, 0.2), (3, 0.18), (4, 0.16)]
    dup_n_grams: list[tuple[Annotated[int, Field(ge=1)], Annotated[float, Field(ge=0, le=1)]]] = [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)]


_PARAGRAPH_RE = re.compile(r"\n{2,}")
_LINE_RE = re.compile(r"\n+")


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in the repeats) — first occurrences are not counted."""
    seen: set[str] = set()
    dup, chars = 0, 0
    for x in items:
        if x in seen:
            dup += 1
            chars += len(x)
        else:
            seen.add(x)
    return dup, chars


_MULT = np.uint64(0x9E3779B97F4A7C15)


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """A 64-bit hash per n-gram window of word ids (polynomial, wrapping arithmetic)."""
    m = len(ids) - n + 1
    h = np.zeros(m, dtype=np.uint64)
    for k in range(n):
        h = h * _MULT + ids[k : k + m]
    return h


def _top_duplicate_chars(h: np.ndarray, char_len: np.ndarray) -> tuple[int, int]:
    """(len(top n-gram) * its count, the count), ties broken by first occurrence (as Counter.most_common)."""
    uniq, first, counts = np.unique(h, return_index=True, return_counts=True)
    best = counts.max()
    idx = first[counts == best].min()
    return int(char_len[idx]) * int(best), int(best)


def _all_duplicate_chars(h: np.ndarray, char_len: np.ndarray, n: int) -> int:
    """Characters covered by repeated n-grams, scanning left to right and jumping n words past a repeat
    (datatrove's find_all_duplicate)."""
    # Fast path: no repeated n-gram at all.
    if len(np.unique(h)) == len(h):
        return 0
    # Only positions whose n-gram occurs more than once can be a repeat or make one: a unique n-gram added to
    # `seen` never matches later. So the scan visits just those (in order; a repeat still skips n words).
    _, inv, counts = np.unique(h, return_inverse=True, return_counts=True)
    dup_pos = np.flatnonzero(counts[inv] > 1)
    seen: set[int] = set()
    repeated, skip_to = 0, 0
    for idx, x, c in zip(dup_pos.tolist(), inv[dup_pos].tolist(), char_len[dup_pos].tolist()):
        if idx < skip_to:
            continue
        if x in seen:
            repeated += c
            skip_to = idx + n
        else:
            seen.add(x)
    return repeated


def gopher_repetition(text: str, cfg: GopherRepetitionConfig, words: list[str] | None = None) -> Decision:
    if not text:
        return Decision(False, "empty")
    n_chars = len(text)
    paragraphs = _PARAGRAPH_RE.split(text.strip())
    p_dup, p_chars = find_duplicates(paragraphs)
    if cfg.dup_para_frac and p_dup / len(paragraphs) > cfg.dup_para_frac:
        return Decision(False, "dup_para_frac")
    if cfg.dup_para_char_frac and p_chars / n_chars > cfg.dup_para_char_frac:
        return Decision(False, "dup_para_char_frac")
    lines = _LINE_RE.split(text)
    l_dup, l_chars = find_duplicates(lines)
    if cfg.dup_line_frac and l_dup / len(lines) > cfg.dup_line_frac:
        return Decision(False, "dup_line_frac")
    if cfg.dup_line_char_frac and l_chars / n_chars > cfg.dup_line_char_frac:
        return Decision(False, "dup_line_char_frac")

    words = split_words(text) if words is None else words
    if not words:
        return Decision(True)
    # str hashes are cached by CPython and computed in C; a 64-bit collision inside one document is negligible
    ids = np.fromiter(map(hash, words), dtype=np.int64, count=len(words)).view(np.uint64)
    wlen = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    csum = np.concatenate(([0], np.cumsum(wlen)))
    # a bound that spares most np.unique calls, decisions unchanged: an n-gram occurs at most as often as the most
    # frequent shorter m-gram (its prefix is one), so top chars <= that count * the longest n-gram's chars
    bound_n, bound_count = None, None  # the m and count of the last top m-gram computed
    for n, frac in cfg.top_n_grams:
        if len(words) < n:
            continue
        char_len = csum[n:] - csum[:-n] + (n - 1)  # joined with spaces
        if bound_n is not None and bound_n <= n and bound_count * int(char_len.max()) / n_chars <= frac:
            continue
        h = _ngram_hashes(ids, n)
        top_chars, bound_count = _top_duplicate_chars(h, char_len)
        bound_n = n
        if top_chars / n_chars > frac:
            return Decision(False, f"top_{n}_gram")
    no_repeats_from = None  # if no n-gram repeats, no longer n-gram can repeat either
    if bound_count == 1:
        no_repeats_from = bound_n
    for n, frac in cfg.dup_n_grams:
        if len(words) < n or (no_repeats_from is not None and n >= no_repeats_from):
            continue
        h = _ngram_hashes(ids, n)
        char_len = csum[n:] - csum[:-n]  # joined without spaces
        dup_chars = _all_duplicate_chars(h, char_len, n)
        if dup_chars == 0:
            no_repeats_from = n
        if dup_chars / n_chars > frac:
            return Decision(False, f"duplicated_{n}_n_grams")
    return Decision(True)


__all__ = ["GopherQualityConfig", "gopher_quality", "GopherRepetitionConfig", "gopher_repetition",
           "find_duplicates", "STOP_WORDS"]
