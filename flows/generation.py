"""The one flow every generator runs in (wiring only): a generator module + this = a pipeline.

load seeds (`generators/seeds.py`; bad records quarantined) -> [demo size on the bundled sample] ->
generator.run(cfg, seeds, rounds) (rounds: the generation stage, cached under `_work/<round>/`) -> the generated rows
through the documents engine (filters, then the dedup stage; resumable, each with its own key) -> publish the
layout (data [/<partition_by>=<v>] / rejected / quarantine + the generator's `kinds`) from memory -> stats
(`generators/outcome.py`: row invariant), manifest, summary, artifact.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.generated import generated_schema, partition_rows, to_table
from corpora.layout import Layout
from corpora.plan import WORK_DIR
from corpora.readers import expand_inputs
from corpora.records import QUARANTINE_SCHEMA
from filters.documents import GeneratedRows, dedup_summary_table, merge_generated, process_documents
from filters.web_steps import build_filter_steps
from flows.config import config_hash
from flows.generation_shards import any_shard_tasks, shards_as_tasks  # noqa: F401 - shards_as_tasks: tests, bench
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run
from generators.contract import Generator, GeneratorConfig, GeneratorResult
from generators.outcome import checked_rows, run_stats, summary_markdown, summary_table
from generators.rounds import Rounds
from generators.seeds import apply_demo, read_seeds, seed_inputs
from generators.settings import preflight_settings


@task(name="load-seeds", cache_policy=NO_CACHE)
def load_seeds(inputs: list[str], cfg: GeneratorConfig) -> tuple[list, list[dict], list[dict]]:
    """(seed records, quarantine rows, per-input counts): `generators.seeds.read_seeds`."""
    return read_seeds(inputs, cfg, run_logger().warning)


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
def generator_layout(gen: Generator) -> Layout:
    """data (Hive partitions by `partition_by`) / rejected / quarantine + the generator's own `kinds`."""
    return Layout.documents(*gen.kinds, partition_by=gen.partition_by)


def run_generator(gen: Generator, config: GeneratorConfig) -> dict:
    run = Run.start(gen.name, config, kinds=generator_layout(gen))
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
                    shard_runner=shards_as_tasks if any_shard_tasks(config.generation) else None)
    result: GeneratorResult = gen.run(config, seeds, rounds)
    quarantine = quarantine + list(result.quarantine)
    rows, empty = checked_rows(gen, result, work)
    kept, removed, extra, pp_stats = postprocess(rows, gen, config, work / "postprocess")
    rejected = result.rejected + empty + removed
    # published from memory (the stages' parts are the rows' only other copy on disk)
    schema, rej_schema = generated_schema(gen.fields, extra), generated_schema(gen.fields, extra, rejected=True)
    if gen.partition_by:
        run.publish_partitions("data", {v: to_table(part, schema)
                                        for v, part in partition_rows(kept, gen.partition_by).items()}, schema)
    else:
        run.publish("data", [to_table(kept, schema)], schema)
    run.publish("rejected", [to_table(rejected, rej_schema)], rej_schema)
    run.publish("quarantine", [pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA)])
    for kind, table in result.tables.items():
        run.publish(kind, [table], table.schema)
    stats = run_stats(gen.name, {k: run.rows(k) for k in ("data", "rejected", "quarantine")},
                      len(result.rows) + len(result.rejected), per_input, len(seeds), len(quarantine),
                      len(result.quarantine), is_sample, demo, rounds.summary(), result.stats, pp_stats)
    if "dedup" in pp_stats:
        console.print(dedup_summary_table(f"{gen.name}: dedup of generated rows", pp_stats["dedup"]))
    return {"output": str(run.out_dir), "stats": run.finish(
        stats, invariant=stats["invariant"], inputs=per_input, summary=summary_table(gen.name, run.out_dir, stats),
        markdown=summary_markdown(gen.name, run.out_dir, stats))}


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
                    flow=flow_fn or generator_flow(gen), preflight=lambda cfg: preflight(gen, cfg),
                    layout=generator_layout(gen))
