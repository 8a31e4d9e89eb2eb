"""Forget / retain / holdout packages for unlearning: which rows go where, and the layouts benchmarks read.

A *unit* is a connected component of "same MinHash near-duplicate cluster" and "same group" (`group_by`, e.g. an
author: TOFU forgets whole authors). Every decision is made per unit, so the splits are disjoint by id, by
cluster and by group by construction:

1. forget pool = the units of every row a rule names (`filters.forget_match`: ids, url, domain, author, query,
   regex; `qa_file`: QA rows with the same question and answer) + `fraction` of the corpus's units (counted in
   groups when `group_by` is set, else rows) taken `last` / `first` in corpus order or at `random` (seeded).
2. holdout = `holdout.fraction` of the corpus (same counting) from the other units, by a seeded hash of the unit.
3. retain = the rest; `retain2_fraction` of it (seeded hash) is MUSE's `retain2`, the others `retain1`.
4. forget sets on request: `nested` (scalability: set k holds the first `sizes[k]` of the pool, each set inside
   the next, each with its own retain = corpus - set - holdout) or `sequential` (disjoint chunks of the pool;
   step k's retain = corpus - steps 1..k - holdout). Set order = the pool's selection order.

Selection by hash of (seed, purpose, the unit's first id): adding or removing other rows never moves a unit.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from corpora.config import StrictModel
from corpora.jsonl import JsonlError, read_jsonl
from corpora.readers import FieldMap, InputError, read_records
from corpora.records import BadRecord
from corpora.staging import rename_duplicate_ids, rename_duplicate_ids_table
from filters.forget_match import (
    MatchSpec,
    NearDupConfig,
    cluster_roots,
    expand_matches,
    match_rows,
    units,
)

SPLITS = ("forget", "retain", "holdout")
LAYOUTS = ("tofu", "muse", "verbmem", "knowmem")
QA_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
SPLIT_FIELDS = [pa.field("split", pa.string()), pa.field("split_rule", pa.string()),
                pa.field("matched_id", pa.string()), pa.field("dup_cluster_id", pa.string()),
                pa.field("unit_id", pa.string()), pa.field("group", pa.string()), pa.field("retain_part", pa.int8())]


# ---- config --------------------------------------------------------------------------------------------------
class ForgetSpec(MatchSpec):
    """What to forget: the match rules, QA sets, and/or a fraction of the corpus's units."""

    qa_file: list[str] = []  # QA sets (TOFU .json arrays, JSONL, Parquet): rows with the same question + answer
    fraction: float | None = Field(None, gt=0, le=1)
    order: Literal["last", "first", "random"] = "random"  # which units `fraction` takes (TOFU: last authors)

    @field_validator("qa_file", mode="before")
    @classmethod
    def _one_or_many_files(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def is_empty(self) -> bool:
        return super().is_empty() and not self.qa_file and self.fraction is None


class QAInput(StrictModel):
    """QA corpora (TOFU-style `question, answer, ...` rows)."""

    rows_per_author: int | None = Field(None, ge=1)  # TOFU: 20 (rows in file order, 20 per fictitious author)
    id_prefix: str = "qa-"  # ids of rows without an `id`: prefix + position over all inputs (5 digits)


class SetsConfig(StrictModel):
    mode: Literal["none", "nested", "sequential"] = "none"
    sizes: list[float] = []  # fractions of the forget pool: nested, increasing (e.g. [0.1, 0.5, 1.0]); sequential: shares

    @model_validator(mode="after")
    def _sizes(self) -> "SetsConfig":
        if self.mode == "none":
            return self
        if not self.sizes or any(not 0 < s <= 1 for s in self.sizes):
            raise ValueError(f"sets.sizes: give fractions in (0, 1] for mode {self.mode} (got {self.sizes})")
        if self.mode == "nested" and any(b <= a for a, b in zip(self.sizes, self.sizes[1:])):
            raise ValueError(f"sets.sizes: nested sets need increasing sizes (got {self.sizes})")
        if self.mode == "sequential" and sum(self.sizes) > 1 + 1e-9:
            raise ValueError(f"sets.sizes: sequential shares sum to {sum(self.sizes):g} > 1")
        return self


class ProbeConfig(StrictModel):
    """Verbatim probes (MUSE `verbmem`): the first `prompt_words` words of a forget text and the next `gt_words`."""

    prompt_words: int = Field(32, ge=1)
    gt_words: int = Field(128, ge=1)
    min_gt_words: int = Field(8, ge=1)  # a shorter text gives no probe (counted)


class KnowledgeConfig(StrictModel):
    """Knowledge probes (MUSE `knowmem`): a QA corpus gives its own rows; a document corpus needs `qa_file`, QA
    rows linked to documents by `link` (a probe follows its document's split; one with no known document is
    counted as unlinked)."""

    qa_file: str | None = None
    link: list[str] = ["parent_ids", "parent_id", "doc_id"]


# ---- reading -------------------------------------------------------------------------------------------------
def _is_qa_obj(obj: Any) -> bool:
    return isinstance(obj, dict) and "question" in obj and "answer" in obj


def _json_items(path: Path) -> list[tuple[str, Any]]:
    """(location, object) of a JSON array file or JSON lines; an unparsable line is (location, exception)."""
    raw = path.read_text(encoding="utf-8-sig")
    if raw.lstrip().startswith("["):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
        return [(f"item {i}", x) for i, x in enumerate(data)]
    return [(f"line {n}", ValueError(obj.reason) if isinstance(obj, JsonlError) else obj)
            for n, obj in read_jsonl(path, objects=False, errors="yield")]


def detect_kind(paths: Sequence[Path], text_field: str = "text") -> str:
    """`qa` or `documents`, decided from every item of every input (never from the first alone): an item is
    QA-like when it has `question` or `answer` and no text, document-like when it has a text; the corpus is `qa`
    when QA-like items outnumber document-like ones (a Parquet input counts its rows by its columns). The items
    that do not fit the kind are quarantined with their reason by the reader (`corpus_kind` forces a kind)."""
    qa_like = doc_like = 0
    for p in paths:
        if p.name.endswith(".parquet"):
            meta = pq.read_metadata(p)
            names = set(meta.schema.names)
            if text_field in names:
                doc_like += meta.num_rows
            elif names & {"question", "answer"}:
                qa_like += meta.num_rows
            continue
        if not p.name.endswith((".json", ".jsonl")):
            return "documents"
        try:
            items = _json_items(p)
        except (InputError, UnicodeDecodeError):
            continue  # the reader names the file
        for _, o in items:
            if not isinstance(o, dict):
                continue
            if text_field in o:
                doc_like += 1
            elif "question" in o or "answer" in o:
                qa_like += 1
    return "qa" if qa_like > doc_like else "documents"


@dataclass
class Corpus:
    table: pa.Table  # id, text, ... (+ QA columns for a QA corpus)
    kind: str  # "documents" or "qa"
    quarantine: list[dict] = field(default_factory=list)
    records_read: int = 0
    inputs: list[dict] = field(default_factory=list)
    duplicate_ids_renamed: int = 0  # later rows with an id already seen, renamed `<id>#n` (corpora.staging)


def read_qa(paths: Sequence[Path], qa: QAInput = QAInput()) -> Corpus:
    """QA rows from JSON arrays (TOFU's files), JSONL or Parquet. A row needs string `question` and `answer`;
    any other item is quarantined with its file and position. Rows without an `id` get `id_prefix` + position over
    all inputs (bad items keep their position), so TOFU's retain90 + forget10 get TOFU's 0..3999 order."""
    rows, where, bad, inputs = [], [], [], []
    pos = 0
    for p in paths:
        items = ([(f"row {i}", r) for i, r in enumerate(pq.read_table(p).to_pylist())]
                 if p.name.endswith(".parquet") else _json_items(p))
        inputs.append({"path": str(p), "records": len(items)})
        for loc, obj in items:
            i, pos = pos, pos + 1
            err = (str(obj) if isinstance(obj, Exception) else
                   "expected an object with 'question' and 'answer'" if not _is_qa_obj(obj) else
                   "question and answer must be strings" if not (isinstance(obj["question"], str)
                                                                 and isinstance(obj["answer"], str)) else None)
            if err:
                bad.append({"file": str(p), "location": loc, "error": err, "raw": str(obj)[:200]})
                continue
            row = dict(obj)
            row["id"] = str(row["id"]) if row.get("id") not in (None, "") else f"{qa.id_prefix}{i:05d}"
            if row.get("author") is None and qa.rows_per_author:
                row["author"] = f"author-{i // qa.rows_per_author:03d}"
            row.setdefault("source", p.name.rsplit(".", 1)[0])
            row["text"] = f"{row['question']}\n{row['answer']}"
            pa_ = row.get("perturbed_answer")
            if pa_ is not None:
                row["perturbed_answer"] = [str(x) for x in pa_] if isinstance(pa_, list) else [str(pa_)]
            rows.append(row)
            where.append(f"{p} {loc}")
    new_ids, metas, renamed = rename_duplicate_ids([r["id"] for r in rows], [r.get("metadata") for r in rows])
    for r, new, m in zip(rows, new_ids, metas):
        if new != r["id"]:
            r["id"], r["metadata"] = new, m
    keys = list(dict.fromkeys(k for r in rows for k in r))
    fields = []
    for k in keys:
        if k == "perturbed_answer":
            fields.append(pa.field(k, pa.list_(pa.string())))
        elif k in ("id", "text", "question", "answer", "source") or all(
                isinstance(r.get(k), str) or r.get(k) is None for r in rows):
            fields.append(pa.field(k, pa.string()))
        else:  # mixed or nested values: kept as JSON text
            fields.append(pa.field(k, pa.string()))
            for r in rows:
                if r.get(k) is not None and not isinstance(r[k], str):
                    r[k] = json.dumps(r[k], ensure_ascii=False, sort_keys=True)
    order = ["id", "text", "source", *QA_FIELDS]
    fields.sort(key=lambda f: order.index(f.name) if f.name in order else len(order))
    schema = pa.schema(fields)
    table = pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)
    return Corpus(table, "qa", bad, pos, inputs, renamed)


def read_documents(paths: Sequence[Path], fields: FieldMap = FieldMap()) -> Corpus:
    """Documents: Parquet as is (every column kept; `id_field` / `text_field` renamed to id / text; a row without a
    string text is quarantined), any other reader input as the core document columns (bad records quarantined)."""
    tables, bad, where_all, inputs, read = [], [], [], [], 0
    for p in paths:
        if p.name.endswith(".parquet"):
            t = pq.read_table(p)
            for name in (fields.id_field, fields.text_field):
                if name not in t.column_names:
                    raise InputError(f"{p}: no '{name}' column (set id_field / text_field)")
            t = t.rename_columns([{fields.id_field: "id", fields.text_field: "text"}.get(c, c) for c in t.column_names])
            t = t.set_column(t.column_names.index("id"), "id", t.column("id").cast(pa.string()))
            read += t.num_rows
            ok = np.array([isinstance(x, str) for x in t.column("text").to_pylist()], dtype=bool)
            ok &= np.array([x not in (None, "") for x in t.column("id").to_pylist()], dtype=bool)
            for i in np.flatnonzero(~ok):
                bad.append({"file": str(p), "location": f"row {i}", "error": "no string text or no id", "raw": None})
            t = t.filter(pa.array(ok))
            where_all += [f"{p} row {i}" for i in np.flatnonzero(ok)]
            tables.append(t)
            inputs.append({"path": str(p), "records": len(ok)})
            continue
        rows, n = [], 0
        for rec in read_records(p, fields):
            n += 1
            if isinstance(rec, BadRecord):
                bad.append(rec.as_row())
                continue
            rows.append({"id": rec.id, "text": rec.text, "source": rec.source, "url": rec.url,
                         "created": rec.created, "metadata": rec.metadata_json()})
            where_all.append(f"{p} record {n}")
        read += n
        inputs.append({"path": str(p), "records": n})
        if rows:
            tables.append(pa.Table.from_pylist(rows))
    if not tables:
        table = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    else:
        table = pa.concat_tables(tables, promote_options="permissive")
    table, renamed = rename_duplicate_ids_table(table)  # the one id policy (corpora.staging)
    return Corpus(table, "documents", bad, read, inputs, renamed)


def read_qa_keys(paths: Sequence[str]) -> set[tuple[str, str]]:
    """(question, answer) keys of QA sets (TOFU forget files), spaces collapsed; a row without both is an error."""
    keys = set()
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.is_file():
            raise InputError(f"{p}: QA file does not exist")
        items = ([(f"row {i}", r) for i, r in enumerate(pq.read_table(p).to_pylist())]
                 if p.name.endswith(".parquet") else _json_items(p))
        for loc, obj in items:
            if not _is_qa_obj(obj):
                raise InputError(f"{p}: {loc}: expected an object with 'question' and 'answer'")
            keys.add(qa_key(obj["question"], obj["answer"]))
    return keys


def qa_key(question: Any, answer: Any) -> tuple[str, str]:
    return " ".join(str(question).split()), " ".join(str(answer).split())


# ---- splitting -----------------------------------------------------------------------------------------------
def _unit_hash(seed: int, purpose: str, key: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{purpose}\x1f{key}".encode()).hexdigest()


@dataclass
class SplitResult:
    table: pa.Table  # the corpus + SPLIT_FIELDS
    sets: dict[str, dict[str, np.ndarray]]  # set name -> {"forget": mask, "retain": mask}
    stats: dict[str, Any]


def _take(order: list[int], weight: dict[int, int], target: int) -> list[int]:
    """The first units of `order` until their weight reaches `target`."""
    out, acc = [], 0
    for u in order:
        if acc >= target:
            break
        out.append(u)
        acc += weight[u]
    return out


def assign_splits(corpus: Corpus, spec: ForgetSpec, *, group_by: str | None = None,
                  near_dup: NearDupConfig = NearDupConfig(), holdout_fraction: float = 0.0,
                  retain2_fraction: float = 0.5, seed: int = 0, sets: SetsConfig = SetsConfig()) -> SplitResult:
    table = corpus.table
    n = table.num_rows
    ids = [str(x) for x in table.column("id").to_pylist()]
    texts = table.column("text").to_pylist()
    rules, match_stats = match_rows(table, spec)
    if spec.qa_file:
        if corpus.kind != "qa":
            raise InputError("forget.qa_file matches QA rows: the corpus must be a QA set (question, answer)")
        keys = read_qa_keys(spec.qa_file)
        found = set()
        for i, (q, a) in enumerate(zip(table.column("question").to_pylist(), table.column("answer").to_pylist())):
            k = qa_key(q, a)
            if k in keys:
                found.add(k)
                if rules[i] is None:
                    rules[i] = "qa_file"
                    match_stats["rows_by_rule"]["qa_file"] = match_stats["rows_by_rule"].get("qa_file", 0) + 1
        if len(found) < len(keys):
            match_stats["unmatched"]["qa_file"] = {"count": len(keys) - len(found)}
    groups = None
    if group_by:
        if group_by == "author":
            from filters.forget_match import row_authors

            groups = row_authors(table)
        elif group_by in table.column_names:
            groups = [None if g is None else str(g) for g in table.column(group_by).to_pylist()]
        else:
            raise InputError(f"group_by: the corpus has no column '{group_by}' (columns: {', '.join(table.column_names)})")
    if groups is not None and n and all(g is None for g in groups):
        raise InputError(f"group_by={group_by}: no row has one (QA corpora: qa.rows_per_author gives TOFU's authors)")
    roots = cluster_roots(texts, ids, near_dup)
    unit_of = units(roots, groups)
    members: dict[int, list[int]] = {}
    for i, u in enumerate(unit_of.tolist()):
        members.setdefault(u, []).append(i)
    unit_ids = {u: ids[u] for u in members}

    def weight_of(u: int) -> int:
        return len({groups[i] for i in members[u] if groups[i] is not None}) if groups is not None else len(members[u])

    weight = {u: weight_of(u) for u in members}
    total = sum(weight.values())
    forget_units: list[int] = []
    seen: set[int] = set()
    if spec.fraction is not None:
        if spec.order == "random":
            order = sorted(members, key=lambda u: _unit_hash(seed, "forget", unit_ids[u]))
        else:
            order = sorted(members, reverse=spec.order == "last")
        for u in _take(order, weight, round(spec.fraction * total)):
            forget_units.append(u)
            seen.add(u)
            for i in members[u]:
                if rules[i] is None:
                    rules[i] = f"fraction:{spec.order}"
    ruled = [u for u in sorted(members) if u not in seen and any(rules[i] for i in members[u])]
    forget_units += sorted(ruled, key=lambda u: _unit_hash(seed, "forget", unit_ids[u]))
    rules, matched = expand_matches(rules, ids, roots, unit_of)
    split = np.full(n, "retain", dtype=object)
    for u in forget_units:
        split[members[u]] = "forget"
    forget_set = set(forget_units)
    rest = [u for u in members if u not in forget_set]
    hold = _take(sorted(rest, key=lambda u: _unit_hash(seed, "holdout", unit_ids[u])), weight,
                 round(holdout_fraction * total))
    for u in hold:
        split[members[u]] = "holdout"
    hold_set = set(hold)
    retain_units = [u for u in rest if u not in hold_set]
    retain_weight = sum(weight[u] for u in retain_units)
    r2 = set(_take(sorted(retain_units, key=lambda u: _unit_hash(seed, "retain2", unit_ids[u])), weight,
                   round(retain2_fraction * retain_weight)))
    part = [None] * n
    for u in retain_units:
        for i in members[u]:
            part[i] = 2 if u in r2 else 1
    root_id = [ids[int(r)] for r in roots]
    cols = {"split": split.tolist(), "split_rule": rules, "matched_id": matched, "dup_cluster_id": root_id,
            "unit_id": [unit_ids[int(u)] for u in unit_of], "group": groups or [None] * n, "retain_part": part}
    out = table
    for f in SPLIT_FIELDS:
        if f.name in out.column_names:
            out = out.drop_columns([f.name])
        out = out.append_column(f, pa.array(cols[f.name], f.type))
    set_masks = _forget_sets(forget_units, members, weight, total, split, sets, n)
    pool_weight = sum(weight[u] for u in forget_units)
    stats = {
        "rows": n, "units": len(members), "unit_weight": "groups" if groups is not None else "rows",
        "total_weight": total, "clusters_with_duplicates": int((np.bincount(roots, minlength=n) > 1).sum()),
        "match": match_stats,
        "rows_by_split": {s: int((split == s).sum()) for s in SPLITS},
        "weight_by_split": {"forget": pool_weight, "holdout": sum(weight[u] for u in hold),
                            "retain": retain_weight},
        "rows_by_rule": {r: sum(1 for x in rules if x == r) for r in sorted({x for x in rules if x})},
        "retain_parts": {"retain1": sum(1 for p in part if p == 1), "retain2": sum(1 for p in part if p == 2)},
        "sets": {k: {"forget": int(v["forget"].sum()), "retain": int(v["retain"].sum())} for k, v in set_masks.items()},
    }
    return SplitResult(out, set_masks, stats)


def _forget_sets(forget_units: list[int], members: dict[int, list[int]], weight: dict[int, int], total: int,
                 split: np.ndarray, sets: SetsConfig, n: int) -> dict[str, dict[str, np.ndarray]]:
    if sets.mode == "none":
        return {}
    pool = sum(weight[u] for u in forget_units)
    holdout = split == "holdout"
    out: dict[str, dict[str, np.ndarray]] = {}
    done: list[int] = []
    cumulative = 0.0
    for k, size in enumerate(sets.sizes):
        if sets.mode == "nested":
            chosen = _take(forget_units, weight, round(size * pool))
        else:
            cumulative += size
            chosen = _take(forget_units, weight, round(cumulative * pool))
        mask = np.zeros(n, dtype=bool)
        for u in chosen:
            mask[members[u]] = True
        if sets.mode == "nested":
            pct = 100.0 * sum(weight[u] for u in chosen) / total if total else 0.0
            name = f"forget{int(round(pct)):02d}" if abs(pct - round(pct)) < 1e-9 else f"forget_{k + 1}"
            if name in out:
                name = f"forget_{k + 1}"
            out[name] = {"forget": mask, "retain": ~mask & ~holdout}
        else:
            step = mask.copy()
            for u in done:
                step[members[u]] = False
            out[f"step{k + 1}"] = {"forget": step, "retain": ~mask & ~holdout}
        done = chosen
    return out


# ---- layouts -------------------------------------------------------------------------------------------------
_WORD_SPAN = re.compile(r"\S+")


def verbatim_probe(text: str, cfg: ProbeConfig) -> tuple[str, str] | None:
    """(prompt, gt): the text up to its `prompt_words`-th word and the next `gt_words` words, spacing kept;
    None when fewer than `min_gt_words` words follow the prompt."""
    spans = [m.span() for m in _WORD_SPAN.finditer(text or "")]
    if len(spans) < cfg.prompt_words + cfg.min_gt_words:
        return None
    p_end = spans[cfg.prompt_words - 1][1]
    g = spans[cfg.prompt_words:cfg.prompt_words + cfg.gt_words]
    return text[spans[0][0]:p_end], text[g[0][0]:g[-1][1]]


def muse_tables(result: pa.Table) -> dict[str, pa.Table]:
    """MUSE raw text: `forget`, `retain1`, `retain2`, `holdout`, each `id, text`."""
    split = np.asarray(result.column("split").to_pylist(), dtype=object)
    part = np.asarray([p or 0 for p in result.column("retain_part").to_pylist()])
    base = result.select(["id", "text"])
    masks = {"forget": split == "forget", "retain1": (split == "retain") & (part == 1),
             "retain2": (split == "retain") & (part == 2), "holdout": split == "holdout"}
    return {k: base.filter(pa.array(m)) for k, m in masks.items()}


VERBMEM_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("parent_id", pa.string()),
                            pa.field("prompt", pa.string()), pa.field("gt", pa.string())])
KNOWMEM_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("parent_id", pa.string()),
                            pa.field("question", pa.string()), pa.field("answer", pa.string())])


def verbmem_table(result: pa.Table, cfg: ProbeConfig, kind: str) -> tuple[pa.Table, int]:
    """Verbatim probes of the forget rows (MUSE `verbmem`: `prompt, gt`): documents give their opening words
    and the continuation; QA rows give the question and the answer. Returns (table, rows too short)."""
    rows, short = [], 0
    fr = result.filter(pc.equal(result.column("split"), "forget"))
    if kind == "qa":
        for i, q, a in zip(fr.column("id").to_pylist(), fr.column("question").to_pylist(),
                           fr.column("answer").to_pylist()):
            rows.append({"id": f"{i}#verbmem", "parent_id": i, "prompt": q, "gt": a})
    else:
        for i, t in zip(fr.column("id").to_pylist(), fr.column("text").to_pylist()):
            probe = verbatim_probe(t, cfg)
            if probe is None:
                short += 1
                continue
            rows.append({"id": f"{i}#verbmem", "parent_id": i, "prompt": probe[0], "gt": probe[1]})
    return pa.Table.from_pylist(rows, schema=VERBMEM_SCHEMA), short


def knowmem_tables(result: pa.Table, kind: str, probes: pa.Table | None = None,
                   link: Sequence[str] = ()) -> tuple[dict[str, pa.Table], dict]:
    """Knowledge probes (`question, answer`) per split: a QA corpus's own rows, or `probes` rows following the
    split of the document their `link` column names (any forget parent -> forget; else holdout; else retain)."""
    split_of = dict(zip(result.column("id").to_pylist(), result.column("split").to_pylist()))
    rows: dict[str, list[dict]] = {s: [] for s in SPLITS}
    stats = {"unlinked": 0}
    if kind == "qa":
        for i, q, a, s in zip(result.column("id").to_pylist(), result.column("question").to_pylist(),
                              result.column("answer").to_pylist(), result.column("split").to_pylist()):
            rows[s].append({"id": f"{i}#knowmem", "parent_id": i, "question": q, "answer": a})
    elif probes is not None:
        col = next((c for c in link if c in probes.column_names), None)
        if col is None:
            raise InputError(f"knowmem.qa_file: no link column ({', '.join(link)}) in {probes.column_names}")
        for k, r in enumerate(probes.to_pylist()):
            parents = r[col] if isinstance(r[col], list) else [r[col]]
            found = [split_of[str(p)] for p in parents if p is not None and str(p) in split_of]
            if not found:
                stats["unlinked"] += 1
                continue
            s = "forget" if "forget" in found else "holdout" if "holdout" in found else "retain"
            rows[s].append({"id": str(r.get("id") or f"probe-{k:05d}"), "parent_id": str(parents[0]),
                            "question": str(r.get("question")), "answer": str(r.get("answer"))})
    return {s: pa.Table.from_pylist(v, schema=KNOWMEM_SCHEMA) for s, v in rows.items()}, stats


def tofu_tables(result: pa.Table) -> dict[str, pa.Table]:
    """TOFU-style QA per split: `id, question, answer` + `paraphrased_answer, perturbed_answer[]` and any other
    TOFU field the corpus has (`paraphrased_question`, `perturbed_question`, `subject`, ...)."""
    skip = {"text", "source", *(f.name for f in SPLIT_FIELDS)} - {"split"}
    cols = [c for c in result.column_names if c not in skip]
    split = result.column("split")
    return {s: result.filter(pc.equal(split, s)).select(cols).drop_columns(["split"]) for s in SPLITS}


def applicable_layouts(kind: str, requested: Sequence[str] | None, has_probes: bool) -> tuple[list[str], dict]:
    """(layouts to write, {layout: reason} for those skipped). `None` asks for every layout that applies."""
    skipped = {}
    if kind != "qa":
        skipped["tofu"] = "needs a QA corpus (question, answer rows)"
        if not has_probes:
            skipped["knowmem"] = "a document corpus needs knowmem.qa_file (QA rows linked to documents)"
    if requested is None:
        return [x for x in LAYOUTS if x not in skipped], skipped
    bad = [x for x in requested if x in skipped]
    if bad:
        raise InputError(f"layouts: {bad[0]} {skipped[bad[0]]}")
    return list(requested), {x: "not requested" for x in LAYOUTS if x not in requested}

