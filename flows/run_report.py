"""`report.html` and the `README.md` dataset card of a run, built from the run's outputs only (`manifest.json`,
`stats.json`, the Parquet shards), so `flows report DIR` rebuilds them for any past run.

Wiring only. The kit (reading a run, the page, the figures) is `corpora/report_kit.py` and
`corpora/report_figures.py`; the sections live beside what they describe and are listed here in page order
(`REPORT_SECTIONS`). The run's output kinds (a partition folder belongs to its kind, a split is its own table) and
the card's configs come from the layout its pipeline declares (`Pipeline.layout`, `corpora/layout.py`), so
nothing here knows a pipeline's layout. Each section draws only when the run wrote what it describes, so one list serves every pipeline:
- the layout (`corpora/report_sections.py`): every output kind with its rows, files and schema; languages; an
  unknown layout gets "Outputs at a glance" (counts per categorical column, the numbers of stats.json);
- curation (`filters/report_sections.py`, stats `filters` / `dedup` / `postprocess`): the funnel (docs and chars
  removed per step), removals per rule, rejected rows by reason, score histograms of kept vs rejected rows (with the
  configured threshold), duplicate-cluster sizes, PII;
- generation (`generators/report_sections.py`, stats `generation`): rounds, tokens per completion, finish reasons,
  failures with their errors, acceptance per round, the generator's own funnels and counts;
- diachronic (`filters/dating/report.py`, a `works` output): works per slice, year histogram, evidence, confidence;
- per-language outputs (`generators/sphinx_report.py`, `<kind>/lang=<xx>/` with a `status`): pass rate per
  language, span preservation.
A new section: a `ReportSection` beside its pipeline, one line in `REPORT_SECTIONS`. A section that cannot be drawn
says why in the page and in the log; the rest of the report is still written.
"""
from __future__ import annotations

import html
import importlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

from corpora.atomic import atomic_write_text
from corpora.layout import Layout
from corpora.report_kit import (Report, ReportSection, RunOutputs, Section, build_sections, find_kinds,  # noqa: F401
                                load_outputs, render_html)

REPORT = "report.html"
CARD = "README.md"
# the sections of every report, in page order ("module:attribute" of a ReportSection, imported when a report is built)
REPORT_SECTIONS: tuple[str, ...] = (
    "corpora.report_sections:OUTPUTS",
    "filters.report_sections:FUNNEL",
    "filters.report_sections:POSTPROCESS_FUNNEL",
    "generators.report_sections:GENERATION",
    "generators.report_sections:GENERATOR_STATS",
    "filters.report_sections:REJECTED_BY_REASON",
    "filters.report_sections:SCORES",
    "corpora.report_sections:LANGUAGES",
    "filters.report_sections:DEDUP",
    "filters.report_sections:PII",
    "filters.dating.report:WORKS",
    "generators.sphinx_report:PER_LANGUAGE",
)
GENERIC_SECTION = "corpora.report_sections:GLANCE"  # second on the page when no section explains the layout


def report_section(target: str) -> ReportSection:
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def run_layout(out_dir: str | Path) -> Layout:
    """The layout the run's pipeline declares (`Pipeline.layout`, for the run's own config when it depends on it);
    an unknown pipeline or a config this code cannot read: none (kinds as their names imply)."""
    from corpora.atomic import read_json
    from flows.registry import UnknownPipeline, get_pipeline

    manifest = read_json(Path(out_dir) / "manifest.json") or {}
    try:
        pipeline = get_pipeline(manifest.get("pipeline") or "")
        layout = pipeline.layout
        if callable(layout):
            layout = layout(pipeline.config_model.model_validate(manifest.get("config") or {}))
    except (UnknownPipeline, ValueError):
        return Layout(())
    return layout or Layout(())


def build_report(out_dir: str | Path) -> Report:
    t0 = time.perf_counter()
    run = load_outputs(out_dir, run_layout(out_dir))
    m = run.manifest
    sections, errors = build_sections(run, [report_section(t) for t in REPORT_SECTIONS],
                                      report_section(GENERIC_SECTION))
    meta = " · ".join(html.escape(str(x)) for x in (
        f"pipeline {run.pipeline}", f"status {m.get('status', 'unknown')}", f"started {m.get('started', '?')}",
        f"finished {m.get('finished', '?')}", f"config {m.get('config_hash', '?')}",
        f"flows-data-engine {m.get('package_version', '?')}", str(run.out_dir)))
    page = render_html(f"{run.pipeline} run report", meta, sections)
    return Report(page, sections, errors, time.perf_counter() - t0)


# ---- writing them ----------------------------------------------------------------------------------------------
def card_inputs(run: RunOutputs) -> dict:
    """What the dataset card needs from disk: per kind its files (relative), rows, schema; the languages."""
    kinds = {}
    for kind, files in run.kinds.items():
        schema = run.schema(kind)
        kinds[kind] = {"files": [f.relative_to(run.out_dir).as_posix() for f in files], "rows": run.rows(kind),
                       "bytes": sum(f.stat().st_size for f in files),
                       "schema": [(f.name, str(f.type)) for f in schema] if schema else []}
    langs: Counter = Counter()
    main = "data" if "data" in run.kinds else next(iter(run.kinds), None)
    if main:
        for col in ("language", "lang"):
            if run.has(main, col):
                langs.update(v for v in run.columns(main, [col], max_rows=5_000)[0][col] if v)
                break
    return {"kinds": kinds, "languages": [lang for lang, _ in langs.most_common(20)]}


def write_dataset_card(out_dir: str | Path) -> Path:
    from corpora.dataset_card import render_card

    layout = run_layout(out_dir)
    run = load_outputs(out_dir, layout)
    ci = card_inputs(run)
    path = run.out_dir / CARD
    atomic_write_text(path, render_card(run.manifest, run.stats, ci["kinds"], languages=ci["languages"],
                                        layout=layout))
    return path


def write_report(out_dir: str | Path) -> tuple[Path, Report]:
    report = build_report(out_dir)
    path = Path(out_dir) / REPORT
    atomic_write_text(path, report.html)
    return path, report


def write_run_report(out_dir: str | Path, pipeline: str | None = None, card: bool = True) -> dict:
    """Write report.html and README.md into a finished run's folder and publish the report's summary as a Prefect
    artifact. Never raises: what could not be written is logged and returned under `errors`."""
    from flows.reporting import publish_artifact, run_logger

    log = run_logger()
    result: dict[str, Any] = {"errors": []}
    try:
        t0 = time.perf_counter()
        path, report = write_report(out_dir)
        result.update(report=str(path), figures=report.figures, seconds=round(time.perf_counter() - t0, 3))
        result["errors"] += report.errors
        for e in report.errors:
            log.warning("report.html: section not drawn: %s", e)
        log.info("report: %s (%d figures, %.2f s)", path, report.figures, result["seconds"])
        publish_artifact(f"{(pipeline or 'run').lower()}-report", report.markdown(path))
    except Exception as e:  # noqa: BLE001 - a report is never a reason to fail a finished run
        result["errors"].append(f"report.html: {type(e).__name__}: {e}")
        log.warning("report.html not written: %s: %s", type(e).__name__, e)
    try:
        if card:
            result["card"] = str(write_dataset_card(out_dir))
    except Exception as e:  # noqa: BLE001
        result["errors"].append(f"README.md: {type(e).__name__}: {e}")
        log.warning("dataset card README.md not written: %s: %s", type(e).__name__, e)
    return result


def write_model_report(out: str | Path, pipeline: str, config: Any, report: dict, started: str) -> None:
    """For a pipeline whose output is a model folder, not the run scaffold's tables (quality-train,
    diachronic-train): stats.json (the training report), manifest.json (config, inputs with sha256) and report.html
    beside the model; no dataset card (a model folder is not a dataset). Never raises on the report."""
    from corpora.atomic import atomic_write_json
    from corpora.hashing import sha256_file
    from corpora.manifest import write_manifest
    from corpora.readers import expand_inputs
    from flows.config import config_hash

    out = Path(out)
    atomic_write_json(out / "stats.json", report)
    inputs = [{"path": str(p), "sha256": sha256_file(p)} for p in expand_inputs(config.inputs)] if config.inputs else []
    write_manifest(out, pipeline=pipeline, config=config.model_dump(mode="json"), config_hash=config_hash(config),
                   outputs={}, started=started, status="complete", inputs=inputs)
    write_run_report(out, pipeline, card=False)
