"""The diachronic pipeline's steps around `filters/dating/stage.py`, usable without Prefect: which inputs, the
dating context (authors table, style model, metadata CSV), the datatrove step that dates one input file per rank,
the works' row invariant, the slices as staged tables, the run's summary table, and the style model's training.
The flow (`flows/diachronic.py`) chooses the config, wraps these as tasks and publishes."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Callable, Iterator

import pyarrow as pa
from datatrove.pipeline.base import PipelineStep
from rich.table import Table

from corpora.atomic import read_json
from corpora.progress import no_progress
from corpora.readers import FieldMap, InputError, expand_inputs
from corpora.records import BadRecord
from corpora.shards import write_table_atomic
from corpora.staging import StagedInput
from filters.dating.authors import AuthorIndex, load_authors_table
from filters.dating.periods import parse_slice_name
from filters.dating.settings import (AuthorsSettings, MetadataSettings, SlicingSettings, StyleSettings,
                                     StyleTrainSettings)
from filters.dating.stage import (DatingContext, date_file_cached, dated_part, iter_works, read_rows,
                                  redate_listed_works, slice_corpus, slice_tables, unique_ids)
from filters.dating.style import StyleModel, read_slice_split, train_style_model
from filters.dating.works import WORKS_SCHEMA, load_metadata_csv
from filters.execution import ExecutorConfig, run_and_wait

_log = logging.getLogger("filters.dating")


def input_paths(inputs: list[str]) -> list[Path]:
    if not inputs:
        raise InputError("diachronic: give the books to date (--input FOLDER_OR_FILES: plain-text / Gutenberg "
                         ".txt files and/or document Parquet)")
    paths = expand_inputs(inputs)
    bad = [p for p in paths if p.name.lower().endswith((".warc", ".warc.gz"))]
    if bad:
        raise InputError(f"{bad[0]}: the diachronic pipeline reads books (.txt) or document Parquet/JSONL, not WARC")
    return paths


def preflight(inputs: list[str], metadata: MetadataSettings, authors: AuthorsSettings, style: StyleSettings) -> None:
    input_paths(inputs)
    for key, path in (("metadata.path", metadata.path), ("authors.path", authors.path),
                      ("style.model", style.model)):
        if path and not Path(path).exists():
            raise FileNotFoundError(f"{key}: {path} does not exist")
    if style.model:
        StyleModel.load(style.model)  # a folder without a model is a one-line error, not a failed run
    if metadata.path:
        load_metadata_csv(metadata.path)


def load_context(periods: list[str], metadata: MetadataSettings, authors: AuthorsSettings, style: StyleSettings,
                 log: logging.Logger = _log) -> tuple[DatingContext, dict]:
    """Authors table, style model and metadata CSV, each optional; their problems are counted and reported."""
    report: dict = {}
    ctx = DatingContext(slices=tuple(parse_slice_name(p) for p in periods),
                        author_threshold=authors.min_score, prior_coverage=authors.prior_coverage)
    if authors.path:
        table = load_authors_table(authors.path)
        ctx.author_index = AuthorIndex(table.records)
        report["authors"] = {"path": authors.path, "format": table.format, "records": len(table.records),
                             "bad_rows": [vars(p) for p in table.problems[:50]], "bad_rows_total": len(table.problems)}
        log.info("authors table %s: %d people (%s), %d bad rows", authors.path, len(table.records), table.format,
                 len(table.problems))
    if style.model:
        ctx.style_model = StyleModel.load(style.model)
        report["style_model"] = {"path": style.model, "metrics": ctx.style_model.metrics}
    if metadata.path:
        ctx.metadata, problems = load_metadata_csv(metadata.path)
        report["metadata"] = {"path": metadata.path, "rows": len(ctx.metadata),
                              "bad_rows": [vars(p) for p in problems[:50]], "bad_rows_total": len(problems)}
        for p in problems[:20]:
            log.warning("metadata %s %s: %s", p.file, p.row, p.reason)
    return ctx, report


class SharedValue:
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
        self.ctx = SharedValue(ctx)

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        date_file_cached(self.items[rank], self.staging, self.ctx.value, self.fields, self.cfg_hash)
        self.stat_update("files")
        return iter(())


def is_dated(item: StagedInput, staging: Path, cfg_hash: str) -> bool:
    """This input's rows are staged, made from the same bytes with the same dating config."""
    marker = read_json(staging / f"{item.key}.done.json")
    return bool(marker and marker.get("sha256") == item.sha256 and marker.get("config_hash") == cfg_hash
                and dated_part(staging, item).exists())


def date_works(items: list[StagedInput], ctx: DatingContext, fields: FieldMap, cfg_hash: str,
               execution: ExecutorConfig, staging: Path, log: logging.Logger = _log, progress: Callable = no_progress
               ) -> dict:
    """One executor task per input file (`execution.executor`: local processes, Ray or Slurm); files already
    dated with the same bytes and config (`cfg_hash`, the dating resume key) are reused."""
    pending = [i for i in items if not is_dated(i, staging, cfg_hash)]
    reused = len(items) - len(pending)
    with progress("date works", total=len(items)) as bar:
        bar.update(reused, reused)
        if pending:
            logs = staging.parent / "datatrove" / f"dating-{time.strftime('%Y%m%dT%H%M%S')}"
            run_and_wait([DateFilesStep(pending, staging, ctx, fields, cfg_hash)], len(pending), execution,
                         logs, outstanding=lambda: [i.path for i in pending if not is_dated(i, staging, cfg_hash)],
                         on_progress=lambda n: bar.update(reused + n, reused + n), name="dating-executor")
            missing = [i.path for i in pending if not is_dated(i, staging, cfg_hash)]
            if missing:
                raise RuntimeError(f"{len(missing)} input(s) were not dated (see logs in {logs}): "
                                   + ", ".join(missing[:5]))
    log.info("%d input file(s) dated (%d reused from an earlier run)", len(items), reused)
    return {"parts": [str(dated_part(staging, i)) for i in items], "reused": reused}


def works_to_ask(items: list[StagedInput], ctx: DatingContext, fields: FieldMap) -> list[tuple[str, str, str]]:
    """(id, title, author) of every readable work, the metadata CSV's title / author winning: the LLM question's
    subjects."""
    works = []
    for item in items:
        for w in iter_works(Path(item.path), fields):
            if isinstance(w, BadRecord):
                continue
            meta = ctx.metadata.get(w.id)
            works.append((w.id, (meta.title if meta and meta.title else w.title),
                          (meta.author if meta and meta.author else w.author)))
    return works


def bound_listed_works(items: list[StagedInput], parts: list[str], ctx: DatingContext, fields: FieldMap,
                       cfg_hash: str, staging: Path, confidence: float, log: logging.Logger = _log) -> dict:
    """Works listed by another dated work of their author, bounded by its date (their inputs dated again)."""
    parts_out, report = redate_listed_works(items, [Path(p) for p in parts], ctx, fields, cfg_hash, staging,
                                            confidence=confidence)
    log.info("%d work(s) listed by another dated work of their author; %d input file(s) dated again",
             report["works_bounded"], report["inputs_redated"])
    return {"parts": [str(p) for p in parts_out], **report}


def stage_works(parts: list[str], merged: Path) -> tuple[list[dict], int, Path]:
    """Every dated part's rows (duplicate ids renamed) in one staged table: (rows, renamed, its path)."""
    rows = read_rows([Path(p) for p in parts])
    renamed = unique_ids(rows)
    write_table_atomic(merged, pa.Table.from_pylist(rows, schema=WORKS_SCHEMA))
    return rows, renamed, merged


def works_invariant(items: list[StagedInput], staging: Path, rows: list[dict]) -> dict:
    """Works read (the done markers) == works rows, and every row has a year or an undated reason (not both)."""
    read = sum(json.loads((staging / f"{i.key}.done.json").read_text())["works"] for i in items)
    return {"works_read": read, "works_rows": len(rows), "holds": read == len(rows)
            and all((r["year"] is None) == (r["undated_reason"] is not None) for r in rows)}


def slice_parts(items: list[StagedInput], rows: list[dict], s: SlicingSettings, fields: FieldMap, staged: Path
                ) -> tuple[Iterator[tuple[str, str, list[Path]]], object]:
    """The slices' paragraphs, staged as <staged>/<slice>/<split>.parquet: ((slice, split, files) for every
    period and split in order, files empty when nothing was cut), and the slicing result (its `.stats`)."""
    result, row_of = slice_corpus([Path(i.path) for i in items], rows, s, fields)
    tables = slice_tables(result, row_of)

    def parts():
        for sl in s.periods:
            for split in s.budgets:
                table = tables.get((sl, split))
                files = []
                if table is not None and table.num_rows:
                    files = [staged / sl / f"{split}.parquet"]
                    write_table_atomic(files[0], table)
                yield sl, split, files
    return parts(), result


def summary_table(title: str, summary: dict, slicing: dict, budgets: dict[str, int]) -> Table:
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


# --------------------------------------------------------------------------------------- diachronic-train
def slices_dir(inputs: list[str]) -> str:
    if len(inputs) != 1 or not Path(inputs[0]).is_dir():
        raise InputError("diachronic-train: give one folder of slices/<start>_<end>/{train,dev,test}.txt (--input)")
    return inputs[0]


def train_preflight(inputs: list[str]) -> None:
    read_slice_split(slices_dir(inputs), "train")


def train_style(slices: str, t: StyleTrainSettings, out: Path) -> dict:
    """Fit + calibrate the style model on the slices, save it to `out`; its report."""
    model = train_style_model(slices, chunk_words=t.chunk_words, C=t.C, max_features=t.max_features,
                              max_train_words=t.max_train_words, seed=t.seed)
    model.save(out)
    return {"slices": [s.name for s in model.slices], "temperature": model.temperature, **model.metrics}


def train_message(report: dict, chunk_words: int) -> str:
    return (f"style model: test accuracy {report.get('test_chunk_accuracy', float('nan')):.3f} per "
            f"{chunk_words}-word chunk ({report.get('test_chunk_within_one_slice', float('nan')):.3f} "
            f"within one slice), {report.get('test_1000w_accuracy', float('nan')):.3f} per 1000 words; "
            f"{len(report['slices'])} slices")
