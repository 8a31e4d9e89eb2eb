"""Readers: turn input files into `Record`s, and anything unreadable into `BadRecord`s (never an exception
that loses the rest of the file).

Formats: JSONL (plain, .gz, .zst), Parquet, WARC (.warc, .warc.gz; HTML responses -> main text through
datatrove's Trafilatura extractor), plain-text files (one document per file).

Damage is reported, never silent: a bad line or record costs one `BadRecord` whatever the exception; a loss that
covers more than one input record (a cut compressed stream, a Parquet without the text column) is a `LostRecords`
row whose `lost_records` says how many records it stands for (None: unknowable, e.g. everything after line N of a
truncated stream). `lost_count()` gives the number for any quarantine row, so callers can sum it.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
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


@dataclass
class LostRecords(BadRecord):
    """A quarantine row that stands for input records that could not be read one by one: `lost_records` is how
    many (from metadata, e.g. a Parquet's row count), or None when unknowable (the tail of a cut stream)."""

    lost_records: int | None = None


def lost_count(bad: BadRecord) -> int | None:
    """Input records lost under one quarantine row: 0 for an ordinary bad line or record (the row is that record,
    raw text included), N for a known file-level loss, None for an unknown one."""
    return bad.lost_records if isinstance(bad, LostRecords) else 0


class TruncatedStream(EOFError):
    """A compressed stream that ends inside a frame / member: the file was cut."""


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


def _is_our_output(p: Path) -> bool:
    try:
        m = json.loads((p / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and "pipeline" in m and "outputs" in m


def our_output(raw: str | os.PathLike) -> tuple[Path, list[str]]:
    """`output/dolma` (a folder holding one of our manifests) means its `data/`; `output/dolma:rejected` or
    `output/dolma:data,rejected` the kinds named. Anything else: (the path, [])."""
    text = str(raw)
    p = Path(text).expanduser()
    if p.is_dir() and _is_our_output(p):
        return p, ["data"]
    head, sep, tail = text.rpartition(":")
    if sep and tail and "/" not in tail:
        q = Path(head).expanduser()
        if q.is_dir() and _is_our_output(q):
            return q, [k.strip() for k in tail.split(",") if k.strip()]
    return p, []


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files named directly, plus every supported file under named folders (sorted, so runs are reproducible)."""
    out: list[Path] = []
    for raw in paths:
        p, kinds = our_output(raw)
        if kinds:  # one of our outputs (it holds our manifest.json): its published kinds, never _work/ or json files
            for k in kinds:
                if not (p / k).is_dir():
                    raise InputError(f"{p}: this output has no '{k}/' folder (kinds: "
                                     f"{', '.join(sorted(d.name for d in p.iterdir() if d.is_dir() and not d.name.startswith('_'))) or 'none'})")
                out.extend(sorted(f for f in (p / k).rglob("*") if f.is_file() and not f.name.startswith(".")
                                  and f.name.lower().endswith(SUPPORTED_SUFFIXES)))
            continue
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


def _only_whitespace(path: Path) -> bool:
    """An uncompressed file holding nothing but whitespace (read until its first other byte: usually one read)."""
    if path.suffix.lower() in (".gz", ".zst", ".bz2", ".xz"):
        return False
    with open(path, "rb") as f:
        while chunk := f.read(1 << 16):
            if chunk.strip(b" \t\r\n\x0b\x0c\xef\xbb\xbf"):
                return False
    return True


def read_records(path: str | os.PathLike, fields: FieldMap = FieldMap(), source: str | None = None
                 ) -> Iterator[Record | BadRecord]:
    path = Path(path)
    fmt = input_format(path)
    # a plain-text file is one document of a collection: the folder names the source
    source = source or (path.parent.name if fmt == "text" else _default_source(path))
    if path.stat().st_size == 0 or (fmt in ("jsonl", "text") and _only_whitespace(path)):
        yield BadRecord(str(path), "file", "empty file: no records")  # empty or whitespace-only: one rule
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
        return gzip.open(path, "rb")  # raises EOFError on a member cut short
    if name.endswith(".zst"):
        return io.BufferedReader(_ZstdFrames(open(path, "rb")), buffer_size=1 << 16)
    return open(path, "rb")


class _ZstdFrames(io.RawIOBase):
    """Decompress every zstd frame of a file, raising `TruncatedStream` if it ends inside a frame.

    zstandard's `stream_reader` returns a normal EOF on an incomplete frame (and, by default, stops after the first
    frame); a `decompressobj` per frame tells us: `eof` is False until the frame is complete, and `unused_data`
    holds the start of the next frame.
    """

    CHUNK = 1 << 16

    def __init__(self, fh: io.BufferedIOBase):
        import zstandard

        self._fh = fh
        self._dctx = zstandard.ZstdDecompressor()
        self._frame = None
        self._pending = b""  # compressed bytes not yet fed (start of the next frame)
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._pos >= len(self._out):
            if not self._decompress_more():
                return 0
        n = min(len(b), len(self._out) - self._pos)
        b[:n] = self._out[self._pos:self._pos + n]
        self._pos += n
        return n

    def _decompress_more(self) -> bool:
        while True:
            data, self._pending = self._pending or self._fh.read(self.CHUNK), b""
            if not data:
                if self._frame is not None and not self._frame.eof:
                    raise TruncatedStream("zstd stream ends inside a frame (file truncated)")
                return False
            if self._frame is None or self._frame.eof:
                self._frame = self._dctx.decompressobj()
            out = self._frame.decompress(data)
            if self._frame.eof:
                self._pending = self._frame.unused_data
            if out:
                self._out, self._pos = out, 0
                return True

    def close(self) -> None:
        self._fh.close()
        super().close()


# An input's `reason` / `reason_detail` (our `rejected/` kind read back: `--input output/dolma:rejected`, or any data
# with such a field) is kept as `upstream_reason` / `upstream_reason_detail`: in a run, `reason` marks a row that run
# rejected, and the steps pass such rows through untouched, so every row would come out rejected, unexamined.
UPSTREAM_KEYS = ("reason", "reason_detail")


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
    for key in UPSTREAM_KEYS:  # `reason` in a document's metadata means "rejected by this run" to the steps
        if key in meta:
            meta.setdefault(f"upstream_{key}", meta.pop(key))
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


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
MAX_NESTING = 100
BOM = b"\xef\xbb\xbf"


def _read_jsonl(path: Path, fields: FieldMap, source: str) -> Iterator[Record | BadRecord]:
    file = str(path)
    lineno = 0
    try:
        with _open_binary(path) as fh:
            for raw in fh:
                lineno += 1
                if lineno == 1 and raw.startswith(BOM):  # files exported on Windows
                    raw = raw[len(BOM):]
                if not raw.strip():
                    continue
                try:
                    item = _jsonl_line(raw, fields, source, file, f"line {lineno}")
                except Exception as e:  # whatever one line does (RecursionError, ...), it costs one row
                    item = BadRecord(file, f"line {lineno}", f"unreadable line: {type(e).__name__}: {_text(e)}",
                                     raw[:RAW_SNIPPET].decode("utf-8", "replace"))
                yield item
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        # A truncated/corrupt compressed stream: keep what was read, say that the rest is lost (count unknowable).
        yield LostRecords(file, f"after line {lineno}",
                          f"corrupt or truncated compressed stream ({_text(e)}): unknown number of records after "
                          f"line {lineno} lost", lost_records=None)
    except Exception as e:  # zstandard raises its own error type
        if type(e).__module__.startswith("zstandard"):
            yield LostRecords(file, f"after line {lineno}",
                              f"corrupt zstd stream ({_text(e)}): unknown number of records after line {lineno} lost",
                              lost_records=None)
        else:
            raise


def _jsonl_line(raw: bytes, fields: FieldMap, source: str, file: str, location: str) -> Record | BadRecord:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return BadRecord(file, location, f"invalid UTF-8 at byte {e.start}", raw[:RAW_SNIPPET].decode("utf-8", "replace"))
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        return BadRecord(file, location, f"invalid JSON: {e.msg} (column {e.colno})", line[:RAW_SNIPPET])
    except RecursionError:
        return BadRecord(file, location, "invalid JSON: nested too deeply to parse", line[:RAW_SNIPPET])
    if line.count("[") + line.count("{") > MAX_NESTING and _depth(obj) > MAX_NESTING:
        return BadRecord(file, location, f"JSON nested deeper than {MAX_NESTING} levels", line[:RAW_SNIPPET])
    if _SURROGATE_ESCAPE.search(line):  # "\ud800" is valid JSON but not encodable as UTF-8
        where = _lone_surrogate(obj)
        if where is not None:
            return BadRecord(file, location, f"lone UTF-16 surrogate in {where} (not encodable as UTF-8)",
                             line[:RAW_SNIPPET])
    return record_from_mapping(obj, fields, source, file, location)


def _depth(obj: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            deepest = max(deepest, d)
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return deepest


def _lone_surrogate(obj: Any, where: str = "the record") -> str | None:
    """Where a string (key or value) holds a lone surrogate, or None."""
    stack = [(obj, where)]
    while stack:
        o, w = stack.pop()
        if isinstance(o, str):
            try:
                o.encode("utf-8")
            except UnicodeEncodeError:
                return w
        elif isinstance(o, dict):
            for k, v in o.items():
                stack.append((k, f"a key of {w}"))
                stack.append((v, f"field '{k}'" if w == "the record" else f"{w}.{k}"))
        elif isinstance(o, list):
            stack.extend((v, f"{w}[{i}]") for i, v in enumerate(o))
    return None


def _text(e: BaseException | str, limit: int = RAW_SNIPPET) -> str:
    """An error message as one line of printable text (no raw bytes from a corrupt file)."""
    s = e if isinstance(e, str) else str(e)
    s = "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in s)
    return s if len(s) <= limit else s[:limit] + "..."


def _read_parquet(path: Path, fields: FieldMap, source: str) -> Iterator[Record | BadRecord]:
    import pyarrow.parquet as pq

    file = str(path)
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:
        yield LostRecords(file, "file", f"not a readable Parquet file ({_text(e)}): unknown number of records lost",
                          lost_records=None)
        return
    names = pf.schema_arrow.names
    total = pf.metadata.num_rows
    if fields.text_field not in names:
        yield LostRecords(file, "file", f"wrong schema: no column '{fields.text_field}' (columns: {', '.join(names)}); "
                                        f"{total} records lost", lost_records=total)
        return
    row = 0
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        try:
            objs = pf.read_row_group(rg).to_pylist()
        except Exception as e:
            yield LostRecords(file, f"row group {rg} (rows {row}-{row + n - 1})",
                              f"unreadable row group ({_text(e)}): {n} records lost", lost_records=n)
            row += n
            continue
        for obj in objs:
            try:
                item = record_from_mapping(obj, fields, source, file, f"row {row}")
            except Exception as e:
                item = BadRecord(file, f"row {row}", f"unreadable row: {type(e).__name__}: {_text(e)}")
            yield item
            row += 1


_EXTRACTOR = None


def html_to_text(html: str) -> str | None:
    """Main text of an HTML page through datatrove's Trafilatura extractor (precision-oriented, as FineWeb).

    Trafilatura's own `deduplicate` (datatrove's default: on) is off: it remembers text seen earlier in the same
    process and then extracts nothing from a page seen before, so a page's text would depend on which files shared
    a worker (the same WARC read twice in one process gave 22 records, then 1). Dedup is the dedup stage's job."""
    global _EXTRACTOR
    if _EXTRACTOR is None:
        from datatrove.pipeline.extractors import Trafilatura

        _EXTRACTOR = Trafilatura(favour_precision=True, deduplicate=False)
    return _EXTRACTOR.extract(html)


WARC_TYPES = {"warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation"}


def _read_warc(path: Path, source: str) -> Iterator[Record | BadRecord]:
    """HTML responses of a WARC. Records are cut by their own Content-Length (`_warc_records`), so a corrupt
    record costs one quarantine row and reading goes on at the next record; warcio parses each record alone."""
    from warcio.archiveiterator import ArchiveIterator

    file = str(path)
    n = 0  # response records seen
    for offset, block, problem in _warc_records(path):
        if block is None:  # a corrupt or cut record (type unknown) or a cut stream
            if problem.startswith("cut:"):
                yield LostRecords(file, f"byte {offset}", f"{problem[4:]}; unknown number of records after "
                                                          f"response record {n} lost", lost_records=None)
            elif problem.startswith("lost:"):
                yield LostRecords(file, f"byte {offset}", f"{problem[5:]} (after response record {n})",
                                  lost_records=None)
            else:
                yield BadRecord(file, f"byte {offset}", problem)
            continue
        try:
            rec = next(iter(ArchiveIterator(io.BytesIO(block))))
            if rec.rec_type not in WARC_TYPES:  # a damaged WARC-Type: maybe a response; never skipped silently
                yield BadRecord(file, f"byte {offset}", f"unknown WARC-Type {_text(str(rec.rec_type))!r} "
                                                        f"(damaged record header?)")
                continue
            if rec.rec_type != "response":  # warcinfo, request, metadata, ...: not documents
                continue
            n += 1
            location = f"record {n} ({rec.rec_headers.get_header('WARC-Record-ID')})"
            ctype = (rec.http_headers.get_header("Content-Type") if rec.http_headers else "") or ""
            if "html" not in ctype.lower():
                yield BadRecord(file, location, f"not an HTML response (Content-Type: {_text(ctype) or 'none'})")
                continue
            payload = rec.content_stream().read()
        except Exception as e:
            yield BadRecord(file, f"byte {offset}", f"unreadable WARC record: {type(e).__name__}: {_text(e)}")
            continue
        try:
            text = html_to_text(payload.decode("utf-8", "replace"))
        except Exception as e:
            yield BadRecord(file, location, f"HTML extraction failed: {_text(e)}")
            continue
        if not text or not text.strip():
            yield BadRecord(file, location, "no main text could be extracted from the HTML")
            continue
        url = rec.rec_headers.get_header("WARC-Target-URI")
        rid = (rec.rec_headers.get_header("WARC-Record-ID") or "").strip("<>").replace("urn:uuid:", "")
        yield Record(id=rid or content_id(text, source), text=text, source=source, url=url,
                     created=rec.rec_headers.get_header("WARC-Date"),
                     metadata={"warc_file": path.name, "content_type": ctype})


_WARC_LINE = re.compile(rb"(?:^|\n)WARC/1\.[01]\r?\n")
# where reading resumes after damage: a WARC version line, or a record whose version line is itself damaged (a
# blank line, one short line, then a WARC- header field), which then costs its own quarantine row
_WARC_RESYNC = re.compile(rb"(?:^|\n)WARC/1\.[01]\r?\n|\n\r?\n(?=[^\r\n]{1,40}\r?\nWARC-[A-Za-z-]+:)")
_BLANK = re.compile(rb"[\r\n]+")
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$")
MAX_WARC_HEADER = 1 << 20


def _warc_records(path: Path) -> Iterator[tuple[int, bytes | None, str | None]]:
    """(offset, one WARC record's bytes, None) for each whole record; (offset, None, problem) for damage.

    Records are cut by their Content-Length, checked against the blank line that must follow. A problem starting
    "cut:" means the file ends there (what would have followed is lost). After damage, reading resumes at the next
    record: the next gzip member (.warc.gz) or the next line starting "WARC/1.". Offsets: of the gzip member for
    .warc.gz, else of the stream.
    """
    gz = path.name.lower().endswith(".gz")
    buf = bytearray()
    at = 0  # stream offset of buf[0]
    member = 0  # gzip member that buf[0] came from
    skipping = False

    def drop(k: int) -> None:
        nonlocal at
        del buf[:k]
        at += k

    def here() -> int:
        return member if gz else at

    def bad(problem: str) -> tuple[int, None, str]:
        nonlocal skipping
        item = (here(), None, problem)
        drop(1)
        skipping = True
        return item

    def split(final: bool) -> Iterator[tuple[int, bytes | None, str | None]]:
        """Whole records at the front of `buf`; `final`: no more data will come."""
        nonlocal skipping
        while buf:
            if skipping:
                m = _WARC_RESYNC.search(buf)
                if not m:
                    drop(len(buf) if final else max(0, len(buf) - 16))
                    return
                drop(m.start() + (buf[m.start()] == 0x0A))
                skipping = False
            if m := _BLANK.match(buf):  # blank lines between records
                drop(m.end())
                continue
            if len(buf) < 5 and not final:
                return
            if not buf.startswith(b"WARC/"):
                yield bad(f"not a WARC record header at byte {here()}: "
                          f"{_text(bytes(buf[:60]).decode('latin-1'), 80)}; skipped to the next record")
                continue
            ends = [i for i in (buf.find(b"\r\n\r\n", 0, MAX_WARC_HEADER), buf.find(b"\n\n", 0, MAX_WARC_HEADER))
                    if i >= 0]
            if not ends:
                if final:
                    yield here(), None, "cut:the file ends inside the headers of a WARC record"
                    buf.clear()
                elif len(buf) >= MAX_WARC_HEADER:
                    yield bad(f"no end of WARC headers within {MAX_WARC_HEADER} bytes; skipped to the next record")
                    continue
                return
            head_end = min(ends)
            head_end += 4 if buf[head_end:head_end + 4] == b"\r\n\r\n" else 2
            m = _CONTENT_LENGTH.search(buf, 0, head_end)
            if m is None:
                yield bad(f"WARC record without Content-Length at byte {here()}; skipped to the next record")
                continue
            declared = int(m.group(1))
            end = head_end + declared
            if len(buf) < end + 2 and not final:
                return  # need more data
            if len(buf) < end:  # the file ends before the declared length: a cut, or a wrong Content-Length
                if _WARC_LINE.search(buf, head_end):
                    yield bad(f"WARC record at byte {here()}: Content-Length {declared} runs past the next record; "
                              f"skipped to the next record")
                    continue
                yield here(), None, (f"cut:the file ends inside a WARC record (Content-Length {declared}, "
                                     f"{len(buf) - head_end} bytes present)")
                buf.clear()
                return
            if buf[end:end + 1] not in (b"\r", b"\n", b""):
                yield bad(f"WARC record at byte {here()}: no blank line after its Content-Length ({declared}) bytes; "
                          f"skipped to the next record")
                continue
            yield here(), bytes(buf[:end]), None
            drop(end)

    for kind, data, off in (_gzip_member_chunks(path) if gz else _plain_chunks(path)):
        if kind == "gap":  # a corrupt gzip member: it and any record it cut short are one bad record
            error, nxt, damaged = data
            if damaged:  # the skipped bytes may have held more members: how many records is unknowable
                yield off, None, (f"lost:corrupt gzip member at byte {off}: {error}; bytes {off}-{nxt - 1} skipped "
                                  f"to the next intact gzip member, with {damaged} damaged-looking member "
                                  f"header(s) in them: unknown number of records lost")
            else:
                yield off, None, f"corrupt gzip member at byte {off}: {error}; skipped to the next gzip member"
            buf.clear()
            skipping = False
            continue
        if kind == "cut":
            items = list(split(final=True))
            yield from items
            if not any(p and p.startswith("cut:") for _, _, p in items):
                yield off, None, f"cut:{data}"
            return
        if not buf:
            member = off
        buf += data
        yield from split(final=False)
    yield from split(final=True)


def _plain_chunks(path: Path, size: int = 1 << 20) -> Iterator[tuple[str, bytes, int]]:
    with open(path, "rb") as fh:
        off = 0
        while chunk := fh.read(size):
            yield "data", chunk, off
            off += len(chunk)


def _gzip_member_chunks(path: Path, size: int = 1 << 20) -> Iterator[tuple[str, Any, int]]:
    """("data", bytes, member offset) as gzip members decompress; ("gap", message, offset) for a corrupt member
    (reading resumes at the next gzip header); ("cut", message, offset) when the file ends inside a member."""
    with open(path, "rb") as fh:
        member, pending = 0, b""
        while True:
            data = pending or fh.read(size)
            if not data:
                return
            stripped = data.lstrip(b"\0")  # zero padding between / after members
            member += len(data) - len(stripped)
            data, pending = stripped, b""
            if not data:
                continue
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            consumed = 0
            try:
                while True:
                    out = d.decompress(data)
                    if out:
                        yield "data", out, member
                    if d.eof:
                        pending = d.unused_data
                        consumed += len(data) - len(pending)
                        break
                    consumed += len(data)
                    data = fh.read(size)
                    if not data:
                        yield "cut", f"the file ends inside the gzip member at byte {member} (truncated)", member
                        return
            except zlib.error as e:
                nxt = _next_gzip_header(fh, member + 1)
                if nxt is None:
                    yield "cut", f"corrupt gzip member at byte {member} ({_text(e)}), no gzip member after it", member
                    return
                yield "gap", (_text(e), nxt, _damaged_headers(fh, member + 1, nxt)), member
                member = nxt
                fh.seek(nxt)
                continue
            member += consumed


# a gzip member header with one of ID1 ID2 CM damaged: the other two right, FLG's reserved bits clear, 4 bytes MTIME,
# XFL 0/2/4, OS 0-13 or 255 (random compressed bytes match this about once in 10^8 positions)
_DAMAGED_MAGIC = re.compile(rb"(?:.\x8b\x08|\x1f.\x08|\x1f\x8b.)[\x00-\x1f].{4}[\x00\x02\x04][\x00-\x0d\xff]",
                            re.DOTALL)


def _damaged_headers(fh, start: int, end: int, size: int = 1 << 20) -> int:
    """Byte runs in [start, end) that look like a gzip member header with one damaged byte: a skipped range that
    has them may have held more members (records) than the corrupt one."""
    fh.seek(start)
    found, tail, pos = 0, b"", start
    while pos < end:
        chunk = fh.read(min(size, end - pos))
        if not chunk:
            break
        found += len(_DAMAGED_MAGIC.findall(tail + chunk))
        tail = chunk[-9:]
        pos += len(chunk)
    return found


def _next_gzip_header(fh, start: int, size: int = 1 << 20) -> int | None:
    fh.seek(start)
    base, tail = start, b""
    while chunk := fh.read(size):
        hay = tail + chunk
        i = hay.find(b"\x1f\x8b\x08")
        if i >= 0:
            return base - len(tail) + i
        tail = hay[-2:]
        base += len(chunk)
    return None


def _read_text_file(path: Path, source: str) -> Iterator[Record | BadRecord]:
    file = str(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        yield BadRecord(file, "file", f"invalid UTF-8 at byte {e.start}", data[:RAW_SNIPPET].decode("utf-8", "replace"))
        return
    yield Record(id=path.stem, text=text, source=source, metadata={"path": path.name})
