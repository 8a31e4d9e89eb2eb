"""The document record: the one row model every document stage reads and writes.

Core columns are fixed; filters add typed score columns (declared by each filter, so every shard of a run has the
same schema). `metadata` holds everything else from the input as a JSON string.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

CORE_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("created", pa.string()),
    pa.field("metadata", pa.string()),
]
CORE_NAMES = [f.name for f in CORE_FIELDS]

# Columns only rejected rows carry: which stage removed the row and why.
REJECT_FIELDS: list[pa.Field] = [
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reason_detail", pa.string()),
]

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("file", pa.string(), nullable=False),
        pa.field("location", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
    ]
)


@dataclass
class Record:
    """One input document, normalised."""

    id: str
    text: str
    source: str
    url: str | None = None
    created: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def metadata_json(self) -> str:
        return json.dumps(self.metadata, ensure_ascii=False, sort_keys=True, default=str)


@dataclass
class BadRecord:
    """An input unit that could not be parsed; goes to quarantine with the reason."""

    file: str
    location: str  # "line 17", "record 3", "file", "offset 1234"
    error: str
    raw: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {"file": self.file, "location": self.location, "error": self.error, "raw": self.raw}


def document_schema(score_fields: list[pa.Field] | None = None, rejected: bool = False) -> pa.Schema:
    fields = list(CORE_FIELDS) + list(score_fields or [])
    if rejected:
        fields += REJECT_FIELDS
    return pa.schema(fields)
