"""`flows run dedup`: deduplication and decontamination of documents (one shard per input file): document Parquet
as is, and every other input the readers accept (JSONL incl. .gz/.zst, WARC, text) converted into staged Parquet.

plan inputs (convert non-Parquet) -> dedup stage (url, exact, paragraph, minhash, decontam; datatrove executor) -> publish -> report
The same stage runs inside `flows run dolma` after the filters (`dedup_documents`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from rich.table import Table

from corpora.atomic import atomic_write_json, read_json
from corpora.manifest import check_invariant
from corpora.plan import WORK_DIR
from corpora.publish import unified_schema
from corpora.readers import FieldMap, InputError, expand_inputs
from corpora.records import QUARANTINE_SCHEMA, REJECT_FIELDS
from corpora.staging import StagedInput, input_dir, parts, stage_as_parquet, unique_ids_in_files
from filters.dedup.config import DedupConfig
from filters.dedup.index import INDEX_DIR
from filters.dedup.stage import DEDUP_FIELDS, DedupStage
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


def _stage_key(cfg_hash: str, shards: list[list[Path]]) -> str:
    """Identifies one dedup run: its config and the exact bytes of every input part."""
    h = hashlib.sha256(cfg_hash.encode())
    for shard in shards:
        for p in shard:
            st = p.stat()
            h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(b"|")
    return h.hexdigest()[:16]


@task(name="dedup-documents", cache_policy=NO_CACHE)
def dedup_documents(shards: list[list[Path]], work_dir: Path, cfg: DedupConfig, exec_cfg: ExecutorConfig,
                    schema: pa.Schema, cfg_hash: str, text_field: str = "text", id_field: str = "id",
                    shard_rows: int = 100_000, quarantine_bad_rows: bool = False,
                    index_dir: Path | None = None) -> dict:
    """Run (or reuse, when inputs, config and the prebuilt indexes are unchanged) the dedup stage; returns the part
    lists and stats. `index_dir`: where this run's own index goes (`dedup.write_index`)."""
    log = run_logger()
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
                       quarantine_bad_rows, log=log.info)
    if done and done.get("key") == key and all(Path(p).exists() for kind in ("kept", "rejected", "quarantined")
                                               for s in done[kind] for p in s):
        log.info("dedup: inputs and config unchanged since the last run, reusing its output")
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


def dedup_table(title: str, stats: dict) -> Table:
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
        if p.name.endswith(".parquet"):
            out.append({"path": str(p), "sha256": item.sha256, "shard": [p], "quarantine": [],
                        "records": pq.ParquetFile(p).metadata.num_rows})
            continue
        dest = input_dir(work, item)
        done = stage_as_parquet(item, dest, fields, cfg.shard_rows)
        out.append({"path": str(p), "sha256": item.sha256, "shard": parts(dest, "kept"),
                    "quarantine": parts(dest, "quarantine"), "records": done["records"],
                    "lost_records": done["lost_records"], "lost_unknown": done["lost_unknown"]})
    return out


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
    result = dedup_documents([s["shard"] for s in staged], run.out_dir / WORK_DIR / "dedup", config.dedup,
                             config.execution, schema, cfg_hash, config.text_field, config.id_field,
                             config.shard_rows, quarantine_bad_rows=True,
                             index_dir=run.out_dir / INDEX_DIR)
    fields = list(schema) + [f for f in DEDUP_FIELDS if f.name not in schema.names]
    quarantined = [s["quarantine"] + [Path(p) for p in q] for s, q in zip(staged, result["quarantined"])]
    for kind, files, fallback in (
        ("data", result["kept"], pa.schema(fields)),
        ("rejected", result["rejected"], pa.schema(fields + REJECT_FIELDS)),
        ("quarantine", quarantined, QUARANTINE_SCHEMA),
    ):
        run.publish(kind, [Path(p) for s in files for p in s], fallback)
    inputs = [{k: s[k] for k in ("path", "sha256", "records", "lost_records", "lost_unknown") if k in s}
              for s in staged]
    lost = {"records": sum(s.get("lost_records", 0) for s in staged),
            "inputs_with_unknown_loss": [s["path"] for s in staged if s.get("lost_unknown")]}
    inv = check_invariant(sum(s["records"] for s in staged), {k: run.rows(k) for k in run.outputs})
    console.print(dedup_table(f"dedup: {run.out_dir}", result["stats"]))
    line = (f"read {inv['records_read']:,}: data {inv.get('rows_data', 0):,}, rejected {inv.get('rows_rejected', 0):,}, "
            f"quarantine {inv.get('rows_quarantine', 0):,}; invariant holds: {'yes' if inv['holds'] else 'NO'}")
    stats = run.finish({"dedup": result["stats"], "lost": lost, "duplicate_ids_renamed": renamed}, invariant=inv, inputs=inputs, cfg_hash=cfg_hash,
                       summary=line, markdown="```\n" + json.dumps({"dedup": result["stats"], "lost": lost,
                                                                      "invariant": inv}, indent=2) + "\n```")
    return {"output": str(run.out_dir), "stats": stats}


def preflight(cfg: DedupFlowConfig) -> None:
    paths = _input_files(cfg)
    _input_schema([p for p in paths if p.name.endswith(".parquet")], cfg.text_field, cfg.id_field)
    cfg.dedup.check()


PIPELINE = Pipeline(
    name="dedup",
    description="Dedup + decontamination of documents (Parquet, JSONL, WARC, text): url, exact, paragraph, MinHash, decon",
    config_model=DedupFlowConfig,
    flow=dedup_flow,
    preflight=preflight,
)


def dedup_after_filters(plan, cfg, score_fields: list[pa.Field], dirs: list[Path] | None = None) -> dict | None:
    """The dolma flow's dedup stage: the kept parts of every filtered input (in `dirs`, its staged folder by
    default) are one shard each. Returns None when every dedup stage is disabled."""
    from corpora.records import document_schema

    if not cfg.dedup.enabled():
        return None
    dirs = dirs or [input_dir(plan.staging, i) for i in plan.items]
    shards = [parts(d, "kept") for d in dirs]
    schema = unified_schema([p for s in shards for p in s], document_schema(score_fields))
    # the dedup stage owns its resume key: its own config (and, through `_stage_key`, its input parts); the filter
    # stage's hash leaves `dedup` out, so it must not stand in for it
    key = f"{plan.config_hash}:{config_hash(cfg.dedup, exclude=set())}"
    return dedup_documents(shards, plan.out_dir / WORK_DIR / "dedup", cfg.dedup, cfg.execution, schema,
                           key, "text", "id", cfg.shard_rows, index_dir=plan.out_dir / INDEX_DIR)
