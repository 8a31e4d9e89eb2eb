"""datatrove steps around the dedup modules, so the stages run under any datatrove executor across shards/workers.

Conventions shared with `filters/steps.py`: a document whose `metadata` has "reason" was rejected upstream and
passes through untouched; by default a step *marks* what it removes (`reason`, `reason_detail`) so the last step
can write every row to kept/ or rejected/; `drop=True` drops instead (optionally into `exclusion_writer`), like a
plain datatrove filter. Shard identity is the datatrove rank: the signature and apply steps of one method must
see the same documents in the same order (same reader, same `tasks`).

Key dedup (url / exact / minhash), four executor runs over one work folder:
  [reader, DedupSignatures(work, "minhash")]            tasks = number of input shards
  [DedupBuckets(work)]                                  tasks = any (e.g. 14 = one per band)
  [DedupClusters(work)]                                 tasks = 1
  [reader, DedupApply(work, "minhash"), writer]         tasks = number of input shards
Paragraph dedup, two runs: [reader, ParagraphBloomBuild(work)] then [reader, ParagraphDedupFilter(work), writer].
Decontamination, one run: [reader, DecontamFilter(benchmarks), writer].
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpora.atomic import atomic_write_json
from filters.dedup.bloom import BloomFilter
from filters.dedup.decontam import BenchmarkIndex, DecontamConfig, benchmark_specs, contaminated_by
from filters.dedup.exact import ExactConfig
from filters.dedup.keys import ExactKeys, KeyMethod, MinHashKeys, UrlKeys
from filters.dedup.minhash import MinHashConfig
from filters.dedup.intermediate import IntermediateError
from filters.dedup.outofcore import (AssignmentReader, SignatureWriter, cluster_duplicates, cluster_summary,
                                     find_bucket_edges, shard_name)
from filters.dedup.paragraphs import ParagraphDedup, ParagraphDedupConfig
from filters.dedup.urls import UrlNormConfig

REASON, DETAIL = "reason", "reason_detail"


def key_method(name: str, options: Any = None) -> KeyMethod:
    """'url' | 'exact' | 'minhash' (options: the matching config dataclass) -> KeyMethod."""
    if name == "minhash":
        return MinHashKeys(options or MinHashConfig())
    if name == "exact":
        return ExactKeys(options or ExactConfig())
    if name == "url":
        return UrlKeys(options or UrlNormConfig())
    raise ValueError(f"unknown dedup method {name!r} (url, exact, minhash)")


def _batches(data: Iterable[Document], size: int, max_chars: int = 8_000_000) -> Iterator[list[Document]]:
    buf: list[Document] = []
    chars = 0
    for doc in data:
        buf.append(doc)
        chars += len(doc.text)
        if len(buf) >= size or chars >= max_chars:
            yield buf
            buf, chars = [], 0
    if buf:
        yield buf


def _rejected(doc: Document) -> bool:
    return REASON in doc.metadata


def _quality(doc: Document, key: str | None) -> float | None:
    if not key:
        return None
    v = doc.metadata.get(key)
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


class _DedupStep(PipelineStep):
    type = "🫂 - DEDUP"

    def __init__(self, drop: bool = False, exclusion_writer=None, stats_dir: str | os.PathLike | None = None):
        super().__init__()
        self.drop = drop
        self.exclusion_writer = exclusion_writer
        self.stats_dir = stats_dir

    def _write_stats(self, name: str, rank: int, stats: dict) -> None:
        if self.stats_dir is not None:
            atomic_write_json(Path(self.stats_dir) / f"{name}-{rank:05d}.json", {"name": name, **stats})

    def _remove(self, doc: Document, reason: str, detail: str | None, exc, rank: int) -> bool:
        """Mark or drop `doc`; True when it should still be yielded."""
        self.stat_update(f"removed_{reason}")
        doc.metadata[REASON] = reason
        doc.metadata[DETAIL] = detail
        if not self.drop:
            return True
        if exc is not None:
            exc.write(doc, rank)
        return False


class DedupSignatures(_DedupStep):
    """Step 1 of url / exact / minhash dedup: keys of every document of this shard (passes documents through)."""

    name = "🔑 dedup keys"

    def __init__(self, work_dir: str | os.PathLike, method: str | KeyMethod = "minhash", options: Any = None,
                 quality_key: str | None = "quality_score", url_key: str = "url", batch_size: int = 2000):
        super().__init__()
        self.work_dir = Path(work_dir)
        self.method = key_method(method, options) if isinstance(method, str) else method
        self.quality_key = quality_key
        self.url_key = url_key
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        writer = SignatureWriter(self.work_dir, self.method, rank, world_size)
        try:
            for batch in _batches(data or [], self.batch_size):
                with self.track_time(unit="batch"):
                    writer.add([d.id for d in batch], [d.text for d in batch],
                               [d.metadata.get(self.url_key) for d in batch],
                               [_quality(d, self.quality_key) for d in batch],
                               [not _rejected(d) for d in batch])
                self.stat_update("documents", value=len(batch))
                yield from batch
        except BaseException:
            writer.abort()
            raise
        writer.close()


class DedupBuckets(_DedupStep):
    """Step 2: documents sharing a key -> a forest of edges; ranks split the (key column x partition) tasks."""

    name = "🪣 dedup buckets"

    def __init__(self, work_dir: str | os.PathLike, partitions: int = 1, index: Iterable[str | os.PathLike] = ()):
        super().__init__()
        self.work_dir = Path(work_dir)
        self.partitions = partitions
        self.index = [Path(p) for p in index]  # prebuilt index folders (`filters/dedup/index.py`)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if data:  # steps chained before this one (e.g. another method's buckets) finish first
            yield from data
        with self.track_time(unit="task"):
            stats = find_bucket_edges(self.work_dir, rank, world_size, self.partitions, index=self.index)
        self.stat_update("bucket_edges", value=stats["bucket_edges"])
        self.stat_update("linked_documents", value=stats["linked_documents"])


class DedupClusters(_DedupStep):
    """Step 3 (tasks=1): merge the forests, choose each cluster's kept document, write per-shard assignments."""

    name = "🧩 dedup clusters"

    def __init__(self, work_dir: str | os.PathLike, keep: str = "highest_quality",
                 exclude: Iterable[str | os.PathLike] = (), index: Iterable[str | os.PathLike] = ()):
        super().__init__()
        self.work_dir = Path(work_dir)
        self.keep = keep
        self.exclude = [Path(p) for p in exclude]
        self.index = [Path(p) for p in index]

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if world_size != 1:
            raise ValueError(f"DedupClusters runs as a single task (got world_size={world_size}); the bucket step "
                             "before it is the parallel one")
        if data:  # e.g. the url clusters before exact's, which exclude what url removed
            yield from data
        with self.track_time(unit="run"):
            stats = cluster_duplicates(self.work_dir, self.keep, self.exclude, index=self.index)
        for k in ("clusters", "in_clusters", "removed", "largest_cluster"):
            self.stat_update(k, value=stats[k])


class DedupApply(_DedupStep):
    """Step 4: per shard, add `dup_cluster_id` / `dup_cluster_size` to every document and remove the non-kept
    members of each cluster (reason = the method's name, detail = the kept member's id).

    `work_dirs`: one work folder, or several whose keys were computed in the same pass (url then exact): they are
    applied in order and the first method that removes a document names the reason. (In drop mode one step must
    apply them all, since a dropped document would shift the rows of the next method's assignments.)
    """

    name = "✂️ dedup apply"

    def __init__(self, work_dirs: str | os.PathLike | list, reasons: str | list[str] | None = None,
                 drop: bool = False, exclusion_writer=None, stats_dir: str | os.PathLike | None = None):
        super().__init__(drop, exclusion_writer, stats_dir)
        self.work_dirs = [Path(p) for p in (work_dirs if isinstance(work_dirs, (list, tuple)) else [work_dirs])]
        if reasons is None:
            self.reasons = None
        else:
            self.reasons = [reasons] if isinstance(reasons, str) else list(reasons)
            if len(self.reasons) != len(self.work_dirs):
                raise ValueError(f"{len(self.work_dirs)} work folders but {len(self.reasons)} reasons")

    def _reasons(self) -> list[str]:
        if self.reasons is not None:
            return self.reasons
        out = []
        for w in self.work_dirs:
            summary = cluster_summary(w)
            if summary is None:
                raise IntermediateError(f"{w}: no {w.name}/clusters.json: run DedupClusters before DedupApply")
            out.append(summary["fingerprint"]["method"])
        return out

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        reasons = self._reasons()
        readers = [AssignmentReader(w, rank) for w in self.work_dirs]
        removed = {r: 0 for r in reasons}
        docs = 0
        exc = self.exclusion_writer.__enter__() if (self.drop and self.exclusion_writer) else None
        try:
            for doc in data or []:
                if _rejected(doc):  # the signature step skipped it too
                    yield doc
                    continue
                rows = [reader.next(doc.id) for reader in readers]
                docs += 1
                removed_by = None
                for reason, (cid, size, kept_id) in zip(reasons, rows):
                    if size == 0:  # removed by a method applied before this one
                        continue
                    doc.metadata["dup_cluster_id"] = cid if cid is not None else doc.id
                    doc.metadata["dup_cluster_size"] = size
                    if kept_id is not None:
                        removed_by = (reason, kept_id)
                        break
                if removed_by is not None:
                    removed[removed_by[0]] += 1
                    if not self._remove(doc, removed_by[0], removed_by[1], exc, rank):
                        continue
                yield doc
            for reader in readers:
                reader.finish()
        finally:
            if exc is not None:
                self.exclusion_writer.__exit__(None, None, None)
        self.stat_update("documents", value=docs)  # once per shard: datatrove's per-call cost is not small
        self._write_stats("dedup-" + "-".join(reasons), rank, {"documents": docs, "removed": removed})


class ParagraphBloomBuild(_DedupStep):
    """Paragraph dedup step 1: this shard's paragraphs (or n-grams) into its own Bloom filter."""

    name = "🌸 paragraph bloom"

    def __init__(self, work_dir: str | os.PathLike, config: ParagraphDedupConfig = ParagraphDedupConfig(),
                 batch_size: int = 1000):
        super().__init__()
        self.work_dir = Path(work_dir)
        self.config = config
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        dd = ParagraphDedup(self.config)
        for batch in _batches(data or [], self.batch_size):
            dd.add_texts([d.text for d in batch if not _rejected(d)])
            yield from batch
        self.stat_update("items", value=dd.items_added)
        dd.bloom.save(self.work_dir / f"bloom-{rank:05d}.bin",
                      {"rank": rank, "world_size": world_size, "items": dd.items_added,
                       "fingerprint": self.config.fingerprint()})


class ParagraphDedupFilter(_DedupStep):
    """Paragraph dedup step 2: start from the union of the filters of shards < rank, then remove this shard's
    paragraphs seen before; documents left too short are removed (reason "paragraph")."""

    name = "🌸 paragraph dedup"

    def __init__(self, work_dir: str | os.PathLike, config: ParagraphDedupConfig = ParagraphDedupConfig(),
                 drop: bool = False, exclusion_writer=None, stats_dir: str | os.PathLike | None = None,
                 batch_size: int = 1000):
        super().__init__(drop, exclusion_writer, stats_dir)
        self.work_dir = Path(work_dir)
        self.config = config
        self.batch_size = batch_size

    def _prior_filter(self, rank: int, world_size: int) -> BloomFilter:
        bloom = BloomFilter(self.config.sizing())
        for r in range(rank):
            path = self.work_dir / f"bloom-{r:05d}.bin"
            _, meta = BloomFilter.read_sizing(path)
            if meta.get("world_size") != world_size or meta.get("fingerprint") != self.config.fingerprint():
                raise ValueError(f"{path}: built for world_size={meta.get('world_size')} with "
                                 f"{meta.get('fingerprint')}; this run has world_size={world_size} with "
                                 f"{self.config.fingerprint()}; rerun ParagraphBloomBuild")
            bloom.union_file(path)
        return bloom

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        t0 = time.perf_counter()
        dd = ParagraphDedup(self.config, self._prior_filter(rank, world_size))
        docs = removed_docs = removed_paras = paras = chars = 0
        exc = self.exclusion_writer.__enter__() if (self.drop and self.exclusion_writer) else None
        try:
            for batch in _batches(data or [], self.batch_size):
                live = [d for d in batch if not _rejected(d)]
                results = iter(dd.process([d.text for d in live]))
                for doc in batch:
                    if _rejected(doc):
                        yield doc
                        continue
                    res = next(results)
                    docs += 1
                    paras += res.paragraphs
                    removed_paras += res.removed_paragraphs
                    chars += res.removed_chars
                    doc.metadata["paragraphs_removed"] = res.removed_paragraphs
                    if res.removed:
                        removed_docs += 1
                        if not self._remove(doc, "paragraph", f"{res.removed_paragraphs} duplicate paragraphs",
                                            exc, rank):
                            continue
                    else:
                        doc.text = res.text
                    yield doc
        finally:
            if exc is not None:
                self.exclusion_writer.__exit__(None, None, None)
        self.stat_update("documents", value=docs)
        self.stat_update("paragraphs_removed", value=removed_paras)
        self._write_stats("dedup-paragraph", rank, {
            "documents": docs, "removed": removed_docs, "paragraphs": paras, "paragraphs_removed": removed_paras,
            "chars_removed": chars, "bloom": dd.bloom.sizing.describe(),
            "estimated_false_positive_rate": dd.estimated_false_positive_rate(),
            "seconds": round(time.perf_counter() - t0, 3)})


class DecontamFilter(_DedupStep):
    """Flag (`contaminated_by` column) or remove (reason "decontam") documents overlapping benchmark items."""

    name = "🧪 decontamination"

    def __init__(self, benchmarks: dict[str, Any], config: DecontamConfig = DecontamConfig(),
                 action: str = "remove", drop: bool = False, exclusion_writer=None,
                 stats_dir: str | os.PathLike | None = None, batch_size: int = 500):
        super().__init__(drop, exclusion_writer, stats_dir)
        if action not in ("flag", "remove"):
            raise ValueError(f"decontam action must be 'flag' or 'remove', got {action!r}")
        self.benchmarks = benchmark_specs(benchmarks)
        self.config = config
        self.action = action
        self.batch_size = batch_size
        self._index: BenchmarkIndex | None = None

    @property
    def index(self) -> BenchmarkIndex:
        if self._index is None:  # built in the worker, not pickled with the step
            self._index = BenchmarkIndex.build(self.benchmarks, self.config)
        return self._index

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        index = self.index
        per_bench: dict[str, int] = {name: 0 for name in self.benchmarks}
        docs = flagged = 0
        exc = self.exclusion_writer.__enter__() if (self.drop and self.exclusion_writer) else None
        try:
            for batch in _batches(data or [], self.batch_size):
                live = [d for d in batch if not _rejected(d)]
                hits = iter(index.match([d.text for d in live]))
                for doc in batch:
                    if _rejected(doc):
                        yield doc
                        continue
                    h = next(hits)
                    docs += 1
                    names = contaminated_by(h)
                    doc.metadata["contaminated_by"] = names
                    if names:
                        flagged += 1
                        for name in names.split(","):
                            per_bench[name] += 1
                        if self.action == "remove":
                            detail = ",".join(f"{x.benchmark}#{x.item}" + ("" if x.part == "text" else f":{x.part}")
                                              for x in h[:5])
                            if not self._remove(doc, "decontam", detail, exc, rank):
                                continue
                    yield doc
        finally:
            if exc is not None:
                self.exclusion_writer.__exit__(None, None, None)
        self.stat_update("documents", value=docs)
        for name, hits in per_bench.items():
            self.stat_update(f"hits_{name}", value=hits)
        self._write_stats("dedup-decontam", rank, {"documents": docs, "contaminated": flagged,
                                                   "action": self.action, "hits_per_benchmark": per_bench,
                                                   "index": index.stats})


__all__ = ["DedupSignatures", "DedupBuckets", "DedupClusters", "DedupApply", "ParagraphBloomBuild",
           "ParagraphDedupFilter", "DecontamFilter", "key_method", "shard_name"]
