"""Sources of a mixture: which Parquet files a source reads, the columns a rule can name, and batches of those
columns, streamed.

A source names files or folders (`paths`) of document Parquet or anything the readers take (JSONL .gz/.zst,
WARC, text: converted once into staged Parquet under `_work/inputs/`, bad records quarantined). Columns a rule
can name, besides the data's own:
- Hive partitions: a folder `key=value` under a named folder gives the string column `key` (`data/lang=de/`).
- attributes (`attributes:` folders of Parquet with `id` + columns, Dolma-style): joined by id. When the attribute
  rows list the same ids in the same order as the data rows (as a pipeline that writes both does), the join
  streams and checks every id; otherwise the attribute columns are loaded into memory and hash-joined (said in
  the log). A data row without attributes gets nulls; an id twice in the attributes is an error.
- `metadata.key`: a key of the JSON string column `metadata` (our shards, staged JSONL: Dolma's nested
  `metadata` object), or a field of a struct column.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from corpora.config import StrictModel
from corpora.hashing import short_hash
from corpora.readers import FieldMap, InputError, expand_inputs, our_output
from corpora.records import CORE_FIELDS
from corpora.staging import StagedInput, input_dir, parts, stage_as_parquet

PARTITION = re.compile(r"^([A-Za-z_][\w\-]*)=(.*)$")
SAMPLE_DIR = Path(__file__).parent / "sample_data"
SAMPLE_PREFIX = "sample:"  # `sample:web_sample.jsonl`: a file of the bundled sample data


def source_path(raw: str) -> Path:
    if raw.startswith(SAMPLE_PREFIX):
        return SAMPLE_DIR / raw[len(SAMPLE_PREFIX):]
    return Path(raw).expanduser()


class MixSource(StrictModel):
    name: str = Field(min_length=1)
    paths: list[str] = Field(min_length=1)  # files or folders; Hive `key=value` folders become columns
    attributes: list[str] = []  # Parquet folders/files with `id` + attribute columns, joined by id
    text_field: str = "text"
    id_field: str = "id"
    include: list[str] = []  # rules that must all hold (see corpora/mix_rules.py)
    exclude: list[str] = []  # a row matching any of these is left out
    folder_columns: list[str] = []  # names for the folder levels under a named folder, e.g. [slice, split]
    share: float | None = Field(None, ge=0)  # target share of tokens (by: source); or `shares` / `shares_file`
    max_epochs: float | None = Field(None, gt=0)  # cap on repetitions per document (default: the mix's)
    columns: list[str] | None = None  # data/attribute columns carried into the output (null: all)

    @field_validator("include", "exclude", mode="before")
    @classmethod
    def _one_or_many(cls, v):
        return [v] if isinstance(v, str) else v

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[\w.\-]+", v):
            raise ValueError(f"source name {v!r}: use letters, digits, '_', '-', '.'")
        return v


@dataclass(frozen=True)
class SourceFile:
    path: Path  # the Parquet file read (staged, for non-Parquet inputs)
    origin: str  # the input as given
    partitions: tuple[tuple[str, str], ...]
    rows: int
    offset: int  # first row's position in the source (for aligned attributes)

    @property
    def identity(self) -> str:
        st = self.path.stat()
        return f"{self.path}\0{st.st_size}\0{st.st_mtime_ns}\0{self.partitions}"

    @property
    def key(self) -> str:
        return f"{self.path.stem[:40]}-{short_hash(self.identity, length=12)}"


@dataclass
class ResolvedSource:
    spec: MixSource
    files: list[SourceFile]
    schema: pa.Schema  # data columns + partition columns + attribute columns
    data_names: list[str]
    partition_names: list[str]
    attribute_files: list[Path] = field(default_factory=list)
    attribute_names: list[str] = field(default_factory=list)
    attributes_aligned: bool = True
    quarantine_parts: list[Path] = field(default_factory=list)
    staged: list[dict] = field(default_factory=list)  # per non-Parquet input: its staging done.json
    _attr_table: pa.Table | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def identity(self) -> str:
        parts_ = [f.identity for f in self.files]
        for p in self.attribute_files:
            st = p.stat()
            parts_.append(f"attr:{p}\0{st.st_size}\0{st.st_mtime_ns}")
        return short_hash(*parts_, length=16)

    def column_type(self, name: str) -> pa.DataType | None:
        """Type of a column a rule names: a real column, `metadata.key` of a JSON metadata column (null type:
        known only per row), or `struct.field`."""
        if name in self.schema.names:
            return self.schema.field(name).type
        base, _, key = name.partition(".")
        if key and base in self.schema.names:
            typ = self.schema.field(base).type
            if pa.types.is_string(typ) or pa.types.is_large_string(typ):
                return pa.null()
            if pa.types.is_struct(typ):
                for k in key.split("."):
                    if not pa.types.is_struct(typ) or typ.get_field_index(k) < 0:
                        return None
                    typ = typ.field(k).type
                return typ
        return None

    def read(self, sf: SourceFile, columns: list[str], batch_rows: int = 8192) -> Iterator[pa.Table]:
        """Batches of `columns` (data, partition, attribute, `metadata.key` / struct columns) of one file, in
        row order."""
        wanted_attr = [c for c in columns if c in self.attribute_names]
        derived = [c for c in columns if c not in self.schema.names]
        bases = [c.partition(".")[0] for c in derived]
        data_cols = list(dict.fromkeys([c for c in columns if c in self.data_names and c not in wanted_attr]
                                       + [b for b in bases if b in self.data_names]
                                       + ([self.spec.id_field] if wanted_attr else [])))
        pf = pq.ParquetFile(sf.path)
        start = 0
        batches = pf.iter_batches(batch_size=batch_rows, columns=data_cols) if data_cols else None
        while start < sf.rows:
            if batches is not None:
                batch = next(batches)
                t = pa.Table.from_batches([batch])
            else:
                t = pa.table({"__n": pa.nulls(min(batch_rows, sf.rows - start), pa.null())}).drop(["__n"])
            n = t.num_rows
            for k, v in sf.partitions:
                if k in columns:
                    t = t.append_column(k, pa.array([v] * n, pa.string()))
            if wanted_attr:
                t = self._join_attributes(t, sf.offset + start, wanted_attr, sf)
            for c in derived:
                t = t.append_column(c, _derived(t, c))
            yield t.select(columns)
            start += n

    def _join_attributes(self, t: pa.Table, offset: int, names: list[str], sf: SourceFile) -> pa.Table:
        idf = self.spec.id_field
        ids = t.column(idf)
        if self.attributes_aligned:
            at = _read_rows(self.attribute_files, offset, t.num_rows, ["id"] + names)
            if at.num_rows != t.num_rows or not ids.equals(at.column("id").cast(ids.type)):
                raise InputError(f"{sf.origin}: attribute rows do not list the data's ids in order at rows "
                                 f"{offset - sf.offset}..{offset - sf.offset + t.num_rows - 1}")
        else:
            if self._attr_table is None:
                self._attr_table = _load_attributes(self.attribute_files, self.attribute_names)
            left = pa.table({"__id": ids.cast(pa.string()), "__row": pa.array(range(t.num_rows), pa.int64())})
            at = left.join(self._attr_table, keys="__id", right_keys="id", join_type="left outer")
            at = at.sort_by("__row")
        for name in names:
            col = at.column(name)
            if name in t.column_names:  # an attribute column wins over a data column of the same name
                t = t.set_column(t.column_names.index(name), name, col)
            else:
                t = t.append_column(name, col)
        return t


def _derived(t: pa.Table, name: str) -> pa.Array:
    base, _, key = name.partition(".")
    col = t.column(base)
    if pa.types.is_struct(col.type):
        out = col
        for k in key.split("."):
            out = pc.struct_field(out, k)
        return out
    values = []
    keys = key.split(".")
    for raw in col.to_pylist():
        v = None
        if raw:
            try:
                v = json.loads(raw)
            except (TypeError, ValueError):
                v = None
            for k in keys:
                v = v.get(k) if isinstance(v, dict) else None
        values.append(v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, sort_keys=True))
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types in one batch: compare as strings
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _read_rows(files: list[Path], offset: int, n: int, columns: list[str]) -> pa.Table:
    """Rows [offset, offset + n) of the concatenation of `files` (row groups read as needed)."""
    out, pos = [], 0
    for f in files:
        pf = pq.ParquetFile(f)
        for rg in range(pf.num_row_groups):
            m = pf.metadata.row_group(rg).num_rows
            lo, hi = max(offset, pos), min(offset + n, pos + m)
            if lo < hi:
                out.append(_cached_row_group(f, rg, columns).slice(lo - pos, hi - lo))
            pos += m
            if pos >= offset + n:
                return pa.concat_tables(out, promote_options="permissive") if out else pa.table({})
    return pa.concat_tables(out, promote_options="permissive") if out else pa.table({c: [] for c in columns})


_RG_CACHE: dict = {}


def _cached_row_group(f: Path, rg: int, columns: list[str]) -> pa.Table:
    key = (str(f), rg, tuple(columns))
    if key not in _RG_CACHE:
        _RG_CACHE.clear()  # one row group at a time: memory stays flat
        _RG_CACHE[key] = pq.ParquetFile(f).read_row_group(rg, columns=columns)
    return _RG_CACHE[key]


def _load_attributes(files: list[Path], names: list[str]) -> pa.Table:
    t = pa.concat_tables([pq.read_table(f, columns=["id"] + [n for n in names if n in pq.read_schema(f).names])
                          for f in files], promote_options="permissive")
    t = t.set_column(0, "id", t.column("id").cast(pa.string()))
    if pc.count_distinct(t.column("id")).as_py() != t.num_rows:
        counts = t.group_by("id").aggregate([("id", "count")]).filter(pc.field("id_count") > 1)
        raise InputError(f"{files[0].parent}: attribute id {counts.column('id')[0].as_py()!r} appears "
                         f"{counts.column('id_count')[0].as_py()} times")
    return t


def _partitions(path: Path, root: Path, names: list[str] = ()) -> tuple[tuple[str, str], ...]:
    """Columns from the folders between `root` and the file: `key=value` folders (Hive), and the folder at
    level i named `names[i]` (e.g. diachronic `slices/<slice>/<split>/`)."""
    if path == root:
        return ()
    out = []
    for i, part in enumerate(path.relative_to(root).parts[:-1]):
        m = PARTITION.match(part)
        if m:
            out.append((m.group(1), m.group(2)))
        elif i < len(names):
            out.append((names[i], part))
    return tuple(out)


EMPTY_FILE = "empty file: no records"  # the readers' reason (corpora/readers.py:read_records), one rule


def _empty(path: Path) -> bool:
    """0 bytes, or nothing but whitespace (the readers' rule for an empty file)."""
    from corpora.readers import _only_whitespace

    return path.stat().st_size == 0 or _only_whitespace(path)


def _parquet_files(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """(attribute Parquet files, empty ones to quarantine). One of our outputs (a folder holding our manifest)
    means its `attributes/` (what `dolma attributes_only` publishes), `out:kind` the kinds named; never `_work/`."""
    files, empty = [], []
    for raw in paths:
        p, kinds = our_output(raw)
        if kinds:
            if Path(str(raw)).expanduser().is_dir():  # the bare folder: its attributes, not its data
                kinds = ["attributes"]
            dirs = []
            for k in kinds:
                if not (p / k).is_dir():
                    have = sorted(d.name for d in p.iterdir() if d.is_dir() and not d.name.startswith("_"))
                    raise InputError(f"{p}: this output has no '{k}/' folder for attributes (kinds: "
                                     f"{', '.join(have) or 'none'})")
                dirs.append(p / k)
        else:
            if not p.exists():
                raise InputError(f"{p}: attributes do not exist")
            dirs = [p]
        for d in dirs:
            found = sorted(f for f in d.rglob("*.parquet") if not f.name.startswith(".")) if d.is_dir() else [d]
            for f in found:
                (empty if _empty(f) else files).append(f)
    if not files and not empty:
        raise InputError(f"{paths[0]}: no attribute Parquet files")
    for f in files:
        try:
            pq.read_schema(f)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds
            raise InputError(f"{f}: attributes: not a readable Parquet file ({str(e).splitlines()[0]})") from None
    return files, empty


def _quarantine_empty(files: list[Path], dest: Path) -> tuple[list[Path], list[dict]]:
    """A quarantine row `empty file: no records` per file (counted as one record read and one quarantined, as
    the readers count it); returns (quarantine parts, staged-like counts)."""
    from corpora.records import QUARANTINE_SCHEMA
    from corpora.shards import write_table_atomic

    if not files:
        return [], []
    out = Path(dest) / f"empty-files-{short_hash(*map(str, files), length=12)}.parquet"
    if not out.is_file():
        write_table_atomic(out, pa.table({"file": [str(f.resolve()) for f in files], "location": ["file"] * len(files),
                                          "error": [EMPTY_FILE] * len(files), "raw": [None] * len(files)},
                                         schema=QUARANTINE_SCHEMA))
    return [out], [{"path": str(f.resolve()), "records": 1, "quarantined": 1, "lost_records": 0, "lost_unknown": 0,
                    "duplicate_ids_renamed": 0} for f in files]


def _readable_parquet(p: Path) -> bool:
    if _empty(p):
        return False
    try:
        pq.ParquetFile(p)
    except Exception:  # noqa: BLE001
        return False
    return True


def _partition_root(p: Path, root: Path) -> Path:
    """The folder that partition columns are counted from: for one of our outputs, its kind folder (data/)."""
    base, kinds = our_output(root)
    for k in kinds:
        if p.is_relative_to(base / k):
            return base / k
    return root


def resolve_source(spec: MixSource, work_dir: Path | None = None, stage: bool = True) -> ResolvedSource:
    """The source's files (non-Parquet inputs staged into Parquet under `work_dir`, when `stage`), its schema
    and its attribute files. Raises InputError (one line, naming the file) for what cannot be used."""
    fields = FieldMap(text_field=spec.text_field, id_field=spec.id_field)
    files: list[SourceFile] = []
    quarantine: list[Path] = []
    staged: list[dict] = []
    schemas: list[tuple[Path, pa.Schema]] = []
    offset = 0
    for raw in spec.paths:
        root = source_path(raw).resolve()
        for p in expand_inputs([root]):
            proot = _partition_root(p, root)
            parts_ = _partitions(p, proot, spec.folder_columns) if proot.is_dir() else ()
            if p.name.endswith(".parquet") and _readable_parquet(p):
                targets = [p]
            elif p.name.endswith(".parquet") and not stage:  # empty/unreadable: quarantined by the flow's staging
                continue
            elif not stage:  # preflight: a staged input's columns, without staging it
                rename = {"id": spec.id_field, "text": spec.text_field}
                schemas.append((p, pa.schema([f.with_name(rename.get(f.name, f.name)) for f in CORE_FIELDS])))
                continue
            else:
                item = StagedInput.from_path(p)
                dest = input_dir(Path(work_dir) / spec.name, item)
                done = stage_as_parquet(item, dest, fields)
                staged.append({"path": str(p), **{k: done.get(k, 0) for k in (
                    "records", "quarantined", "lost_records", "lost_unknown", "duplicate_ids_renamed")}})
                targets = parts(dest, "kept")
                quarantine += parts(dest, "quarantine")
            for t in targets:
                try:
                    pf = pq.ParquetFile(t)
                except Exception as e:
                    raise InputError(f"{p}: not a readable Parquet file ({e})") from None
                schemas.append((p, pf.schema_arrow))
                files.append(SourceFile(t, str(p), parts_, pf.metadata.num_rows, offset))
                offset += pf.metadata.num_rows
    merged = pa.schema([])
    for p, s in schemas:
        for name in (spec.id_field, spec.text_field):
            if name not in s.names:
                if name == spec.text_field:
                    raise InputError(f"{p}: source '{spec.name}': no '{name}' column (set text_field; columns: "
                                     f"{', '.join(s.names)})")
        try:
            merged = pa.unify_schemas([merged, s], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InputError(f"{p}: source '{spec.name}': its columns do not fit the files before it ({e})") from None
    if schemas and not pa.types.is_string(merged.field(spec.text_field).type) \
            and not pa.types.is_large_string(merged.field(spec.text_field).type):
        raise InputError(f"{schemas[0][0]}: source '{spec.name}': text column '{spec.text_field}' is "
                         f"{merged.field(spec.text_field).type}, not a string")
    data_names = list(merged.names)
    pnames = list(dict.fromkeys(k for f in files for k, _ in f.partitions))
    for k in pnames:
        if k not in merged.names:
            merged = merged.append(pa.field(k, pa.string()))
    src = ResolvedSource(spec, files, merged, data_names, pnames, quarantine_parts=quarantine, staged=staged)
    if spec.attributes:
        afiles, empty = _parquet_files(spec.attributes)
        if empty and stage:
            qparts, counts = _quarantine_empty(empty, Path(work_dir) / spec.name)
            src.quarantine_parts += qparts
            src.staged += counts
        if not afiles:
            raise InputError(f"{empty[0]}: source '{spec.name}': every attribute file is empty")
        aschema = pa.unify_schemas([pq.read_schema(f) for f in afiles], promote_options="permissive")
        if "id" not in aschema.names:
            raise InputError(f"{afiles[0]}: attributes have no 'id' column")
        src.attribute_files = afiles
        src.attribute_names = [n for n in aschema.names if n != "id"]
        for f in aschema:
            if f.name == "id":
                continue
            i = merged.get_field_index(f.name)
            merged = merged.set(i, f) if i >= 0 else merged.append(f)
        src.schema = merged
        src.attributes_aligned = _aligned(files, afiles, spec.id_field) if files else True
    return src


def _aligned(files: list[SourceFile], afiles: list[Path], id_field: str) -> bool:
    """Do the attribute files list the data's ids, in the same order? (streams both id columns once)"""
    total = sum(f.rows for f in files)
    if sum(pq.ParquetFile(f).metadata.num_rows for f in afiles) != total:
        return False

    def ids(paths, col):
        for p in paths:
            for b in pq.ParquetFile(p).iter_batches(batch_size=65536, columns=[col]):
                yield b.column(0).cast(pa.string())

    a_iter, buf = ids(afiles, "id"), None
    for d in ids([f.path for f in files], id_field):
        need = d
        while len(need):
            if buf is None or not len(buf):
                buf = next(a_iter)
            k = min(len(need), len(buf))
            if not need.slice(0, k).equals(buf.slice(0, k)):
                return False
            need, buf = need.slice(k), buf.slice(k)
    return True
