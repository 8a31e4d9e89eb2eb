"""Readers: turn input files into `Record`s, and anything unreadable into `BadRecord`s (never an exception
that loses the rest of the file).

Formats: JSONL (plain, .gz, .zst), Parquet, WARC (.warc, .warc.gz; HTML responses -> main text through
datatrove's Trafilatura extractor), plain-text files (one document per file).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from corpora.hashing import content_id
from corpora.records import BadRecord, Record

JSONL_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".jsonl.zst", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
WARC_SUFFIXES = (".warc", ".warc.gz")
TEXT_SUFFIXES = (".txt",)
SUPPORTED_SUFFIXES = JSONL_SUFFIXES + PARQUET_SUFFIXES + WARC_SUFFIXES + TEXT_SUFFIXES
RAW_SNIPPET = 200


class InputError(ValueError):
    """An input path that cannot be used at all (missing, unsupported)."""


@dataclass(frozen=True)
class FieldMap:
    text_field: str = "text"
    id_field: str = "id"
    source_field: str = "source"
    url_field: str = "url"
    created_field: str = "created"


def input_format(path: Path) -> str:
    name = path.name.lower()
    for fmt, suffixes in (
        ("warc", WARC_SUFFIXES),
        ("jsonl", JSONL_SUFFIXES),
        ("parquet", PARQUET_SUFFIXES),
        ("text", TEXT_SUFFIXES),
    ):
        if name.endswith(suffixes):
            return fmt
    raise InputError(f"{path}: unsupported input format (supported: {', '.join(SUPPORTED_SUFFIXES)})")


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus every supported file under named folders (sorted, so runs are reproducible)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"{p}: input does not exist")
        if p.is_dir():
            found = sorted(
                f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(SUPPORTED_SUFFIXES)
                and not f.name.startswith(".")
            )
            if not found:
                raise InputError(f"{p}: folder holds no supported input files ({', '.join(SUPPORTED_SUFFIXES)})")
            out.extend(found)
        else:
            input_format(p)  # raises on unsupported
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for p in out:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            unique.append(rp)
    return unique


def read_records(path: str | os.PathLike, fields: FieldMap = FieldMap(), source: str | None = None
                 ) -> Iterator[Record | BadRecord]:
    path = Path(path)
    fmt = input_format(path)
    # a plain-text file is one document of a collection: the folder names the source
    source = source or (path.parent.name if fmt == "text" else _default_source(path))
    if path.stat().st_size == 0:
        yield BadRecord(str(path), "file", "empty file: no records")
        return
    if fmt == "jsonl":
        yield from _read_jsonl(path, fields, source)
    elif fmt == "parquet":
        yield from _read_parquet(path, fields, source)
    elif fmt == "warc":
        yield from _read_warc(path, source)
    else:
        yield from _read_text_file(path, source)


def _default_source(path: Path) -> str:
    name = path.name
    for suf in SUPPORTED_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _open_binary(path: Path) -> io.BufferedIOBase:
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith(".zst"):
        import zstandard

        fh = open(path, "rb")
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))
    return open(path, "rb")


def record_from_mapping(obj: Any, fields: FieldMap, source: str, file: str, location: str) -> Record | BadRecord:
    """Map one parsed JSON object / Parquet row onto the record model."""
    if not isinstance(obj, dict):
        return BadRecord(file, location, f"expected a JSON object, got {type(obj).__name__}", _snippet(obj))
    text = obj.get(fields.text_field)
    if text is None:
        return BadRecord(file, location, f"missing text field '{fields.text_field}'", _snippet(obj))
    if not isinstance(text, str):
        return BadRecord(file, location, f"text field '{fields.text_field}' is {type(text).__name__}, not a string",
                         _snippet(obj))
    meta = {k: v for k, v in obj.items() if k not in (fields.text_field, fields.id_field, fields.source_field,
                                                      fields.url_field, fields.created_field)}
    nested = meta.pop("metadata", None)
    if isinstance(nested, dict):  # Dolma format: metadata is an object; flatten it into ours
        meta = {**nested, **meta}
    elif nested is not None:
        meta["metadata"] = nested
    url = obj.get(fields.url_field)
    if url is None and isinstance(nested, dict):
        url = nested.get("url")
    rec_source = obj.get(fields.source_field) or source
    rid = obj.get(fields.id_field)
    rid = str(rid) if rid not in (None, "") else content_id(text, str(rec_source))
    created = obj.get(fields.created_field)
    return Record(id=rid, text=text, source=str(rec_source), url=None if url is None else str(url),
                  created=None if created is None else str(created), metadata=meta)


def _snippet(obj: Any) -> str:
    s = obj if isinstance(obj, str) else repr(obj)
    return s[:RAW_SNIPPET]


def _read_jsonl(path: Path, fields: FieldMap, source: str) -> Iterator[Record | BadRecord]:
    file = str(path)
    lineno = 0
    try:
        with _open_binary(path) as fh:
            for raw in fh:
                lineno += 1
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    yield BadRecord(file, f"line {lineno}", f"invalid UTF-8 at byte {e.start}",
                                    raw[:RAW_SNIPPET].decode("utf-8", "replace"))
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    yield BadRecord(file, f"line {lineno}", f"invalid JSON: {e.msg} (column {e.colno})",
                                    line[:RAW_SNIPPET])
                    continue
                yield record_from_mapping(obj, fields, source, file, f"line {lineno}")
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        # A truncated/corrupt compressed stream: keep what was read, quarantine the unreadable tail.
        yield BadRecord(file, f"after line {lineno}", f"corrupt or truncated compressed stream: {e}")
    except Exception as e:  # zstandard raises its own error type
        if type(e).__module__.startswith("zstandard"):
            yield BadRecord(file, f"after line {lineno}", f"corrupt or truncated zstd stream: {e}")
        else:
            raise


def _read_parquet(path: Path, fields: FieldMap, source: str) -> Iterator[Record | BadRecord]:
    import pyarrow.parquet as pq

    file = str(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        yield BadRecord(file, "file", f"not a readable Parquet file: {e}")
        return
    names = pf.schema_arrow.names
    if fields.text_field not in names:
        yield BadRecord(file, "file", f"wrong schema: no column '{fields.text_field}' (columns: {', '.join(names)})")
        return
    row = 0
    for rg in range(pf.num_row_groups):
        try:
            table = pf.read_row_group(rg)
        except Exception as e:
            yield BadRecord(file, f"row group {rg}", f"unreadable row group: {e}")
            continue
        for obj in table.to_pylist():
            yield record_from_mapping(obj, fields, source, file, f"row {row}")
            row += 1


_EXTRACTOR = None


def html_to_text(html: str) -> str | None:
    """Main text of an HTML page through datatrove's Trafilatura extractor (precision-oriented, as FineWeb)."""
    global _EXTRACTOR
    if _EXTRACTOR is None:
        from datatrove.pipeline.extractors import Trafilatura

        _EXTRACTOR = Trafilatura(favour_precision=True)
    return _EXTRACTOR.extract(html)


def _read_warc(path: Path, source: str) -> Iterator[Record | BadRecord]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    file = str(path)
    n = 0
    try:
        with open(path, "rb") as fh:
            for rec in ArchiveIterator(fh):
                if rec.rec_type != "response":
                    continue
                n += 1
                location = f"record {n} ({rec.rec_headers.get_header('WARC-Record-ID')})"
                ctype = (rec.http_headers.get_header("Content-Type") if rec.http_headers else "") or ""
                if "html" not in ctype.lower():
                    yield BadRecord(file, location, f"not an HTML response (Content-Type: {ctype or 'none'})")
                    continue
                try:
                    payload = rec.content_stream().read()
                    html = payload.decode("utf-8", "replace")
                    text = html_to_text(html)
                except Exception as e:
                    yield BadRecord(file, location, f"HTML extraction failed: {e}")
                    continue
                if not text or not text.strip():
                    yield BadRecord(file, location, "no main text could be extracted from the HTML")
                    continue
                url = rec.rec_headers.get_header("WARC-Target-URI")
                rid = (rec.rec_headers.get_header("WARC-Record-ID") or "").strip("<>").replace("urn:uuid:", "")
                yield Record(id=rid or content_id(text, source), text=text, source=source, url=url,
                             created=rec.rec_headers.get_header("WARC-Date"),
                             metadata={"warc_file": path.name, "content_type": ctype})
    except (ArchiveLoadFailed, EOFError, zlib.error, OSError) as e:
        yield BadRecord(file, f"after record {n}", f"corrupt or truncated WARC: {e}")


def _read_text_file(path: Path, source: str) -> Iterator[Record | BadRecord]:
    file = str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield BadRecord(file, "file", f"invalid UTF-8 at byte {e.start}", data[:RAW_SNIPPET].decode("utf-8", "replace"))
        return
    yield Record(id=path.stem, text=text, source=source, metadata={"path": path.name})
