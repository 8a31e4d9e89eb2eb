"""Count stage of a mix: per source file, the rules applied and the tokens of every kept document counted.

Writes, per file, `index.parquet` (row, h, tokens, bytes, group, id: one row per kept document; `h` = 64-bit hash
of source name + id, from which the seeded sampling and shuffle keys derive), `excluded.parquet` (source, id, file,
row, kind, rule: the first rule that left the row out) and `quarantine.parquet` (a row without text), then
`done.json` (its key and counts), written last. A file whose key (its bytes, rules, tokenizer, fields) is
unchanged is not read again: the tokens are what costs, and the seed, shares and budget are not in the key.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import xxhash

from corpora.atomic import atomic_path, atomic_write_json, read_json
from corpora.config import StrictModel
from corpora.hashing import content_id, sha256_file, short_hash
from corpora.mix_rules import Rule, parse_rule
from corpora.mix_sources import ResolvedSource, SourceFile
from corpora.records import QUARANTINE_SCHEMA
from corpora.staging import reset_dir

INDEX_SCHEMA = pa.schema([("row", pa.int64()), ("h", pa.uint64()), ("tokens", pa.int32()), ("bytes", pa.int64()),
                          ("group", pa.string())])  # what the plan reads
INDEX_FILE_SCHEMA = INDEX_SCHEMA.append(pa.field("id", pa.string()))  # + the id (the unique-id step, the scatter)
INDEX_VERSION = "2"  # in the count key: an index without the `id` column (version 1) is counted again
EXCLUDED_SCHEMA = pa.schema([("source", pa.string()), ("id", pa.string()), ("file", pa.string()),
                             ("row", pa.int64()), ("kind", pa.string()), ("rule", pa.string())])


class TokenizerConfig(StrictModel):
    path: str | None = None  # HF tokenizer folder (tokenizer.json) or the file; null: SmolLM2-135M's, offline
    add_special_tokens: bool = False  # count BOS/EOS the tokenizer adds (SmolLM2's adds none)


class TokenCounter:
    """Token counts with a HF `tokenizers` tokenizer.json (the Rust tokenizer, batched; threads: RAYON_NUM_THREADS
    or TOKENIZERS_PARALLELISM=false for one)."""

    def __init__(self, path: str | Path, add_special_tokens: bool = False):
        from tokenizers import Tokenizer

        p = Path(path).expanduser()
        file = p / "tokenizer.json" if p.is_dir() else p
        if not file.is_file():
            raise FileNotFoundError(f"{p}: no tokenizer.json (give a HF tokenizer folder or its tokenizer.json)")
        self.file = file
        self.tok = Tokenizer.from_file(str(file))
        self.add_special_tokens = add_special_tokens
        self.identity = f"{sha256_file(file)[:16]}:{int(add_special_tokens)}"

    def count(self, texts: list[str]) -> np.ndarray:
        enc = self.tok.encode_batch_fast(texts, add_special_tokens=self.add_special_tokens)
        return np.fromiter((len(e) for e in enc), dtype=np.int32, count=len(texts))


@dataclass
class SourceRules:
    include: list[Rule]
    exclude: list[Rule]

    @classmethod
    def of(cls, src: ResolvedSource) -> "SourceRules":
        """Parsed and checked against the source's columns (RuleError names the source, column, position)."""
        from corpora.mix_rules import RuleError

        out = cls([], [])
        for kind in ("include", "exclude"):
            for text in getattr(src.spec, kind):
                try:
                    rule = parse_rule(text)
                    rule.check(src.schema, src.column_type)
                except RuleError as e:
                    raise RuleError(f"source '{src.name}' {kind}: {e}") from None
                getattr(out, kind).append(rule)
        return out

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c for r in self.include + self.exclude for c in r.columns))

    @property
    def texts(self) -> list[str]:
        return [r.text for r in self.include + self.exclude]

    def decide(self, t: pa.Table, types: dict) -> tuple[np.ndarray, np.ndarray]:
        """(kept mask, index of the first rule that left each row out, -1 for kept rows); include rules come
        first, then exclude rules, in the order given."""
        n = t.num_rows
        rules = self.include + self.exclude
        first = np.full(n, -1, dtype=np.int32)
        if not rules:
            return np.ones(n, dtype=bool), first
        cols = {f"r{i}": r.expression(types=types) for i, r in enumerate(rules)}
        masks = ds.dataset(t).to_table(columns=cols)
        for i in range(len(rules) - 1, -1, -1):  # the first rule that fails wins: walk backwards
            m = pc.fill_null(masks.column(f"r{i}"), False).to_numpy(zero_copy_only=False)
            out = ~m if i < len(self.include) else m
            first[out] = i
        return first < 0, first


def doc_hashes(source: str, ids: list[str]) -> np.ndarray:
    """The 64-bit hash of (source name, id) that the seeded sampling and shuffle keys derive from."""
    return np.fromiter((xxhash.xxh3_64_intdigest(f"{source}\x1f{i}") for i in ids), dtype=np.uint64,
                       count=len(ids))


def unique_kept_ids(files: list[tuple[str, Path, str]], out_root: Path) -> tuple[list[tuple[Path, str]], dict]:
    """The one id policy (corpora/staging.py:rename_duplicate_ids) over the documents a mixture keeps: in source
    order, then file order, then row order, the first kept document with an id keeps it; a later one (the same id
    in another file or source, or the same row kept by two sources) becomes `<id>#n`. `files`: (source name,
    index file, count key) in that order. A file with no renamed row keeps its index; one with renamed rows gets
    a copy under `out_root` with the new `id`, its `h` from the new id, and `original_id` (null elsewhere).
    Returns ((index file, key) per file, renamed rows per source); the key changes when the file's ids do."""
    from corpora.staging import rename_duplicate_ids

    taken: set[str] = set()
    out: list[tuple[Path, str]] = []
    renamed: dict[str, int] = {}
    for source, index_file, key in files:
        renamed.setdefault(source, 0)
        ids = pq.read_table(index_file, columns=["id"]).column("id").to_pylist()
        new_ids, _, n = rename_duplicate_ids(ids, None, taken)
        if not n:
            out.append((index_file, key))
            continue
        renamed[source] += n
        new_key = short_hash(key, *new_ids, length=16)
        dest = Path(out_root) / source / f"{index_file.parent.name}-{new_key}.parquet"
        if not dest.is_file():
            t = pq.read_table(index_file)
            original = [o if o != x else None for o, x in zip(ids, new_ids)]
            t = t.set_column(t.column_names.index("id"), "id", pa.array(new_ids, pa.string()))
            t = t.set_column(t.column_names.index("h"), "h", pa.array(doc_hashes(source, new_ids), pa.uint64()))
            t = t.append_column("original_id", pa.array(original, pa.string()))
            dest.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(dest) as tmp:
                pq.write_table(t, tmp, compression="zstd")
        out.append((dest, new_key))
    return out, renamed


def count_key(src: ResolvedSource, sf: SourceFile, rules: SourceRules, counter: TokenCounter,
              group_column: str | None) -> str:
    s = src.spec
    return short_hash(sf.identity, src.identity if s.attributes else "", s.name, s.text_field, s.id_field,
                      *rules.texts, "|", counter.identity, group_column or "", INDEX_VERSION, length=16)


def count_file(src: ResolvedSource, sf: SourceFile, rules: SourceRules, counter: TokenCounter, out_dir: Path,
               group_column: str | None = None, batch_docs: int = 1000) -> dict:
    """Run (or reuse) the count stage of one file; returns its done.json."""
    key = count_key(src, sf, rules, counter, group_column)
    done = read_json(out_dir / "done.json")
    if done and done.get("key") == key:
        return done
    reset_dir(out_dir)
    s = src.spec
    has_id = s.id_field in src.data_names
    cols = list(dict.fromkeys(([s.id_field] if has_id else []) + [s.text_field] + rules.columns
                              + ([group_column] if group_column else [])))
    types = {c: src.column_type(c) for c in rules.columns if src.column_type(c) not in (None, pa.null())}
    excluded = {r: {"kind": k, "docs": 0, "bytes": 0} for k, rs in (("include", rules.include),
                                                                   ("exclude", rules.exclude)) for r in
                [x.text for x in rs]}
    all_rules = rules.include + rules.exclude
    counts = {"records": 0, "kept": 0, "excluded": 0, "quarantined": 0, "tokens": 0, "bytes": 0}
    with atomic_path(out_dir / "index.parquet") as ip, atomic_path(out_dir / "excluded.parquet") as xp, \
            atomic_path(out_dir / "quarantine.parquet") as qp:
        iw, xw, qw = (pq.ParquetWriter(ip, INDEX_FILE_SCHEMA, compression="zstd"),
                      pq.ParquetWriter(xp, EXCLUDED_SCHEMA, compression="zstd"),
                      pq.ParquetWriter(qp, QUARANTINE_SCHEMA, compression="zstd"))
        row0 = 0
        for t in src.read(sf, cols, batch_docs):
            n = t.num_rows
            rows = np.arange(row0, row0 + n, dtype=np.int64)
            texts = t.column(s.text_field)
            ids = t.column(s.id_field).cast(pa.string()).to_pylist() if has_id else [None] * n
            null_text = texts.is_null().to_numpy(zero_copy_only=False)
            if null_text.any():
                bad = np.flatnonzero(null_text)
                qw.write_table(pa.table({"file": [sf.origin] * len(bad), "location": [f"row {rows[r]}" for r in bad],
                                         "error": [f"source '{s.name}': text '{s.text_field}' is null"] * len(bad),
                                         "raw": [ids[r] for r in bad]}, schema=QUARANTINE_SCHEMA))
            keep, first = rules.decide(t, types)
            keep &= ~null_text
            first[null_text] = -1
            text_list = texts.to_pylist()
            ids = [i if i not in (None, "") else (content_id(x, s.name) if x is not None else None)
                   for i, x in zip(ids, text_list)]
            nbytes = pc.fill_null(pc.binary_length(texts), 0).to_numpy(zero_copy_only=False).astype(np.int64)
            out = np.flatnonzero(first >= 0)
            if len(out):
                for i in np.unique(first[out]):
                    sel = first == i
                    e = excluded[all_rules[i].text]
                    e["docs"] += int(sel.sum())
                    e["bytes"] += int(nbytes[sel].sum())
                xw.write_table(pa.table({
                    "source": [s.name] * len(out), "id": [ids[r] for r in out], "file": [sf.origin] * len(out),
                    "row": rows[out], "kind": ["include" if first[r] < len(rules.include) else "exclude" for r in out],
                    "rule": [all_rules[first[r]].text for r in out]}, schema=EXCLUDED_SCHEMA))
            kept = np.flatnonzero(keep)
            if len(kept):
                kept_texts = [text_list[r] for r in kept]
                tokens = counter.count(kept_texts)
                h = doc_hashes(s.name, [ids[r] for r in kept])
                if group_column:
                    g = t.column(group_column).take(pa.array(kept)).cast(pa.string())
                else:
                    g = pa.array([s.name] * len(kept), pa.string())
                iw.write_table(pa.table({"row": rows[kept], "h": h, "tokens": tokens, "bytes": nbytes[kept],
                                         "group": g, "id": [ids[r] for r in kept]}, schema=INDEX_FILE_SCHEMA))
                counts["tokens"] += int(tokens.sum())
                counts["bytes"] += int(nbytes[kept].sum())
            counts["records"] += n
            counts["kept"] += len(kept)
            counts["excluded"] += len(out)
            counts["quarantined"] += int(null_text.sum())
            row0 += n
        for w in (iw, xw, qw):
            w.close()
    done = {"key": key, "file": sf.origin, "path": str(sf.path), **counts, "rules": excluded}
    atomic_write_json(out_dir / "done.json", done)
    return done
