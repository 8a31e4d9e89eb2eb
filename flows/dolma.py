"""`flows run dolma`: Dolma-style curation of web documents.

plan inputs (resume) -> filter stage (datatrove executor, one task per input) -> dedup stage (url, exact,
paragraph, minhash, decontam): the documents engine (`filters/documents.py`) -> publish shards -> report
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.layout import Kind, Layout
from corpora.manifest import check_invariant
from corpora.plan import RunPlan, plan_run
from corpora.readers import FieldMap
from corpora.records import CORE_FIELDS, QUARANTINE_SCHEMA, document_schema
from corpora.sample import sample_corpus_path
from filters.dedup.config import DedupConfig
from filters.documents import DocumentParts, ReaderInputs, dedup_summary_table, process_documents
from filters.execution import ExecutorConfig
from filters.web_steps import WebFilters, build_filter_steps
from flows.config import RunConfig, config_hash
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


@task(name="documents", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def documents(plan: RunPlan, cfg: DolmaConfig) -> DocumentParts:
    """The documents engine: the filter stage (one datatrove task per pending input), ids unique across inputs,
    the dedup stage (its own resume key: its config; the filter stage's hash leaves `dedup` out)."""
    source = ReaderInputs(plan, FieldMap(text_field=cfg.text_field, id_field=cfg.id_field),
                          dedup_key=f"{plan.config_hash}:{config_hash(cfg.dedup, exclude=set())}")
    with stage_progress("filter", total=len(plan.items)) as bar:
        bar.update(len(plan.finished), 0)
        return process_documents(source, cfg.filters, None if cfg.attributes_only else cfg.dedup, cfg.execution,
                                 cfg.shard_rows, tag_only=cfg.attributes_only, log=run_logger().info,
                                 on_progress=lambda n, docs: bar.update(len(plan.finished) + n, docs))


def layout(cfg: DolmaConfig) -> Layout:
    """data / rejected / quarantine; with `attributes_only` also attributes/ (id + the steps' columns), and data/
    holds the documents as read (both: only their schema's columns of the staged parts). A run without it retires
    an earlier attributes_only run's attributes/."""
    if not cfg.attributes_only:
        return Layout.documents(retired=("attributes",))
    return Layout((Kind("data", project=True), Kind("rejected"), Kind("quarantine", QUARANTINE_SCHEMA),
                   Kind("attributes", project=True)))


@task(name="publish-shards", cache_policy=NO_CACHE)
def publish_shards(cfg: DolmaConfig, run: Run, out: DocumentParts) -> None:
    fields = out.added
    if cfg.attributes_only:
        run.publish("attributes", [p for s in out.kept for p in s], pa.schema([CORE_FIELDS[0], *fields]))
        fields = []  # data/: the documents as read
    for kind, files, schema in (
        ("data", out.kept, document_schema(fields)),
        ("rejected", out.rejected, document_schema(fields, rejected=True)),
        ("quarantine", out.quarantine, None),
    ):
        with stage_progress(f"publish {kind}", total=1, unit="folders") as bar:
            shards = run.publish(kind, [p for s in files for p in s], schema)
            bar.update(1, sum(s["rows"] for s in shards))


def lost_records(dones: list[dict]) -> dict:
    """Records under file-level quarantine rows (a cut stream, a Parquet without the text column): one quarantine
    row may stand for many records, so the row invariant alone cannot show them. Known counts are summed; a cut
    stream's tail is unknown, and the inputs it happened in are named."""
    return {"records": sum(d.get("lost_records", 0) for d in dones),
            "inputs_with_unknown_loss": [d["path"] for d in dones if d.get("lost_unknown")]}


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(plan: RunPlan, run: Run, out: DocumentParts) -> dict:
    dones = out.dones
    stats = {"filters": out.stats["filters"], "lost": lost_records(dones),
             # same id, later record: renamed `<id>#n` (within an input by the reader, across inputs after it)
             "duplicate_ids_renamed": sum(d.get("duplicate_ids_renamed", 0) for d in dones) + out.renamed}
    if out.dedup:
        stats["dedup"] = out.dedup["stats"]
        console.print(dedup_summary_table("dolma: dedup", out.dedup["stats"]))
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
    run = Run.start("dolma", config, kinds=layout(config), clear=False)  # plan_run clears on overwrite (and knows the staging)
    plan = plan_inputs(config, run.out_dir)
    out = documents(plan, config)
    publish_shards(config, run, out)
    stats = write_report(plan, run, out)
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
    layout=layout,
)
