"""`flows run dolma`: Dolma-style curation of web documents.

plan inputs (resume) -> filter stage (datatrove executor, one task per input) -> dedup stage (url, exact,
paragraph, minhash, decontam; `flows/dedup.py`) -> publish shards -> report
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.manifest import aggregate_step_stats, check_invariant
from corpora.plan import RunPlan, plan_run
from corpora.readers import FieldMap
from corpora.records import CORE_FIELDS, QUARANTINE_SCHEMA, document_schema
from corpora.atomic import read_json
from corpora.sample import sample_corpus_path
from corpora.plan import WORK_DIR
from corpora.staging import input_dir, parts, unique_ids_across_inputs
from filters.dedup.config import DedupConfig
from filters.dedup.stage import DEDUP_FIELDS
from filters.document_stage import run_document_stage
from filters.execution import ExecutorConfig
from filters.web_steps import WebFilters, build_filter_steps, score_fields
from flows.config import RunConfig, config_hash
from flows.dedup import dedup_after_filters, dedup_table
from flows.registry import Pipeline
from flows.reporting import console, run_logger, stage_progress, summary_markdown, summary_table
from flows.scaffold import Run


class DolmaConfig(RunConfig):
    text_field: str = "text"
    id_field: str = "id"
    filters: WebFilters = WebFilters()
    dedup: DedupConfig = DedupConfig()
    execution: ExecutorConfig = ExecutorConfig()
    # Dolma's taggers: decide every document with every enabled filter on its original text and write the
    # decisions as `attributes/` (id + scores + <filter>__keep/__reason/__spans); `data/` = every document as read,
    # nothing rejected, no dedup. Decide later with `flows run mix` rules over the attributes.
    attributes_only: bool = False


@task(name="plan-inputs", cache_policy=NO_CACHE, retries=1)
def plan_inputs(cfg: DolmaConfig, out_dir: Path) -> RunPlan:
    inputs = cfg.inputs or [str(sample_corpus_path())]
    # the filter stage's resume key: dedup settings don't change what the filters did (dedup checks its own)
    plan = plan_run(inputs, out_dir, config_hash(cfg, exclude={"inputs", "output", "overwrite", "dedup"}),
                    cfg.overwrite)
    run_logger().info("%d input file(s), %d already finished, %d to process",
                      len(plan.items), len(plan.finished), len(plan.pending))
    return plan


@task(name="filter-documents", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def filter_documents(plan: RunPlan, cfg: DolmaConfig) -> None:
    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    with stage_progress("filter", total=len(plan.items)) as bar:
        bar.update(len(plan.finished), 0)
        run_document_stage(
            plan.pending, plan.staging, plan.config_hash,
            lambda layout: build_filter_steps(cfg.filters, layout=layout, tag_only=cfg.attributes_only),
            cfg.execution, fields,
            shard_rows=cfg.shard_rows,
            on_progress=lambda n, docs: bar.update(len(plan.finished) + n, docs),
        )


@task(name="unique-ids", cache_policy=NO_CACHE)
def unique_ids(plan: RunPlan) -> dict:
    """Ids unique across inputs (the reader made them unique within each): the staged folder to use per input
    from here on, and how many rows were renamed."""
    dirs, renamed = unique_ids_across_inputs([input_dir(plan.staging, i) for i in plan.items],
                                             plan.out_dir / WORK_DIR / "unique_ids")
    if renamed:
        run_logger().info("%d row(s) renamed: their id was used by an earlier input", renamed)
    return {"dirs": dirs, "renamed": renamed}


@task(name="publish-shards", cache_policy=NO_CACHE)
def publish_shards(plan: RunPlan, cfg: DolmaConfig, run: Run, ids: dict, dedup: dict | None = None) -> None:
    dirs = ids["dirs"]
    fields = filter_fields(cfg) + (DEDUP_FIELDS if dedup else [])
    if cfg.attributes_only:
        kept = [p for d in dirs for p in parts(d, "kept")]
        run.publish("attributes", kept, pa.schema([CORE_FIELDS[0], *fields]),
                    columns=["id", *[f.name for f in fields]])
        fields = []  # data/: the documents as read
    elif (run.out_dir / "attributes").exists():  # an earlier attributes_only run's, not this run's
        shutil.rmtree(run.out_dir / "attributes")
    for kind, stage_kind, schema in (
        ("data", "kept", document_schema(fields)),
        ("rejected", "rejected", document_schema(fields, rejected=True)),
        ("quarantine", "quarantine", QUARANTINE_SCHEMA),
    ):
        files = [p for d, item in zip(dirs, plan.items)
                 for p in parts(input_dir(plan.staging, item) if kind == "quarantine" else d, stage_kind)]
        if dedup and kind == "data":  # the dedup stage's kept rows replace the filter stage's
            files = [Path(p) for shard in dedup["kept"] for p in shard]
        elif dedup and kind == "rejected":
            files += [Path(p) for shard in dedup["rejected"] for p in shard]
        with stage_progress(f"publish {kind}", total=1, unit="folders") as bar:
            shards = run.publish(kind, files, schema, columns=[f.name for f in CORE_FIELDS] if kind == "data" and cfg.attributes_only
                                 else None)
            bar.update(1, sum(s["rows"] for s in shards))


def filter_fields(cfg: DolmaConfig) -> list:
    """The columns the filter stage adds (scores; in attributes mode also the decisions)."""
    return score_fields(build_filter_steps(cfg.filters, tag_only=cfg.attributes_only))


def lost_records(dones: list[dict]) -> dict:
    """Records under file-level quarantine rows (a cut stream, a Parquet without the text column): one quarantine
    row may stand for many records, so the row invariant alone cannot show them. Known counts are summed; a cut
    stream's tail is unknown, and the inputs it happened in are named."""
    return {"records": sum(d.get("lost_records", 0) for d in dones),
            "inputs_with_unknown_loss": [d["path"] for d in dones if d.get("lost_unknown")]}


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(plan: RunPlan, run: Run, ids: dict, dedup: dict | None = None) -> dict:
    dones = [read_json(input_dir(plan.staging, i) / "done.json") for i in plan.items]
    stats = {"filters": aggregate_step_stats([d["steps"] for d in dones]), "lost": lost_records(dones),
             # same id, later record: renamed `<id>#n` (within an input by the reader, across inputs after it)
             "duplicate_ids_renamed": sum(d.get("duplicate_ids_renamed", 0) for d in dones) + ids["renamed"]}
    if dedup:
        stats["dedup"] = dedup["stats"]
        console.print(dedup_table("dolma: dedup", dedup["stats"]))
    inputs = [{"path": d["path"], "sha256": d["sha256"], "records": d["records"], "kept": d["kept"],
               "rejected": d["rejected"], "quarantined": d["quarantined"], "lost_records": d.get("lost_records", 0),
               "lost_unknown": d.get("lost_unknown", 0)} for d in dones]
    invariant = check_invariant(sum(d["records"] for d in dones), {k: run.rows(k) for k in run.outputs})
    shown = {**stats, "invariant": invariant}
    return run.finish(stats, invariant=invariant, inputs=inputs, cfg_hash=plan.config_hash,
                      summary=summary_table(f"dolma: {plan.out_dir}", shown),
                      markdown=summary_markdown("dolma run summary", shown))


@flow(name="dolma", log_prints=True)
def dolma_flow(config: DolmaConfig) -> dict:
    run = Run.start("dolma", config, clear=False)  # plan_run clears on overwrite (and knows the staging)
    plan = plan_inputs(config, run.out_dir)
    filter_documents(plan, config)
    ids = unique_ids(plan)
    dedup = None if config.attributes_only else dedup_after_filters(plan, config, filter_fields(config), ids["dirs"])
    publish_shards(plan, config, run, ids, dedup)
    stats = write_report(plan, run, ids, dedup)
    return {"output": str(run.out_dir), "stats": stats}


def preflight(cfg: DolmaConfig) -> None:
    from corpora.readers import expand_inputs

    if cfg.inputs:
        expand_inputs(cfg.inputs)
    build_filter_steps(cfg.filters)  # resolves the lid.176 / quality / toxicity paths
    cfg.dedup.check()  # Bloom sizing vs max_memory, benchmark files


PIPELINE = Pipeline(
    name="dolma",
    description="Dolma-style curation: language ID, Gopher/C4/FineWeb rules, PII, toxicity, quality -> Parquet",
    config_model=DolmaConfig,
    flow=dolma_flow,
    preflight=preflight,
)
