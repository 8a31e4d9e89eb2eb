"""The dedup stage over document Parquet shards: url -> exact -> paragraph -> minhash -> decontam, as datatrove
executor runs (local / Ray / Slurm, `filters.execution`), for the dolma flow and `flows run dedup`.

Shard r (one input's Parquet parts) is datatrove rank r in every run. The enabled stages become a list of
operations split into passes at the barriers a stage needs (clustering after signatures, the union of Bloom
filters after they are built):

  pass: read shard -> [url+exact signatures]                          (nothing written: the next pass re-reads)
  barrier: buckets + clusters (url, then exact without url's removals)
  pass: read shard -> apply url/exact -> paragraph Bloom build -> write stage 1 (kept / rejected parts)
  pass: read stage 1 -> paragraph filter -> minhash signatures -> write stage 2
  barrier: buckets + clusters (minhash)
  pass: read stage 2 -> apply minhash -> decontam -> write stage 3

A signature or Bloom step is always the last step of its pass, and only sees documents that are not rejected,
so the documents it saw are exactly the kept rows the next pass reads. Every written shard checks
read == kept + rejected; rejected rows carry `reason` (url / exact / paragraph / minhash / decontam) and
`reason_detail` (for minhash: the id of the kept member of the cluster).
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpora.atomic import atomic_write_json
from corpora.records import QUARANTINE_SCHEMA, REJECT_FIELDS
from corpora.shards import ShardWriter
from filters.dedup.config import DedupConfig
from filters.dedup.outofcore import cluster_summary
from filters.dedup.steps import (DecontamFilter, DedupApply, DedupBuckets, DedupClusters, DedupSignatures,
                                 ParagraphBloomBuild, ParagraphDedupFilter)
from filters.execution import ExecutorConfig, run_and_wait

# columns the dedup stage adds to every row
DEDUP_FIELDS: list[pa.Field] = [
    pa.field("dup_cluster_id", pa.string()),
    pa.field("dup_cluster_size", pa.int32()),
    pa.field("paragraphs_removed", pa.int32()),
    pa.field("contaminated_by", pa.string()),
]
REASONS = ("url", "exact", "paragraph", "minhash", "decontam")


# --- reading and writing shards ----------------------------------------------------------------------------

class ParquetShardReader(PipelineStep):
    """Rank r reads the Parquet parts of shard r in order. Rows without an id or a text, or with a text that is not
    a string, are quarantined with the reason (file and row named) instead of being lost or failing the run."""

    name = "📖 Parquet shard reader"
    type = "📖 - READER"

    def __init__(self, shards: list[list[str]], quarantine_dirs: list[str] | None = None,
                 text_field: str = "text", id_field: str = "id", batch_rows: int = 2048, skip_bad: bool = False):
        super().__init__()
        self.shards = [[str(p) for p in s] for s in shards]
        self.quarantine_dirs = quarantine_dirs  # where bad rows are recorded (the first pass over the input)
        self.skip_bad = skip_bad or quarantine_dirs is not None  # later passes skip the same rows silently
        self.text_field = text_field
        self.id_field = id_field
        self.batch_rows = batch_rows

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        qw = None
        if self.quarantine_dirs is not None:
            qw = ShardWriter(Path(self.quarantine_dirs[rank]), QUARANTINE_SCHEMA, max_rows=50_000)
        quarantined = 0
        for path in self.shards[rank]:
            row = 0
            for batch in pq.ParquetFile(path).iter_batches(batch_size=self.batch_rows):
                # column by column (one Arrow -> Python conversion per column, no per-row dict from Arrow): the
                # same values and key order as batch.to_pylist() minus the text and id keys
                n = batch.num_rows
                names = batch.schema.names
                cols = [batch.column(i).to_pylist() for i in range(len(names))]
                texts = ids = None
                meta_names, meta_cols = [], []
                for name, col in zip(names, cols):
                    if name == self.text_field:
                        texts = col
                    elif name == self.id_field:
                        ids = col
                    else:
                        meta_names.append(name)
                        meta_cols.append(col)
                texts = texts if texts is not None else [None] * n
                ids = ids if ids is not None else [None] * n
                rows = zip(texts, ids, *meta_cols) if meta_cols else zip(texts, ids)
                good = 0
                for text, doc_id, *values in rows:
                    rec = dict(zip(meta_names, values))
                    sid = doc_id if type(doc_id) is str else None if doc_id is None else str(doc_id)
                    if sid and isinstance(text, str):
                        good += 1
                        yield Document(text=text, id=sid, metadata=rec)
                    else:
                        problem = ("no text" if text is None else "no id" if not sid
                                   else f"text is {type(text).__name__}, not a string")
                        if not self.skip_bad:
                            raise ValueError(f"{path} row {row}: {problem}")
                        if qw is not None:
                            quarantined += 1
                            raw = {self.text_field: text, **rec} if problem.startswith("text is") else rec
                            qw.write_rows([{"file": path, "location": f"row {row}", "error": problem,
                                            "raw": json.dumps(raw, default=str)[:200]}])
                    row += 1
                if good:
                    self.stat_update("documents", value=good)  # once per batch: datatrove's per-call cost
        if qw is not None:
            qw.close()
            atomic_write_json(Path(self.quarantine_dirs[rank]) / "quarantine.json", {"quarantined": quarantined})


class ShardPartsWriter(PipelineStep):
    """Rank r writes kept and rejected (metadata "reason") documents as Parquet parts under out_dirs[r], then
    `done.json` with the counts, after checking that every document read was written exactly once."""

    name = "💾 shard parts writer"
    type = "💽 - WRITER"

    def __init__(self, out_dirs: list[str], schema: pa.Schema, text_field: str = "text", id_field: str = "id",
                 shard_rows: int = 100_000):
        super().__init__()
        self.out_dirs = [str(d) for d in out_dirs]
        self.schema = schema
        self.text_field = text_field
        self.id_field = id_field
        self.shard_rows = shard_rows

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        out = Path(self.out_dirs[rank])
        if out.exists():
            shutil.rmtree(out)
        kept_schema = pa.schema([f for f in self.schema if f.name not in ("reason", "reason_detail")])
        rej_schema = pa.schema(list(kept_schema) + REJECT_FIELDS)
        names = [f.name for f in kept_schema if f.name not in (self.text_field, self.id_field)]
        kept = ShardWriter(out / "kept", kept_schema, max_rows=self.shard_rows)
        rej = ShardWriter(out / "rejected", rej_schema, max_rows=self.shard_rows)
        # rows are gathered column by column (what pa.Table.from_pylist(rows, schema) would build from per-row
        # dicts) and written 2000 rows at a time per kind, as before
        id_f, text_f = self.id_field, self.text_field
        kept_cols = _ColumnBuffer(kept, kept_schema.names)
        rej_cols = _ColumnBuffer(rej, rej_schema.names)
        seen = 0
        for doc in data or []:
            seen += 1
            m = doc.metadata
            values = {id_f: doc.id, text_f: doc.text}
            for n in names:
                values[n] = m.get(n)
            if "reason" in m:
                values["reason"], values["reason_detail"] = m["reason"], m.get("reason_detail")
                rej_cols.add(values)
            else:
                kept_cols.add(values)
        kept_cols.flush()
        rej_cols.flush()
        kept.close()
        rej.close()
        if kept.rows_written + rej.rows_written != seen:
            raise RuntimeError(f"{out}: wrote {kept.rows_written} kept + {rej.rows_written} rejected rows for "
                               f"{seen} documents")
        atomic_write_json(out / "done.json", {"documents": seen, "kept": kept.rows_written,
                                              "rejected": rej.rows_written})
        return
        yield  # a generator, as datatrove expects


class _ColumnBuffer:
    """Rows for one ShardWriter as per-column lists, handed over every `every` rows as one Arrow table (the same
    table `pa.Table.from_pylist` makes from the rows' dicts; a name missing from a row is null)."""

    def __init__(self, writer: ShardWriter, names: list[str], every: int = 2000):
        self.writer = writer
        self.names = names
        self.every = every
        self.cols: list[list] = [[] for _ in names]
        self.rows = 0

    def add(self, values: dict) -> None:
        get = values.get
        for col, name in zip(self.cols, self.names):
            col.append(get(name))
        self.rows += 1
        if self.rows >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_arrays(self.cols, schema=self.writer.schema))
        self.cols = [[] for _ in self.names]
        self.rows = 0


class DrainStep(PipelineStep):
    """End of a pass that writes nothing (only signatures or Bloom filters): consume the documents."""

    name = "🕳 drain"
    type = "💽 - WRITER"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for _ in data or []:
            pass
        return
        yield


# --- planning ----------------------------------------------------------------------------------------------

@dataclass
class Op:
    kind: str  # "sig" | "bloom" | "apply" | "paragraph" | "decontam" | "barrier"
    methods: list[str] = field(default_factory=list)

    @property
    def modifies(self) -> bool:
        return self.kind in ("apply", "paragraph", "decontam")


def plan_ops(cfg: DedupConfig) -> list[Op]:
    ops: list[Op] = []
    keyed = [m for m in ("url", "exact") if getattr(cfg, m).enabled]
    if keyed:
        ops += [Op("sig", [m]) for m in keyed] + [Op("barrier", keyed), Op("apply", keyed)]
    if cfg.paragraph.enabled:
        ops += [Op("bloom"), Op("barrier"), Op("paragraph")]
    if cfg.minhash.enabled:
        ops += [Op("sig", ["minhash"]), Op("barrier", ["minhash"]), Op("apply", ["minhash"])]
    if cfg.decontam.enabled:
        ops.append(Op("decontam"))
    return ops


def plan_passes(cfg: DedupConfig) -> list[tuple[list[Op], list[str]]]:
    """[(operations of the pass, methods to cluster after it)]."""
    passes: list[tuple[list[Op], list[str]]] = []
    current: list[Op] = []
    for op in plan_ops(cfg):
        if op.kind == "barrier":
            passes.append((current, op.methods))
            current = []
        else:
            current.append(op)
    if current:
        passes.append((current, []))
    return passes


# --- running -----------------------------------------------------------------------------------------------

@dataclass
class DedupStageResult:
    kept: list[list[Path]]  # final kept parts per shard
    rejected: list[list[Path]]  # rejected parts per shard, all dedup passes
    quarantined: list[list[Path]]
    stats: dict[str, Any]


class DedupStage:
    def __init__(self, shards: list[list[Path]], work_dir: Path, cfg: DedupConfig, exec_cfg: ExecutorConfig,
                 schema: pa.Schema, text_field: str = "text", id_field: str = "id", shard_rows: int = 100_000,
                 quarantine_bad_rows: bool = False, log: Callable[[str], None] = print):
        self.shards = [[Path(p) for p in s] for s in shards]
        self.work = Path(work_dir)
        self.cfg = cfg
        self.exec_cfg = exec_cfg
        self.text_field = text_field
        self.id_field = id_field
        self.shard_rows = shard_rows
        self.quarantine_bad_rows = quarantine_bad_rows
        self.log = log
        names = set(schema.names)
        extra = [f for f in DEDUP_FIELDS if f.name not in names]
        self.schema = pa.schema([f for f in schema if f.name not in ("reason", "reason_detail")] + extra)

    def _dir(self, *parts: str) -> Path:
        return self.work.joinpath(*parts)

    def _execute(self, pipeline: list, tasks: int, name: str, outputs: list[Path]) -> None:
        """Run one executor job; for Slurm (which returns once submitted) wait for its outputs."""
        t0 = time.perf_counter()
        missing = run_and_wait(pipeline, tasks, self.exec_cfg, self._dir("logs", f"{time.strftime('%H%M%S')}-{name}"),
                               outstanding=lambda: [str(p) for p in outputs if not p.exists()], name=f"dedup-{name}")
        if missing:
            raise RuntimeError(f"dedup {name}: tasks finished without writing {missing[:3]} (see the logs in "
                               f"{self._dir('logs')})")
        self.log(f"dedup {name}: {time.perf_counter() - t0:.1f}s")

    def _step(self, op: Op) -> list[PipelineStep]:
        cfg, stats = self.cfg, self._dir("stats")
        if op.kind == "sig":
            m = op.methods[0]
            options = getattr(cfg, m).options()
            return [DedupSignatures(self._dir(m), m, options, quality_key=cfg.quality_field, url_key="url")]
        if op.kind == "apply":
            return [DedupApply([self._dir(m) for m in op.methods], op.methods, stats_dir=stats)]
        if op.kind == "bloom":
            return [ParagraphBloomBuild(self._dir("paragraph"), cfg.paragraph.options())]
        if op.kind == "paragraph":
            return [ParagraphDedupFilter(self._dir("paragraph"), cfg.paragraph.options(), stats_dir=stats)]
        if op.kind == "decontam":
            return [DecontamFilter(cfg.decontam.specs(), cfg.decontam.options(), action=cfg.decontam.action,
                                   stats_dir=stats)]
        raise ValueError(op.kind)

    def _cluster(self, methods: list[str]) -> None:
        if not methods:
            return
        tasks = max(1, self.cfg.minhash.bucket_tasks if "minhash" in methods else 1)
        buckets = [DedupBuckets(self._dir(m), self.cfg.minhash.bucket_partitions if m == "minhash" else 1,
                                index=self.cfg.index_dirs(m)) for m in methods]
        self._execute(buckets, tasks, "buckets-" + "-".join(methods),
                      [self._dir(m, "edges", f"{r:05d}.parquet.meta.json") for m in methods for r in range(tasks)])
        clusters = [DedupClusters(self._dir(m), self.cfg.keep, exclude=[self._dir(p) for p in methods[:i]],
                                  index=self.cfg.index_dirs(m)) for i, m in enumerate(methods)]
        self._execute(clusters, 1, "clusters-" + "-".join(methods), [self._dir(m, "clusters.json") for m in methods])

    def run(self) -> DedupStageResult:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.cfg.check()
        if self.cfg.paragraph.enabled:
            self.log(self.cfg.paragraph.options().sizing().describe())
        n = len(self.shards)
        current = [list(s) for s in self.shards]
        rejected: list[list[Path]] = [[] for _ in range(n)]
        quarantine_dirs = [self._dir("quarantine", f"{r:05d}") for r in range(n)]
        for p, (ops, cluster_after) in enumerate(plan_passes(self.cfg)):
            writes = any(op.modifies for op in ops)
            on_input = current == [list(sh) for sh in self.shards]
            reader = ParquetShardReader(current, [str(d) for d in quarantine_dirs] if p == 0 and
                                        self.quarantine_bad_rows else None, self.text_field, self.id_field,
                                        skip_bad=on_input and self.quarantine_bad_rows)
            steps = [s for op in ops for s in self._step(op)]
            out_dirs = [self._dir("stages", f"pass{p}", f"{r:05d}") for r in range(n)]
            end = ShardPartsWriter([str(d) for d in out_dirs], self.schema, self.text_field, self.id_field,
                                   self.shard_rows) if writes else DrainStep()
            name = f"pass{p}-" + "-".join(op.kind + (":" + "+".join(op.methods) if op.methods else "")
                                          for op in ops)
            expect = [d / "done.json" for d in out_dirs] if writes else []
            self._execute([reader, *steps, end], n, name, expect)
            if writes:
                for r, d in enumerate(out_dirs):
                    rejected[r] += sorted((d / "rejected").glob("part-*.parquet"))
                    current[r] = sorted((d / "kept").glob("part-*.parquet"))
            self._cluster(cluster_after)
        quarantined = [sorted(d.glob("part-*.parquet")) for d in quarantine_dirs]
        return DedupStageResult(current, rejected, quarantined, self.collect_stats())

    def write_index(self, kept_ids: Callable[[], Any], dest: Path) -> dict[str, Any]:
        """The index of this run (`filters/dedup/index.py`): the url/exact/minhash signatures of the rows it kept,
        under `dest/<method>/`, for a later run's `dedup.<method>.index`. `kept_ids()` iterates the kept ids."""
        from filters.dedup.index import write_index

        out = {}
        tmp = dest.with_name(dest.name + ".building")
        if tmp.exists():
            shutil.rmtree(tmp)
        for m in ("url", "exact", "minhash"):
            if getattr(self.cfg, m).enabled and (self._dir(m) / "sigs").is_dir():
                out[m] = write_index(self._dir(m), kept_ids(), tmp)
        if dest.exists():
            shutil.rmtree(dest)
        if tmp.exists():
            tmp.rename(dest)
        return out

    def collect_stats(self) -> dict[str, Any]:
        """Per stage: documents in, removed, and the stage's own numbers (clusters, Bloom sizing, hits)."""
        out: dict[str, Any] = {}
        per_step: dict[str, list[dict]] = {}
        for f in sorted(self._dir("stats").glob("*.json")):
            per_step.setdefault(f.stem.rsplit("-", 1)[0], []).append(json.loads(f.read_text()))
        for step, entries in per_step.items():
            if step in ("dedup-paragraph", "dedup-decontam"):
                continue
            methods = step.removeprefix("dedup-").split("-")
            docs_in = sum(e["documents"] for e in entries)
            for m in methods:  # applied in order: each method sees what the previous one kept
                removed = sum(e["removed"].get(m, 0) for e in entries)
                summary = cluster_summary(self._dir(m)) or {}
                out[m] = {"docs_in": docs_in, "removed": removed, "docs_out": docs_in - removed,
                          **{k: summary.get(k) for k in ("clusters", "in_clusters", "largest_cluster")},
                          **{k: summary[k] for k in ("index_documents", "removed_by_index") if k in summary}}
                docs_in -= removed
        if "dedup-paragraph" in per_step:
            e = per_step["dedup-paragraph"]
            docs_in, removed = sum(x["documents"] for x in e), sum(x["removed"] for x in e)
            out["paragraph"] = {"docs_in": docs_in, "removed": removed, "docs_out": docs_in - removed,
                                **{k: sum(x[k] for x in e) for k in ("paragraphs", "paragraphs_removed",
                                                                     "chars_removed")},
                                "bloom": e[0]["bloom"],
                                "estimated_false_positive_rate": max(x["estimated_false_positive_rate"] for x in e)}
        if "dedup-decontam" in per_step:
            e = per_step["dedup-decontam"]
            hits: dict[str, int] = {}
            for x in e:
                for k, v in x["hits_per_benchmark"].items():
                    hits[k] = hits.get(k, 0) + v
            docs_in, flagged = sum(x["documents"] for x in e), sum(x["contaminated"] for x in e)
            removed = flagged if e[0]["action"] == "remove" else 0
            out["decontam"] = {"docs_in": docs_in, "removed": removed, "docs_out": docs_in - removed,
                               "contaminated": flagged, "action": e[0]["action"], "hits_per_benchmark": hits,
                               "index": e[0]["index"]}
        return {name: out[name] for name in REASONS if name in out}
