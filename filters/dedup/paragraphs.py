"""Dolma-style paragraph dedup with a Bloom filter.

Paragraphs are the lines of a document (split on "\\n"). A paragraph seen before (in an earlier document, or
earlier in the same one) is removed; a document that loses paragraphs and is left with fewer than
`min_doc_chars` characters is removed. In n-gram mode (`ngram_size` set) a paragraph counts as seen when at
least `overlap_threshold` of its word n-grams were seen before (a paragraph shorter than n words is one n-gram).

Determinism across workers: the "before" order is shard order, then document order. Step 1 (`add_texts`) builds
each shard's filter; step 2 for shard r starts from the union of the filters of shards < r (same sizing and seeds,
so OR-ing bit arrays equals inserting their items) and then walks its own documents. The result is exactly the
single-process run over the shards in order, whatever the number of workers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xxhash

from filters.dedup.bloom import BloomFilter, BloomSizing
from filters.dedup.textnorm import ngram_hashes, word_hashes


@dataclass(frozen=True)
class ParagraphDedupConfig:
    expected_items: int = 10_000_000  # paragraphs (n-grams in n-gram mode) the filter is sized for
    false_positive_rate: float = 1e-4
    max_memory: int | str = "1GiB"  # refuse to build a bigger filter
    seed: int = 0
    min_paragraph_chars: int = 1  # shorter paragraphs (after strip) are never removed
    min_doc_chars: int = 50  # a document that lost paragraphs and has fewer characters left is removed
    ngram_size: int | None = None  # None: whole-paragraph hashes; n: n-gram overlap mode
    overlap_threshold: float = 0.8

    def sizing(self) -> BloomSizing:
        sizing = BloomSizing.for_capacity(self.expected_items, self.false_positive_rate, self.seed)
        sizing.check_memory(self.max_memory)
        return sizing

    def fingerprint(self) -> dict:
        return {"ngram_size": self.ngram_size, "overlap_threshold": self.overlap_threshold,
                "min_paragraph_chars": self.min_paragraph_chars, "seed": self.seed}


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
        self.lines: list[list[str]] = [t.split("\n") for t in texts]
        para_text: list[str] = []
        para_doc: list[int] = []
        para_line: list[int] = []
        for d, lines in enumerate(self.lines):
            for j, line in enumerate(lines):
                s = line.strip()
                if s and len(s) >= config.min_paragraph_chars:
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
            grams = ngram_hashes(word_hashes(para_text), config.ngram_size)
            self.items = grams.hashes
            self.item_para = np.repeat(np.arange(len(para_text), dtype=np.int64), grams.counts())
        self.n_paragraphs = len(para_text)


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
            new = "\n".join(line for j, line in enumerate(items.lines[d]) if j not in gone)
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
