"""The generated record: the document core (`id, text, source, url, created, metadata`) + provenance + the
generator's own fields. Every generator's output (and its `rejected/` rows) has this shape, so a training job, the
dedup stage and the lineage tools read them all alike.

Provenance of a row: the model and backend that wrote it, the exact sampling parameters (JSON), the template id
(with its version), the request it answers, the rows it was made from (`parent_ids`), how it ended
(`finish_reason`, `completion_tokens`), and the round of the run that produced it.

`join_results` is the one join of generation results to the requests that asked for them (by request id, never
by position): each result row becomes a record whose own fields come from its request's `meta`.
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Sequence

import pyarrow as pa

from corpora.records import CORE_FIELDS, REJECT_FIELDS

PROVENANCE_FIELDS: list[pa.Field] = [
    pa.field("model", pa.string()),
    pa.field("backend", pa.string()),
    pa.field("sampling_params", pa.string()),
    pa.field("template_id", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("parent_ids", pa.list_(pa.string())),
    pa.field("finish_reason", pa.string()),
    pa.field("completion_tokens", pa.int32()),
    pa.field("round", pa.string()),
]
PROVENANCE_NAMES = [f.name for f in PROVENANCE_FIELDS]
GENERATION_ERROR_FIELD = pa.field("error", pa.string())  # rejected rows whose generation failed


def generated_schema(own_fields: Sequence[pa.Field] = (), extra_fields: Sequence[pa.Field] = (),
                     rejected: bool = False) -> pa.Schema:
    """Core + provenance + the generator's fields + (post-processing columns) [+ reason, reason_detail, error]."""
    fields = list(CORE_FIELDS) + list(PROVENANCE_FIELDS)
    names = {f.name for f in fields}
    for f in list(own_fields) + list(extra_fields):
        if f.name not in names:
            fields.append(f)
            names.add(f.name)
    if rejected:
        fields += [f for f in REJECT_FIELDS + [GENERATION_ERROR_FIELD] if f.name not in names]
    return pa.schema(fields)


def to_table(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) as a table of `schema`: missing keys are nulls, unknown keys are an error (a typo in a
    generator's field name must not vanish silently)."""
    rows = list(rows)
    names = set(schema.names)
    for i, r in enumerate(rows):
        extra = set(r) - names
        if extra:
            raise ValueError(f"row {i} (id={r.get('id')!r}): fields {sorted(extra)} are not in the schema")
    return pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)


def join_results(results: Iterable[dict[str, Any]], requests: Sequence[Any], round_name: str, source: str
                 ) -> tuple[list[dict], list[dict]]:
    """Stage result rows + the requests that asked for them -> (records of ok completions, records of failed
    requests with `reason="generation_failed"` and the error). A result whose request is unknown is an error."""
    by_id = {r.id: r for r in requests}
    ok, failed = [], []
    for res in results:
        req = by_id.get(res["request_id"])
        if req is None:
            raise KeyError(f"result {res['id']!r} answers request {res['request_id']!r}, which this round did not ask")
        record = {
            "id": res["id"], "text": res["text"] if res["text"] is not None else "", "source": source,
            "url": None, "created": None, "metadata": None,
            "model": res["model"], "backend": res["backend"], "sampling_params": res["sampling_params"],
            "template_id": res["template_id"], "request_id": res["request_id"],
            "parent_ids": list(res["parent_ids"] or []), "finish_reason": res["finish_reason"],
            "completion_tokens": res["completion_tokens"], "round": round_name,
            **req.meta,
        }
        if res["status"] == "ok":
            ok.append(record)
        else:
            failed.append({**record, "reason": "generation_failed", "reason_detail": None, "error": res["error"]})
    return ok, failed


def partition_rows(rows: Iterable[dict[str, Any]], column: str) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by the value of `column` (first-seen order), for Hive-style `data/<column>=<value>/` folders.
    A row without a value, or with one that is not a safe folder name, is an error naming the row."""
    out: dict[str, list[dict[str, Any]]] = {}
    for i, r in enumerate(rows):
        v = r.get(column)
        if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", v) or v in (".", ".."):
            raise ValueError(f"row {i} (id={r.get('id')!r}): partition column {column!r} is {v!r}, not a folder name")
        out.setdefault(v, []).append(r)
    return out


def metadata_json(value: dict[str, Any] | None) -> str | None:
    return None if not value else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
