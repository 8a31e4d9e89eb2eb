"""The one flow every generator runs in (wiring only): a generator module + this = a pipeline.

load seeds (corpora readers; bad records quarantined) -> [demo size on the bundled sample] -> generator.run(cfg,
seeds, rounds) (rounds: the generation stage, cached under `_work/<round>/`) -> the generated rows through the
dolma document steps (filters, then the dedup stage; resumable, each with its own key) -> publish data / rejected
/ quarantine -> stats (row invariant), manifest, summary, artifact.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from rich.table import Table

from corpora.atomic import atomic_write_json
from corpora.generated import generated_schema, partition_rows, to_table
from corpora.hashing import sha256_file
from corpora.plan import WORK_DIR
from corpora.readers import FieldMap, expand_inputs, lost_count, read_records
from corpora.records import QUARANTINE_SCHEMA, BadRecord
from corpora.shards import write_table_atomic
from corpora.staging import unique_id
from filters.documents import GeneratedRows, dedup_summary_table, merge_generated, process_documents
from filters.web_steps import build_filter_steps
from flows.config import config_hash
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run
from generators.backends import get_backend
from generators.contract import Generator, GeneratorConfig, GeneratorResult
from generators.rounds import Rounds
from generators.settings import GenerationSettings, preflight_settings
from generators.stage import GenerationReport, ResultStore, RetryPolicy, Shard, ShardStats, plan_shards, run_shard


# ---- seeds ---------------------------------------------------------------------------------------------------
def seed_inputs(gen: Generator, cfg: GeneratorConfig) -> tuple[list[str], bool]:
    """(input paths, whether they are the bundled sample)."""
    if cfg.inputs:
        return list(cfg.inputs), False
    sample = gen.sample_inputs(cfg) if gen.sample_inputs else []
    return sample, bool(sample)


@task(name="load-seeds", cache_policy=NO_CACHE)
def load_seeds(inputs: list[str], cfg: GeneratorConfig) -> tuple[list, list[dict], list[dict]]:
    """(seed records, quarantine rows, per-input counts)."""
    log = run_logger()
    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    seeds, bad, per_input = [], [], []
    taken: set[str] = set()  # seed ids given so far, across the inputs
    for path in expand_inputs(inputs) if inputs else []:
        n_read = n_bad = lost = lost_unknown = renamed = 0
        for rec in read_records(path, fields):
            n_read += 1
            if isinstance(rec, BadRecord):
                n_bad += 1
                n = lost_count(rec)  # a file-level row may stand for many records (or an unknown number)
                lost, lost_unknown = (lost, lost_unknown + 1) if n is None else (lost + n, lost_unknown)
                bad.append(rec.as_row())
                log.warning("quarantined %s %s: %s", rec.file, rec.location, rec.error)
            else:
                renamed += _unique_seed_id(rec, taken)
                seeds.append(rec)
        per_input.append({"path": str(path), "sha256": sha256_file(path), "records": n_read, "quarantined": n_bad,
                          "lost_records": lost, "lost_unknown": lost_unknown})
        if renamed:
            per_input[-1]["duplicate_ids_renamed"] = renamed
    return seeds, bad, per_input


def _unique_seed_id(rec, taken: set[str]) -> int:
    """The one id policy (`corpora.staging.unique_id`): a seed whose id an earlier seed (any input) holds becomes
    `<id>#n`, its original id in `metadata.original_id`. 1 when renamed."""
    new = unique_id(rec.id, taken)
    if new == rec.id:
        return 0
    rec.metadata = {"original_id": rec.id, **(rec.metadata or {})}  # a reader-renamed seed keeps its first
    rec.id = new
    return 1


def apply_demo(cfg: GeneratorConfig, demo: dict[str, Any]) -> tuple[GeneratorConfig, dict[str, Any]]:
    """The bundled sample's demo size: each dotted key of `demo` the user did not set takes its demo value."""
    cfg = cfg.model_copy(deep=True)
    applied = {}
    for key, value in demo.items():
        *parents, leaf = key.split(".")
        obj = cfg
        for part in parents:
            obj = getattr(obj, part)
        if leaf not in obj.model_fields_set:  # a parent the user did not set has no user-set children either
            setattr(obj, leaf, value)
            applied[key] = value
    return cfg, applied


# ---- generation as Prefect tasks (optional scale-out through the flow's task runner) ---------------------------
@task(name="plan-shards", cache_policy=NO_CACHE)
def plan_round_shards(requests: list, bcfg, store: Path, shard_size: int) -> tuple[list[Shard], int]:
    shards, _, cached = plan_shards(requests, get_backend(bcfg).identity(), ResultStore(store), shard_size)
    run_logger().info("%d requests cached, %d shards to generate", cached, len(shards))
    return shards, cached


@task(name="generate-shard", cache_policy=NO_CACHE)
def generate_shard_task(shard: Shard, bcfg, store: Path, max_retries: int, backoff_s: float) -> ShardStats:
    return run_shard(shard, bcfg, store, RetryPolicy(max_retries, backoff_s))


def _shard_placement(bcfg):
    """Under `prefect-ray`'s RayTaskRunner, each shard task of a vLLM backend asks Ray for its engine's GPUs
    (tensor_parallel_size), so Ray places one engine per GPU group; otherwise nothing changes."""
    from contextlib import nullcontext

    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None)
    if type(runner).__name__ != "RayTaskRunner" or getattr(bcfg, "kind", None) != "vllm":
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_gpus=bcfg.tensor_parallel_size)


def shards_as_tasks(requests: Sequence, bcfg, store: Path, s: GenerationSettings) -> GenerationReport:
    """One Prefect task per shard, run by the flow's task runner (threads here; `prefect-ray`'s RayTaskRunner on a
    cluster, where each worker process keeps one engine). Every shard writes its own part into the round's store,
    so the rows are those of the stage's own loop (same cache keys: a rerun either way reuses them)."""
    t0 = time.perf_counter()
    shards, cached = plan_round_shards(list(requests), bcfg, store, s.shard_size)
    report = GenerationReport(requests=len(requests), cached=cached)
    with _shard_placement(bcfg):
        futures = generate_shard_task.map(shards, unmapped(bcfg), unmapped(store), unmapped(s.max_retries),
                                          unmapped(s.backoff_s))
    for stats in futures.result():
        report.add(stats)
    report.wall_s = time.perf_counter() - t0
    return report


# ---- post-processing: the documents engine ---------------------------------------------------------------------
@task(name="postprocess-generated", cache_policy=NO_CACHE)
def postprocess(rows: list[dict], gen: Generator, cfg: GeneratorConfig, work: Path
                ) -> tuple[list[dict], list[dict], list[pa.Field], dict]:
    """Generated rows through the documents engine: the dolma filter steps (`filters`) and the dedup stage
    (`dedup`), each resumable with its own key. Returns (kept rows, rejected rows with reason, the columns the steps
    added, stats)."""
    source = GeneratedRows(rows, generated_schema(gen.fields), work, filter_key=config_hash(cfg.filters, exclude=set()),
                           dedup_key=config_hash(cfg.dedup, exclude=set()))
    out = process_documents(source, cfg.filters, cfg.dedup, cfg.execution, cfg.shard_rows, log=run_logger().info)
    kept, rejected, stats = merge_generated(rows, out)
    return kept, rejected, out.added, stats


# ---- the flow --------------------------------------------------------------------------------------------------
def run_generator(gen: Generator, config: GeneratorConfig) -> dict:
    run = Run.start(gen.name, config, kinds=("data", "rejected", "quarantine") + tuple(gen.kinds))
    log = run_logger()
    inputs, is_sample = seed_inputs(gen, config)
    demo = {}
    if is_sample and gen.demo:
        config, demo = apply_demo(config, gen.demo)
        if demo:
            log.info("bundled sample: demo size %s (give --input, or set these keys, for the full size)", demo)
    if gen.needs_inputs and not inputs:
        raise ValueError(f"{gen.name}: give seed documents with --input")
    seeds, quarantine, per_input = load_seeds(inputs, config)
    work = run.out_dir / WORK_DIR
    rounds = Rounds(work, config.generation, source=gen.name, log=log.info,
                    shard_runner=shards_as_tasks if _any_shard_tasks(config.generation) else None)
    result: GeneratorResult = gen.run(config, seeds, rounds)
    quarantine = quarantine + list(result.quarantine)
    for name, artifact in result.artifacts.items():
        if isinstance(artifact, pa.Table):
            write_table_atomic(work / f"{name}.parquet", artifact)
        else:
            atomic_write_json(work / f"{name}.json", artifact)
    unknown = sorted(set(result.tables) - set(gen.kinds))
    if unknown:
        raise ValueError(f"{gen.name}: output kinds {unknown} are not declared in its Generator.kinds")
    empty = [r for r in result.rows if not (r.get("text") or "").strip()]
    rows = [r for r in result.rows if (r.get("text") or "").strip()]
    kept, removed, extra, pp_stats = postprocess(rows, gen, config, work / "postprocess")
    rejected = result.rejected + [{**r, "reason": "empty"} for r in empty] + removed
    data_schema = generated_schema(gen.fields, extra)
    rej_schema = generated_schema(gen.fields, extra, rejected=True)
    staged = work / "publish"
    data_files = stage_data(kept, data_schema, staged, gen.partition_by)
    write_table_atomic(staged / "rejected.parquet", to_table(rejected, rej_schema))
    write_table_atomic(staged / "quarantine.parquet", pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA))
    publish_data(run, data_files, data_schema, gen.partition_by)
    run.publish("rejected", [staged / "rejected.parquet"], rej_schema)
    run.publish("quarantine", [staged / "quarantine.parquet"], QUARANTINE_SCHEMA)
    for kind, table in result.tables.items():
        write_table_atomic(staged / f"{kind}.parquet", table)
        run.publish(kind, [staged / f"{kind}.parquet"], table.schema)
    produced = len(result.rows) + len(result.rejected)
    seeds_read = sum(i["records"] for i in per_input)
    invariant = {"generated_rows": produced, "rows_data": data_rows(run), "rows_rejected": run.rows("rejected"),
                 "seed_records_read": seeds_read, "seeds": sum(i["records"] - i["quarantined"] for i in per_input) - len(result.quarantine),
                 "rows_quarantine": run.rows("quarantine")}
    invariant["holds"] = (invariant["rows_data"] + invariant["rows_rejected"] == produced
                          and invariant["seeds"] + invariant["rows_quarantine"] == seeds_read)
    stats = {"invariant": invariant, "seeds": {"read": seeds_read, "quarantined": len(quarantine), "used": len(seeds), "inputs": per_input,
                       "bundled_sample": is_sample, "demo": demo},
             "generation": rounds.summary(), gen.name: result.stats, "postprocess": pp_stats,
             # seed records under file-level quarantine rows (as dolma's `lost`): known counts, inputs with unknown
             "lost": {"records": sum(i["lost_records"] for i in per_input),
                      "inputs_with_unknown_loss": [i["path"] for i in per_input if i["lost_unknown"]]}}
    if "dedup" in pp_stats:
        console.print(dedup_summary_table(f"{gen.name}: dedup of generated rows", pp_stats["dedup"]))
    return {"output": str(run.out_dir), "stats": run.finish(
        stats, invariant=invariant, inputs=per_input, summary=summary_table(gen.name, run, stats),
        markdown=summary_markdown(gen.name, run, stats))}


def stage_data(kept: list[dict], schema: pa.Schema, staged: Path, partition_by: str | None) -> dict[str, Path]:
    """Staged data files: {"": data.parquet}, or one per partition value ({"lang=de": ...}) with `partition_by`."""
    if not partition_by:
        return {"": Path(write_table_atomic(staged / "data.parquet", to_table(kept, schema)).path)}
    return {f"{partition_by}={v}": Path(write_table_atomic(staged / "data" / f"{partition_by}={v}.parquet",
                                                           to_table(rows, schema)).path)
            for v, rows in partition_rows(kept, partition_by).items()}


def publish_data(run: Run, files: dict[str, Path], schema: pa.Schema, partition_by: str | None) -> None:
    """data/ as one folder, or as Hive partitions `data/<col>=<value>/` (each swapped in atomically; partitions
    of an earlier run that this run does not have, and loose part files, are removed after)."""
    if not partition_by:
        run.publish("data", [files[""]], schema)
        return
    for name, f in files.items():
        run.publish(name, [f], schema, under=Path("data"), name=f"data/{name}")
    root = run.out_dir / "data"
    root.mkdir(parents=True, exist_ok=True)
    for p in root.iterdir():
        if p.name not in files and (p.name.startswith(f"{partition_by}=") or p.name.startswith("part-")):
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def data_rows(run: Run) -> int:
    return sum(s["rows"] for k, shards in run.outputs.items() if k == "data" or k.startswith("data/") for s in shards)


def _any_shard_tasks(s: GenerationSettings) -> bool:
    return s.shard_tasks or any(r.shard_tasks for r in s.rounds.values())


def summary_table(name: str, run: Run, stats: dict) -> Table:
    t = Table(title=f"{name}: {run.out_dir}")
    for col in ("round", "model", "requests", "cached", "generated", "failed", "tok/s", "seconds"):
        t.add_column(col, justify="left" if col in ("round", "model") else "right")
    for rname, r in stats["generation"]["rounds"].items():
        t.add_row(rname, f"{r['backend']} {Path(r['model']).name}", f"{r['requests']:,}", f"{r['cached']:,}",
                  f"{r['generated']:,}", f"{r['failed']:,}", f"{r['tokens_per_s']:,.1f}", f"{r['wall_s']:.1f}")
    pp, inv = stats["postprocess"], stats["invariant"]
    removed = ", ".join(f"{k} {v}" for k, v in pp.get("removed", {}).items()) or "none"
    t.caption = (f"{inv['rows_data']:,} rows kept, {inv['rows_rejected']:,} rejected (post-processing removed: "
                 f"{removed}); seed records: {stats['seeds']['used']:,} read, {stats['seeds']['quarantined']:,} "
                 f"quarantined; data + rejected == generated: {'yes' if inv['holds'] else 'NO'}")
    return t


def summary_markdown(name: str, run: Run, stats: dict) -> str:
    lines = [f"# {name}: {run.out_dir}", "", "| round | model | requests | cached | generated | failed | tok/s |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for rname, r in stats["generation"]["rounds"].items():
        lines.append(f"| {rname} | {r['backend']} {Path(r['model']).name} | {r['requests']} | {r['cached']} | "
                     f"{r['generated']} | {r['failed']} | {r['tokens_per_s']} |")
    inv = stats["invariant"]
    lines += ["", f"Kept {inv['rows_data']}, rejected {inv['rows_rejected']} of {inv['generated_rows']} generated "
                  f"rows; removed by post-processing: {stats['postprocess'].get('removed', {})}; invariant holds: "
                  f"{inv['holds']}"]
    return "\n".join(lines)


def preflight(gen: Generator, cfg: GeneratorConfig) -> None:
    if cfg.inputs:
        expand_inputs(cfg.inputs)
    if gen.preflight:
        gen.preflight(cfg)
    build_filter_steps(cfg.filters)  # resolves lid.176 and the other model paths
    cfg.dedup.check()
    preflight_settings(cfg.generation, set(gen.rounds))


def generator_flow(gen: Generator):
    """The Prefect flow of one generator pipeline."""

    @flow(name=gen.name, log_prints=True)
    def generator_run(config: GeneratorConfig) -> dict:
        return run_generator(gen, config)

    return generator_run


def generator_pipeline(gen: Generator, flow_fn=None) -> Pipeline:
    return Pipeline(name=gen.name, description=gen.description, config_model=gen.config,
                    flow=flow_fn or generator_flow(gen), preflight=lambda cfg: preflight(gen, cfg))
