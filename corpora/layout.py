"""The output layout of a run, declared once: the kinds a run publishes, the schema each falls back to, how a kind
is partitioned, and from that the dataset card's configs. A pipeline declares it once (`Pipeline.layout` in
flows/registry.py; a generator's `kinds` + `partition_by`); its flow passes it to `Run.start`, `Run.publish` names
each folder (and the manifest's entry) from it (`path`), and the dataset card and the report read the same
declaration through the registry (`table_of`, `card_config`), so `flows report DIR` needs nothing else.

    Kind("data")                          data/part-*.parquet                          card: config `default`
    Kind("data", partition_by="lang")     data/lang=<xx>/part-*.parquet (Hive)         card: one config, all values
    Kind("slices", splits=True)           slices/<group>/<split>/part-*.parquet        card: config `slices_<group>`
                                                                                        with its splits + `slices`
    Kind("attributes", project=True)      only the columns of its schema (staged parts carry more)
    Kind("tofu", tables=True)             tofu/<table>/part-*.parquet                  card: what the names imply

A name no kind declares (a pipeline without a layout, `remove`'s copies of another run's folders, a `tables` kind's
tables) gets the layout the name implies: a `<col>=<value>` folder is a partition of its kind, `<kind>[/<group>]/<split>` a split.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

import pyarrow as pa

from corpora.records import QUARANTINE_SCHEMA

SPLIT_NAMES = {"train", "dev", "validation", "test"}


@dataclass(frozen=True)
class Kind:
    name: str                         # its folder under the output
    schema: pa.Schema | None = None   # the schema when nothing is staged (None: the flow gives it at publish)
    partition_by: str | None = None   # Hive partitions `<name>/<col>=<value>/` (e.g. "lang")
    splits: bool = False              # `<name>/<group>/<split>/`: a card config per group, its splits inside
    project: bool = False             # publish only the schema's columns of the staged parts (dolma's attributes)
    tables: bool = False              # `<name>/<table>/`: named tables inside, each its own card config
                                      # (unlearning-split's packages: tofu/forget01, muse/retain1 ...)


@dataclass(frozen=True)
class Layout:
    kinds: tuple[Kind, ...]
    retired: tuple[str, ...] = ()  # kinds an earlier run into the same folder may hold and this one does not publish

    @classmethod
    def named(cls, names: Iterable[str]) -> "Layout":
        """Plain kinds by name (no schema, no partitions)."""
        return cls(tuple(Kind(n) for n in names))

    @classmethod
    def documents(cls, *extra: Kind | str, partition_by: str | None = None, retired: tuple[str, ...] = ()
                  ) -> "Layout":
        """data / rejected / quarantine (+ `extra` kinds, e.g. a generator's `instructions`)."""
        more = tuple(k if isinstance(k, Kind) else Kind(k) for k in extra)
        return cls((Kind("data", partition_by=partition_by), Kind("rejected"), Kind("quarantine", QUARANTINE_SCHEMA))
                   + more, retired)

    def names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.kinds)

    def kind(self, name: str) -> Kind:
        """The declared kind; an undeclared name is a plain kind (`remove` republishes another run's kinds)."""
        return next((k for k in self.kinds if k.name == name), Kind(name))

    def path(self, kind: str, part: str | tuple[str, str] | None = None) -> str:
        """The folder (relative to the output, also the manifest's name) of `kind`, or of one partition value /
        (group, split) of it."""
        k = self.kind(kind)
        if part is None:
            return kind
        if k.partition_by:
            return f"{kind}/{k.partition_by}={part}"
        if k.splits:
            group, split = part
            return f"{kind}/{group}/{split}"
        if k.tables:
            return f"{kind}/{part}"
        raise ValueError(f"output kind {kind!r} has no partitions (declare partition_by, splits or tables)")

    def _declared(self, name: str) -> Kind | None:
        head = name.split("/", 1)[0]
        return next((k for k in self.kinds if k.name == head and (k.partition_by or k.splits)), None)

    def table_of(self, name: str) -> str:
        """The loadable table a published folder belongs to: a partition's is its kind (`data/lang=en` -> `data`),
        a split is itself (`slices/1750_1820/train`)."""
        k = self._declared(name)
        if k is not None:
            return k.name if k.partition_by else name
        return "/".join(p for p in name.split("/") if "=" not in p) or "."

    def card_config(self, table: str) -> tuple[str, str, str | None]:
        """(config name, split, group config or None) of a table: a split table is config `<kind>_<group>`, split
        `<split>`, also in the group config `<kind>`; any other is its own config, split `train`."""
        k = self._declared(table)
        parts = table.split("/")
        if k is not None and k.splits and len(parts) == 3:
            return config_name("/".join(parts[:-1])), parts[-1], config_name(parts[0])
        if k is None and len(parts) > 1 and parts[-1] in SPLIT_NAMES:  # undeclared: what the names imply
            return (config_name("/".join(parts[:-1])), parts[-1],
                    config_name(parts[0]) if len(parts) > 2 else None)
        return config_name(table), "train", None


def config_name(kind: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", kind).strip("_") or "default"
