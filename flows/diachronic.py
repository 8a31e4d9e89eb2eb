"""`flows run diachronic`: date every work (year, range, slice, confidence, deciding evidence, flags) and cut
time-sliced paragraph corpora; `flows run diachronic-train`: train the style classifier it can use.

diachronic:       plan inputs (resume) -> [LLM question, optional] -> date works, one input file at a time ->
                  publish works/ -> slice paragraphs -> publish slices/<slice>/<split>/ -> report
diachronic-train: read slices/<start>_<end>/{train,dev,test}.txt -> fit + calibrate -> save model folder -> report
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from datatrove.pipeline.base import PipelineStep
from pydantic import Field, field_validator
from rich.table import Table

from corpora.config import StrictModel
from corpora.plan import WORK_DIR
from corpora.readers import FieldMap, InputError, expand_inputs
from corpora.records import BadRecord
from corpora.shards import write_table_atomic
from corpora.staging import StagedInput
from filters.dating.authors import AuthorIndex, load_authors_table
from filters.dating.periods import parse_slice_name
from filters.dating.slicing import DEFAULT_BUDGETS, DEFAULT_MAX_WORKS_PER_AUTHOR, DEFAULT_MIN_PARAGRAPH_WORDS
from filters.dating.stage import (SLICE_SCHEMA, DatingContext, SlicingOptions, date_file_cached, dated_part,
                                  iter_works, read_rows, redate_listed_works, slice_corpus, slice_tables, unique_ids,
                                  works_summary)
from filters.dating.style import DEFAULT_CHUNK_WORDS, StyleModel, train_style_model
from filters.dating.works import WORKS_SCHEMA, load_metadata_csv
from filters.execution import ExecutorConfig
from flows.config import RunConfig, config_hash
from flows.scaffold import Run
from generators.settings import GenerationSettings, preflight_settings
from flows.registry import Pipeline
from flows.reporting import console, publish_artifact, run_logger, stage_progress

PAPER_SLICES = ["1750_1820", "1820_1850", "1850_1880", "1880_1910", "1910_1940"]


class MetadataSettings(StrictModel):
    path: str | None = Field(None, description="CSV id,title,author[,year]; wins over the Gutenberg header")


class AuthorsSettings(StrictModel):
    path: str | None = Field(None, description="Gutenberg catalogue CSV, gutenbergr authors CSV or Wikidata JSONL")
    min_score: float = Field(90.0, ge=0, le=100, description="name match threshold (the paper's 90)")
    prior_coverage: bool = Field(
        True, description="weigh the author prior by a public-domain corpus' coverage (few works after ~1925, "
                          "fitted on Gutenberg); set false for corpora whose works run later")


class StyleSettings(StrictModel):
    # Off by default: the model must first be trained on time-labelled slices (`flows run diachronic-train`), and
    # it is weak on its own (~54% chunk / ~71% 1000-word accuracy on the held-out test split). With the fitted
    # author prior it helps the works whose text carries no date (bench/dating.py: slice 89.2% -> 91.9% on the
    # reference books), so turn it on when you have a model.
    model: str | None = Field(None, description="folder written by `flows run diachronic-train`; None = no style")


class ListingsSettings(StrictModel):
    enabled: bool = Field(True, description="a work listed by another dated work of its author ('Author of ...', "
                                            "'By the same author') is bounded by that work's date")
    confidence: float = Field(0.7, ge=0, le=1, description="trust that the list was in the listing work's first "
                                                           "edition (a later printing may list later books)")


class LLMSettings(StrictModel):
    """The paper's LLM question (round `work_dates`; its model and stage settings are `generation.*`)."""

    enabled: bool = False
    confidence: float = Field(0.6, ge=0, le=1, description="trust in an LLM year (the paper: 53-68% exact)")


class SlicingSettings(StrictModel):
    periods: list[str] = Field(default_factory=lambda: list(PAPER_SLICES))
    budgets: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_BUDGETS), description="words per split")
    max_works_per_author: int = Field(DEFAULT_MAX_WORKS_PER_AUTHOR, ge=1)
    drop_first_chapter: bool = True
    min_paragraph_words: int = Field(DEFAULT_MIN_PARAGRAPH_WORDS, ge=1)
    split_by: Literal["paragraph", "work"] = "paragraph"
    seed: int = 0
    min_confidence: float = Field(0.0, ge=0, le=1, description="works less sure of their slice are left out")
    exclude_flags: list[str] = Field(default_factory=list, description="e.g. [collection, translation]")

    @field_validator("periods", mode="before")
    @classmethod
    def _yaml_ints(cls, v):
        # YAML reads an unquoted 1750_1820 as the integer 17501820: give it its underscore back
        if isinstance(v, list):
            return [f"{str(p)[:4]}_{str(p)[4:]}" if isinstance(p, int) and len(str(p)) == 8 else p for p in v]
        return v

    @field_validator("periods")
    @classmethod
    def _periods(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if parse_slice_name(p) is None]
        if bad or not v:
            raise ValueError(f"periods must be '<start>_<end>' names, got {bad or v}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: dict[str, int]) -> dict[str, int]:
        if not v or any(n < 0 for n in v.values()):
            raise ValueError("budgets: give at least one split with a word count >= 0")
        return v


class DiachronicConfig(RunConfig):
    text_field: str = "text"
    id_field: str = "id"
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


# ------------------------------------------------------------------------------------------------ tasks
@task(name="load-dating-context", cache_policy=NO_CACHE)
def load_context(cfg: DiachronicConfig) -> tuple[DatingContext, dict]:
    """Authors table, style model and metadata CSV, each optional; their problems are counted and reported."""
    log = run_logger()
    report: dict = {}
    ctx = DatingContext(slices=tuple(parse_slice_name(p) for p in cfg.slicing.periods),
                        author_threshold=cfg.authors.min_score, prior_coverage=cfg.authors.prior_coverage)
    if cfg.authors.path:
        table = load_authors_table(cfg.authors.path)
        ctx.author_index = AuthorIndex(table.records)
        report["authors"] = {"path": cfg.authors.path, "format": table.format, "records": len(table.records),
                             "bad_rows": [vars(p) for p in table.problems[:50]], "bad_rows_total": len(table.problems)}
        log.info("authors table %s: %d people (%s), %d bad rows", cfg.authors.path, len(table.records), table.format,
                 len(table.problems))
    if cfg.style.model:
        ctx.style_model = StyleModel.load(cfg.style.model)
        report["style_model"] = {"path": cfg.style.model, "metrics": ctx.style_model.metrics}
    if cfg.metadata.path:
        ctx.metadata, problems = load_metadata_csv(cfg.metadata.path)
        report["metadata"] = {"path": cfg.metadata.path, "rows": len(ctx.metadata),
                              "bad_rows": [vars(p) for p in problems[:50]], "bad_rows_total": len(problems)}
        for p in problems[:20]:
            log.warning("metadata %s %s: %s", p.file, p.row, p.reason)
    return ctx, report


@task(name="ask-llm-for-dates", cache_policy=NO_CACHE)
def ask_llm(items: list[StagedInput], cfg: DiachronicConfig, out_dir: Path, ctx: DatingContext) -> dict:
    """The paper's question as round `work_dates` (cached, resumable); answers become `llm` evidence."""
    from generators.rounds import Rounds
    from generators.work_dates import llm_evidence, work_date_requests

    works = []
    for item in items:
        for w in iter_works(Path(item.path), _fields(cfg)):
            if isinstance(w, BadRecord):
                continue
            meta = ctx.metadata.get(w.id)
            works.append((w.id, (meta.title if meta and meta.title else w.title),
                          (meta.author if meta and meta.author else w.author)))
    rounds = Rounds(out_dir / WORK_DIR, cfg.generation, source="diachronic", progress=False, log=run_logger().info)
    out = rounds.generate("work_dates", work_date_requests(works))
    answers = {r["work_id"]: r["text"] for r in out.ok}
    ctx.extra_evidence = llm_evidence(answers, out.report.model, cfg.llm.confidence)
    return {"requests": len(out.requests), "answered": len(answers), "with_year": len(ctx.extra_evidence),
            "model": out.report.model, "generation": rounds.summary()}


class _Shared:
    """The dating context as the executor ships it: pickled to Ray / Slurm / worker processes, shared (not
    copied) between the ranks of one process, and one short line in datatrove's executor.json."""

    def __init__(self, value):
        self.value = value

    def __deepcopy__(self, memo):
        return self

    def __str__(self) -> str:
        return f"<{type(self.value).__name__}>"


class DateFilesStep(PipelineStep):
    """Rank r dates input file r (`date_file_cached`: its rows and done marker in the staging folder)."""

    name = "date works"
    type = "dating"

    def __init__(self, items: list[StagedInput], staging: Path, ctx: DatingContext, fields: FieldMap,
                 cfg_hash: str):
        super().__init__()
        self.items, self.staging, self.fields, self.cfg_hash = list(items), Path(staging), fields, cfg_hash
        self.ctx = _Shared(ctx)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        date_file_cached(self.items[rank], self.staging, self.ctx.value, self.fields, self.cfg_hash)
        self.stat_update("files")
        return iter(())


def _dating_hash(cfg: DiachronicConfig) -> str:
    """The dating resume key: everything but where it runs (`execution`) and the run's own paths."""
    return config_hash(cfg, exclude={"inputs", "output", "overwrite", "execution"})


def _is_dated(item: StagedInput, staging: Path, cfg_hash: str) -> bool:
    from corpora.atomic import read_json

    marker = read_json(staging / f"{item.key}.done.json")
    return bool(marker and marker.get("sha256") == item.sha256 and marker.get("config_hash") == cfg_hash
                and dated_part(staging, item).exists())


@task(name="date-works", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2)
def date_works(items: list[StagedInput], ctx: DatingContext, cfg: DiachronicConfig, staging: Path) -> dict:
    """One executor task per input file (`execution.executor`: local processes, Ray or Slurm); files already
    dated with the same bytes and config are reused."""
    import time

    from filters.execution import run_and_wait

    log = run_logger()
    cfg_hash = _dating_hash(cfg)
    pending = [i for i in items if not _is_dated(i, staging, cfg_hash)]
    reused = len(items) - len(pending)
    with stage_progress("date works", total=len(items)) as bar:
        bar.update(reused, reused)
        if pending:
            logs = staging.parent / "datatrove" / f"dating-{time.strftime('%Y%m%dT%H%M%S')}"
            run_and_wait([DateFilesStep(pending, staging, ctx, _fields(cfg), cfg_hash)], len(pending), cfg.execution,
                         logs, outstanding=lambda: [i.path for i in pending if not _is_dated(i, staging, cfg_hash)],
                         on_progress=lambda n: bar.update(reused + n, reused + n), name="dating-executor")
            missing = [i.path for i in pending if not _is_dated(i, staging, cfg_hash)]
            if missing:
                raise RuntimeError(f"{len(missing)} input(s) were not dated (see logs in {logs}): "
                                   + ", ".join(missing[:5]))
    log.info("%d input file(s) dated (%d reused from an earlier run)", len(items), reused)
    return {"parts": [str(dated_part(staging, i)) for i in items], "reused": reused}


@task(name="bound-listed-works", cache_policy=NO_CACHE)
def bound_listed_works(items: list[StagedInput], parts: list[str], ctx: DatingContext, cfg: DiachronicConfig,
                       staging: Path) -> dict:
    parts_out, report = redate_listed_works(items, [Path(p) for p in parts], ctx, _fields(cfg), _dating_hash(cfg),
                                            staging, confidence=cfg.listings.confidence)
    run_logger().info("%d work(s) listed by another dated work of their author; %d input file(s) dated again",
                      report["works_bounded"], report["inputs_redated"])
    return {"parts": [str(p) for p in parts_out], **report}


@task(name="publish-works", cache_policy=NO_CACHE)
def publish_works(parts: list[str], run: Run) -> tuple[list[dict], int]:
    import pyarrow as pa

    rows = read_rows([Path(p) for p in parts])
    renamed = unique_ids(rows)
    merged = run.out_dir / WORK_DIR / "works.parquet"
    write_table_atomic(merged, pa.Table.from_pylist(rows, schema=WORKS_SCHEMA))
    run.publish("works", [merged], WORKS_SCHEMA)
    return rows, renamed


@task(name="slice-corpus", cache_policy=NO_CACHE)
def cut_slices(items: list[StagedInput], rows: list[dict], cfg: DiachronicConfig, run: Run) -> dict:
    s = cfg.slicing
    opts = SlicingOptions(budgets=dict(s.budgets), max_works_per_author=s.max_works_per_author,
                          drop_first_chapter=s.drop_first_chapter, min_paragraph_words=s.min_paragraph_words,
                          split_by=s.split_by, seed=s.seed, min_confidence=s.min_confidence,
                          exclude_flags=tuple(s.exclude_flags))
    result, row_of = slice_corpus([Path(i.path) for i in items], rows, opts, _fields(cfg))
    tables = slice_tables(result, row_of)
    staged = run.out_dir / WORK_DIR / "slices"
    for sl in cfg.slicing.periods:
        for split in s.budgets:
            table = tables.get((sl, split))
            files = []
            if table is not None and table.num_rows:
                files = [staged / sl / f"{split}.parquet"]
                write_table_atomic(files[0], table)
            run.publish(split, files, SLICE_SCHEMA, under=Path("slices") / sl, name=f"slices/{sl}/{split}")
    return result.stats(dict(s.budgets))


def _report_table(title: str, summary: dict, slicing: dict, budgets: dict[str, int]) -> Table:
    t = Table(title=title)
    for col in ("slice", "works dated", "works used", *budgets):
        t.add_column(col, justify="left" if col == "slice" else "right")
    for sl, n in summary["by_slice"].items():
        s = slicing["slices"].get(sl, {})
        cells = [f"{s['splits'][sp]['words']:,}" if s else "0" for sp in budgets]
        t.add_row(sl, f"{n:,}", f"{s.get('works', 0):,}", *cells)
    t.caption = ("words per split (budgets: " + ", ".join(f"{k} {v:,}" for k, v in budgets.items()) + "); "
                 f"{summary['works']} works: {summary['dated']} dated, {summary['undated']} undated (each with a "
                 f"reason); deciding evidence: " + ", ".join(f"{k} {v}" for k, v in
                                                            list(summary["by_date_source"].items())[:5]))
    return t


@flow(name="diachronic", log_prints=True)
def diachronic_flow(config: DiachronicConfig) -> dict:
    run = Run.start("diachronic", config, kinds=("works", "slices"))
    out_dir = run.out_dir
    items = [StagedInput.from_path(p) for p in _input_paths(config)]
    ctx, context_report = load_context(config)
    llm_report = ask_llm(items, config, out_dir, ctx) if config.llm.enabled else None
    staging = out_dir / WORK_DIR / "dated"
    staging.mkdir(parents=True, exist_ok=True)
    dated = date_works(items, ctx, config, staging)
    listings = bound_listed_works(items, dated["parts"], ctx, config, staging) if config.listings.enabled else None
    rows, renamed = publish_works((listings or dated)["parts"], run)
    slicing_stats = cut_slices(items, rows, config, run)
    summary = works_summary(rows)
    read = sum(json.loads((staging / f"{i.key}.done.json").read_text())["works"] for i in items)
    invariant = {"works_read": read, "works_rows": len(rows), "holds": read == len(rows)
                 and all((r["year"] is None) == (r["undated_reason"] is not None) for r in rows)}
    stats = {"works": summary, "slicing": slicing_stats, "duplicate_ids_renamed": renamed,
             "inputs_reused": dated["reused"], **context_report,
             **({"listings": {k: v for k, v in listings.items() if k != "parts"}} if listings else {}),
             **({"llm": llm_report} if llm_report else {})}
    stats = run.finish(stats, invariant=invariant, inputs=[{"path": i.path, "sha256": i.sha256} for i in items],
                       summary=_report_table(f"diachronic: {out_dir}", summary, slicing_stats,
                                             dict(config.slicing.budgets)),
                       markdown="```\n" + json.dumps({"works": summary, "invariant": invariant}, indent=2) + "\n```")
    return {"output": str(out_dir), "stats": stats}


def _input_paths(cfg: DiachronicConfig) -> list[Path]:
    if not cfg.inputs:
        raise InputError("diachronic: give the books to date (--input FOLDER_OR_FILES: plain-text / Gutenberg "
                         ".txt files and/or document Parquet)")
    paths = expand_inputs(cfg.inputs)
    bad = [p for p in paths if p.name.lower().endswith((".warc", ".warc.gz"))]
    if bad:
        raise InputError(f"{bad[0]}: the diachronic pipeline reads books (.txt) or document Parquet/JSONL, not WARC")
    return paths


def preflight(cfg: DiachronicConfig) -> None:
    _input_paths(cfg)
    for key, path in (("metadata.path", cfg.metadata.path), ("authors.path", cfg.authors.path),
                      ("style.model", cfg.style.model)):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"{key}: {path} does not exist")
    if cfg.style.model:
        StyleModel.load(cfg.style.model)  # a folder without a model is a one-line error, not a failed run
    if cfg.metadata.path:
        load_metadata_csv(cfg.metadata.path)
    if cfg.llm.enabled:
        preflight_settings(cfg.generation, {"work_dates"})


PIPELINE = Pipeline(
    name="diachronic",
    description="Date works (text, author life, style, optional LLM evidence) and cut time-sliced paragraph corpora",
    config_model=DiachronicConfig,
    flow=diachronic_flow,
    preflight=preflight,
)


# --------------------------------------------------------------------------------------- diachronic-train
class StyleTrainSettings(StrictModel):
    chunk_words: int = Field(DEFAULT_CHUNK_WORDS, ge=20)
    C: float = Field(10.0, gt=0, description="inverse regularisation of the logistic regression")
    max_features: int = Field(100_000, ge=100)
    max_train_words: int | None = Field(None, description="cap words per slice (quick runs)")
    seed: int = 0


class DiachronicTrainConfig(RunConfig):
    train: StyleTrainSettings = StyleTrainSettings()


@task(name="train-style-model", cache_policy=NO_CACHE)
def train_style(slices_dir: str, cfg: DiachronicTrainConfig, out: Path) -> dict:
    t = cfg.train
    model = train_style_model(slices_dir, chunk_words=t.chunk_words, C=t.C, max_features=t.max_features,
                              max_train_words=t.max_train_words, seed=t.seed)
    model.save(out)
    return {"slices": [s.name for s in model.slices], "temperature": model.temperature, **model.metrics}


@flow(name="diachronic-train", log_prints=True)
def diachronic_train_flow(config: DiachronicTrainConfig) -> dict:
    from corpora.manifest import now_iso
    from flows.run_report import write_model_report  # manifest/stats/report.html beside the model (no card)

    started = now_iso()
    out = Path(config.output or "output/diachronic-train").resolve()
    report = train_style(_slices_dir(config), config, out)
    write_model_report(out, "diachronic-train", config, report, started)
    msg = (f"style model: test accuracy {report.get('test_chunk_accuracy', float('nan')):.3f} per "
           f"{config.train.chunk_words}-word chunk ({report.get('test_chunk_within_one_slice', float('nan')):.3f} "
           f"within one slice), {report.get('test_1000w_accuracy', float('nan')):.3f} per 1000 words; "
           f"{len(report['slices'])} slices")
    console.print(msg)
    console.print(f"model: {out}  (use: flows run diachronic --input BOOKS --set style.model={out})")
    publish_artifact("diachronic-train-summary", f"# diachronic-train\n\n{msg}\n\nModel: `{out}`")
    return {"output": str(out), "report": report}


def _slices_dir(cfg: DiachronicTrainConfig) -> str:
    if len(cfg.inputs) != 1 or not Path(cfg.inputs[0]).is_dir():
        raise InputError("diachronic-train: give one folder of slices/<start>_<end>/{train,dev,test}.txt (--input)")
    return cfg.inputs[0]


def train_preflight(cfg: DiachronicTrainConfig) -> None:
    from filters.dating.style import read_slice_split

    read_slice_split(_slices_dir(cfg), "train")


TRAIN_PIPELINE = Pipeline(
    name="diachronic-train",
    description="Train the diachronic style classifier (slice from vocabulary/spelling, calibrated) on time slices",
    config_model=DiachronicTrainConfig,
    flow=diachronic_train_flow,
    preflight=train_preflight,
)
