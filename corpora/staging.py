"""Per-input staging: what one input file became (kept / rejected / quarantined rows, per-step stats).

`_work/inputs/<key>/` holds `kept/`, `rejected/`, `quarantine/` Parquet parts, `read.json`, `steps/*.json` and,
written last and atomically, `done.json`. An input is finished only when `done.json` exists and names the same
input sha256 and config hash; anything else in the folder is redone.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from corpora.atomic import atomic_write_json, read_json
from corpora.hashing import sha256_file, short_hash


@dataclass(frozen=True)
class StagedInput:
    key: str
    path: str
    sha256: str
    size: int

    @classmethod
    def from_path(cls, path: Path) -> "StagedInput":
        sha = sha256_file(path)
        return cls(key=f"{path.stem[:40]}-{short_hash(str(path), sha, length=12)}", path=str(path), sha256=sha,
                   size=path.stat().st_size)


@dataclass(frozen=True)
class TaskLayout:
    """Which input each datatrove rank processes, and where its staging folder is."""

    root: str
    tasks: tuple[StagedInput, ...]
    config_hash: str

    def task(self, rank: int) -> StagedInput:
        return self.tasks[rank]

    def dir(self, rank: int) -> Path:
        return Path(self.root) / self.tasks[rank].key


def input_dir(root: str | Path, item: StagedInput) -> Path:
    return Path(root) / item.key


def is_done(root: str | Path, item: StagedInput, config_hash: str) -> bool:
    done = read_json(input_dir(root, item) / "done.json")
    return bool(done) and done.get("sha256") == item.sha256 and done.get("config_hash") == config_hash


def reset_dir(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def write_step_stats(stage_dir: Path, order: int, name: str, stats: dict) -> None:
    atomic_write_json(stage_dir / "steps" / f"{order:02d}-{name}.json", {"name": name, **stats})


def read_step_stats(stage_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((stage_dir / "steps").glob("*.json"))]


def mark_done(stage_dir: Path, item: StagedInput, config_hash: str, counts: dict) -> dict:
    read = read_json(stage_dir / "read.json", {})
    done = {
        "path": item.path, "sha256": item.sha256, "config_hash": config_hash,
        "records": read.get("records", 0), "quarantined": read.get("quarantined", 0),
        "kept": counts["kept"], "rejected": counts["rejected"],
        # input records behind file-level quarantine rows: known count, and rows whose count is unknowable
        "lost_records": read.get("lost_records", 0), "lost_unknown": read.get("lost_unknown", 0),
        "duplicate_ids_renamed": read.get("duplicate_ids_renamed", 0),
        "steps": read_step_stats(stage_dir),
    }
    if done["kept"] + done["rejected"] + done["quarantined"] != done["records"]:
        raise RuntimeError(
            f"{item.path}: row invariant broken in staging: kept {done['kept']} + rejected {done['rejected']} + "
            f"quarantined {done['quarantined']} != read {done['records']}"
        )
    atomic_write_json(stage_dir / "done.json", done)
    return done


def parts(stage_dir: Path, kind: str) -> list[Path]:
    return sorted((stage_dir / kind).glob("part-*.parquet"))


# --- unique ids ----------------------------------------------------------------------------------------------
# Rule: in input order (files as `expand_inputs` lists them, then records), the first record with an id keeps
# it; a later one becomes `<id>#n` with the smallest n >= 2 not yet taken, its original id in its metadata JSON
# (`original_id`). The reader applies it within a file; `unique_ids_across_inputs` applies it across files,
# after the filter stage, where every input is known.

def unique_id(doc_id: str, taken: set[str]) -> str:
    """`doc_id` if not yet taken, else `doc_id#n` (smallest n >= 2 not taken); the result is added to `taken`."""
    new, n = doc_id, 2
    while new in taken:
        new, n = f"{doc_id}#{n}", n + 1
    taken.add(new)
    return new


def rename_duplicate_ids(ids: Sequence[str], metadata: Sequence[Any] | None = None,
                         taken: set[str] | None = None) -> tuple[list[str], list[Any] | None, int]:
    """The unique-id rule over one sequence of ids (in order; `taken`: ids earlier inputs already hold, updated
    in place): the first keeps its id, a later one becomes `<id>#n`. Returns (new ids, new metadata, number
    renamed). `metadata` (one per id: a JSON object string, a dict or None) gets `original_id` on each renamed
    row (a JSON string stays a JSON string, a dict a new dict; one that already has `original_id` keeps it).
    The one policy of `dolma`, `remove`, `unlearning-split` and the generators' seeds; `mix` calls it too."""
    taken = set() if taken is None else taken
    new_ids: list[str] = []
    metas = None if metadata is None else list(metadata)
    n = 0
    for i, doc_id in enumerate(ids):
        if doc_id is None:  # no id: left as it is (the reader / stage quarantines such a row)
            new_ids.append(None)
            continue
        doc_id = str(doc_id)
        new = unique_id(doc_id, taken)
        new_ids.append(new)
        if new != doc_id:
            n += 1
            if metas is not None:
                m = metas[i]
                metas[i] = ({"original_id": doc_id, **m} if "original_id" not in m else dict(m)) \
                    if isinstance(m, dict) else _with_original_id(m, doc_id)
    return new_ids, metas, n


def rename_duplicate_ids_table(table, id_column: str = "id", metadata_column: str = "metadata",
                               taken: set[str] | None = None):
    """`rename_duplicate_ids` on an Arrow table: (table, number renamed). The renamed rows' original id goes into
    the JSON `metadata_column` (added, null for the other rows, when the table has none); a table without
    duplicates is returned as it is."""
    import pyarrow as pa

    ids = [None if x is None else str(x) for x in table.column(id_column).to_pylist()]
    has_meta = metadata_column in table.column_names
    metas = table.column(metadata_column).to_pylist() if has_meta else [None] * table.num_rows
    new_ids, new_metas, n = rename_duplicate_ids(ids, metas, taken)
    if not n:
        return table, 0
    if any(isinstance(m, dict) for m in new_metas):  # a struct metadata column: written back as JSON text
        new_metas = [m if m is None or isinstance(m, str) else json.dumps(m, ensure_ascii=False, sort_keys=True,
                                                                           default=str) for m in new_metas]
    table = table.set_column(table.column_names.index(id_column), id_column, pa.array(new_ids, pa.string()))
    col = pa.array(new_metas, pa.string())
    table = (table.set_column(table.column_names.index(metadata_column), metadata_column, col) if has_meta
             else table.append_column(metadata_column, col))
    return table, n


def unique_ids_in_files(shards: list[list[Path]], out_root: Path, id_field: str = "id",
                        metadata_field: str = "metadata") -> tuple[list[list[Path]], int]:
    """The unique-id rule over Parquet files (shards in order, files in order): a file whose ids are new is used
    as it is; one with an id seen before (in it or an earlier file) gets a renamed copy under `out_root` (named by
    its path, size, mtime and its new ids, so a rerun reuses it). Returns (files per shard, rows renamed)."""
    import pyarrow.parquet as pq

    from corpora.shards import write_table_atomic

    taken: set[str] = set()
    out: list[list[Path]] = []
    total = 0
    for files in shards:
        new_files = []
        for f in files:
            f = Path(f)
            ids = [None if x is None else str(x) for x in pq.read_table(f, columns=[id_field]).column(id_field)
                   .to_pylist()]
            present = [x for x in ids if x is not None]
            if len(set(present)) == len(present) and not any(x in taken for x in present):
                taken.update(present)
                new_files.append(f)
                continue
            table, n = rename_duplicate_ids_table(pq.read_table(f), id_field, metadata_field, taken)
            total += n
            st = f.stat()
            key = short_hash(str(f.resolve()), str(st.st_size), str(st.st_mtime_ns),
                             json.dumps(table.column(id_field).to_pylist()), length=16)
            dest = Path(out_root) / f"{f.stem[:40]}-{key}.parquet"
            if not dest.is_file():
                write_table_atomic(dest, table)
            new_files.append(dest)
        out.append(new_files)
    return out, total


def _with_original_id(meta: str | None, original: str) -> str:
    d = json.loads(meta) if meta else {}
    d.setdefault("original_id", original)  # a row the reader renamed keeps its first original id
    return json.dumps(d, ensure_ascii=False, sort_keys=True, default=str)


def _original_of(doc_id: str, meta: str | None) -> str:
    return (json.loads(meta) if meta else {}).get("original_id", doc_id)


def unique_ids_across_inputs(stage_dirs: list[Path], out_root: Path,
                             kinds: tuple[str, ...] = ("kept", "rejected")) -> tuple[list[Path], int]:
    """Applies the unique-id rule across inputs (each already unique within itself, by the reader). Reads only
    the id and metadata columns of the staged parts; an input with an id an earlier input took gets renamed
    copies of its parts under `out_root/<its folder name>/` (rewritten only when they changed, so a rerun leaves
    them, and the dedup stage's resume key, as they were). Returns the folder to use per input and the number
    of rows renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    taken: set[str] = set()
    out_dirs: list[Path] = []
    total = 0
    for d in stage_dirs:
        files = {k: parts(d, k) for k in kinds}
        rows = [(k, f, i, doc_id, meta) for k in kinds for f in files[k]
                for i, (doc_id, meta) in enumerate(zip(*pq.read_table(f, columns=["id", "metadata"])
                                                        .to_pydict().values()))]
        if not any(r[3] in taken for r in rows):
            taken |= {r[3] for r in rows}
            out_dirs.append(d)
            continue
        # the rule again over this input's original ids, after the ids earlier inputs took: by original id, then
        # in the reader's order of renaming (record order for one id)
        ranked = sorted(rows, key=lambda r: (_original_of(r[3], r[4]), _suffix_rank(r[3], _original_of(r[3], r[4]))))
        new_ids: dict[tuple[str, int], tuple[str, str]] = {}
        for k, f, i, doc_id, meta in ranked:
            original = _original_of(doc_id, meta)
            new = unique_id(original, taken)
            if new != doc_id:
                new_ids[(str(f), i)] = (new, _with_original_id(meta, original))
                total += doc_id == original  # (a row the reader renamed is counted once, in read.json)
        key = short_hash(*(f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for k in kinds for f in files[k]),
                         json.dumps(sorted((f"{a}:{b}", v) for (a, b), v in new_ids.items())), length=16)
        dest = Path(out_root) / d.name
        out_dirs.append(dest)
        if (read_json(dest / "ids.json") or {}).get("key") == key:
            continue
        reset_dir(dest)
        for k in kinds:
            (dest / k).mkdir()
            for f in files[k]:
                t = pq.read_table(f)
                ids, metas = t.column("id").to_pylist(), t.column("metadata").to_pylist()
                for i in range(t.num_rows):
                    if (str(f), i) in new_ids:
                        ids[i], metas[i] = new_ids[(str(f), i)]
                t = t.set_column(t.schema.get_field_index("id"), t.schema.field("id"), pa.array(ids, pa.string()))
                t = t.set_column(t.schema.get_field_index("metadata"), t.schema.field("metadata"),
                                 pa.array(metas, pa.string()))
                pq.write_table(t, dest / k / f.name)
        atomic_write_json(dest / "ids.json", {"key": key, "renamed": len(new_ids)})
    return out_dirs, total


def _suffix_rank(doc_id: str, original: str) -> int:
    """1 for the original id, n for `original#n` (the reader's n-th occurrence)."""
    rest = doc_id[len(original) + 1:] if doc_id != original else ""
    return int(rest) if rest.isdigit() else 1


# --- any input as document Parquet ---------------------------------------------------------------------------

def stage_as_parquet(item: StagedInput, dest: Path, fields, shard_rows: int = 100_000) -> dict:
    """Converts one non-Parquet input (JSONL incl. .gz/.zst, WARC, text) with the readers into document Parquet
    parts under `dest/kept/` (columns named by `fields.id_field` / `fields.text_field`) and its unparseable records
    into `dest/quarantine/`; `done.json` (the input's sha256, the field names, the counts) is written last, and a
    finished folder with the same input and fields is reused as is. Returns done.json."""
    from corpora.readers import lost_count, read_records
    from corpora.records import CORE_FIELDS, QUARANTINE_SCHEMA, BadRecord
    from corpora.shards import ShardWriter
    import pyarrow as pa

    ident = {"path": item.path, "sha256": item.sha256, "id_field": fields.id_field, "text_field": fields.text_field}
    done = read_json(dest / "done.json")
    if done and all(done.get(k) == v for k, v in ident.items()):
        return done
    reset_dir(dest)
    rename = {"id": fields.id_field, "text": fields.text_field}
    schema = pa.schema([f.with_name(rename.get(f.name, f.name)) for f in CORE_FIELDS])
    records = quarantined = lost = lost_unknown = 0
    buf: list[dict] = []
    with ShardWriter(dest / "kept", schema, max_rows=shard_rows) as kw, \
            ShardWriter(dest / "quarantine", QUARANTINE_SCHEMA, max_rows=50_000) as qw:
        for rec in read_records(item.path, fields):
            records += 1
            if isinstance(rec, BadRecord):
                quarantined += 1
                n = lost_count(rec)
                lost_unknown += n is None
                lost += n or 0
                qw.write_rows([rec.as_row()])
                continue
            buf.append({fields.id_field: rec.id, fields.text_field: rec.text, "source": rec.source, "url": rec.url,
                        "created": rec.created, "metadata": rec.metadata_json()})
            if len(buf) >= 2000:
                kw.write_rows(buf)
                buf = []
        kw.write_rows(buf)
    done = {**ident, "records": records, "documents": records - quarantined, "quarantined": quarantined,
            "lost_records": lost, "lost_unknown": lost_unknown}
    atomic_write_json(dest / "done.json", done)
    return done
