"""`flows run dedup`: deduplication and decontamination of documents (one shard per input file): document Parquet
as is, and every other input the readers accept (JSONL incl. .gz/.zst, WARC, text) converted into staged Parquet.

plan inputs (convert non-Parquet) -> dedup stage (url, exact, paragraph, minhash, decontam; datatrove executor) -> publish -> report
The stage is the documents engine's (`filters/documents.py`), as in `flows run dolma` after the filters.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.manifest import check_invariant
from corpora.plan import WORK_DIR
from corpora.readers import UPSTREAM_KEYS, FieldMap, InputError, expand_inputs
from corpora.records import QUARANTINE_SCHEMA, REJECT_FIELDS
from corpora.staging import StagedInput, input_dir, parts, stage_as_parquet, unique_ids_in_files
from filters.dedup.config import DedupConfig
from filters.dedup.index import INDEX_DIR
from filters.dedup.stage import DEDUP_FIELDS
from filters.documents import DocumentParts, StagedShards, dedup_summary_table, process_documents
from filters.execution import ExecutorConfig
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run


class DedupFlowConfig(RunConfig):
    text_field: str = "text"
    id_field: str = "id"
    dedup: DedupConfig = DedupConfig()
    execution: ExecutorConfig = ExecutorConfig()


def _input_files(cfg: DedupFlowConfig) -> list[Path]:
    """Every input the readers accept; a Parquet input must have the id and text columns."""
    if not cfg.inputs:
        raise InputError("dedup: give the document files or folders to deduplicate (--input)")
    paths = expand_inputs(cfg.inputs)
    for p in paths:
        if p.name.endswith(".parquet"):
            names = pq.read_schema(p).names
            for name in (cfg.id_field, cfg.text_field):
                if name not in names:
                    raise InputError(f"{p}: no '{name}' column (set id_field / text_field)")
    return paths


def _read_as_is(p: Path) -> bool:
    """A Parquet input is read as is, unless it carries a run's `reason` (our `rejected/` read back): then the readers
    stage it and keep the reason as `upstream_reason`, so its rows are examined again (corpora/readers.py)."""
    return p.name.endswith(".parquet") and not set(UPSTREAM_KEYS) & set(pq.read_schema(p).names)


def _input_schema(files: list[Path], text_field: str, id_field: str) -> pa.Schema:
    """The columns of every input part together; id and text are strings (a row whose text is not one is
    quarantined by the reader), a column whose types cannot be merged names the file."""
    merged, first = pa.schema([]), None
    for p in files:
        s = pq.read_schema(p)
        s = pa.schema([pa.field(f.name, pa.string()) if f.name in (id_field, text_field) else f for f in s])
        try:
            merged = pa.unify_schemas([merged, s], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(f"{p}: its columns do not fit those of {first or 'the inputs before it'} ({e})") from e
        first = first or p
    return pa.schema([f.with_nullable(True) for f in merged])  # a column one input lacks is null in its rows


def _stage_inputs(cfg: DedupFlowConfig, paths: list[Path], work: Path) -> list[dict]:
    """Per input: its shard (Parquet parts), records read, and quarantine parts. A Parquet input is read as is;
    any other input is converted by the readers into staged parts under `work/` (bad records quarantined)."""
    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    out = []
    for p in paths:
        item = StagedInput.from_path(p)
        if _read_as_is(p):
            out.append({"path": str(p), "sha256": item.sha256, "shard": [p], "quarantine": [],
                        "records": pq.ParquetFile(p).metadata.num_rows})
            continue
        dest = input_dir(work, item)
        done = stage_as_parquet(item, dest, fields, cfg.shard_rows)
        out.append({"path": str(p), "sha256": item.sha256, "shard": parts(dest, "kept"),
                    "quarantine": parts(dest, "quarantine"), "records": done["records"],
                    "lost_records": done["lost_records"], "lost_unknown": done["lost_unknown"]})
    return out


@task(name="dedup-documents", cache_policy=NO_CACHE)
def documents(source: StagedShards, cfg: DedupFlowConfig) -> DocumentParts:
    """The documents engine, dedup stage only (resumable: inputs, config and prebuilt indexes unchanged)."""
    return process_documents(source, None, cfg.dedup, cfg.execution, cfg.shard_rows, log=run_logger().info)


@flow(name="dedup", log_prints=True)
def dedup_flow(config: DedupFlowConfig) -> dict:
    run = Run.start("dedup", config)
    paths = _input_files(config)
    staged = _stage_inputs(config, paths, run.out_dir / WORK_DIR / "inputs")
    # the one id policy (corpora.staging): a later row with an id already seen becomes `<id>#n`
    shards, renamed = unique_ids_in_files([s["shard"] for s in staged], run.out_dir / WORK_DIR / "ids",
                                          config.id_field)
    for s, files in zip(staged, shards):
        s["shard"] = files
    schema = _input_schema([p for s in staged for p in s["shard"]], config.text_field, config.id_field)
    cfg_hash = config_hash(config)
    source = StagedShards([s["shard"] for s in staged], schema, run.out_dir / WORK_DIR / "dedup", cfg_hash,
                          config.text_field, config.id_field, index_dir=run.out_dir / INDEX_DIR)
    out = documents(source, config)
    result = out.dedup
    fields = list(schema) + [f for f in DEDUP_FIELDS if f.name not in schema.names]
    quarantined = [s["quarantine"] + q for s, q in zip(staged, out.quarantine)]
    for kind, files, fallback in (
        ("data", out.kept, pa.schema(fields)),
        ("rejected", out.rejected, pa.schema(fields + REJECT_FIELDS)),
        ("quarantine", quarantined, QUARANTINE_SCHEMA),
    ):
        run.publish(kind, [p for s in files for p in s], fallback)
    inputs = [{k: s[k] for k in ("path", "sha256", "records", "lost_records", "lost_unknown") if k in s}
              for s in staged]
    lost = {"records": sum(s.get("lost_records", 0) for s in staged),
            "inputs_with_unknown_loss": [s["path"] for s in staged if s.get("lost_unknown")]}
    inv = check_invariant(sum(s["records"] for s in staged), {k: run.rows(k) for k in run.outputs})
    console.print(dedup_summary_table(f"dedup: {run.out_dir}", result["stats"]))
    line = (f"read {inv['records_read']:,}: data {inv.get('rows_data', 0):,}, rejected {inv.get('rows_rejected', 0):,}, "
            f"quarantine {inv.get('rows_quarantine', 0):,}; invariant holds: {'yes' if inv['holds'] else 'NO'}")
    stats = run.finish({"dedup": result["stats"], "lost": lost, "duplicate_ids_renamed": renamed}, invariant=inv, inputs=inputs, cfg_hash=cfg_hash,
                       summary=line, markdown="```\n" + json.dumps({"dedup": result["stats"], "lost": lost,
                                                                      "invariant": inv}, indent=2) + "\n```")
    return {"output": str(run.out_dir), "stats": stats}


def preflight(cfg: DedupFlowConfig) -> None:
    paths = _input_files(cfg)
    _input_schema([p for p in paths if _read_as_is(p)], cfg.text_field, cfg.id_field)
    cfg.dedup.check()


PIPELINE = Pipeline(
    name="dedup",
    description="Dedup + decontamination of documents (Parquet, JSONL, WARC, text): url, exact, paragraph, MinHash, decon",
    config_model=DedupFlowConfig,
    flow=dedup_flow,
    preflight=preflight,
)

