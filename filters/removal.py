"""Corpus-level removal with lineage: versions, what a removal takes out of every table, tombstones, changelog.

Versions: an output folder `X` is version 1; a removal writes `X@v2` beside it (from `X@v2`: `X@v3`, ...), never
touching the folder it reads. A version holds every output kind of its source (the kinds its manifest lists, e.g.
`data`, `rejected`, `quarantine`, `works`, `slices/<slice>/<split>`) minus the removed rows, plus `tombstones/`
(every row removed in this and all earlier versions: id, kind, rule, matched id, version, hash of the text;
never the text itself) and `changelog.json` (one entry per removal: the rules, counts by rule and kind, the
derived datasets followed, and what was done with them).

What is removed, per row with an `id` (a kind without one, e.g. `quarantine/`, is copied and named as unchecked):
1. rows a match rule names (`filters.forget_match`), in any kind;
2. their MinHash near duplicates in any kind (one clustering over all texts of the version);
3. rows whose link columns (`filters.lineage`) reach a removed row, in the version itself (slices of a removed
   work) and in the derived datasets named, to a fixpoint.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpora.atomic import atomic_write_json, atomic_write_text, read_json
from corpora.config import StrictModel
from corpora.readers import InputError
from corpora.shards import write_table_atomic
from filters.forget_match import (
    MatchSpec,
    NearDupConfig,
    cluster_roots,
    expand_matches,
    match_rows,
    read_id_list,
)
from filters.lineage import DEFAULT_LINKS, Hits, follow_lineage

TOMBSTONES = "tombstones"
REGENERATE = "regenerate"
CHANGELOG = "changelog.json"
ORIGIN_MANIFEST = "origin_manifest.json"
TOMBSTONE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("kind", pa.string(), nullable=False),
    pa.field("rule", pa.string(), nullable=False), pa.field("matched_id", pa.string()),
    pa.field("removed_in", pa.string(), nullable=False), pa.field("source", pa.string()),
    pa.field("text_sha256", pa.string()),
])
REGENERATE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False), pa.field("dataset", pa.string()), pa.field("kind", pa.string()),
    pa.field("rule", pa.string()), pa.field("matched_id", pa.string()), pa.field("request_id", pa.string()),
    pa.field("template_id", pa.string()), pa.field("model", pa.string()), pa.field("round", pa.string()),
    pa.field("parent_ids", pa.list_(pa.string())),
])
_VERSION = re.compile(r"^(?P<base>.+)@v(?P<n>[0-9]+)$")


def version_of(path: Path) -> tuple[str, int]:
    """(base name, version number): `dolma` -> ("dolma", 1), `dolma@v3` -> ("dolma", 3)."""
    m = _VERSION.match(path.name)
    return (m["base"], int(m["n"])) if m else (path.name, 1)


def next_version(path: Path) -> Path:
    base, n = version_of(path)
    return path.with_name(f"{base}@v{n + 1}")


def is_internal(kind: str) -> bool:
    return kind == TOMBSTONES or kind.startswith(REGENERATE + "/") or kind == REGENERATE


def dataset_kinds(folder: Path) -> dict[str, list[Path]]:
    """Output kind -> its Parquet shards: from `manifest.json`'s outputs when there is one (a half-published
    version is refused), else every sub-folder holding `*.parquet` files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: corpus folder does not exist")
    manifest = read_json(folder / "manifest.json")
    if manifest is not None:
        if manifest.get("status") not in ("complete", None):
            raise ValueError(f"{folder}: its manifest says status '{manifest.get('status')}': finish or rerun "
                             f"that run before removing from it")
        kinds: dict[str, list[Path]] = {}
        for kind, shards in (manifest.get("outputs") or {}).items():
            kinds[kind] = [folder / s["path"] for s in shards]
            for p in kinds[kind]:
                if not p.is_file():
                    raise FileNotFoundError(f"{folder}: manifest lists {p.relative_to(folder)}, which is missing")
        if kinds:
            return kinds
    found: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*.parquet")):
        rel = p.relative_to(folder)
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        found.setdefault(str(rel.parent), []).append(p)
    found.pop(".", None)
    if not found:
        raise ValueError(f"{folder}: no output kinds (no manifest outputs, no sub-folder with Parquet shards)")
    return found


def read_kind(files: Sequence[Path]) -> pa.Table | None:
    """All shards of one kind as one table (None when there are none)."""
    tables = [pq.read_table(f) for f in files]
    if not tables:
        return None
    return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]


def load_dataset(folder: Path) -> tuple[dict[str, pa.Table], dict[str, pa.Schema]]:
    """(kind -> table, kind -> schema) of a version; a kind with no rows keeps its schema from its shard."""
    tables, schemas = {}, {}
    for kind, files in dataset_kinds(folder).items():
        schemas[kind] = pq.read_schema(files[0]) if files else pa.schema([])
        t = read_kind(files)
        tables[kind] = t if t is not None else schemas[kind].empty_table()
    return tables, schemas


def match_dataset(tables: dict[str, pa.Table], spec: MatchSpec, near_dup: NearDupConfig,
                  extra_ids: Sequence[str] = ()) -> tuple[Hits, dict]:
    """Rows of a version that the rules name, and their near duplicates, across every kind with `id` and
    `text` (one table of all of them, so a near duplicate in `rejected/` of a matched `data/` row goes too). A
    kind with ids and no text (diachronic `works/`) is matched by id, url and author only."""
    parts, owners = [], []
    for kind, t in tables.items():
        if is_internal(kind) or "id" not in t.column_names:
            continue
        text = t.column("text").cast(pa.string()) if "text" in t.column_names else pa.nulls(t.num_rows, pa.string())
        cols = {"id": t.column("id").cast(pa.string()), "text": text}
        for c in ("url", "author", "metadata"):
            cols[c] = t.column(c).cast(pa.string()) if c in t.column_names else pa.nulls(t.num_rows, pa.string())
        parts.append(pa.table(cols))
        owners += [(kind, i) for i in range(t.num_rows)]
    if not parts:
        return {}, {"rows_checked": 0, "rows_by_rule": {}, "unmatched": {}}
    allt = pa.concat_tables(parts)
    rules, stats = match_rows(allt, spec, extra_ids)
    texts = [t or "" for t in allt.column("text").to_pylist()]
    ids = allt.column("id").to_pylist()
    if any(rules) and near_dup.enabled:
        keys = [f"{i:012d}" for i in range(len(ids))]  # ids may repeat across kinds; positions never do
        roots = cluster_roots(texts, keys, near_dup)
        rules, matched = expand_matches(rules, [str(x) for x in ids], roots)
    else:
        matched = [str(ids[i]) if rules[i] else None for i in range(len(ids))]
    hits: Hits = {}
    for (kind, i), r, m in zip(owners, rules, matched):
        if r:
            hits.setdefault("", {}).setdefault(kind, {})[i] = (r, m)
    stats["rows_checked"] = len(ids)
    stats["near_duplicates"] = sum(1 for r in rules if r == "near_duplicate")
    return hits, stats


def text_hash(text: Any) -> str | None:
    return None if text is None else hashlib.sha256(str(text).encode("utf-8", "surrogatepass")).hexdigest()


def split_kind(table: pa.Table, rows: dict[int, tuple[str, str]], kind: str, version: str
               ) -> tuple[pa.Table, pa.Table]:
    """(the kind without `rows`, their tombstones)."""
    keep = np.ones(table.num_rows, dtype=bool)
    idx = sorted(rows)
    keep[idx] = False
    ids = table.column("id").to_pylist() if idx else []
    src = table.column("source").to_pylist() if idx and "source" in table.column_names else None
    txt = table.column("text").to_pylist() if idx and "text" in table.column_names else None
    tomb = [{"id": str(ids[i]), "kind": kind, "rule": rows[i][0], "matched_id": rows[i][1], "removed_in": version,
             "source": None if src is None else src[i], "text_sha256": None if txt is None else text_hash(txt[i])}
            for i in idx]
    return table.filter(pa.array(keep)), pa.Table.from_pylist(tomb, schema=TOMBSTONE_SCHEMA)


def regenerate_rows(table: pa.Table, rows: dict[int, tuple[str, str]], dataset: str, kind: str) -> list[dict]:
    """What a user needs to regenerate rows made from removed data (their request, template, model, parents)."""
    out = []
    cols = set(table.column_names)
    for i in sorted(rows):
        r = {c: table.column(c)[i].as_py() for c in ("id", "request_id", "template_id", "model", "round",
                                                     "parent_ids") if c in cols}
        out.append({"id": str(r.get("id")), "dataset": dataset, "kind": kind, "rule": rows[i][0],
                    "matched_id": rows[i][1], "request_id": r.get("request_id"), "template_id": r.get("template_id"),
                    "model": r.get("model"), "round": r.get("round"),
                    "parent_ids": [str(x) for x in r["parent_ids"]] if r.get("parent_ids") else None})
    return out


@dataclass
class VersionPlan:
    source: Path
    target: Path
    version: str  # target's folder name, e.g. "dolma@v2"


def plan_version(source: Path, output: str | None) -> VersionPlan:
    """Where the new version goes: `output` when given, else the next `@vN` beside the source. The target may
    not be (or be inside, or contain) the source."""
    source = Path(source).expanduser().resolve()
    target = Path(output).expanduser().resolve() if output else next_version(source)
    if target == source or source in target.parents or target in source.parents:
        raise ValueError(f"output {target} overlaps the corpus {source}: a removal never edits a version in place")
    return VersionPlan(source, target, target.name)


def target_state(target: Path, key: str) -> str:
    """'new' (absent or empty), 'done' (a complete removal with this key), 'retry' (a removal that did not
    finish); anything else there is an error."""
    if not target.exists() or not any(target.iterdir()):
        return "new"
    m = read_json(target / "manifest.json")
    if m is None or m.get("pipeline") != "remove":
        raise ValueError(f"{target} exists and is not a removal version: give another --output")
    stats = read_json(target / "stats.json") or {}
    if m.get("status") == "complete" and stats.get("removal_key") == key:
        return "done"
    if m.get("status") == "complete":
        raise ValueError(f"{target} already holds another complete removal: remove from it (--corpus {target}) "
                         f"or give another --output")
    return "retry"


def removal_key(config: dict, sources: Sequence[Path]) -> str:
    """Identity of one removal: its rules and the exact source versions (their manifests)."""
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for s in sources:
        p = Path(s) / "manifest.json"
        h.update(p.read_bytes() if p.is_file() else str(s).encode())
    return h.hexdigest()[:16]


def origin_manifest(source: Path) -> dict | None:
    """The manifest of the run that made the data (carried through every version)."""
    return read_json(source / ORIGIN_MANIFEST) or read_json(source / "manifest.json")


def changelog_entry(version: str, source: Path, rules: dict, counts: dict, lineage: list[dict],
                    unchecked: list[str], date: str) -> dict:
    return {"version": version, "from": str(source), "date": date, "rules": rules, "removed": counts,
            "lineage": lineage, "unchecked_kinds": unchecked}


def counts_of(hits: dict[str, dict[int, tuple[str, str]]]) -> dict:
    by_rule: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for kind, rows in hits.items():
        by_kind[kind] = len(rows)
        for r, _ in rows.values():
            key = r.split(":", 1)[0] if r.startswith(("url:", "domain:", "author:")) else r
            by_rule[key] = by_rule.get(key, 0) + 1
    return {"rows": sum(by_kind.values()), "by_rule": by_rule, "by_kind": by_kind}


def changelog_markdown(entries: list[dict]) -> str:
    lines = ["# Changelog", ""]
    for e in entries:
        lines += [f"## {e['version']} ({e['date']})", "", f"from `{e['from']}`; rules: `{json.dumps(e['rules'])}`",
                  "", f"removed {e['removed']['rows']} rows: " + ", ".join(
                      f"{k} {v}" for k, v in e["removed"]["by_rule"].items()) + "; by kind: " + ", ".join(
                      f"{k} {v}" for k, v in e["removed"]["by_kind"].items())]
        for d in e.get("lineage", []):
            lines.append(f"- derived `{d['dataset']}`: {d['rows']} rows {d['action']}"
                         + (f" -> `{d['new_version']}`" if d.get("new_version") else "")
                         + (f" (listed in `{d['listed_in']}`)" if d.get("listed_in") else ""))
        if e.get("unchecked_kinds"):
            lines.append(f"- copied unchecked (no id column): {', '.join(e['unchecked_kinds'])}")
        lines.append("")
    return "\n".join(lines)


# ---- one removal, as `flows run remove` runs it ----------------------------------------------------------------
class DerivedSpec(StrictModel):
    path: str  # a derived dataset's output folder (e.g. a textbooks run on the corpus)
    action: Literal["remove", "list"] = "remove"  # remove: write <path>@vN; list: list rows for regeneration
    name: str | None = None  # default: the folder's name without its version (qa@v2 -> qa)
    link: list[str] = list(DEFAULT_LINKS)
    output: str | None = None  # the derived dataset's new version; default <path>@v(N+1)


def derived_names(derived: Sequence[DerivedSpec]) -> list[str]:
    names = [d.name or version_of(Path(d.path).resolve())[0] for d in derived]  # qa@v2 -> qa
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"derived: two datasets are named {dup!r}: give each a distinct name")
    return names


def removal_plans(corpus: str | None, ids: str | None, match: MatchSpec, derived: Sequence[DerivedSpec],
                  target: str | None) -> tuple[VersionPlan, list[VersionPlan | None]]:
    """The corpus's new version and each derived dataset's (None: `action: list`); one-line errors first."""
    if not corpus:
        raise InputError("remove: give the corpus to remove from: flows run remove --corpus DIR --ids FILE "
                         "(or --set match.url=... / match.domain=... / match.author=... / match.query=...)")
    if ids is None and match.is_empty():
        raise InputError("remove: give what to remove: --ids FILE, or --set match.ids / match.url / match.domain / "
                         "match.author / match.query / match.regex")
    plan = plan_version(Path(corpus), target)
    plans = []
    for d in derived:
        src = Path(d.path).expanduser().resolve()
        if src == plan.source:
            raise ValueError(f"derived: {d.path} is the corpus itself")
        plans.append(plan_version(src, d.output) if d.action == "remove" else None)
    return plan, plans


def find_removals(corpus: str, ids: str | None, match: MatchSpec, near_dup: NearDupConfig, link: list[str],
                  derived: Sequence[DerivedSpec], names: list[str]) -> dict:
    """Every table of the corpus and the derived datasets, the rows to remove from each (matches, near
    duplicates, lineage to a fixpoint) and the match stats."""
    t0 = time.monotonic()
    tables, schemas = load_dataset(Path(corpus))
    extra = read_id_list(ids) if ids else []
    hits, mstats = match_dataset(tables, match, near_dup, extra)
    t_match = time.monotonic() - t0
    all_tables, all_schemas, links = {"": tables}, {"": schemas}, {"": link}
    for name, d in zip(names, derived):
        all_tables[name], all_schemas[name] = load_dataset(Path(d.path))
        links[name] = d.link
    # earlier removals' tombstones count as removed too: a derived dataset named only now still loses its rows
    prior = tables.get(TOMBSTONES)
    prior_ids = set(prior.column("id").to_pylist()) if prior is not None else set()
    visible = {d: {k: t for k, t in kinds.items() if not is_internal(k)} for d, kinds in all_tables.items()}
    hits, levels = follow_lineage(visible, hits, links, removed_ids=prior_ids)
    return {"tables": all_tables, "schemas": all_schemas, "hits": hits, "match": mstats, "levels": levels,
            "seconds_match": t_match, "seconds": time.monotonic() - t0}


def removal_rules(ids: str | None, match: MatchSpec, near_dup: NearDupConfig, link: list[str],
                  unmatched: dict) -> dict:
    """What the changelog records of the rules (the id file by path and sha256, never its ids)."""
    ids_path = Path(ids).expanduser().resolve() if ids else None
    return {"ids_file": str(ids_path) if ids_path else None,
            "ids_file_sha256": text_hash(ids_path.read_text(encoding="utf-8")) if ids_path else None,
            "match": match.model_dump(mode="json", exclude_defaults=True),
            "near_duplicates": near_dup.model_dump() if near_dup.enabled else False,
            "link": link, "unmatched": unmatched}


def derived_lineage(names: list[str], derived: Sequence[DerivedSpec], plans: list[VersionPlan | None],
                    hits: dict, tables: dict, version: str) -> tuple[list[dict], dict[str, pa.Table]]:
    """Per derived dataset: what the lineage reached (the changelog's `lineage`), and the regenerate/<dataset>
    tables of the `action: list` ones."""
    lineage, regenerate = [], {}
    for name, d, dp in zip(names, derived, plans):
        dh = {k: v for k, v in hits.get(name, {}).items() if v}
        n = sum(len(v) for v in dh.values())
        item = {"dataset": name, "path": str(Path(d.path).resolve()), "action": d.action, "rows": n,
                "by_kind": {k: len(v) for k, v in dh.items()}}
        if d.action == "list":
            rows = [r for k, v in dh.items() for r in regenerate_rows(tables[name][k], v, name, k)]
            regenerate[f"{REGENERATE}/{name}"] = pa.Table.from_pylist(rows, schema=REGENERATE_SCHEMA)
            item["listed_in"] = f"{version}/{REGENERATE}/{name}"
        else:
            item["new_version"] = str(dp.target)
        lineage.append(item)
    return lineage, regenerate


@dataclass
class VersionParts:
    """A new version's kinds in publishing order: (leaf, files, schema, under, name) each."""
    kinds: list[tuple[str, list[Path], pa.Schema]]  # (folder as the source manifest names it, parts, schema)
    tombstones: pa.Table
    unchecked: list[str]
    rows_in: int
    rows_out: int
    counts: dict


def version_parts(plan: VersionPlan, tables: dict[str, pa.Table], schemas: dict[str, pa.Schema], hits: dict,
                  extra_kinds: dict[str, pa.Table], work: Path) -> VersionParts:
    """Every kind minus its removed rows (staged under `work`; a kind with nothing removed keeps its source
    shards), the extra kinds (regenerate/<dataset>), and the tombstones (earlier + new)."""
    kinds, tomb_parts, unchecked, rows_in, rows_out = [], [], [], 0, 0
    source_files = dataset_kinds(plan.source)
    old_tomb = tables.get(TOMBSTONES)
    if old_tomb is not None and old_tomb.num_rows:
        tomb_parts.append(old_tomb)
    for kind, t in tables.items():
        if kind == TOMBSTONES:
            continue
        if is_internal(kind) or "id" not in t.column_names:
            kept = t
            if not is_internal(kind) and t.num_rows:
                unchecked.append(kind)
        else:
            kept, tomb = split_kind(t, hits.get(kind, {}), kind, plan.version) if hits.get(kind) else (t, None)
            if tomb is not None:
                tomb_parts.append(tomb)
        rows_in += t.num_rows if not is_internal(kind) else 0
        rows_out += kept.num_rows if not is_internal(kind) else 0
        if kept is t:  # nothing removed: the source shards are republished as they are (one write, not two)
            files = source_files[kind]
        else:
            files = [Path(write_table_atomic(work / (kind.replace("/", "__") + ".parquet"), kept).path)]
        kinds.append((kind, files, schemas[kind]))
    for kind, t in extra_kinds.items():  # regenerate/<dataset>
        path = write_table_atomic(work / (kind.replace("/", "__") + ".parquet"), t).path
        kinds.append((kind, [Path(path)], t.schema))
    tomb = pa.concat_tables([p.cast(TOMBSTONE_SCHEMA) for p in tomb_parts]) if tomb_parts else \
        TOMBSTONE_SCHEMA.empty_table()
    path = write_table_atomic(work / "tombstones.parquet", tomb).path
    kinds.append((TOMBSTONES, [Path(path)], TOMBSTONE_SCHEMA))
    counts = counts_of({k: v for k, v in hits.items() if k in tables and not is_internal(k)})
    return VersionParts(kinds, tomb, unchecked, rows_in, rows_out, counts)


def write_changelog(out_dir: Path, plan: VersionPlan, rules: dict, counts: dict, lineage: list[dict],
                    unchecked: list[str], date: str) -> dict:
    """changelog.json (the source's entries + this one), CHANGELOG.md and the origin manifest; returns the entry."""
    entry = changelog_entry(plan.version, plan.source, rules, counts, lineage, unchecked, date)
    entries = (read_json(plan.source / CHANGELOG) or []) + [entry]
    atomic_write_json(out_dir / CHANGELOG, entries)
    atomic_write_text(out_dir / "CHANGELOG.md", changelog_markdown(entries))
    origin = origin_manifest(plan.source)
    if origin is not None:
        atomic_write_json(out_dir / ORIGIN_MANIFEST, origin)
    return entry


def source_inputs(plan: VersionPlan) -> list[dict]:
    """The manifest's `inputs` of a version: its source's manifest, by path and sha256."""
    return [{"path": str(plan.source / "manifest.json"),
             "sha256": text_hash((plan.source / "manifest.json").read_text())
             if (plan.source / "manifest.json").is_file() else None}]
