"""`flows run diachronic`: date every work (year, range, slice, confidence, deciding evidence, flags) and cut
time-sliced paragraph corpora (`flows run diachronic-train`, flows/diachronic_train.py, trains the style classifier
it can use). Wiring only:
the logic is `filters/dating/` (settings: `settings.py`; the steps: `steps.py`, `stage.py`).

diachronic:       plan inputs (resume) -> [LLM question, optional] -> date works, one input file at a time ->
                  publish works/ -> slice paragraphs -> publish slices/<slice>/<split>/ -> report
"""
from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from corpora.layout import Kind, Layout
from corpora.plan import WORK_DIR
from corpora.readers import FieldMap
from corpora.staging import StagedInput
from filters.dating import steps
from filters.dating.settings import (AuthorsSettings, ListingsSettings, LLMSettings, MetadataSettings,
                                     SlicingSettings, StyleSettings)
from filters.dating.stage import SLICE_SCHEMA, DatingContext, works_summary
from filters.dating.works import WORKS_SCHEMA
from filters.execution import ExecutorConfig
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import run_logger, stage_progress
from flows.scaffold import Run
from generators.contract import DocumentFields
from generators.settings import GenerationSettings, preflight_settings


# works/ (one row per work) and slices/<slice>/<split>/ (a card config per slice, its splits inside, + `slices`)
LAYOUT = Layout((Kind("works", WORKS_SCHEMA), Kind("slices", SLICE_SCHEMA, splits=True)))


class DiachronicConfig(DocumentFields, RunConfig):
    metadata: MetadataSettings = MetadataSettings()
    authors: AuthorsSettings = AuthorsSettings()
    style: StyleSettings = StyleSettings()
    listings: ListingsSettings = ListingsSettings()
    llm: LLMSettings = LLMSettings()
    generation: GenerationSettings = GenerationSettings()
    slicing: SlicingSettings = SlicingSettings()
    execution: ExecutorConfig = ExecutorConfig()  # where the per-file dating tasks run (local, ray, slurm)


def _fields(cfg: DiachronicConfig) -> FieldMap:
    return FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)


def _dating_hash(cfg: DiachronicConfig) -> str:
    """The dating resume key: everything but where it runs (`execution`) and the run's own paths."""
    return config_hash(cfg, exclude={"inputs", "output", "overwrite", "execution"})


@task(name="load-dating-context", cache_policy=NO_CACHE)
def load_context(cfg: DiachronicConfig) -> tuple[DatingContext, dict]:
    return steps.load_context(cfg.slicing.periods, cfg.metadata, cfg.authors, cfg.style, run_logger())


@task(name="ask-llm-for-dates", cache_policy=NO_CACHE)
def ask_llm(items: list[StagedInput], cfg: DiachronicConfig, out_dir: Path, ctx: DatingContext) -> dict:
    """The paper's question as round `work_dates` (cached, resumable); answers become `llm` evidence."""
    from generators.rounds import Rounds
    from generators.work_dates import llm_evidence, work_date_requests

    works = steps.works_to_ask(items, ctx, _fields(cfg))
    rounds = Rounds(out_dir / WORK_DIR, cfg.generation, source="diachronic", progress=False, log=run_logger().info)
    out = rounds.generate("work_dates", work_date_requests(works))
    answers = {r["work_id"]: r["text"] for r in out.ok}
    ctx.extra_evidence = llm_evidence(answers, out.report.model, cfg.llm.confidence)
    return {"requests": len(out.requests), "answered": len(answers), "with_year": len(ctx.extra_evidence),
            "model": out.report.model, "generation": rounds.summary()}


@task(name="date-works", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def date_works(items: list[StagedInput], ctx: DatingContext, cfg: DiachronicConfig, staging: Path) -> dict:
    return steps.date_works(items, ctx, _fields(cfg), _dating_hash(cfg), cfg.execution, staging, run_logger(),
                            stage_progress)


@task(name="bound-listed-works", cache_policy=NO_CACHE)
def bound_listed_works(items: list[StagedInput], parts: list[str], ctx: DatingContext, cfg: DiachronicConfig,
                       staging: Path) -> dict:
    return steps.bound_listed_works(items, parts, ctx, _fields(cfg), _dating_hash(cfg), staging,
                                    cfg.listings.confidence, run_logger())


@task(name="publish-works", cache_policy=NO_CACHE)
def publish_works(parts: list[str], run: Run) -> tuple[list[dict], int]:
    rows, renamed, merged = steps.stage_works(parts, run.out_dir / WORK_DIR / "works.parquet")
    run.publish("works", [merged])
    return rows, renamed


@task(name="slice-corpus", cache_policy=NO_CACHE)
def cut_slices(items: list[StagedInput], rows: list[dict], cfg: DiachronicConfig, run: Run) -> dict:
    parts, result = steps.slice_parts(items, rows, cfg.slicing, _fields(cfg), run.out_dir / WORK_DIR / "slices")
    for sl, split, files in parts:
        run.publish("slices", files, part=(sl, split))
    return result.stats(dict(cfg.slicing.budgets))


@flow(name="diachronic", log_prints=True)
def diachronic_flow(config: DiachronicConfig) -> dict:
    run = Run.start("diachronic", config, kinds=LAYOUT)
    out_dir = run.out_dir
    items = [StagedInput.from_path(p) for p in steps.input_paths(config.inputs)]
    ctx, context_report = load_context(config)
    llm_report = ask_llm(items, config, out_dir, ctx) if config.llm.enabled else None
    staging = out_dir / WORK_DIR / "dated"
    staging.mkdir(parents=True, exist_ok=True)
    dated = date_works(items, ctx, config, staging)
    listings = bound_listed_works(items, dated["parts"], ctx, config, staging) if config.listings.enabled else None
    rows, renamed = publish_works((listings or dated)["parts"], run)
    slicing_stats = cut_slices(items, rows, config, run)
    summary = works_summary(rows)
    invariant = steps.works_invariant(items, staging, rows)
    stats = {"works": summary, "slicing": slicing_stats, "duplicate_ids_renamed": renamed,
             "inputs_reused": dated["reused"], **context_report,
             **({"listings": {k: v for k, v in listings.items() if k != "parts"}} if listings else {}),
             **({"llm": llm_report} if llm_report else {})}
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": i.path, "sha256": i.sha256} for i in items],
                       summary=steps.summary_table(f"diachronic: {out_dir}", summary, slicing_stats,
                                                   dict(config.slicing.budgets)),
                       markdown="```\n" + json.dumps({"works": summary, "invariant": invariant}, indent=2) + "\n```")
    return {"output": str(out_dir), "stats": stats}


def preflight(cfg: DiachronicConfig) -> None:
    steps.preflight(cfg.inputs, cfg.metadata, cfg.authors, cfg.style)
    if cfg.llm.enabled:
        preflight_settings(cfg.generation, {"work_dates"})


PIPELINE = Pipeline(
    name="diachronic",
    description="Date works (text, author life, style, optional LLM evidence) and cut time-sliced paragraph corpora",
    config_model=DiachronicConfig,
    flow=diachronic_flow,
    preflight=preflight,
    layout=LAYOUT,
)
