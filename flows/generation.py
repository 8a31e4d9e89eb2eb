"""The one flow every generator runs in (wiring only): a generator module + this = a pipeline.

load seeds (`generators/seeds.py`, or the generator's `read_seeds`; bad records quarantined) -> [demo size on the
bundled sample] -> generator.run(cfg, seeds, rounds) (rounds: the generation stage, cached under `_work/<round>/`)
-> the generated rows through the documents engine (filters, then the dedup stage; resumable, each with its own key;
skipped for `postprocess=False`: the generator's own data / rejected tables) -> publish the layout (data
[/<partition_by>=<v>] / rejected / quarantine + the generator's `kinds`, its `files`) from memory -> stats
(`generators/outcome.py`: row invariant; or the generator's `finish`), manifest, summary, artifact.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.atomic import atomic_write_json
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
from generators.contract import Generator, GeneratorConfig, GeneratorResult, Published
from generators.outcome import checked_rows, run_stats, summary_markdown, summary_table
from generators.rounds import Rounds
from generators.seeds import apply_demo, read_seeds, seed_inputs
from generators.settings import preflight_settings


@task(name="load-seeds", cache_policy=NO_CACHE)
def load_seeds(inputs: list[str], cfg: GeneratorConfig, gen: Generator | None = None
               ) -> tuple[list, list[dict], list[dict]]:
    """(seed records, quarantine rows, per-input counts): the generator's `read_seeds`, else
    `generators.seeds.read_seeds`."""
    return (gen.read_seeds if gen is not None and gen.read_seeds else read_seeds)(inputs, cfg, run_logger().warning)


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
    inputs, is_sample = seed_inputs(gen, config)
    demo = {}
    if is_sample and gen.demo and gen.demo_in_card:  # before the run starts: its manifest and card show it
        config, demo = apply_demo(config, gen.demo)
    run = Run.start(gen.name, config, kinds=generator_layout(gen))
    log = run_logger()
    if is_sample and gen.demo and not gen.demo_in_card:
        config, demo = apply_demo(config, gen.demo)
    if demo:
        log.info("bundled sample: demo size %s (give --input, or set these keys, for the full size)", demo)
    if gen.needs_inputs and not inputs:
        raise ValueError(f"{gen.name}: give seed documents with --input")
    seeds, quarantine, per_input = load_seeds(inputs, config, gen)
    work = run.out_dir / WORK_DIR
    rounds = Rounds(work, config.generation, source=gen.name, log=log.info,
                    shard_runner=shards_as_tasks if any_shard_tasks(config.generation) else None)
    result: GeneratorResult = gen.run(config, seeds, rounds)
    quarantine = quarantine + list(result.quarantine)
    for name, content in result.files.items():
        atomic_write_json(run.out_dir / name, content)
    if not gen.postprocess:
        return _publish_as_made(gen, config, run, rounds, result, quarantine, per_input, demo)
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
    if gen.finish is not None:
        return _finish_own(gen, config, run, rounds, result, per_input, demo)
    stats = run_stats(gen.name, {k: run.rows(k) for k in ("data", "rejected", "quarantine")},
                      len(result.rows) + len(result.rejected), per_input, len(seeds), len(quarantine),
                      len(result.quarantine), is_sample, demo, rounds.summary(), result.stats, pp_stats)
    if "dedup" in pp_stats:
        console.print(dedup_summary_table(f"{gen.name}: dedup of generated rows", pp_stats["dedup"]))
    return {"output": str(run.out_dir), "stats": run.finish(
        stats, invariant=stats["invariant"], inputs=per_input, summary=summary_table(gen.name, run.out_dir, stats),
        markdown=summary_markdown(gen.name, run.out_dir, stats))}


def _publish_as_made(gen: Generator, config, run: Run, rounds: Rounds, result: GeneratorResult,
                     quarantine: list[dict], per_input: list[dict], demo: dict) -> dict:
    """`postprocess=False`: the generator's own `data` / `rejected` tables published as they are."""
    missing = sorted({"data", "rejected"} - set(result.tables))
    if missing or gen.finish is None:
        raise ValueError(f"{gen.name}: postprocess=False needs its own `finish` (its row accounting) and tables "
                         f"data and rejected in its GeneratorResult.tables (missing: {missing or 'none'})")
    own = {k: t for k, t in result.tables.items() if k not in ("data", "rejected")}
    checked_rows(gen, replace(result, tables=own), run.out_dir / WORK_DIR)  # declared kinds; artifacts written
    for kind in ("data", "rejected"):
        run.publish(kind, [result.tables[kind]], result.tables[kind].schema)
    run.publish("quarantine", [pa.Table.from_pylist(quarantine, schema=QUARANTINE_SCHEMA)])
    for kind, table in own.items():
        run.publish(kind, [table], table.schema)
    return _finish_own(gen, config, run, rounds, result, per_input, demo)


def _finish_own(gen: Generator, config, run: Run, rounds: Rounds, result: GeneratorResult, per_input: list[dict],
                demo: dict) -> dict:
    """The generator's own last step and accounting (`Generator.finish`), then the run's finish."""
    stats, invariant, summary, markdown = gen.finish(config, result, Published(run, rounds, per_input, demo))
    return {"output": str(run.out_dir), "stats": run.finish(stats, invariant=invariant, inputs=per_input,
                                                            summary=summary, markdown=markdown)}


def preflight(gen: Generator, cfg: GeneratorConfig) -> None:
    if cfg.inputs:
        expand_inputs(cfg.inputs)
    if gen.preflight:
        gen.preflight(cfg)
    if gen.postprocess:
        build_filter_steps(cfg.filters)  # resolves lid.176 and the other model paths
        cfg.dedup.check()
    # a config that runs no round loads no backend (an override naming no round is still an error)
    preflight_settings(cfg.generation, set(gen.rounds), backends=gen.uses_rounds is None or gen.uses_rounds(cfg))


def generator_flow(gen: Generator):
    """The Prefect flow of one generator pipeline."""

    def generator_run(config: GeneratorConfig) -> dict:
        return run_generator(gen, config)

    # Prefect validates the parameter against its annotation: the generator's own config model (unlearning-whp's
    # is not a GeneratorConfig)
    generator_run.__annotations__ = {"config": gen.config, "return": dict}
    return flow(name=gen.name, log_prints=True)(generator_run)


def generator_pipeline(gen: Generator, flow_fn=None) -> Pipeline:
    return Pipeline(name=gen.name, description=gen.description, config_model=gen.config,
                    flow=flow_fn or generator_flow(gen), preflight=lambda cfg: preflight(gen, cfg),
                    layout=generator_layout(gen))
