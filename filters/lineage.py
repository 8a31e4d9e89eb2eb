"""Lineage: which rows of derived tables were made from removed rows, followed to a fixpoint.

A derived row names what it was made from in a link column: `parent_ids` (generated records, a list),
`parent_id`, `seed_id` (textbooks), `work_id` (diachronic slices: paragraphs cut from a work), `doc_id`. A row
whose link reaches a removed id is removed (or listed) too, and its own id is then a removed id for the next level:
web document -> textbook row -> a row generated from that textbook, however many levels, in any order of tables.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import pyarrow as pa

DEFAULT_LINKS = ("parent_ids", "parent_id", "seed_id", "work_id", "doc_id")

# hits: {dataset: {kind: {row index: (rule, matched id)}}}
Hits = dict[str, dict[str, dict[int, tuple[str, str]]]]


def link_values(table: pa.Table, column: str) -> list[list[str]]:
    """Every row's linked ids from one column (a list column or a scalar one)."""
    values = table.column(column).to_pylist()
    out = []
    for v in values:
        if v is None:
            out.append([])
        elif isinstance(v, (list, tuple)):
            out.append([str(x) for x in v if x is not None])
        else:
            out.append([str(v)])
    return out


def linked_rows(table: pa.Table, removed: set[str], links: Sequence[str] = DEFAULT_LINKS,
                skip: Iterable[int] = ()) -> dict[int, tuple[str, str]]:
    """Rows (not in `skip`) that link to a removed id: {row: ("lineage:<column>", parent id)} (first column and
    first parent that hit, in `links` order)."""
    skip = set(skip)
    out: dict[int, tuple[str, str]] = {}
    for col in links:
        if col not in table.column_names:
            continue
        for i, parents in enumerate(link_values(table, col)):
            if i in skip or i in out:
                continue
            for p in parents:
                if p in removed:
                    out[i] = (f"lineage:{col}", p)
                    break
    return out


def follow_lineage(tables: Mapping[str, Mapping[str, pa.Table]], hits: Hits,
                   links: Mapping[str, Sequence[str]] | Sequence[str] = DEFAULT_LINKS,
                   removed_ids: Iterable[str] = ()) -> tuple[Hits, int]:
    """Extend `hits` (rows already removed, e.g. by the match rules) with every row of `tables` whose links reach
    a removed row (or one of `removed_ids`, removed earlier), until nothing changes. `links` per dataset or one
    list for all. Returns (hits, levels: the number of passes that found new rows)."""
    hits = {d: {k: dict(v) for k, v in kinds.items()} for d, kinds in hits.items()}
    removed = {str(tables[d][k].column("id")[i]) for d, kinds in hits.items() for k, rows in kinds.items()
               for i in rows} | {str(x) for x in removed_ids}
    levels = 0
    while True:
        new: set[str] = set()
        for d, kinds in tables.items():
            cols = links[d] if isinstance(links, Mapping) else links
            for k, t in kinds.items():
                if "id" not in t.column_names:
                    continue
                have = hits.setdefault(d, {}).setdefault(k, {})
                found = linked_rows(t, removed, cols, skip=have)
                if found:
                    have.update(found)
                    ids = t.column("id").to_pylist()
                    new.update(str(ids[i]) for i in found)
        new -= removed
        if not new:
            return hits, levels
        removed |= new
        levels += 1
