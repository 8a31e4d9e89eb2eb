"""Text normalisation and word / n-gram hashing, vectorised with numpy over whole batches of texts.

Normalisation (the FineWeb/datatrove recipe, applied per code point through one lookup table): lowercase,
diacritics stripped (NFD, combining marks dropped), every run of digits becomes "0", punctuation, symbols and
whitespace separate words. Ideographic / syllabic scripts written without spaces (CJK, kana, Thai, Lao, Khmer,
Myanmar) give one word per character, so their shingles are character n-grams instead of whole sentences.
Code points beyond the BMP (emoji, rare ideographs) separate words.

Hashes are 64-bit and fixed for a given `HASH_VERSION`: a word hash is a polynomial over its normalised code points
(mod 2^64) finished with murmur3's fmix64; an n-gram hash is a polynomial over its word hashes, finished the same
way. Both are computed with prefix sums, so a batch costs a handful of numpy passes instead of a Python loop per
word. `normalize_words` is the plain-Python definition of the same words (used by tests and for exact Jaccard).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

HASH_VERSION = 1  # bump when any constant or rule below changes: signatures of different versions never mix

_SEPARATOR, _DROPPED = 0, 1  # table values; U+0000 and U+0001 are controls, so both are free
_ZERO = ord("0")
_BMP = 0x10000
_SOLO_MIN = 0x0E00  # below this code point no script is written without spaces

_CHAR_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd, so invertible mod 2^64
_WORD_BASE = np.uint64(0xD6E8FEB86659FD93)
_WORD_SEED = np.uint64(0x243F6A8885A308D3)
_NGRAM_SEED = np.uint64(0x13198A2E03707344)
_U64 = np.uint64
_MASK64 = (1 << 64) - 1

_SOLO_RANGES = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
)


def _build_tables() -> tuple[np.ndarray, np.ndarray]:
    """One uint16 per BMP code point: 0 separates words, 1 is dropped (combining mark), else the normalised
    code point; plus a bool table of the scripts whose every character is a word."""
    mapped = np.zeros(_BMP, dtype=np.uint16)
    solo = np.zeros(_BMP, dtype=bool)
    for lo, hi in _SOLO_RANGES:
        solo[lo:hi + 1] = True
    for cp in range(_BMP):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Mn" or cat == "Me":
            mapped[cp] = _DROPPED
        elif cat[0] == "N":
            mapped[cp] = _ZERO
        elif cat[0] == "L" or cat == "Mc":
            base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
            low = base.lower()
            if len(low) == 1:
                out = low
            elif len(base) == 1:
                out = base
            else:
                out = ch.lower() if len(ch.lower()) == 1 else ch
            if ord(out) >= _BMP:  # a few compatibility ideographs decompose beyond the BMP
                out = ch
            mapped[cp] = ord(out)
        # else: punctuation, symbols, separators, controls, surrogates, unassigned -> 0 (separator)
    solo &= mapped > _DROPPED
    return mapped, solo


_TABLES: tuple[np.ndarray, np.ndarray] | None = None
_TRANSLATE: dict[int, str | None] | None = None


def _tables() -> tuple[np.ndarray, np.ndarray]:
    global _TABLES
    if _TABLES is None:
        _TABLES = _build_tables()
    return _TABLES


def _translate_table() -> dict[int, str | None]:
    global _TRANSLATE
    if _TRANSLATE is None:
        mapped, solo = _tables()
        table: dict[int, str | None] = {}
        for cp in range(_BMP):
            m = int(mapped[cp])
            if m == _DROPPED:
                table[cp] = None
            elif m == _SEPARATOR:
                table[cp] = " "
            elif solo[cp]:
                table[cp] = f" {chr(m)} "
            elif m != cp:
                table[cp] = chr(m)
        _TRANSLATE = table
    return _TRANSLATE


_ZERO_RUN = re.compile("0+")
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")


def normalize_words(text: str) -> list[str]:
    """The normalised words of `text` (reference definition; the numpy path gives the hashes of exactly these)."""
    if _ASTRAL.search(text):
        text = _ASTRAL.sub(" ", text)
    return _ZERO_RUN.sub("0", text.translate(_translate_table())).split()


def normalize_text(text: str) -> str:
    """Normalised text: the normalised words joined by single spaces."""
    return " ".join(normalize_words(text))


# --- 64-bit helpers (numpy wraps uint64 arithmetic mod 2^64, which is what we want) ---------------------------

def fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3's 64-bit finaliser: a bijection that spreads every input bit over the output."""
    x = x ^ (x >> _U64(33))
    x *= _U64(0xFF51AFD7ED558CCD)
    x ^= x >> _U64(33)
    x *= _U64(0xC4CEB9FE1A85EC53)
    x ^= x >> _U64(33)
    return x


def fmix64_int(x: int) -> int:
    x &= _MASK64
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & _MASK64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & _MASK64
    x ^= x >> 33
    return x


class _Powers:
    """Cached B^k and B^-k mod 2^64 for k < len, grown on demand."""

    def __init__(self, base: np.uint64):
        self.base = base
        self.inv = _U64(pow(int(base), -1, 1 << 64))
        self.pow = np.ones(1, dtype=np.uint64)
        self.pow_inv = np.ones(1, dtype=np.uint64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.pow) < n:
            size = max(n, 2 * len(self.pow))
            with np.errstate(over="ignore"):
                p = np.full(size, self.base, dtype=np.uint64)
                p[0] = 1
                q = np.full(size, self.inv, dtype=np.uint64)
                q[0] = 1
                self.pow, self.pow_inv = np.cumprod(p), np.cumprod(q)
        return self.pow[:n], self.pow_inv[:n]


_CHAR_POWERS = _Powers(_CHAR_BASE)
_WORD_POWERS = _Powers(_WORD_BASE)


@dataclass
class WordHashes:
    """Word hashes of a batch of texts: the words of text i are `hashes[offsets[i]:offsets[i + 1]]`."""

    hashes: np.ndarray  # uint64
    offsets: np.ndarray  # int64, len(texts) + 1

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def _code_units(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """UTF-16 code units of all texts, and where each text starts (astral characters are two units: they only
    ever separate words, as their surrogate halves map to the separator)."""
    joined = "".join(texts)
    units = np.frombuffer(joined.encode("utf-16-le", "surrogatepass"), dtype=np.uint16)
    if len(units) == len(joined):
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    else:
        lengths = np.fromiter((len(t.encode("utf-16-le", "surrogatepass")) // 2 for t in texts),
                              dtype=np.int64, count=len(texts))
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return units, offsets


def _remove(values: np.ndarray, offsets: np.ndarray, removed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop the positions in `removed` (a bool mask) and shift the text offsets accordingly."""
    gone = np.flatnonzero(removed)
    return values[~removed], offsets - np.searchsorted(gone, offsets, side="left")


def _starts_mask(offsets: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n + 1, dtype=bool)
    mask[offsets] = True
    return mask[:n]


def _word_hashes_chunk(texts: Sequence[str]) -> WordHashes:
    mapped_t, solo_t = _tables()
    units, offsets = _code_units(texts)
    if units.size == 0:
        return WordHashes(np.zeros(0, np.uint64), np.zeros(len(texts) + 1, np.int64))
    m = mapped_t[units]
    dropped = m == _DROPPED
    if dropped.any():  # combining marks vanish, so "e\u0301" hashes like "e"
        m, offsets = _remove(m, offsets, dropped)
    zero = m == _ZERO
    repeat = np.zeros(len(m), dtype=bool)
    repeat[1:] = zero[1:] & zero[:-1]
    if repeat.any():  # a run of digits is one "0", but never across two texts
        repeat &= ~_starts_mask(offsets, len(m))
        m, offsets = _remove(m, offsets, repeat)
    n = len(m)
    is_word = m != _SEPARATOR
    starts = np.empty(n, dtype=bool)
    starts[0] = is_word[0]
    np.greater(is_word[1:], is_word[:-1], out=starts[1:])
    starts |= _starts_mask(offsets, n) & is_word  # a word never continues into the next text
    if int(m.max()) >= _SOLO_MIN:
        solo = solo_t[m]
        if solo.any():
            starts |= solo
            starts[1:] |= solo[:-1] & is_word[1:]
    first = np.flatnonzero(starts)
    if first.size == 0:
        return WordHashes(np.zeros(0, np.uint64), np.zeros(len(texts) + 1, np.int64))
    pw, pw_inv = _CHAR_POWERS.get(n)
    with np.errstate(over="ignore"):
        terms = np.multiply(m, pw, dtype=np.uint64)  # separators are 0 and add nothing to a word's sum
        words = np.add.reduceat(terms, first) * pw_inv[first]
    words = fmix64(words ^ _WORD_SEED)
    return WordHashes(words, np.searchsorted(first, offsets, side="left").astype(np.int64))


def text_chunks(texts: Sequence[str], max_chars: int = 1 << 21) -> list[tuple[int, int]]:
    """[start, stop) ranges of consecutive texts holding about `max_chars` characters each (at least one text)."""
    out = []
    start, n = 0, len(texts)
    while start < n:
        stop, chars = start, 0
        while stop < n and (stop == start or chars + len(texts[stop]) <= max_chars):
            chars += len(texts[stop])
            stop += 1
        out.append((start, stop))
        start = stop
    return out


def word_hashes(texts: Sequence[str], max_chars: int = 1 << 21) -> WordHashes:
    """Word hashes for every text, in batches of about `max_chars` code points (bounds the temporary arrays)."""
    parts = [_word_hashes_chunk(texts[a:b]) for a, b in text_chunks(texts, max_chars)]
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return WordHashes(np.zeros(0, np.uint64), np.zeros(1, np.int64))
    hashes = np.concatenate([p.hashes for p in parts])
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for p in parts:
        offsets.append(p.offsets[1:] + base)
        base += len(p.hashes)
    return WordHashes(hashes, np.concatenate(offsets))


def ngram_hashes(words: WordHashes, n: int, short: str = "whole") -> WordHashes:
    """Hashes of every word n-gram of every text (same layout as `WordHashes`).

    A text with fewer than `n` (but at least one) words gives one n-gram of all its words when `short="whole"`
    (so short texts still compare), none when `short="skip"`. Empty texts give none.
    """
    if n < 1:
        raise ValueError(f"n-gram size must be >= 1, got {n}")
    if short not in ("whole", "skip"):
        raise ValueError(f"short must be 'whole' or 'skip', got {short!r}")
    h, off = words.hashes, words.offsets
    total = len(h)
    counts = np.diff(off)
    pw, pw_inv = _WORD_POWERS.get(total + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(total + 1, dtype=np.uint64)
        np.cumsum(h * pw[:total], out=prefix[1:])
    n_full = np.maximum(counts - n + 1, 0)
    n_short = ((counts > 0) & (counts < n)).astype(np.int64) if short == "whole" else np.zeros_like(counts)
    per_text = n_full + n_short
    out_off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(per_text, out=out_off[1:])
    starts = np.empty(out_off[-1], dtype=np.int64)
    lengths = np.empty(out_off[-1], dtype=np.int64)
    # full n-grams: text t contributes starts off[t] .. off[t] + n_full[t] - 1
    full_pos = _ranges(off[:-1], n_full)
    short_texts = np.flatnonzero(n_short)
    # place full windows first, then the (single) short window, per text
    idx_full = _ranges(out_off[:-1], n_full)
    starts[idx_full] = full_pos
    lengths[idx_full] = n
    idx_short = out_off[short_texts]
    starts[idx_short] = off[short_texts]
    lengths[idx_short] = counts[short_texts]
    with np.errstate(over="ignore"):
        grams = (prefix[starts + lengths] - prefix[starts]) * pw_inv[starts]
    grams = fmix64(grams ^ (_NGRAM_SEED + lengths.astype(np.uint64)))
    return WordHashes(grams, out_off)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), vectorised."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    keep = counts > 0
    s, c = np.asarray(starts, dtype=np.int64)[keep], counts[keep]
    out = np.ones(total, dtype=np.int64)
    out[0] = s[0]
    ends = np.cumsum(c)[:-1]
    out[ends] = s[1:] - (s[:-1] + c[:-1] - 1)
    return np.cumsum(out)


# --- plain-Python reference (tests, exact Jaccard, decontamination confirmation) -----------------------------

def _poly(values: list[int], base: int) -> int:
    acc, p = 0, 1
    for v in values:
        acc = (acc + v * p) & _MASK64
        p = (p * base) & _MASK64
    return acc


def word_hash_reference(word: str) -> int:
    """The hash `word_hashes` gives a normalised word (plain Python, for tests)."""
    return fmix64_int(_poly([ord(c) for c in word], int(_CHAR_BASE)) ^ int(_WORD_SEED))


def ngram_hash_reference(words: Sequence[str]) -> int:
    hs = [word_hash_reference(w) for w in words]
    return fmix64_int(_poly(hs, int(_WORD_BASE)) ^ ((int(_NGRAM_SEED) + len(hs)) & _MASK64))


def shingle_set(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """The set of normalised word n-grams of `text` (short texts: one n-gram of all words), for exact Jaccard."""
    words = normalize_words(text)
    if not words:
        return set()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
