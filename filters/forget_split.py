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
    """Verbatim probes (MUSE `verbmem`): an excerpt of a forget text, at most `prompt_words` + `gt_words` words from
    its start; `gt` = its last `gt_words` words (fewer when the text is short, keeping `min_prompt_words` of prompt),
    `prompt` = the words before them. MUSE's excerpts are up to 2,048 LLaMA tokens with a 128-token continuation
    (`max_new_tokens=128`): its stored prompts run to hundreds of words."""

    prompt_words: int = Field(768, ge=1)  # the prompt's most words (about 1,000 LLaMA tokens)
    gt_words: int = Field(128, ge=1)  # the continuation's most words (MUSE scores its first 128 tokens)
    min_prompt_words: int = Field(32, ge=1)  # a short text keeps at least this much prompt (its gt gets shorter)
    min_gt_words: int = Field(8, ge=1)  # a text too short for this many gt words gives no probe (counted)


class TofuEvalSets(StrictModel):
    """TOFU's evaluation sets, passed through when given (TOFU ships them as files; `../shared` holds none of the
    first three): each is TOFU's JSON / JSON lines file as TOFU ships it."""

    retain_perturbed: str | None = None  # question, answer, paraphrased_answer, perturbed_answer[]: its rows must be
    # retain rows (question + answer); their paraphrased / perturbed answers are joined into those rows
    real_authors_perturbed: str | None = None  # question, answer, perturbed_answer[]
    world_facts_perturbed: str | None = None  # question, answer, perturbed_answer[]
    idontknow: str | None = None  # one refusal a line (TOFU's data/idontknow.jsonl): copied as tofu/idontknow.jsonl


class MuseExport(StrictModel):
    """`muse_data/`: MUSE's own file layout (its `data/<corpus>/`) beside the Parquet packages."""

    enabled: bool = True
    icl_shots: int = Field(10, ge=0)  # knowmem in-context examples per split (MUSE ships 10), left out of the *_qa file


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
    """(prompt, gt) of MUSE's shape, spacing kept: the excerpt = the text's first `prompt_words + gt_words` words;
    gt = its last `gt_words` words, or fewer when the text is short (the prompt keeps `min_prompt_words`); prompt =
    the words before gt. None when that leaves fewer than `min_gt_words` gt words."""
    spans = [m.span() for m in _WORD_SPAN.finditer(text or "")]
    n = min(len(spans), cfg.prompt_words + cfg.gt_words)
    g = min(cfg.gt_words, n - cfg.min_prompt_words)
    if g < cfg.min_gt_words:
        return None
    p_end, gt = spans[n - g - 1][1], spans[n - g:n]
    return text[spans[0][0]:p_end], text[gt[0][0]:gt[-1][1]]


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


# TOFU's configuration names (the locuslab/TOFU dataset card; data_module.py pairs forgetNN with retain(100-NN))
TOFU_FORGET = re.compile(r"forget(\d\d)")
TOFU_EVAL_FIELDS = {  # what TOFU's evaluation reads of each set (config/eval_everything.yaml: answer keys)
    "retain_perturbed": ("question", "answer", "paraphrased_answer", "perturbed_answer"),
    "real_authors_perturbed": ("question", "answer", "perturbed_answer"),
    "world_facts_perturbed": ("question", "answer", "perturbed_answer"),
}


def tofu_percent_name(prefix: str, weight: int, total: int) -> str | None:
    """`forget10` / `holdout10`: TOFU's name for a share of the corpus that is a whole percent (1..99), else None."""
    pct = 100.0 * weight / total if total else 0.0
    r = round(pct)
    return f"{prefix}{r:02d}" if abs(pct - r) < 1e-9 and 0 < r < 100 else None


def _has_perturbed(t: pa.Table) -> np.ndarray:
    """Rows that carry both `paraphrased_answer` and a non-empty `perturbed_answer`."""
    if not {"paraphrased_answer", "perturbed_answer"} <= set(t.column_names):
        return np.zeros(t.num_rows, dtype=bool)
    return np.array([p is not None and bool(q) for p, q in zip(t.column("paraphrased_answer").to_pylist(),
                                                               t.column("perturbed_answer").to_pylist())], dtype=bool)


def read_tofu_eval(path: str | Path, name: str) -> pa.Table:
    """One of TOFU's evaluation sets (a JSON array or JSON lines, as TOFU ships them), every row checked for the
    fields TOFU's evaluation reads; a bad row is a one-line error naming the file and row. Other fields kept
    (strings; anything else as JSON text)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"tofu.{name}: {p} does not exist")
    need = TOFU_EVAL_FIELDS[name]
    rows = []
    for loc, obj in _json_items(p):
        if isinstance(obj, Exception) or not isinstance(obj, dict):
            raise InputError(f"{p}: {loc}: expected an object with {', '.join(need)}")
        miss = [k for k in need if obj.get(k) in (None, "", [])]
        if miss:
            raise InputError(f"{p}: {loc}: no {', '.join(miss)} (tofu.{name} needs {', '.join(need)})")
        pa_ = obj["perturbed_answer"]
        row = {k: (v if isinstance(v, str) or v is None else json.dumps(v, ensure_ascii=False, sort_keys=True))
               for k, v in obj.items() if k != "perturbed_answer"}
        row["perturbed_answer"] = [str(x) for x in pa_] if isinstance(pa_, list) else [str(pa_)]
        rows.append(row)
    if not rows:
        raise InputError(f"{p}: tofu.{name} holds no rows")
    keys = list(dict.fromkeys(k for r in rows for k in r))
    schema = pa.schema([pa.field(k, pa.list_(pa.string()) if k == "perturbed_answer" else pa.string()) for k in keys])
    return pa.Table.from_pylist([{k: r.get(k) for k in keys} for r in rows], schema=schema)


def read_idontknow(path: str | Path) -> str:
    """TOFU's refusal file as TOFU reads it (`open(...).readlines()`, each stripped): its text, checked to hold a
    refusal."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"tofu.idontknow: {p} does not exist")
    text = p.read_text(encoding="utf-8")
    if not any(line.strip() for line in text.splitlines()):
        raise InputError(f"{p}: tofu.idontknow holds no refusal (one a line)")
    return text


def join_perturbed(table: pa.Table, given: pa.Table) -> tuple[pa.Table, int]:
    """`paraphrased_answer` / `perturbed_answer` of `given` (TOFU's retain_perturbed) into the rows of `table` with
    the same question and answer that lack them (TOFU keeps them in a separate file, retain90.json has none).
    Returns (table, rows filled)."""
    by_key = {qa_key(q, a): (p, list(x)) for q, a, p, x in zip(
        given.column("question").to_pylist(), given.column("answer").to_pylist(),
        given.column("paraphrased_answer").to_pylist(), given.column("perturbed_answer").to_pylist())}
    para = table.column("paraphrased_answer").to_pylist() if "paraphrased_answer" in table.column_names \
        else [None] * table.num_rows
    pert = table.column("perturbed_answer").to_pylist() if "perturbed_answer" in table.column_names \
        else [None] * table.num_rows
    filled = 0
    for i, (q, a) in enumerate(zip(table.column("question").to_pylist(), table.column("answer").to_pylist())):
        hit = by_key.get(qa_key(q, a))
        if hit is not None and (para[i] is None or not pert[i]):
            para[i], pert[i] = hit
            filled += 1
    for name, vals, typ in (("paraphrased_answer", para, pa.string()), ("perturbed_answer", pert,
                                                                        pa.list_(pa.string()))):
        col = pa.array(vals, typ)
        table = (table.set_column(table.column_names.index(name), name, col) if name in table.column_names
                 else table.append_column(name, col))
    return table, filled


def tofu_tables(result: pa.Table, sets: dict[str, dict[str, np.ndarray]], weights: dict[str, int], total: int,
                evals: dict[str, pa.Table]) -> tuple[dict[str, pa.Table], dict]:
    """TOFU's configurations (the locuslab/TOFU card's names): `full` (forget + retain: what the target model is
    fine-tuned on), `forgetNN` + `retain(100-NN)` for the forget pool and every nested set that is a whole percent,
    `forgetNN_perturbed` when every forget row has its paraphrased / perturbed answers, `holdoutNN`, and the
    evaluation sets (`evals`: given files; `retain_perturbed` made from retain rows that carry the fields when no
    file is given). Each: `id, question, answer` + the TOFU fields the corpus has. Returns (tables, stats)."""
    skip = {"text", "source", *(f.name for f in SPLIT_FIELDS)}
    base = result.select([c for c in result.column_names if c not in skip])
    split = np.asarray(result.column("split").to_pylist(), dtype=object)
    retain = split == "retain"
    out: dict[str, pa.Table] = {"full": base.filter(pa.array(split != "holdout"))}
    skipped: dict[str, str] = {}
    pairs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    main = tofu_percent_name("forget", weights.get("forget", 0), total)
    if main:
        pairs[main] = (split == "forget", retain)
    elif weights.get("forget"):
        skipped["forgetNN"] = "the forget pool is not a whole percent of the corpus (TOFU names forget01..forget99)"
    for name, m in sets.items():
        if TOFU_FORGET.fullmatch(name) and name not in pairs:
            pairs[name] = (m["forget"], m["retain"])
    has = _has_perturbed(base)
    for name in sorted(pairs):
        f, r = pairs[name]
        out[name] = base.filter(pa.array(f))
        out[f"retain{100 - int(name[6:]):02d}"] = base.filter(pa.array(r))
        lacking = int((f & ~has).sum())
        if lacking:
            skipped[f"{name}_perturbed"] = f"{lacking} of {int(f.sum())} forget rows lack paraphrased_answer / perturbed_answer"
        else:
            out[f"{name}_perturbed"] = out[name]
    hold = tofu_percent_name("holdout", weights.get("holdout", 0), total)
    if hold:
        out[hold] = base.filter(pa.array(split == "holdout"))
    elif weights.get("holdout"):
        skipped["holdoutNN"] = "the holdout is not a whole percent of the corpus (TOFU names holdout01..holdout99)"
    stats: dict[str, Any] = {"retain_rows_with_perturbed": int((retain & has).sum()), "retain_rows": int(retain.sum())}
    given = evals.get("retain_perturbed")
    if given is not None:
        in_retain = {qa_key(q, a) for q, a, keep in zip(result.column("question").to_pylist(),
                                                         result.column("answer").to_pylist(), retain) if keep}
        ok = np.array([qa_key(q, a) in in_retain for q, a in zip(given.column("question").to_pylist(),
                                                                 given.column("answer").to_pylist())], dtype=bool)
        stats["retain_perturbed"] = {"given": given.num_rows, "written": int(ok.sum()),
                                     "not_in_retain": int((~ok).sum())}
        out["retain_perturbed"] = given.filter(pa.array(ok))
    elif (retain & has).any():
        out["retain_perturbed"] = base.filter(pa.array(retain & has))
    else:
        skipped["retain_perturbed"] = ("no retain row has paraphrased_answer / perturbed_answer (TOFU's retain90.json "
                                       "has question / answer only; give tofu.retain_perturbed, TOFU's own file)")
    for name in ("real_authors_perturbed", "world_facts_perturbed"):
        if name in evals:
            out[name] = evals[name]
        else:
            skipped[name] = f"not given (tofu.{name}: TOFU's data/{name}.json)"
    out = {k: v for k, v in out.items() if v.num_rows}
    return out, {**stats, "configs": {k: v.num_rows for k, v in out.items()}, "skipped": skipped}


# ---- MUSE's own files -------------------------------------------------------------------------------------------
def _icl_split(rows: list[dict], k: int, seed: int, purpose: str) -> tuple[list[dict], list[dict]]:
    """(qa, icl): `k` rows by seeded hash of their id as in-context examples, the rest (in order) to be scored."""
    pick = set(sorted(range(len(rows)), key=lambda i: _unit_hash(seed, purpose, str(rows[i]["id"])))[:k])
    return ([{"question": r["question"], "answer": r["answer"]} for i, r in enumerate(rows) if i not in pick],
            [{"question": rows[i]["question"], "answer": rows[i]["answer"]} for i in sorted(pick)])


def muse_files(result: pa.Table, verbmem: pa.Table | None, knowmem: dict[str, pa.Table] | None, cfg: MuseExport,
               seed: int = 0) -> tuple[dict[str, Any], dict]:
    """MUSE's layout (its `data/<corpus>/` folder; swj0419/muse_bench constants.py DEFAULT_DATA): relative path ->
    content (a list is written as JSON, a str as text), and {path: reason} for files not written.

    raw/{forget,retain1,retain2,holdout}.txt (texts joined by a blank line) and .json (a list of strings): what
    `baselines/dataset.py` DefaultDataset reads (`--data_file`, `--retain_data_file`); privleak/{forget,retain,
    holdout}.json: lists of strings (retain = retain2); verbmem/forget.json: `prompt, gt`; knowmem/{forget,retain}
    _qa.json and _qa_icl.json: `question, answer` (retain = probes of retain2 rows, MUSE's retain2_qa)."""
    files: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    texts = {s: t.column("text").to_pylist() for s, t in muse_tables(result).items()}
    for s, ts in texts.items():
        if ts:
            files[f"raw/{s}.txt"] = "\n\n".join(ts) + "\n"
            files[f"raw/{s}.json"] = ts
        else:
            skipped[f"raw/{s}"] = "no rows"
    for name, s in (("forget", "forget"), ("retain", "retain2"), ("holdout", "holdout")):
        if texts[s]:
            files[f"privleak/{name}.json"] = texts[s]
        else:
            skipped[f"privleak/{name}.json"] = f"no {s} rows"
    if verbmem is None:
        skipped["verbmem/forget.json"] = "verbmem layout not written"
    elif verbmem.num_rows:
        files["verbmem/forget.json"] = [{"prompt": p, "gt": g} for p, g in zip(verbmem.column("prompt").to_pylist(),
                                                                             verbmem.column("gt").to_pylist())]
    else:
        skipped["verbmem/forget.json"] = "no verbatim probes"
    if knowmem is None:
        skipped["knowmem/"] = "knowmem layout not written"
    else:
        part = dict(zip(result.column("id").to_pylist(), result.column("retain_part").to_pylist()))
        probes = {"forget": knowmem["forget"].to_pylist(),
                  "retain": [r for r in knowmem["retain"].to_pylist() if part.get(r["parent_id"]) == 2]}
        for s, rows in probes.items():
            if len(rows) <= cfg.icl_shots:
                skipped[f"knowmem/{s}_qa.json"] = f"{len(rows)} probes, not more than icl_shots ({cfg.icl_shots})"
                continue
            files[f"knowmem/{s}_qa.json"], files[f"knowmem/{s}_qa_icl.json"] = _icl_split(rows, cfg.icl_shots, seed,
                                                                                         f"icl-{s}")
    return files, skipped


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

