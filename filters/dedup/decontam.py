"""Benchmark decontamination: an n-gram index over evaluation sets, confirmed with a difflib overlap ratio.

Index: every word n-gram (default 13, normalised words as in `textnorm`) of every benchmark item. A document that
shares an n-gram with an item is a candidate; it is confirmed the way Cosmopedia does it: difflib matching blocks
(longer than `min_block_chars`) between the item and the document (a window around the shared n-grams), and the
document is contaminated when matched characters / item characters >= `threshold` (0.5 as Cosmopedia).
Items with fewer than `min_item_words` words are not indexed (a 3-word answer would match half the web); they
are counted in the index stats.
"""
from __future__ import annotations

import csv
import difflib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from corpora.jsonl import JsonlError, read_jsonl
from filters.dedup.textnorm import WordHashes, ngram_hashes, normalize_words, word_hashes


PARTS = ("query", "answer", "straddle")


@dataclass(frozen=True)
class BenchmarkSpec:
    path: str
    field: str | tuple[str, ...] = "text"  # a column, a dotted path into nested JSON, or several joined by " "
    # question/answer benchmarks (datatrove's NGramsDecont split): `query` (prompt) and `answer` (gold) fields, and
    # which parts are indexed: "answer" (the gold's n-grams), "query" (the prompt's), "straddle" (the n-grams that
    # cross from the end of the prompt into the start of the answer). datatrove's default: answer + straddle.
    query: str | tuple[str, ...] | None = None
    answer: str | tuple[str, ...] | None = None
    parts: tuple[str, ...] = ("answer", "straddle")

    def fields(self) -> tuple[str, ...]:
        return (self.field,) if isinstance(self.field, str) else tuple(self.field)

    @property
    def split(self) -> bool:
        return self.query is not None or self.answer is not None


@dataclass(frozen=True)
class DecontamConfig:
    ngram_size: int = 13
    threshold: float = 0.5
    min_block_chars: int = 6
    min_item_words: int | None = None  # default: ngram_size
    max_candidates: int = 20  # items confirmed per document, the ones sharing most n-grams first

    def fingerprint(self) -> dict:
        return {"ngram_size": self.ngram_size, "threshold": self.threshold, "min_block_chars": self.min_block_chars,
                "min_item_words": self.min_item_words}


@dataclass
class Hit:
    benchmark: str
    item: int  # row of the benchmark file
    ratio: float
    part: str = "text"  # which part of the item matched: text, or query / answer / straddle


class BenchmarkError(ValueError):
    """A benchmark file that cannot be read as configured (names the file and row)."""


def _get(row: Any, dotted: str, where: str) -> str:
    cur = row
    for part in dotted.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            raise BenchmarkError(f"{where}: no field {dotted!r} (keys: {sorted(row)[:10] if isinstance(row, dict) else type(row).__name__})")
    if isinstance(cur, list):
        cur = " ".join(str(x) for x in cur)
    return "" if cur is None else str(cur)


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        try:
            for i, row in read_jsonl(path, objects=False):
                yield f"{path}:{i}", row
        except JsonlError as e:
            raise BenchmarkError(str(e)) from e
    elif name.endswith(".json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # {"data": [...]} or {"split": [...]}: the first list value
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise BenchmarkError(f"{path}: expected a JSON list of objects")
        for i, row in enumerate(data):
            yield f"{path}[{i}]", row
    elif name.endswith(".parquet"):
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist()):
            yield f"{path} row {i}", row
    elif name.endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh, delimiter="\t" if name.endswith(".tsv") else ","), 2):
                yield f"{path}:{i}", row
    else:
        raise BenchmarkError(f"{path}: unsupported benchmark format (jsonl, json, parquet, csv, tsv)")


def _fields(f: str | tuple[str, ...]) -> tuple[str, ...]:
    return (f,) if isinstance(f, str) else tuple(f)


def load_benchmark(spec: BenchmarkSpec) -> list[str]:
    """The text of every item (for a query/answer benchmark: query and answer joined by a space)."""
    return [" ".join(p for p in parts.values() if p) for parts in load_items(spec)]


def load_items(spec: BenchmarkSpec) -> list[dict[str, str]]:
    """Every item as {"text": ...}, or {"query": ..., "answer": ...} for a query/answer benchmark."""
    path = Path(spec.path).expanduser()
    if not path.exists():
        raise BenchmarkError(f"{path}: benchmark file does not exist")
    if spec.split:
        if spec.query is None or spec.answer is None:
            raise BenchmarkError(f"{path}: a query/answer benchmark needs both `query` and `answer` fields")
        bad = [p for p in spec.parts if p not in PARTS]
        if bad or not spec.parts:
            raise BenchmarkError(f"{path}: parts must be some of {', '.join(PARTS)} (got {list(spec.parts)})")
        return [{"query": " ".join(_get(row, f, where) for f in _fields(spec.query)),
                 "answer": " ".join(_get(row, f, where) for f in _fields(spec.answer))}
                for where, row in _rows(path)]
    return [{"text": " ".join(_get(row, f, where) for f in spec.fields())} for where, row in _rows(path)]


def item_parts(item: dict[str, str], parts: Sequence[str], n: int) -> list[tuple[str, list[str]]]:
    """The (part, normalised words) an item is indexed and confirmed by. "straddle": the last n-1 words of the
    query and the first n-1 of the answer, so exactly the n-grams that cross from one into the other (datatrove's
    overlap n-grams) lie in it; an item with an empty query or answer has no straddling n-gram."""
    if "text" in item:
        return [("text", normalize_words(item["text"]))]
    q, a = normalize_words(item["query"]), normalize_words(item["answer"])
    out = []
    for part in parts:
        if part == "query":
            out.append(("query", q))
        elif part == "answer":
            out.append(("answer", a))
        elif q and a:
            out.append(("straddle", q[-(n - 1):] + a[:n - 1] if n > 1 else []))
    return out


@dataclass
class BenchmarkIndex:
    config: DecontamConfig
    names: list[str]  # benchmark of each item
    rows: list[int]  # row of each item in its file
    texts: list[str]  # normalised text of each indexed item part
    grams: np.ndarray  # sorted n-gram hashes
    gram_item: np.ndarray  # item of each n-gram
    stats: dict[str, dict[str, int]] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)  # part of each indexed entry (text / query / answer / straddle)

    @classmethod
    def build(cls, benchmarks: dict[str, BenchmarkSpec | dict], config: DecontamConfig = DecontamConfig()) \
            -> "BenchmarkIndex":
        min_words = config.min_item_words or config.ngram_size
        names, rows, texts, kinds = [], [], [], []
        stats: dict[str, dict[str, int]] = {}
        for name, spec in benchmarks.items():
            spec = spec if isinstance(spec, BenchmarkSpec) else BenchmarkSpec(**spec)
            items = load_items(spec)
            st = stats.setdefault(name, {"items": len(items), "indexed": 0, "too_short": 0})
            for i, item in enumerate(items):
                # the straddle window is short by design; it needs one full n-gram, not min_item_words
                parts = [(p, w) for p, w in item_parts(item, spec.parts, config.ngram_size)
                         if len(w) >= (config.ngram_size if p == "straddle" else min_words)]
                if not parts:
                    st["too_short"] += 1
                    continue
                st["indexed"] += 1
                for part, words in parts:
                    names.append(name)
                    rows.append(i)
                    texts.append(" ".join(words))
                    kinds.append(part)
        # the words are normalised already; normalising again is the identity
        grams = ngram_hashes(word_hashes(texts), config.ngram_size, short="skip")
        item_of = np.repeat(np.arange(len(texts), dtype=np.int64), grams.counts())
        order = np.argsort(grams.hashes, kind="stable")
        return cls(config, names, rows, texts, grams.hashes[order], item_of[order], stats, kinds)

    def shared(self, doc_grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(word position in the document, item) for every document n-gram found in the index."""
        lo = np.searchsorted(self.grams, doc_grams, side="left")
        hi = np.searchsorted(self.grams, doc_grams, side="right")
        hit = np.flatnonzero(hi > lo)
        if not hit.size:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        counts = hi[hit] - lo[hit]
        pos = np.repeat(hit, counts)
        starts = np.repeat(lo[hit], counts)
        within = np.arange(len(pos)) - np.repeat(np.cumsum(counts) - counts, counts)
        return pos, self.gram_item[starts + within]

    def overlap_ratio(self, doc_words: list[str], item: int, doc_grams_hit: np.ndarray | None = None) -> float:
        """Matched characters (difflib blocks longer than min_block_chars) / item characters."""
        item_text = self.texts[item]
        if doc_grams_hit is not None and len(doc_grams_hit):
            # compare against a window around the shared n-grams, not the whole document
            span = len(item_text.split())
            lo = max(0, int(doc_grams_hit.min()) - span)
            hi = min(len(doc_words), int(doc_grams_hit.max()) + self.config.ngram_size + span)
            doc_text = " ".join(doc_words[lo:hi])
        else:
            doc_text = " ".join(doc_words)
        sm = difflib.SequenceMatcher(None, doc_text, item_text, autojunk=False)
        matched = sum(b.size for b in sm.get_matching_blocks() if b.size >= self.config.min_block_chars)
        return matched / max(1, len(item_text))

    def match(self, texts: Sequence[str]) -> list[list[Hit]]:
        """Confirmed hits per document (empty list: clean)."""
        grams = ngram_hashes(word_hashes(texts), self.config.ngram_size, short="skip")
        return [self._match_one(texts[d], grams, d) for d in range(len(texts))]

    def _match_one(self, text: str, grams: WordHashes, d: int) -> list[Hit]:
        g = grams.hashes[grams.offsets[d]:grams.offsets[d + 1]]
        if not len(self.grams) or not len(g):
            return []
        pos, items = self.shared(g)
        if not len(items):
            return []
        uniq, counts = np.unique(items, return_counts=True)
        cands = uniq[np.lexsort((uniq, -counts))][: self.config.max_candidates]
        words = normalize_words(text)
        hits = []
        for item in cands.tolist():
            ratio = self.overlap_ratio(words, item, pos[items == item])
            if ratio >= self.config.threshold:
                hits.append(Hit(self.names[item], self.rows[item], round(ratio, 4),
                                self.parts[item] if self.parts else "text"))
        return hits


def contaminated_by(hits: list[Hit]) -> str | None:
    """Comma-joined benchmark names of the hits (the `contaminated_by` column), None when clean."""
    names = sorted({h.benchmark for h in hits})
    return ",".join(names) if names else None


def hits_per_benchmark(all_hits: Sequence[list[Hit]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for hits in all_hits:
        for name in {h.benchmark for h in hits}:
            out[name] = out.get(name, 0) + 1
    return out


def benchmark_specs(raw: dict[str, Any]) -> dict[str, BenchmarkSpec]:
    """{name: {path, field}} from config data (field may be a list)."""
    out = {}
    for name, spec in raw.items():
        if isinstance(spec, BenchmarkSpec):
            out[name] = spec
            continue
        tup = (lambda v: tuple(v) if isinstance(v, list) else v)
        out[name] = BenchmarkSpec(path=os.fspath(spec["path"]), field=tup(spec.get("field", "text")),
                                  query=tup(spec.get("query")), answer=tup(spec.get("answer")),
                                  parts=tuple(spec.get("parts", ("answer", "straddle"))))
    return out
