"""A generator run's seeds: which inputs (the user's, else the generator's bundled sample and its demo size) and
reading them (corpora readers; bad records quarantined and counted per input, ids made unique across inputs)."""
from __future__ import annotations

import logging
from typing import Any, Callable

from corpora.hashing import sha256_file
from corpora.readers import FieldMap, expand_inputs, lost_count, read_records
from corpora.records import BadRecord
from corpora.staging import unique_id
from generators.contract import Generator, GeneratorConfig


def seed_inputs(gen: Generator, cfg: GeneratorConfig) -> tuple[list[str], bool]:
    """(input paths, whether they are the bundled sample)."""
    if cfg.inputs:
        return list(cfg.inputs), False
    sample = gen.sample_inputs(cfg) if gen.sample_inputs else []
    return sample, bool(sample)


def read_seeds(inputs: list[str], cfg: GeneratorConfig, warn: Callable[..., None] = logging.getLogger(__name__).warning
               ) -> tuple[list, list[dict], list[dict]]:
    """(seed records, quarantine rows, per-input counts)."""
    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    seeds, bad, per_input = [], [], []
    taken: set[str] = set()  # seed ids given so far, across the inputs
    for path in expand_inputs(inputs) if inputs else []:
        n_read = n_bad = lost = lost_unknown = renamed = 0
        for rec in read_records(path, fields):
            n_read += 1
            if isinstance(rec, BadRecord):
                n_bad += 1
                n = lost_count(rec)  # a file-level row may stand for many records (or an unknown number)
                lost, lost_unknown = (lost, lost_unknown + 1) if n is None else (lost + n, lost_unknown)
                bad.append(rec.as_row())
                warn("quarantined %s %s: %s", rec.file, rec.location, rec.error)
            else:
                renamed += _unique_seed_id(rec, taken)
                seeds.append(rec)
        per_input.append({"path": str(path), "sha256": sha256_file(path), "records": n_read, "quarantined": n_bad,
                          "lost_records": lost, "lost_unknown": lost_unknown})
        if renamed:
            per_input[-1]["duplicate_ids_renamed"] = renamed
    return seeds, bad, per_input


def _unique_seed_id(rec, taken: set[str]) -> int:
    """The one id policy (`corpora.staging.unique_id`): a seed whose id an earlier seed (any input) holds becomes
    `<id>#n`, its original id in `metadata.original_id`. 1 when renamed."""
    new = unique_id(rec.id, taken)
    if new == rec.id:
        return 0
    rec.metadata = {"original_id": rec.id, **(rec.metadata or {})}  # a reader-renamed seed keeps its first
    rec.id = new
    return 1


def apply_demo(cfg: GeneratorConfig, demo: dict[str, Any]) -> tuple[GeneratorConfig, dict[str, Any]]:
    """The bundled sample's demo size: each dotted key of `demo` the user did not set takes its demo value."""
    cfg = cfg.model_copy(deep=True)
    applied = {}
    for key, value in demo.items():
        *parents, leaf = key.split(".")
        obj = cfg
        for part in parents:
            obj = getattr(obj, part)
        if leaf not in obj.model_fields_set:  # a parent the user did not set has no user-set children either
            setattr(obj, leaf, value)
            applied[key] = value
    return cfg, applied
