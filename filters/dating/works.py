"""One work in, one dated row out: the pure function the `diachronic` flow maps over its input.

A work is a book's text plus what is known about it (title/author from the metadata CSV or the Gutenberg
header, an optional first-publication year). `date_work` gathers every piece of evidence, combines them and
returns the `works` row: every input work gets a row, with a date or with the reason it has none.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from corpora.gutenberg import read_gutenberg_text
from filters.dating.authors import MATCH_THRESHOLD, AuthorIndex, AuthorMatch, parse_life_dates
from filters.dating.bibliography import listed_titles
from filters.dating.combine import combine_evidence, work_flags
from filters.dating.evidence import Evidence
from filters.dating.periods import DEFAULT_SLICES, Slice
from filters.dating.text_evidence import text_evidence

WORKS_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("title", pa.string()),
    pa.field("author", pa.string()),
    pa.field("author_birth", pa.int32()),
    pa.field("author_death", pa.int32()),
    pa.field("year", pa.int32()),
    pa.field("year_low", pa.int32()),
    pa.field("year_high", pa.int32()),
    pa.field("slice", pa.string()),
    pa.field("confidence", pa.float64()),
    pa.field("date_source", pa.string()),
    pa.field("evidence", pa.string(), nullable=False),  # JSON: every piece of evidence + posterior summary
    pa.field("flags", pa.list_(pa.string()), nullable=False),
    pa.field("source", pa.string(), nullable=False),  # input file (and row) the work came from
    pa.field("undated_reason", pa.string()),  # set exactly when year is null
])


class MetadataError(ValueError):
    """The metadata CSV cannot be used at all; names the file and why."""


@dataclass
class Work:
    id: str
    text: str  # the book's text, Gutenberg boilerplate removed
    source: str
    title: str | None = None
    author: str | None = None
    translator: str | None = None
    editor: str | None = None
    metadata_year: int | None = None
    metadata_source: str | None = None
    header: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # set while reading (e.g. "decoded_cp1252")


@dataclass
class MetadataRow:
    id: str
    title: str | None
    author: str | None
    year: int | None
    location: str  # "meta.csv row 3"


@dataclass
class MetadataProblem:
    file: str
    row: str
    reason: str


def work_from_text(raw: str, fallback_id: str, source: str) -> Work:
    """A Work from a raw text: a Gutenberg file (header read, boilerplate stripped) or any plain book."""
    book = read_gutenberg_text(raw, fallback_id=fallback_id)
    h = book.header
    return Work(id=book.id, text=book.body, source=source, title=h.title, author=h.author,
                translator=h.translator, editor=h.editor, header=h.as_dict() if book.has_markers else {})


def load_metadata_csv(path: str | Path) -> tuple[dict[str, MetadataRow], list[MetadataProblem]]:
    """`id,title,author[,year]` (extra columns ignored; `first_published`/`pub_year` accepted for year).
    Bad rows come back as problems naming file, row and reason; a duplicate id is a problem too."""
    p = Path(path)
    if not p.exists():
        raise MetadataError(f"{p}: metadata CSV does not exist")
    rows: dict[str, MetadataRow] = {}
    problems: list[MetadataProblem] = []
    with open(p, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        if "id" not in cols:
            raise MetadataError(f"{p}: metadata CSV needs an 'id' column (found: {', '.join(reader.fieldnames or [])})")
        ycol = next((cols[c] for c in ("year", "first_published", "pub_year", "first_publication_year") if c in cols),
                    None)
        for i, row in enumerate(reader, start=2):
            loc = f"{p.name} row {i}"
            rid = (row.get(cols["id"]) or "").strip()
            if not rid:
                problems.append(MetadataProblem(str(p), f"row {i}", "empty id"))
                continue
            if rid in rows:
                problems.append(MetadataProblem(str(p), f"row {i}", f"duplicate id {rid!r} (first at {rows[rid].location})"))
                continue
            year = None
            raw_year = (row.get(ycol) or "").strip() if ycol else ""
            if raw_year and raw_year.upper() not in ("NA", "N/A", "NONE", "NULL"):
                m = re.fullmatch(r"(\d{3,4})(?:\.0)?", raw_year)
                if not m:
                    problems.append(MetadataProblem(str(p), f"row {i}", f"year {raw_year!r} is not a year"))
                else:
                    year = int(m.group(1))
            title = (row.get(cols["title"]) or "").strip() or None if "title" in cols else None
            author = (row.get(cols["author"]) or "").strip() or None if "author" in cols else None
            rows[rid] = MetadataRow(rid, title, author, year, loc)
    return rows, problems


def apply_metadata(work: Work, meta: MetadataRow | None) -> Work:
    """Metadata CSV values win over the Gutenberg header (the user knows their data)."""
    if meta is None:
        return work
    work.title = meta.title or work.title
    work.author = meta.author or work.author
    if meta.year is not None:
        work.metadata_year = meta.year
        work.metadata_source = meta.location
    return work


def date_work(work: Work, author_index: AuthorIndex | None = None, style_model=None,
              slices: tuple[Slice, ...] = DEFAULT_SLICES, extra_evidence: list[Evidence] | None = None,
              author_threshold: float = MATCH_THRESHOLD, prior_coverage: bool = True) -> dict[str, Any]:
    """The `works` row for one work (see WORKS_SCHEMA)."""
    evidence: list[Evidence] = []
    if work.metadata_year is not None:
        evidence.append(Evidence("metadata_year", "point", year=work.metadata_year, confidence=0.97,
                                 source=work.metadata_source or "metadata"))
    evidence += text_evidence(work.text, work.title)
    if style_model is not None:
        ev = style_model.evidence(work.text)
        if ev is not None:
            evidence.append(ev)
    evidence += list(extra_evidence or [])

    flags = list(work.flags) + work_flags(work.title, work.author, work.translator, work.editor, work.text[:20000])
    match: AuthorMatch | None = None
    if work.author:
        # life dates written into the author field ("Austen, Jane, 1775-1817") constrain the match
        _, b_hint, _ = parse_life_dates(work.author)
        if author_index is not None:
            match = author_index.match(work.author, birth_hint=b_hint, threshold=author_threshold)
            if match is None:
                flags.append("author_not_found")
    else:
        flags.append("no_author")
    result = combine_evidence(evidence, match, slices=slices, extra_flags=flags, prior_coverage=prior_coverage)
    listed = listed_titles(work.text)
    if listed:  # read by the corpus-level pass (filters/dating/bibliography.py) to bound the works listed
        result.summary["lists_titles"] = listed
    return {
        "id": work.id,
        "title": work.title,
        "author": work.author,
        "author_birth": match.record.birth if match else None,
        "author_death": match.record.death if match else None,
        "year": result.year,
        "year_low": result.year_low,
        "year_high": result.year_high,
        "slice": result.slice,
        "confidence": result.confidence,
        "date_source": result.date_source,
        "evidence": result.evidence_json(),
        "flags": result.flags,
        "source": work.source,
        "undated_reason": result.reason,
    }


def undated_row(work_id: str, source: str, reason: str, title: str | None = None, author: str | None = None
                ) -> dict[str, Any]:
    """The row of a work that could not even be read (unreadable file, bad encoding): kept, with the reason."""
    return {"id": work_id, "title": title, "author": author, "author_birth": None, "author_death": None,
            "year": None, "year_low": None, "year_high": None, "slice": None, "confidence": None,
            "date_source": None, "evidence": json.dumps({"evidence": [], "summary": {}}), "flags": ["unreadable"],
            "source": source, "undated_reason": reason}
