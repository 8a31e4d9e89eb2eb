"""Dolma-style paragraph dedup with a Bloom filter.

Paragraphs are the pieces of a document split on `paragraph_separator` ("\\n": its lines). A paragraph seen before
(in an earlier document, or earlier in the same one) is removed; a document that loses paragraphs and is left with
fewer than `min_doc_chars` characters is removed. Blank paragraphs (`skip_empty`), paragraphs shorter than
`min_paragraph_chars` characters (Dolma's `min_length`) or `min_words` words are neither removed nor recorded.

Default mode: one hash per paragraph (stripped), as Dolma's `dedupe.paragraphs` without `by_ngram`. N-gram mode
(`ngram_size` set; Dolma's `by_ngram`): the paragraph's raw word tokens (Dolma's `tokenize`: Unicode UAX-29 word
segments without the whitespace ones, case and digits kept) give one n-gram per `stride` token positions, and the
paragraph counts as seen when at least `overlap_threshold` of its n-grams were seen before. A paragraph shorter than
n tokens is one n-gram of all its tokens, or, with `skip_short_paragraphs`, never removed. One difference from
Dolma: every paragraph's n-grams are recorded, also those of a paragraph removed as a duplicate (Dolma records only
the n-grams of paragraphs it keeps); that is what makes the sharded run below exact in n-gram mode too.

Determinism across workers: the "before" order is shard order, then document order. Step 1 (`add_texts`) builds
each shard's filter; step 2 for shard r starts from the union of the filters of shards < r (same sizing and seeds,
so OR-ing bit arrays equals inserting their items) and then walks its own documents. The result is exactly the
single-process run over the shards in order, whatever the number of workers.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xxhash

from filters.dedup.bloom import BloomFilter, BloomSizing
from filters.dedup.textnorm import WordHashes, ngram_hashes

# Dolma's `tokenize` (unicode-segmentation's word bounds, whitespace segments dropped) in one regex: letters and
# digits join (with "_", combining marks and, between letters, . ' ’ : · and, between digits, . , ; ' ’), Han and
# Hiragana are one token per character, any other character is a token alone. Agrees with the `regex` module's
# UAX-29 word boundaries on all 10,078 non-blank lines of ../shared/data/web/*.jsonl.
_SOLO = "\u3040-\u309f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_OTHER_NUMBERS = "\u00b2\u00b3\u00b9\u00bc-\u00be\u2070-\u209f\u2150-\u218f\u2460-\u24ff"  # ² ¾ ①: alone
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0900-\u0903"
          "\u093a-\u094f\u0951-\u0957\u0962\u0963\u0981-\u0983\u09bc-\u09d7\u0e31\u0e34-\u0e3a\u0e47-\u0e4e"
          "\u200c\u200d\ufe00-\ufe0f")
WORD_CHAR = rf"(?:[^\W{_SOLO}{_OTHER_NUMBERS}]|[{_MARKS}])"
_TOKEN_RE = re.compile(
    rf"{WORD_CHAR}+(?:(?:(?<=[^\W\d_])[.'‘’:·](?=[^\W\d_{_SOLO}])|(?<=\d)[.,;'‘’](?=\d)){WORD_CHAR}+)*|\S[{_MARKS}]*")
_EMPTY_PARAGRAPH = xxhash.xxh3_64_intdigest(b"")  # the one "n-gram" of a blank paragraph (skip_empty=False)


def dolma_tokens(text: str) -> list[str]:
    """Word tokens as Dolma's deduper sees them: "RSS 2.0 feed, e.g." -> RSS, 2.0, feed, ",", e.g, "."."""
    return _TOKEN_RE.findall(text)


@dataclass(frozen=True)
class ParagraphDedupConfig:
    expected_items: int = 10_000_000  # paragraphs (n-grams in n-gram mode) the filter is sized for
    false_positive_rate: float = 1e-4
    max_memory: int | str = "1GiB"  # refuse to build a bigger filter
    seed: int = 0
    min_paragraph_chars: int = 1  # shorter paragraphs (after strip) are never removed (Dolma's min_length)
    min_words: int = 0  # paragraphs with fewer tokens are never removed (Dolma's min_words)
    skip_empty: bool = True  # blank paragraphs are never removed (False: also needs min_paragraph_chars=0)
    paragraph_separator: str = "\n"
    min_doc_chars: int = 50  # a document that lost paragraphs and has fewer characters left is removed
    ngram_size: int | None = None  # None: whole-paragraph hashes; n: n-gram overlap mode (Dolma's by_ngram)
    overlap_threshold: float = 0.8
    stride: int = 1  # n-gram mode: one n-gram every `stride` tokens
    skip_short_paragraphs: bool = False  # n-gram mode: paragraphs of fewer than ngram_size tokens are never removed

    def __post_init__(self) -> None:
        if self.ngram_size is not None and self.ngram_size < 1:
            raise ValueError(f"ngram_size must be >= 1 (or None), got {self.ngram_size}")
        if self.stride < 1:
            raise ValueError(f"stride must be >= 1, got {self.stride}")
        if not self.paragraph_separator:
            raise ValueError("paragraph_separator must not be empty")

    def sizing(self) -> BloomSizing:
        sizing = BloomSizing.for_capacity(self.expected_items, self.false_positive_rate, self.seed)
        sizing.check_memory(self.max_memory)
        return sizing

    def fingerprint(self) -> dict:
        return {"ngram_size": self.ngram_size, "overlap_threshold": self.overlap_threshold,
                "min_paragraph_chars": self.min_paragraph_chars, "seed": self.seed, "min_words": self.min_words,
                "skip_empty": self.skip_empty, "paragraph_separator": self.paragraph_separator,
                "stride": self.stride, "skip_short_paragraphs": self.skip_short_paragraphs,
                "ngram_tokens": "raw-uax29"}


@dataclass
class ParagraphResult:
    text: str | None  # the text with duplicate paragraphs removed; None when the document is removed
    paragraphs: int  # countable (non-blank) paragraphs
    removed_paragraphs: int
    removed_chars: int

    @property
    def removed(self) -> bool:
        return self.text is None


class _Items:
    """Hash items of a batch of documents: item -> paragraph -> document."""

    def __init__(self, texts: Sequence[str], config: ParagraphDedupConfig):
        sep = config.paragraph_separator
        self.lines: list[list[str]] = [t.split(sep) for t in texts]
        para_text: list[str] = []
        para_doc: list[int] = []
        para_line: list[int] = []
        para_tokens: list[list[str]] = []
        tokens_needed = config.ngram_size is not None or config.min_words > 0
        for d, lines in enumerate(self.lines):
            for j, line in enumerate(lines):
                s = line.strip()
                if (s or not config.skip_empty) and len(s) >= config.min_paragraph_chars:
                    if tokens_needed:
                        toks = dolma_tokens(s)
                        if len(toks) < config.min_words:
                            continue
                        para_tokens.append(toks)
                    para_text.append(s)
                    para_doc.append(d)
                    para_line.append(j)
        self.para_doc = np.asarray(para_doc, dtype=np.int64)
        self.para_line = para_line
        if config.ngram_size is None:
            self.items = np.fromiter((xxhash.xxh3_64_intdigest(p.encode("utf-8", "surrogatepass"))
                                      for p in para_text), dtype=np.uint64, count=len(para_text))
            self.item_para = np.arange(len(para_text), dtype=np.int64)
        else:
            self.items, self.item_para = _ngram_items(para_tokens, config)
        self.n_paragraphs = len(para_text)


def _ngram_items(para_tokens: list[list[str]], cfg: ParagraphDedupConfig) -> tuple[np.ndarray, np.ndarray]:
    """Dolma's n-grams of raw tokens: the windows starting at token 0, stride, 2 * stride, ... of each paragraph;
    a shorter paragraph is one n-gram of all its tokens (none with `skip_short_paragraphs`)."""
    n_para = len(para_tokens)
    counts = np.fromiter(map(len, para_tokens), dtype=np.int64, count=n_para)
    offsets = np.zeros(n_para + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    token_hashes = np.fromiter((xxhash.xxh3_64_intdigest(t.encode("utf-8", "surrogatepass"))
                                for toks in para_tokens for t in toks), dtype=np.uint64, count=int(offsets[-1]))
    grams = ngram_hashes(WordHashes(token_hashes, offsets), cfg.ngram_size,
                         short="skip" if cfg.skip_short_paragraphs else "whole")
    per_para = grams.counts()
    item_para = np.repeat(np.arange(n_para, dtype=np.int64), per_para)
    items = grams.hashes
    if cfg.stride > 1:
        local = np.arange(len(items), dtype=np.int64) - np.repeat(grams.offsets[:-1], per_para)
        keep = local % cfg.stride == 0
        items, item_para = items[keep], item_para[keep]
    if not cfg.skip_short_paragraphs and (counts == 0).any():  # blank paragraphs (skip_empty=False)
        blank = np.flatnonzero(counts == 0)
        items = np.concatenate([items, np.full(len(blank), _EMPTY_PARAGRAPH, dtype=np.uint64)])
        item_para = np.concatenate([item_para, blank])
        order = np.argsort(item_para, kind="stable")  # items stay in paragraph order
        items, item_para = items[order], item_para[order]
    return items, item_para


class ParagraphDedup:
    """Holds the Bloom filter of everything seen so far. `add_texts` only records (step 1 of the sharded run);
    `process` decides and records (the sequential run, or step 2)."""

    def __init__(self, config: ParagraphDedupConfig = ParagraphDedupConfig(), bloom: BloomFilter | None = None):
        self.config = config
        self.bloom = bloom if bloom is not None else BloomFilter(config.sizing())
        if self.bloom.sizing != config.sizing():
            raise ValueError(f"Bloom filter sizing {self.bloom.sizing} does not match the config {config.sizing()}")
        self.items_added = 0

    def add_texts(self, texts: Sequence[str]) -> None:
        items = _Items(texts, self.config)
        self.bloom.add(items.items)
        self.items_added += len(items.items)

    def _seen(self, items: _Items) -> np.ndarray:
        """Per item: in the filter, or occurring in an earlier paragraph of this batch."""
        seen = self.bloom.contains(items.items)
        if len(items.items):
            _, first, inverse = np.unique(items.items, return_index=True, return_inverse=True)
            first_para = items.item_para[first[inverse]]
            seen |= first_para < items.item_para
        return seen

    def process(self, texts: Sequence[str]) -> list[ParagraphResult]:
        cfg = self.config
        items = _Items(texts, cfg)
        seen = self._seen(items)
        self.bloom.add(items.items)
        self.items_added += len(items.items)
        if cfg.ngram_size is None:
            dup_para = seen  # one item per paragraph
        else:
            counts = np.bincount(items.item_para, minlength=items.n_paragraphs)
            hits = np.bincount(items.item_para, weights=seen, minlength=items.n_paragraphs)
            dup_para = (counts > 0) & (hits >= cfg.overlap_threshold * np.maximum(counts, 1))
        removed_lines: list[set[int]] = [set() for _ in texts]
        for p in np.flatnonzero(dup_para):
            removed_lines[items.para_doc[p]].add(items.para_line[p])
        per_doc = np.bincount(items.para_doc, minlength=len(texts))
        out = []
        for d, text in enumerate(texts):
            gone = removed_lines[d]
            if not gone:
                out.append(ParagraphResult(text, int(per_doc[d]), 0, 0))
                continue
            new = cfg.paragraph_separator.join(line for j, line in enumerate(items.lines[d]) if j not in gone)
            keep = len(new.strip()) >= cfg.min_doc_chars
            out.append(ParagraphResult(new if keep else None, int(per_doc[d]), len(gone), len(text) - len(new)))
        return out

    def estimated_false_positive_rate(self) -> float:
        return self.bloom.fill_ratio() ** self.bloom.sizing.num_hashes


def dedup_paragraphs(texts: Sequence[str], config: ParagraphDedupConfig = ParagraphDedupConfig(),
                     batch_size: int = 1024) -> list[ParagraphResult]:
    """Single-process paragraph dedup of `texts` in order (a fresh filter)."""
    dd = ParagraphDedup(config)
    out: list[ParagraphResult] = []
    for s in range(0, len(texts), batch_size):
        out.extend(dd.process(texts[s:s + batch_size]))
    return out
