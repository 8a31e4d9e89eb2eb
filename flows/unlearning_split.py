"""`flows run unlearning-split`: forget / retain / holdout packages (`flows run remove`, the corpus-level removal,
is `flows/remove.py`). Wiring only: the logic is in `filters/forget_split.py`, `filters/forget_packages.py` and
`filters/forget_match.py`.

read corpus (documents or QA) -> match the forget spec, MinHash clusters, units -> assign splits -> publish
forget/ retain/ holdout/ (+ layouts: tofu/, muse/, verbmem/, knowmem/, sets/; muse_data/ files) -> manifest.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

import pyarrow as pa
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from corpora.manifest import write_manifest
from corpora.shards import write_table_atomic
from filters import forget_packages as pk
from filters import forget_split as fs
from filters.forget_match import NearDupConfig
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run

WORK = "_work"


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


class SplitConfig(RunConfig):
    corpus_kind: Literal["auto", "documents", "qa"] = "auto"
    text_field: str = "text"
    id_field: str = "id"
    qa: fs.QAInput = fs.QAInput()
    forget: fs.ForgetSpec = fs.ForgetSpec()
    group_by: str | None = None  # e.g. author: an author's rows never straddle two splits
    near_duplicates: NearDupConfig = NearDupConfig()
    holdout_fraction: float = Field(0.1, ge=0, lt=1)
    retain2_fraction: float = Field(0.5, ge=0, le=1)  # MUSE retain2's share of retain
    seed: int = 0
    sets: fs.SetsConfig = fs.SetsConfig()
    layouts: list[Literal["tofu", "muse", "verbmem", "knowmem"]] | None = None  # null: every one that applies
    verbmem: fs.ProbeConfig = fs.ProbeConfig()
    knowmem: fs.KnowledgeConfig = fs.KnowledgeConfig()
    tofu: fs.TofuEvalSets = fs.TofuEvalSets()  # TOFU's evaluation sets, passed through when given
    muse_export: fs.MuseExport = fs.MuseExport()  # muse_data/: MUSE's own JSON / TXT files
    strict: bool = False  # forget ids / rules that name no row (or an id file with none): an error, not a note


@task(name="read-corpus", cache_policy=NO_CACHE)
def read_corpus(cfg: SplitConfig, paths: list[Path]) -> fs.Corpus:
    return pk.read_corpus(paths, pk.corpus_kind(paths, cfg.corpus_kind, cfg.text_field), cfg.text_field,
                          cfg.id_field, cfg.qa)


@task(name="assign-splits", cache_policy=NO_CACHE)
def split_corpus(cfg: SplitConfig, corpus: fs.Corpus, spec: fs.ForgetSpec) -> fs.SplitResult:
    return fs.assign_splits(corpus, spec, group_by=cfg.group_by, near_dup=cfg.near_duplicates,
                            holdout_fraction=cfg.holdout_fraction, retain2_fraction=cfg.retain2_fraction,
                            seed=cfg.seed, sets=cfg.sets)


def _publish_table(run: Run, kind: str, table: pa.Table, table_name: str | None = None) -> None:
    path = run.out_dir / WORK / (run.layout.path(kind, table_name).replace("/", "__") + ".parquet")
    write_table_atomic(path, table)
    run.publish(kind, [path], table.schema, part=table_name)


@flow(name="unlearning-split", log_prints=True)
def split_flow(config: SplitConfig) -> dict:
    paths, spec, demo = pk.split_inputs(config.inputs, config.forget)
    if demo:
        run_logger().info("unlearning-split: no --input: the bundled sample corpus with the bundled spec %s",
                          pk.SAMPLE_SPEC)
    run = Run.start("unlearning-split", config, kinds=pk.LAYOUT)
    started = time.monotonic()
    corpus = read_corpus(config, paths)
    res = split_corpus(config, corpus, spec)
    pk.say_unmatched("unlearning-split", res.stats["match"], pk.empty_id_files([spec.ids_file]), config.strict, _say)
    layout_stats: dict = {}
    files: dict = {}
    for kind, table, table_name in pk.package_tables(corpus, res, config.layouts, config.verbmem, config.knowmem,
                                                layout_stats, config.tofu, config.muse_export, files, config.seed):
        _publish_table(run, kind, table, table_name)
    pk.write_files(run.out_dir, files, run.out_dir / WORK)
    pk.remove_stale_packages(run.out_dir, run.outputs, res.sets, files)
    seconds = time.monotonic() - started
    rows = {s: run.rows(s) for s in fs.SPLITS}
    inv = {"records_read": corpus.records_read, **{f"rows_{s}": n for s, n in rows.items()},
           "rows_quarantine": run.rows("quarantine"),
           "holds": sum(rows.values()) + run.rows("quarantine") == corpus.records_read}
    stats = {"corpus_kind": corpus.kind, "demo": demo, "duplicate_ids_renamed": corpus.duplicate_ids_renamed,
             "forget_spec": spec.model_dump(mode="json"), "split": res.stats, "layouts": layout_stats,
             "seconds": round(seconds, 3), "rows_per_s": round(corpus.records_read / seconds, 1) if seconds else None}
    line = pk.summary_line(corpus, rows, inv["rows_quarantine"], res, layout_stats["written"])
    cfg_hash = config_hash(config)
    out = run.finish(stats, invariant=inv, inputs=corpus.inputs, summary=line, cfg_hash=cfg_hash,
                     markdown=f"# unlearning-split: {run.out_dir}\n\n{line}\n")
    # the manifest also says how the splits were made (seeds and semantics), for whoever reads the packages
    write_manifest(run.out_dir, pipeline=run.pipeline, config=config.model_dump(mode="json"), config_hash=cfg_hash,
                   inputs=corpus.inputs, outputs=run.outputs, started=run.started, status="complete",
                   extra={"unlearning": {"seed": config.seed, "near_duplicates": config.near_duplicates.model_dump(),
                                         "forget_spec": spec.model_dump(mode="json"), "semantics": pk.SEMANTICS,
                                         "sizes": {"rows": rows, "weights": res.stats["weight_by_split"],
                                                   "sets": res.stats["sets"]}}})
    shutil.rmtree(run.out_dir / WORK, ignore_errors=True)
    return {"output": str(run.out_dir), "stats": out}


def split_preflight(cfg: SplitConfig) -> None:
    paths, spec, _ = pk.split_inputs(cfg.inputs, cfg.forget)
    pk.preflight(paths, spec, cfg.corpus_kind, cfg.text_field, cfg.layouts, cfg.knowmem.qa_file, cfg.strict,
                 cfg.tofu)


SPLIT_PIPELINE = Pipeline(
    name="unlearning-split",
    description="Forget/retain/holdout packages disjoint by id and near-dup cluster (TOFU, MUSE, verbmem, knowmem)",
    config_model=SplitConfig, flow=split_flow, preflight=split_preflight, layout=pk.LAYOUT,
)
