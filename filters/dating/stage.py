"""The diachronic stages over input files: read works (plain-text books, Gutenberg raw files, document Parquet or
JSONL), date them one input file at a time with a resumable per-file cache, then cut the time-sliced corpus.

Plain functions of paths and already-built parts (author index, style model); the Prefect flow only wires them.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import atomic_write_json, read_json
from corpora.hashing import short_hash
from corpora.readers import FieldMap, read_records
from corpora.records import BadRecord, Record
from corpora.shards import write_table_atomic
from corpora.staging import StagedInput
from filters.dating.authors import MATCH_THRESHOLD, AuthorIndex
from filters.dating.bibliography import LISTED_CONFIDENCE, listing_evidence
from filters.dating.evidence import Evidence
from filters.dating.periods import Slice
from filters.dating.settings import SlicingSettings
from filters.dating.slicing import SliceResult, SliceWork, build_slices, drop_first_chapter, paragraph_units
from filters.dating.works import (WORKS_SCHEMA, MetadataRow, Work, apply_metadata, date_work, undated_row,
                                  work_from_text)

SLICE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),  # "<work id>#p<paragraph index>": stable across reruns
    pa.field("work_id", pa.string(), nullable=False),
    pa.field("paragraph_index", pa.int32(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("words", pa.int32(), nullable=False),
    pa.field("slice", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("year", pa.int32()),
    pa.field("author", pa.string()),
    pa.field("source", pa.string(), nullable=False),
])
_META_KEYS = {"title": ("title",), "author": ("author", "authors"),
              "year": ("year", "first_published", "pub_year", "first_publication_year")}


@dataclass
class DatingContext:
    """Everything `date_work` needs besides the work, built once per run."""
    author_index: AuthorIndex | None = None
    style_model: Any = None
    slices: tuple[Slice, ...] = ()
    metadata: dict[str, MetadataRow] = field(default_factory=dict)
    extra_evidence: dict[str, list[Evidence]] = field(default_factory=dict)  # e.g. LLM answers by work id
    author_threshold: float = MATCH_THRESHOLD
    prior_coverage: bool = True  # author prior weighted by a public-domain corpus' coverage (few works after ~1925)


# ------------------------------------------------------------------------------------------------- reading
def work_from_record(rec: Record, path: Path) -> Work:
    """A Work from one input record: its text is parsed as a (possibly Gutenberg) book; title/author/year
    columns of a Parquet/JSONL row are used when present."""
    location = rec.metadata.get("path") or rec.id
    work = work_from_text(rec.text, fallback_id=rec.id, source=f"{path}" if rec.metadata.get("path") else
                          f"{path}#{location}")
    if not rec.metadata.get("path"):
        work.id = rec.id  # a document row keeps its own id, whatever a header inside its text says
    meta = {k: rec.metadata.get(k) for keys in _META_KEYS.values() for k in keys if rec.metadata.get(k)}
    title = next((meta[k] for k in _META_KEYS["title"] if k in meta), None)
    author = next((meta[k] for k in _META_KEYS["author"] if k in meta), None)
    year = next((meta[k] for k in _META_KEYS["year"] if k in meta), None)
    work.title = str(title) if title else work.title
    work.author = str(author) if author else work.author
    if year is not None and re.fullmatch(r"\d{3,4}(?:\.0)?", str(year)):
        work.metadata_year = int(float(year))
        work.metadata_source = f"{path.name} {rec.id} column year"
    return work


def iter_works(path: Path, fields: FieldMap) -> Iterator[Work | BadRecord]:
    for rec in read_records(path, fields):
        if isinstance(rec, BadRecord) and rec.location == "file" and rec.error.startswith("invalid UTF-8"):
            # older Project Gutenberg files ("-8.txt") are ISO-8859-1/cp1252: read them so, and say so
            raw = Path(rec.file).read_bytes().decode("cp1252", errors="replace")
            work = work_from_record(Record(id=path.stem, text=raw, source=path.parent.name,
                                           metadata={"path": path.name}), path)
            work.flags.append("decoded_cp1252")
            yield work
            continue
        yield rec if isinstance(rec, BadRecord) else work_from_record(rec, path)


def _bad_record_id(bad: BadRecord) -> str:
    return f"{Path(bad.file).stem}:{bad.location.replace(' ', '')}"


# ------------------------------------------------------------------------------------------------- dating
def date_file(path: Path, ctx: DatingContext, fields: FieldMap) -> list[dict[str, Any]]:
    """The works rows of one input file: every record becomes a row (an unreadable one with its reason)."""
    rows = []
    for item in iter_works(path, fields):
        if isinstance(item, BadRecord):
            rows.append(undated_row(_bad_record_id(item), item.file, f"unreadable input ({item.location}): {item.error}"))
            continue
        work = apply_metadata(item, ctx.metadata.get(item.id) or ctx.metadata.get(Path(item.source).stem))
        rows.append(date_work(work, ctx.author_index, ctx.style_model, ctx.slices,
                              extra_evidence=ctx.extra_evidence.get(work.id), author_threshold=ctx.author_threshold,
                              prior_coverage=ctx.prior_coverage))
    return rows


def dated_part(staging: Path, item: StagedInput) -> Path:
    return staging / f"{item.key}.parquet"


def date_file_cached(item: StagedInput, staging: Path, ctx: DatingContext, fields: FieldMap,
                     config_hash: str) -> tuple[Path, bool]:
    """Date one input unless this staging folder already holds its rows for the same bytes and config (a rerun
    after an interruption redoes only unfinished files). Returns (part, reused)."""
    part, done = dated_part(staging, item), staging / f"{item.key}.done.json"
    marker = read_json(done)
    if marker and marker.get("sha256") == item.sha256 and marker.get("config_hash") == config_hash and part.exists():
        return part, True
    done.unlink(missing_ok=True)
    rows = date_file(Path(item.path), ctx, fields)
    write_table_atomic(part, pa.Table.from_pylist(rows, schema=WORKS_SCHEMA))
    atomic_write_json(done, {"path": item.path, "sha256": item.sha256, "config_hash": config_hash,
                             "works": len(rows)})
    return part, False


def redate_listed_works(items: list[StagedInput], parts: list[Path], ctx: DatingContext, fields: FieldMap,
                        config_hash: str, staging: Path, confidence: float = LISTED_CONFIDENCE
                        ) -> tuple[list[Path], dict[str, Any]]:
    """The corpus-level pass: works that another dated work of the same author lists ("Author of ...") get that
    work's date as an upper bound (filters/dating/bibliography.py), and the input files holding them are dated
    again with it. Uses the first pass's dates only (no iteration to a fixed point, so no circular evidence).
    Resumable like the first pass: the cache key includes the new evidence. Returns the parts to publish."""
    rows_by_part = [read_rows([p]) for p in parts]
    listed = listing_evidence([r for rows in rows_by_part for r in rows], confidence=confidence)
    new_parts = []
    for item, part, rows in zip(items, parts, rows_by_part):
        extra = {r["id"]: listed[r["id"]] for r in rows if r["id"] in listed}
        if not extra:
            new_parts.append(part)
            continue
        merged = {wid: ctx.extra_evidence.get(wid, []) + ev for wid, ev in extra.items()}
        digest = short_hash(*(f"{wid}:{e.high}:{e.confidence}:{e.source}" for wid in sorted(extra)
                              for e in extra[wid]), length=12)
        sub_ctx = dataclasses.replace(ctx, extra_evidence={**ctx.extra_evidence, **merged})
        cross = staging / "listed"
        cross.mkdir(parents=True, exist_ok=True)
        new_part, _ = date_file_cached(item, cross, sub_ctx, fields, f"{config_hash}+{digest}")
        new_parts.append(new_part)
    report = {"works_bounded": len(listed), "inputs_redated": sum(a != b for a, b in zip(new_parts, parts)),
              "by_work": {wid: ev[0].detail["listing_work"] for wid, ev in sorted(listed.items())}}
    return new_parts, report


def unique_ids(rows: list[dict[str, Any]]) -> int:
    """Two inputs may carry the same id (the same ebook twice, two files named alike): later ones get "~2", "~3"
    and a `duplicate_id` flag, so every row stays addressable. Returns how many were renamed."""
    seen: dict[str, int] = {}
    renamed = 0
    for r in rows:
        n = seen.get(r["id"], 0) + 1
        seen[r["id"]] = n
        if n > 1:
            r["id"] = f"{r['id']}~{n}"
            r["flags"] = sorted(set(r["flags"]) | {"duplicate_id"})
            renamed += 1
    return renamed


# ------------------------------------------------------------------------------------------------- slicing
def _author_key(row: dict[str, Any]) -> str:
    if row.get("author_birth") is not None or row.get("author_death") is not None:
        return f"{(row.get('author') or '').lower()}|{row.get('author_birth')}|{row.get('author_death')}"
    return (row.get("author") or "").strip().lower()


def slice_corpus(paths: list[Path], rows: list[dict[str, Any]], opts: SlicingSettings, fields: FieldMap
                 ) -> tuple[SliceResult, dict[str, dict[str, Any]]]:
    """Re-read the inputs of works that have a slice, cut their paragraphs and assign them to splits.
    Returns the assignment and, per work id, the row it came from (for year/author/source columns)."""
    wanted: dict[tuple[str, str], dict[str, Any]] = {}  # (source, original id) -> row
    excluded: dict[str, str] = {}
    for r in rows:
        if r["slice"] is None:
            continue
        if (r["confidence"] or 0.0) < opts.min_confidence:
            excluded[r["id"]] = f"confidence {r['confidence']:.2f} below slicing.min_confidence"
            continue
        hit = sorted(set(r["flags"]) & set(opts.exclude_flags))
        if hit:
            excluded[r["id"]] = f"flag(s) excluded by slicing.exclude_flags: {', '.join(hit)}"
            continue
        wanted[(r["source"], re.sub(r"~\d+$", "", r["id"]))] = r
    works: list[SliceWork] = []
    row_of: dict[str, dict[str, Any]] = {}
    for path in paths:
        for item in iter_works(path, fields):
            if isinstance(item, BadRecord):
                continue
            row = wanted.pop((item.source, item.id), None)
            if row is None:
                continue
            text = drop_first_chapter(item.text)[0] if opts.drop_first_chapter else item.text
            works.append(SliceWork(row["id"], _author_key(row), row["slice"], row["confidence"] or 0.0,
                                   paragraph_units(text, opts.min_paragraph_words)))
            row_of[row["id"]] = row
    for (source, wid), row in wanted.items():  # an input changed between the two passes
        excluded[row["id"]] = f"not found again in {source} when slicing"
    result = build_slices(works, opts.budgets, opts.max_works_per_author, opts.split_by, opts.seed)
    result.excluded.update(excluded)
    # rows with no slice are not the slicer's business, but every work is accounted for in the stats
    for r in rows:
        if r["slice"] is None and r["id"] not in result.excluded:
            result.excluded[r["id"]] = "no slice: " + (r["undated_reason"] or f"dated {r['year']}, outside every slice")
    return result, row_of


def slice_tables(result: SliceResult, row_of: dict[str, dict[str, Any]]) -> dict[tuple[str, str], pa.Table]:
    out = {}
    for (sl, split), units in result.rows.items():
        out[(sl, split)] = pa.Table.from_pylist([
            {"id": f"{u.work_id}#p{u.index}", "work_id": u.work_id, "paragraph_index": u.index, "text": u.text,
             "words": u.words, "slice": sl, "split": split, "year": row_of[u.work_id]["year"],
             "author": row_of[u.work_id]["author"], "source": row_of[u.work_id]["source"]}
            for u in units], schema=SLICE_SCHEMA)
    return out


def read_rows(parts: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for p in parts:
        rows += pq.read_table(p).to_pylist()
    return rows


def works_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    by_slice: dict[str, int] = {}
    by_source: dict[str, int] = {}
    flags: dict[str, int] = {}
    for r in rows:
        by_slice[r["slice"] or "none"] = by_slice.get(r["slice"] or "none", 0) + 1
        if r["date_source"]:
            by_source[r["date_source"]] = by_source.get(r["date_source"], 0) + 1
        for f in r["flags"]:
            flags[f] = flags.get(f, 0) + 1
    return {"works": len(rows), "dated": sum(r["year"] is not None for r in rows),
            "undated": sum(r["year"] is None for r in rows), "by_slice": dict(sorted(by_slice.items())),
            "by_date_source": dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
            "flags": dict(sorted(flags.items(), key=lambda kv: -kv[1]))}

