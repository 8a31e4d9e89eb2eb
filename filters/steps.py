"""datatrove pipeline steps around our pure functions, so our filters mix with datatrove's and scale with its
executors (local, Ray, Slurm).

In our flows, filter steps *mark* a rejected document (`metadata["reason"]`) instead of dropping it, so the
last step can write every row to `kept/` or `rejected/` and the row count always adds up. With `drop=True` a
step behaves like a regular datatrove filter.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep

from corpora.atomic import atomic_write_json
from corpora.readers import FieldMap, lost_count, read_records
from corpora.records import BadRecord, QUARANTINE_SCHEMA, document_schema
from corpora.shards import ShardWriter
from corpora.staging import TaskLayout, mark_done, reset_dir, unique_id, write_step_stats
from filters.decision import Decision

META_KEYS = ("source", "url", "created", "metadata")


class InputReaderStep(PipelineStep):
    """Rank r reads input r of the layout; unparseable records go to the staging quarantine."""

    name = "📖 Input reader"
    type = "📖 - READER"

    def __init__(self, layout: TaskLayout, fields: FieldMap = FieldMap()):
        super().__init__()
        self.layout = layout
        self.fields = fields

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        item = self.layout.task(rank)
        stage = self.layout.dir(rank)
        reset_dir(stage)
        records = quarantined = lost = lost_unknown = 0  # lost: records under file-level quarantine rows
        taken: set[str] = set()  # ids given so far in this file (kept or renamed): see `unique_id`
        renamed = 0
        with ShardWriter(stage / "quarantine", QUARANTINE_SCHEMA, max_rows=50_000) as qw:
            for rec in read_records(item.path, self.fields):
                records += 1
                if isinstance(rec, BadRecord):
                    quarantined += 1
                    n = lost_count(rec)
                    if n is None:
                        lost_unknown += 1
                    else:
                        lost += n
                    self.stat_update("quarantined")
                    qw.write_rows([rec.as_row()])
                    continue
                self.stat_update("documents")
                doc_id = unique_id(rec.id, taken)
                if doc_id != rec.id:
                    renamed += 1
                    rec.metadata = {**(rec.metadata or {}), "original_id": rec.id}
                yield Document(text=rec.text, id=doc_id, metadata={
                    "source": rec.source, "url": rec.url, "created": rec.created,
                    "metadata": rec.metadata_json(),
                })
        read = {"records": records, "quarantined": quarantined, "lost_records": lost, "lost_unknown": lost_unknown}
        if renamed:  # later records with an id already seen in this file, renamed `<id>#n`
            read["duplicate_ids_renamed"] = renamed
        atomic_write_json(stage / "read.json", read)


SPAN_TYPE = pa.list_(pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string())]))


class FilterStep(PipelineStep):
    """One filter: `decide(doc) -> Decision`; scores go into `doc.metadata`, a changed text replaces the text.

    `tag_only=True` (Dolma's taggers, the dolma flow's `attributes_only`): every document is decided on its original
    text, nothing is rejected or changed, and the decision is recorded as attributes: `<filter>__keep`,
    `<filter>__reason` and, for filters that find spans (PII, C4 lines), `<filter>__spans`."""

    type = "🔻 - FILTER"
    config_name = "filter"
    columns: list[pa.Field] = []
    has_spans = False  # its decisions carry `spans`

    def __init__(self, config, layout: TaskLayout | None = None, order: int = 0, drop: bool = False,
                 tag_only: bool = False):
        super().__init__()
        self.config = config
        self.layout = layout
        self.order = order
        self.drop = drop
        self.tag_only = tag_only

    def output_columns(self) -> list[pa.Field]:
        if not self.tag_only:
            return list(self.columns)
        n = self.config_name
        tags = [pa.field(f"{n}__keep", pa.bool_()), pa.field(f"{n}__reason", pa.string())]
        if self.has_spans:
            tags.append(pa.field(f"{n}__spans", SPAN_TYPE))
        return [f for f in self.columns if not f.name.endswith("_original_chars")] + tags

    def decide(self, doc: Document) -> Decision:
        raise NotImplementedError

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        docs_in = removed = chars_removed = 0
        rules: dict[str, int] = {}
        seconds = 0.0
        for doc in data:
            if "reason" in doc.metadata:  # rejected upstream: pass through untouched
                yield doc
                continue
            docs_in += 1
            t0 = time.perf_counter()
            d = self.decide(doc)
            seconds += time.perf_counter() - t0
            doc.metadata.update(d.scores)
            self.stat_update("docs_in")
            if self.tag_only:  # record the decision, change nothing
                n = self.config_name
                doc.metadata[f"{n}__keep"], doc.metadata[f"{n}__reason"] = d.keep, d.reason
                if self.has_spans:
                    doc.metadata[f"{n}__spans"] = [{"start": a, "end": b, "label": lab}
                                                   for a, b, lab in (d.spans or ())]
                if not d.keep:
                    removed += 1
                    rules[d.reason] = rules.get(d.reason, 0) + 1
                    self.stat_update("removed")
                yield doc
                continue
            if not d.keep:
                removed += 1
                chars_removed += len(doc.text)
                rules[d.reason] = rules.get(d.reason, 0) + 1
                self.stat_update("removed")
                if self.drop:
                    continue
                doc.metadata["reason"] = self.config_name
                doc.metadata["reason_detail"] = d.reason
            elif d.text is not None and d.text != doc.text:
                chars_removed += max(0, len(doc.text) - len(d.text))
                doc.metadata[f"{self.config_name}_original_chars"] = len(doc.text)
                doc.text = d.text
            yield doc
        if self.layout is not None:
            write_step_stats(self.layout.dir(rank), self.order, self.config_name, {
                "docs_in": docs_in, "removed": removed, "chars_removed": chars_removed,
                "seconds": round(seconds, 4), "rules": rules,
            })


_WORDS_CACHE: list = [None, None, None]  # (doc, text, words) of the document being processed


def doc_words(doc: Document, split: Callable[[str], list[str]]) -> list[str]:
    """Words of the current text, computed once and shared by the steps that need them. Documents pass
    through the whole step chain one at a time, so a one-entry cache (by identity) is enough."""
    cdoc, ctext, cwords = _WORDS_CACHE
    if cdoc is doc and ctext is doc.text:
        return cwords
    words = split(doc.text)
    _WORDS_CACHE[:] = [doc, doc.text, words]
    return words


class StagedWriterStep(PipelineStep):
    """Last step: every document goes to `kept/` or `rejected/` of its input's staging folder; then `done.json`."""

    name = "💾 Staged writer"
    type = "💽 - WRITER"

    def __init__(self, layout: TaskLayout, score_fields: list[pa.Field], shard_rows: int = 100_000):
        super().__init__()
        self.layout = layout
        self.score_fields = score_fields
        self.shard_rows = shard_rows

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        stage = self.layout.dir(rank)
        kept_schema = document_schema(self.score_fields)
        rej_schema = document_schema(self.score_fields, rejected=True)
        kept = ShardWriter(stage / "kept", kept_schema, max_rows=self.shard_rows)
        rej = ShardWriter(stage / "rejected", rej_schema, max_rows=self.shard_rows)
        names = [f.name for f in self.score_fields]
        kbuf: list[dict[str, Any]] = []
        rbuf: list[dict[str, Any]] = []
        for doc in data:
            m = doc.metadata
            row = {"id": doc.id, "text": doc.text, **{k: m.get(k) for k in META_KEYS}, **{n: m.get(n) for n in names}}
            if "reason" in m:
                row["reason"] = m["reason"]
                row["reason_detail"] = m.get("reason_detail")
                rbuf.append(row)
                if len(rbuf) >= 2000:
                    rej.write_rows(rbuf)
                    rbuf = []
            else:
                kbuf.append(row)
                if len(kbuf) >= 2000:
                    kept.write_rows(kbuf)
                    kbuf = []
        kept.write_rows(kbuf)
        rej.write_rows(rbuf)
        kept.close()
        rej.close()
        mark_done(stage, self.layout.task(rank), self.layout.config_hash,
                  {"kept": kept.rows_written, "rejected": rej.rows_written})
        return
        yield  # a generator, as datatrove expects


def scores_json(doc: Document, names: list[str]) -> str:
    return json.dumps({n: doc.metadata.get(n) for n in names})


__all__ = ["InputReaderStep", "FilterStep", "StagedWriterStep", "doc_words", "Path"]
