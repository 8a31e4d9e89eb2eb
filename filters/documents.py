"""The documents engine: documents in, the parts of a run out.

One call, `process_documents(source, filters, dedup, execution, ...)`, for every pipeline that runs document steps:

- `ReaderInputs(plan)`: the planned input files of a run (`flows run dolma`): the filter stage (one datatrove task
  per pending input, `filters.document_stage`), ids made unique across inputs, then the dedup stage;
- `StagedShards(shards, schema)`: document Parquet as is, one shard per input (`flows run dedup`): the dedup stage;
- `GeneratedRows(rows, schema)`: a generator's rows in memory (the generator mechanism's post-processing): written
  once, then the filter stage and the dedup stage, read back merged with their provenance columns.

Every stage runs on datatrove's executors through the one executor-and-wait helper (`filters.execution.run_and_wait`)
and keeps its own resume key (the filter stage: `done.json` per input with its config hash; the dedup stage: its
config, the bytes of its input parts and the prebuilt indexes, `done.json` under its work folder). It returns
`DocumentParts`: per input the Parquet parts kept / rejected (with `reason`) / quarantined, the columns the steps
added, and the per-step stats. Flows only choose the settings and publish the parts.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from rich.table import Table

from corpora.atomic import atomic_write_json, read_json
from corpora.plan import WORK_DIR, RunPlan
from corpora.publish import unified_schema
from corpora.readers import FieldMap
from corpora.records import document_schema
from corpora.staging import StagedInput, input_dir, is_done, parts, unique_ids_across_inputs
from filters.dedup.config import DedupConfig
from filters.dedup.index import INDEX_DIR
from filters.dedup.stage import DEDUP_FIELDS, DedupStage
from filters.document_stage import run_document_stage
from filters.execution import ExecutorConfig
from filters.web_steps import WebFilters, build_filter_steps, score_fields

Log = Callable[..., None]
_log = logging.getLogger(__name__).info


# ---- what goes in ----------------------------------------------------------------------------------------------
@dataclass
class ReaderInputs:
    """A run's planned input files (any reader format), staged under `plan.staging`. `filter_key` is the filter
    stage's resume key (`plan.config_hash`); `dedup_key` the dedup stage's (its own config)."""
    plan: RunPlan
    fields: FieldMap = FieldMap()
    dedup_key: str = ""


@dataclass
class StagedShards:
    """Document Parquet parts, one shard (list of parts) per input, with their merged schema."""
    shards: list[list[Path]]
    schema: pa.Schema
    work: Path
    dedup_key: str
    text_field: str = "text"
    id_field: str = "id"
    quarantine_bad_rows: bool = True
    index_dir: Path | None = None


@dataclass
class GeneratedRows:
    """A generator's rows (dicts with `id` and `text`), their Arrow schema, and the work folder of the stages."""
    rows: list[dict]
    schema: pa.Schema
    work: Path
    filter_key: str
    dedup_key: str


# ---- what comes out --------------------------------------------------------------------------------------------
@dataclass
class DocumentParts:
    """Per input (shard), the Parquet parts of each kind; the columns the steps added; the per-step stats.
    `dones`: the filter stage's `done.json` per input (records, kept, rejected, quarantined, lost, steps);
    `renamed`: rows renamed `<id>#n` across inputs; `dedup`: the dedup stage's result (None: no dedup ran)."""
    kept: list[list[Path]]
    rejected: list[list[Path]]
    quarantine: list[list[Path]]
    added: list[pa.Field] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    dones: list[dict] = field(default_factory=list)
    renamed: int = 0
    dedup: dict | None = None


def filter_fields(filters: WebFilters, tag_only: bool = False) -> list[pa.Field]:
    """The columns the filter stage adds (scores; in attributes mode also the decisions)."""
    return score_fields(build_filter_steps(filters, tag_only=tag_only))


def process_documents(source: ReaderInputs | StagedShards | GeneratedRows, filters: WebFilters | None,
                      dedup: DedupConfig | None, execution: ExecutorConfig, shard_rows: int = 100_000, *,
                      tag_only: bool = False, on_progress: Callable[[int, int], None] | None = None,
                      log: Log = _log) -> DocumentParts:
    """Run the filter stage (`filters`; None: none) and the dedup stage (`dedup`; None or nothing enabled: none)
    over `source`; see the module docstring."""
    if isinstance(source, ReaderInputs):
        return _reader_inputs(source, filters or WebFilters(), dedup, execution, shard_rows, tag_only, on_progress,
                              log)
    if isinstance(source, StagedShards):
        res = dedup_documents(source.shards, source.work, dedup or DedupConfig(), execution, source.schema,
                              source.dedup_key, source.text_field, source.id_field, shard_rows,
                              quarantine_bad_rows=source.quarantine_bad_rows, index_dir=source.index_dir, log=log)
        return DocumentParts(kept=_paths(res["kept"]), rejected=_paths(res["rejected"]),
                             quarantine=_paths(res["quarantined"]), added=list(DEDUP_FIELDS),
                             stats={"dedup": res["stats"]}, dedup=res)
    return _generated_rows(source, filters or WebFilters(), dedup or DedupConfig(), execution, shard_rows, log)


def _paths(shards: list[list[str]]) -> list[list[Path]]:
    return [[Path(p) for p in s] for s in shards]


def _reader_inputs(src: ReaderInputs, filters: WebFilters, dedup: DedupConfig | None, execution: ExecutorConfig,
                   shard_rows: int, tag_only: bool, on_progress, log: Log) -> DocumentParts:
    plan = src.plan
    run_document_stage(plan.pending, plan.staging, plan.config_hash,
                       lambda layout: build_filter_steps(filters, layout=layout, tag_only=tag_only),
                       execution, src.fields, shard_rows=shard_rows, on_progress=on_progress)
    # ids unique across inputs (the reader made them unique within each): the staged folder to use per input
    dirs, renamed = unique_ids_across_inputs([input_dir(plan.staging, i) for i in plan.items],
                                             plan.out_dir / WORK_DIR / "unique_ids")
    if renamed:
        log("%d row(s) renamed: their id was used by an earlier input", renamed)
    added = filter_fields(filters, tag_only)
    result = None
    if dedup is not None and dedup.enabled():
        # the dedup stage owns its resume key (`dedup_key`, and through `_stage_key` its input parts); the filter
        # stage's hash leaves `dedup` out, so it must not stand in for it
        shards = [parts(d, "kept") for d in dirs]
        schema = unified_schema([p for s in shards for p in s], document_schema(added))
        result = dedup_documents(shards, plan.out_dir / WORK_DIR / "dedup", dedup, execution, schema, src.dedup_key,
                                 "text", "id", shard_rows, index_dir=plan.out_dir / INDEX_DIR, log=log)
        added = added + DEDUP_FIELDS
    kept = _paths(result["kept"]) if result else [parts(d, "kept") for d in dirs]
    rejected = [parts(d, "rejected") for d in dirs] + (_paths(result["rejected"]) if result else [])
    quarantine = [parts(input_dir(plan.staging, i), "quarantine") for i in plan.items]
    dones = [read_json(input_dir(plan.staging, i) / "done.json") for i in plan.items]
    from corpora.manifest import aggregate_step_stats

    stats = {"filters": aggregate_step_stats([d["steps"] for d in dones])}
    if result:
        stats["dedup"] = result["stats"]
    return DocumentParts(kept=kept, rejected=rejected, quarantine=quarantine, added=added, stats=stats,
                         dones=dones, renamed=renamed, dedup=result)


# ---- the dedup stage (resumable) -------------------------------------------------------------------------------
def _stage_key(cfg_hash: str, shards: list[list[Path]]) -> str:
    """Identifies one dedup run: its config and the exact bytes of every input part."""
    h = hashlib.sha256(cfg_hash.encode())
    for shard in shards:
        for p in shard:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(b"|")
    return h.hexdigest()[:16]


def dedup_documents(shards: list[list[Path]], work_dir: Path, cfg: DedupConfig, exec_cfg: ExecutorConfig,
                    schema: pa.Schema, cfg_hash: str, text_field: str = "text", id_field: str = "id",
                    shard_rows: int = 100_000, quarantine_bad_rows: bool = False,
                    index_dir: Path | None = None, log: Log = _log) -> dict:
    """Run (or reuse, when inputs, config and the prebuilt indexes are unchanged) the dedup stage; returns the part
    lists and stats. `index_dir`: where this run's own index goes (`dedup.write_index`)."""
    done_path = work_dir / "done.json"
    indexes = {m: cfg.index_dirs(m) for m in ("url", "exact", "minhash") if getattr(cfg, m).enabled}
    if index_dir is not None:
        own = str(Path(index_dir).resolve())
        for m, dirs in indexes.items():
            if any(d == own or d.startswith(own + "/") for d in dirs):
                raise ValueError(f"dedup.{m}.index: {own} is this run's own index (it would remove everything); "
                                 "copy it elsewhere or use another output folder")
    from filters.dedup.index import index_files

    key = _stage_key(cfg_hash, shards + [index_files(dirs) for dirs in indexes.values()])
    done = read_json(done_path)
    stage = DedupStage(shards, work_dir / "run", cfg, exec_cfg, schema, text_field, id_field, shard_rows,
                       quarantine_bad_rows, log=log)
    if done and done.get("key") == key and all(Path(p).exists() for kind in ("kept", "rejected", "quarantined")
                                               for s in done[kind] for p in s):
        log("dedup: inputs and config unchanged since the last run, reusing its output")
        out = done
    else:
        done_path.unlink(missing_ok=True)
        res = stage.run()
        out = {"key": key, "kept": [[str(p) for p in s] for s in res.kept],
               "rejected": [[str(p) for p in s] for s in res.rejected],
               "quarantined": [[str(p) for p in s] for s in res.quarantined], "stats": res.stats}
        if index_dir is not None and cfg.write_index:
            out["index"] = stage.write_index(lambda: _kept_ids(out["kept"], id_field), Path(index_dir))
        atomic_write_json(done_path, out)
    return out


def _kept_ids(kept: list[list[str]], id_field: str):
    for shard in kept:
        for p in shard:
            for batch in pq.ParquetFile(p).iter_batches(columns=[id_field]):
                yield from (str(x) for x in batch.column(0).to_pylist())


def dedup_summary_table(title: str, stats: dict) -> Table:
    """The console table of a dedup stage's stats (docs in / removed per step). Not `filters.dedup.minhash.dedup_table`,
    which deduplicates an Arrow table."""
    t = Table(title=title)
    for col in ("dedup stage", "docs in", "removed", "details"):
        t.add_column(col, justify="left" if col in ("dedup stage", "details") else "right")
    for name in ("url", "exact", "paragraph", "minhash", "decontam"):
        s = stats.get(name)
        if not s:
            continue
        if name == "paragraph":
            detail = f"{s.get('paragraphs_removed', 0):,} paragraphs removed; {s.get('bloom', '')}"
        elif name == "decontam":
            detail = f"{s.get('action')}: " + ", ".join(f"{k} {v}" for k, v in s.get("hits_per_benchmark", {}).items())
        else:
            detail = f"{s.get('clusters') or 0:,} clusters, largest {s.get('largest_cluster') or 0}"
        t.add_row(name, f"{s.get('docs_in', 0):,}", f"{s.get('removed', 0):,}", detail)
    return t


# ---- generated rows --------------------------------------------------------------------------------------------
def _write_if_changed(path: Path, table: pa.Table) -> Path:
    """Keep the file (and its mtime, part of the dedup stage's key) when its rows are the same: a rerun reuses the
    stages after it."""
    from corpora.shards import write_table_atomic

    if path.is_file():
        try:
            if pq.read_table(path).equals(table):
                return path
        except Exception:  # noqa: BLE001 - an unreadable file is rewritten
            pass
    return Path(write_table_atomic(path, table).path)


def _read(files: Sequence[Path | str]) -> list[dict]:
    return [r for f in files for r in pq.read_table(f).to_pylist()]


def _generated_rows(src: GeneratedRows, filters: WebFilters, dedup: DedupConfig, execution: ExecutorConfig,
                    shard_rows: int, log: Log) -> DocumentParts:
    """The generated rows written once (`generated.parquet`), then the filter stage (work/filters) and the dedup
    stage (work/dedup). The parts hold the stages' rows; `stats` adds `in`; see `merge_generated` for the rows."""
    import time

    from corpora.generated import to_table
    from corpora.manifest import aggregate_step_stats

    rows, work = src.rows, src.work
    staged = _write_if_changed(work / "generated.parquet", to_table(rows, src.schema))
    steps = build_filter_steps(filters)
    added = score_fields(steps)
    stats: dict[str, Any] = {"in": len(rows)}
    kept_files, rejected_files = [Path(staged)], []
    if steps and rows:
        item = StagedInput.from_path(Path(staged))
        staging = work / "filters"
        if not is_done(staging, item, src.filter_key):
            run_document_stage([item], staging, src.filter_key,
                               lambda layout: build_filter_steps(filters, layout=layout),
                               execution, FieldMap(), shard_rows=shard_rows,
                               logging_dir=work / "datatrove" / time.strftime("%Y%m%dT%H%M%S"))
        d = input_dir(staging, item)
        kept_files, rejected_files = parts(d, "kept"), parts(d, "rejected")
        done = read_json(d / "done.json")
        stats["filters"] = aggregate_step_stats([done["steps"]])
        if done["quarantined"]:
            raise RuntimeError(f"{staged}: {done['quarantined']} generated rows could not be read back")
    kept_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in kept_files)
    result = None
    if dedup.enabled() and kept_rows:
        result = dedup_documents([kept_files], work / "dedup", dedup, execution,
                                 unified_schema(kept_files, pa.schema([])), src.dedup_key,
                                 "text", "id", shard_rows, log=log)
        kept_files = [Path(p) for s in result["kept"] for p in s]
        rejected_files += [Path(p) for s in result["rejected"] for p in s]
        added = added + DEDUP_FIELDS
        stats["dedup"] = result["stats"]
    return DocumentParts(kept=[kept_files], rejected=[rejected_files], quarantine=[[]], added=added, stats=stats,
                         dedup=result)


def merge_generated(rows: list[dict], out: DocumentParts) -> tuple[list[dict], list[dict], dict]:
    """The generated rows as the stages left them: each processed row merged into its original (provenance columns
    kept; text, reason and the added columns from the stages), in the generated order; every row kept or rejected
    (else an error). Returns (kept, rejected, stats with `out` and `removed` per reason)."""
    by_id = {r["id"]: r for r in rows}
    step_names = {f.name for f in out.added} | {"text", "reason", "reason_detail"}

    def merged(processed: dict) -> dict:
        return {**by_id[processed["id"]], **{k: v for k, v in processed.items() if k in step_names}}

    kept = [merged(r) for r in _read([p for s in out.kept for p in s])]
    rejected = [merged(r) for r in _read([p for s in out.rejected for p in s])]
    if len(kept) + len(rejected) != len(rows):
        raise RuntimeError(f"post-processing: {len(rows)} rows in, {len(kept)} kept + {len(rejected)} rejected out")
    order = {r["id"]: i for i, r in enumerate(rows)}
    kept.sort(key=lambda r: order[r["id"]])
    rejected.sort(key=lambda r: order[r["id"]])
    stats = dict(out.stats)
    stats["out"] = len(kept)
    stats["removed"] = {}
    for r in rejected:
        stats["removed"][r["reason"]] = stats["removed"].get(r["reason"], 0) + 1
    return kept, rejected, stats
