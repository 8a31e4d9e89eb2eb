"""Which rows of a table a forget / removal rule names, and the near-duplicate clusters that carry a match further.

Rules (any of them; a row is matched by the first that names it, in this order): `ids` (inline, and `ids_file`:
one id per line, every non-blank line taken whole (a `#` inside is part of the id: dolma's renamed duplicates are
`X#2`, URLs have fragments); only a line starting with `# ` is a comment; or a .jsonl/.parquet with an `id`
column). An id names the row with exactly that id, and also every row renamed from it (`metadata.original_id`,
the unique-id rule of `corpora.staging`), as `ids:original_id`: removing `X` takes `X`, `X#2`, `X#3`; removing
`X#2` takes exactly that row. Rows that share one id (a corpus made without the rule) are all named. `url` (the URL as listed, ignoring
scheme, `www.`, fragment and a trailing slash: `filters.url_blocklist.normalize_url`), `domain` (the host and its
subdomains), `author` (the row's `author` column or `metadata.author`, case-insensitive, spaces collapsed),
`query` (every word of the query appears in the text as a whole word, case-insensitive) and `regex`.

Near duplicates are the clusters of the MinHash dedup (`filters.dedup.minhash.near_duplicate_clusters`, the same
signatures, LSH bands and verification as `flows run dedup`): a cluster with a matched member is matched whole.
Pure functions over lists / Arrow tables; the flows do the reading and writing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator

from corpora.config import StrictModel
from corpora.jsonl import read_jsonl
from filters.dedup.clusters import UnionFind
from filters.dedup.minhash import MinHashConfig, near_duplicate_clusters
from filters.url_blocklist import _host, normalize_domain, normalize_url


class NearDupConfig(StrictModel):
    """MinHash near-duplicate clusters (defaults: those of `dedup.minhash`)."""

    enabled: bool = True
    ngram_size: int = Field(5, ge=1)
    num_bands: int = Field(14, ge=1)
    rows_per_band: int = Field(8, ge=1)
    seed: int = 1
    verify_threshold: float = Field(0.7, ge=0.0, le=1.0)

    def options(self) -> MinHashConfig:
        return MinHashConfig(ngram_size=self.ngram_size, num_bands=self.num_bands,
                             rows_per_band=self.rows_per_band, seed=self.seed,
                             verify_threshold=self.verify_threshold)


def _listify(v: Any) -> Any:
    return [v] if isinstance(v, (str, int)) else v


class MatchSpec(StrictModel):
    """Rows to forget or remove (see the module docstring for each rule's semantics)."""

    ids: list[str] = []
    ids_file: str | None = None
    url: list[str] = []
    domain: list[str] = []
    author: list[str] = []
    query: str | None = None
    regex: str | None = None

    @field_validator("ids", "url", "domain", "author", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:  # `--set match.url=https://...` gives one string
        v = _listify(v)
        return [str(x) for x in v] if isinstance(v, list) else v

    @field_validator("regex")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression: {e}") from None
        return v

    def is_empty(self) -> bool:
        return not (self.ids or self.ids_file or self.url or self.domain or self.author or self.query or self.regex)


def read_id_list(path: str | Path) -> list[str]:
    """Ids from a text file (every non-blank line whole, stripped of surrounding spaces, a BOM and `\r`; a line
    starting with `# ` is a comment), a JSONL file (`id` of each object) or a Parquet file (`id` column). Errors
    name the file and line."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: id file does not exist")
    name = p.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        if "id" not in pq.read_schema(p).names:
            raise ValueError(f"{p}: no 'id' column")
        return [str(x) for x in pq.read_table(p, columns=["id"]).column("id").to_pylist() if x is not None]
    out = []
    if name.endswith((".jsonl", ".json", ".ndjson")):
        for n, obj in read_jsonl(p, objects=False):
            if not isinstance(obj, dict) or obj.get("id") in (None, ""):
                raise ValueError(f"{p}: line {n}: expected an object with an 'id'")
            out.append(str(obj["id"]))
        return out
    try:
        raw = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not UTF-8 text (byte {e.start})") from None
    for line in raw.splitlines():
        entry = line.strip()
        if entry and not (entry == "#" or entry.startswith("# ")):
            out.append(entry)
    return out


def _norm_author(a: str) -> str:
    return " ".join(str(a).split()).casefold()


def metadata_values(table: pa.Table, key: str) -> list[str | None]:
    """`key` inside the JSON (or struct) `metadata` column per row, as a string, else None."""
    if "metadata" not in table.column_names:
        return [None] * table.num_rows
    out: list[str | None] = []
    for m in table.column("metadata").to_pylist():
        v = None
        if m:
            try:
                obj = json.loads(m) if isinstance(m, str) else m
                v = obj.get(key) if isinstance(obj, dict) else None
            except json.JSONDecodeError:
                v = None
        out.append(None if v is None else str(v))
    return out


def row_authors(table: pa.Table) -> list[str | None]:
    """The `author` column, else `author` inside the JSON `metadata` column, else None per row."""
    if "author" in table.column_names:
        return [None if a is None else str(a) for a in table.column("author").to_pylist()]
    return metadata_values(table, "author")


def original_ids(table: pa.Table) -> list[str | None]:
    """`original_id` inside the JSON `metadata` column per row (a row renamed by the unique-id rule), else None."""
    return metadata_values(table, "original_id")


_WORD = re.compile(r"\w+", re.UNICODE)


def match_rows(table: pa.Table, spec: MatchSpec, extra_ids: Sequence[str] = ()) -> tuple[list[str | None], dict]:
    """Per row: the rule that names it (`ids`, `url:<entry>`, `domain:<entry>`, `author:<entry>`, `query`,
    `regex`) or None; and stats: rows per rule and the listed ids / entries that named no row (never silent)."""
    n = table.num_rows
    ids = [str(x) for x in table.column("id").to_pylist()]
    rules: list[str | None] = [None] * n
    wanted = list(dict.fromkeys([*spec.ids, *extra_ids, *(read_id_list(spec.ids_file) if spec.ids_file else [])]))
    stats: dict[str, Any] = {"rows_by_rule": {}, "unmatched": {}}

    def hit(i: int, rule: str) -> None:
        if rules[i] is None:
            rules[i] = rule
            stats["rows_by_rule"][rule] = stats["rows_by_rule"].get(rule, 0) + 1

    if wanted:
        pos: dict[str, list[int]] = {}
        for i, x in enumerate(ids):
            pos.setdefault(x, []).append(i)
        renamed_from: dict[str, list[int]] = {}
        if "metadata" in table.column_names:
            for i, orig in enumerate(original_ids(table)):
                if orig is not None and orig != ids[i]:
                    renamed_from.setdefault(orig, []).append(i)
        for x in wanted:
            for i in pos.get(x, ()):
                hit(i, "ids")
        for x in wanted:
            for i in renamed_from.get(x, ()):
                hit(i, "ids:original_id")
        missing = [x for x in wanted if x not in pos and x not in renamed_from]
        stats["ids_listed"] = len(wanted)
        if missing:
            stats["unmatched"]["ids"] = {"count": len(missing), "examples": missing[:5]}
    urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * n
    if spec.url:
        want = {normalize_url(u): u for u in spec.url}
        seen = set()
        for i, u in enumerate(urls):
            if u and (e := want.get(normalize_url(u))) is not None:
                hit(i, f"url:{e}")
                seen.add(e)
        if len(seen) < len(want):
            stats["unmatched"]["url"] = sorted(set(want.values()) - seen)
    if spec.domain:
        want = {normalize_domain(d): d for d in spec.domain}
        seen = set()
        for i, u in enumerate(urls):
            if not u:
                continue
            labels = _host(u).lower().split(".")
            for k in range(len(labels)):
                e = want.get(".".join(labels[k:]))
                if e is not None:
                    hit(i, f"domain:{e}")
                    seen.add(e)
                    break
        if len(seen) < len(want):
            stats["unmatched"]["domain"] = sorted(set(want.values()) - seen)
    if spec.author:
        want = {_norm_author(a): a for a in spec.author}
        seen = set()
        for i, a in enumerate(row_authors(table)):
            if a is not None and (e := want.get(_norm_author(a))) is not None:
                hit(i, f"author:{e}")
                seen.add(e)
        if len(seen) < len(want):
            stats["unmatched"]["author"] = sorted(set(want.values()) - seen)
    if spec.query or spec.regex:
        texts = table.column("text").to_pylist()
        terms = {w.casefold() for w in _WORD.findall(spec.query or "")}
        rx = re.compile(spec.regex) if spec.regex else None
        for i, t in enumerate(texts):
            t = t or ""
            if terms and terms <= {w.casefold() for w in _WORD.findall(t)}:
                hit(i, "query")
            elif rx is not None and rx.search(t):
                hit(i, "regex")
        for rule in ("query", "regex"):
            if getattr(spec, rule) and rule not in stats["rows_by_rule"]:
                stats["unmatched"][rule] = getattr(spec, rule)
    return rules, stats


def cluster_roots(texts: Sequence[str], ids: Sequence[str], cfg: NearDupConfig) -> np.ndarray:
    """Near-duplicate cluster of every text as the index of its root (itself when alone); every text its own
    cluster when near-dedup is off."""
    if not cfg.enabled or not len(texts):
        return np.arange(len(texts), dtype=np.int64)
    res = near_duplicate_clusters(list(texts), ids=pa.array(list(ids), pa.string()), config=cfg.options())
    return np.asarray(res.root, dtype=np.int64)


def units(roots: np.ndarray, groups: Sequence[Any] | None = None) -> np.ndarray:
    """Connected components of 'same near-duplicate cluster' and 'same group' (e.g. an author's works): the
    smallest member index of each row's component. A split assigns whole components, so no cluster and no group
    is ever cut in two."""
    n = len(roots)
    uf = UnionFind(n)
    idx = np.arange(n, dtype=np.int64)
    uf.union(idx, np.asarray(roots, dtype=np.int64))
    if groups is not None:
        first: dict[Any, int] = {}
        u, v = [], []
        for i, g in enumerate(groups):
            if g is None:
                continue
            j = first.setdefault(g, i)
            if j != i:
                u.append(i)
                v.append(j)
        if u:
            uf.union(np.asarray(u, np.int64), np.asarray(v, np.int64))
    return uf.roots()


def expand_matches(rules: list[str | None], ids: Sequence[str], roots: np.ndarray,
                   unit_of: np.ndarray | None = None) -> tuple[list[str | None], list[str | None]]:
    """Carry each match to its whole near-duplicate cluster (and, with `unit_of`, its whole unit).

    Returns (rule per row, matched id per row): a row named by a rule keeps its rule and itself as matched id;
    a row that is only a near duplicate of a matched row gets `near_duplicate` and the smallest matched id of its
    cluster; a row pulled in by its unit alone (same group, or a near duplicate of one) gets `same_unit`."""
    n = len(rules)
    out_rule, out_id = list(rules), [ids[i] if rules[i] else None for i in range(n)]
    by_cluster: dict[int, str] = {}
    by_unit: dict[int, str] = {}
    for i in range(n):
        if rules[i]:
            r = int(roots[i])
            if r not in by_cluster or ids[i] < by_cluster[r]:
                by_cluster[r] = ids[i]
            if unit_of is not None:
                u = int(unit_of[i])
                if u not in by_unit or ids[i] < by_unit[u]:
                    by_unit[u] = ids[i]
    for i in range(n):
        if out_rule[i]:
            continue
        m = by_cluster.get(int(roots[i]))
        if m is not None:
            out_rule[i], out_id[i] = "near_duplicate", m
        elif unit_of is not None and (m := by_unit.get(int(unit_of[i]))) is not None:
            out_rule[i], out_id[i] = "same_unit", m
    return out_rule, out_id


def unmatched_summary(stats: dict, empty_files: Sequence[str] = ()) -> str | None:
    """One line on what a match named nothing with (ids, rules, QA sets, id files holding no ids), or None when
    every listed entry named a row. `match_rows` stats in; the flows print it, or refuse the run with `strict`."""
    parts = [f"id file {f} holds no ids" for f in empty_files]
    un = stats.get("unmatched", {})
    if "ids" in un:
        ex = ", ".join(repr(x) for x in un["ids"]["examples"])
        parts.append(f"{un['ids']['count']} of {stats.get('ids_listed', un['ids']['count'])} ids named no row "
                     f"(e.g. {ex})")
    for rule in ("url", "domain", "author"):
        if rule in un:
            parts.append(f"{len(un[rule])} {rule} entr{'y' if len(un[rule]) == 1 else 'ies'} named no row "
                         f"(e.g. {', '.join(repr(x) for x in un[rule][:3])})")
    for rule in ("query", "regex"):
        if rule in un:
            parts.append(f"{rule} {un[rule]!r} named no row")
    if "qa_file" in un:
        parts.append(f"{un['qa_file']['count']} QA pairs of forget.qa_file named no row")
    return "; ".join(parts) or None
