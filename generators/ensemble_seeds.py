"""Ensemble-Instruct's seed tasks: each seed's type (A: its first instance has an input; B: output only), the
quarantine rows of seeds whose `instances` cannot tell it, and the check that every type with a target has seeds
(`SeedError`, one line, before any generation).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpora.readers import InputError
from generators.ensemble_config import TYPES, EnsembleInstructConfig, InstructionsConfig

SAMPLE_SEEDS = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "instruct_seed_sample.jsonl"


@dataclass
class SeedTask:
    id: str
    instruction: str
    type: str


class SeedError(InputError):
    """Seed tasks that cannot make a run (e.g. none of a type with a target): one line, before any generation."""


def seed_problem(metadata: dict[str, Any]) -> str | None:
    """Why a seed task has no usable type (None: it has one). The type is read from `instances[0].input`."""
    if "instances" not in metadata:
        return "no 'instances' field (a seed task needs instances[0] to tell type A from B)"
    inst = metadata["instances"]
    if not isinstance(inst, list):
        return f"'instances' is {type(inst).__name__}, not a list of objects"
    if not inst:
        return "'instances' is an empty list"
    if not isinstance(inst[0], dict):
        return f"instances[0] is {type(inst[0]).__name__}, not an object with 'input' / 'output'"
    inp = inst[0].get("input")
    if inp is not None and not isinstance(inp, str):
        return f"instances[0].input is {type(inp).__name__}, not a string"
    return None


def seed_tasks(records: Sequence[Any]) -> tuple[list[SeedTask], list[dict]]:
    """(typed seeds, quarantine rows for seeds whose `instances` cannot tell their type: file, row, reason)."""
    out, bad = [], []
    for r in records:
        problem = seed_problem(r.metadata)
        if problem is not None:
            raw = json.dumps({"id": r.id, "instruction": r.text, "instances": r.metadata.get("instances")},
                             ensure_ascii=False, default=str)
            bad.append({"file": r.source, "location": f"id {r.id}", "error": f"seed task: {problem}",
                        "raw": raw[:200]})
            continue
        inst = r.metadata["instances"]
        out.append(SeedTask(r.id, r.text, "A" if (inst[0].get("input") or "") != "" else "B"))
    return out, bad


def check_seed_types(seeds: Sequence[SeedTask], icfg: "InstructionsConfig", where: str = "the seed tasks") -> None:
    """Every type with a target needs seeds of that type (SeedError, one line, otherwise)."""
    targets = {"A": icfg.target_a, "B": icfg.target_b}
    missing = [t for t in TYPES if targets[t] and not any(s.type == t for s in seeds)]
    if missing:
        names = {"A": "A (first instance has an input)", "B": "B (first instance has no input)"}
        keys = " / ".join(f"instructions.target_{t.lower()}" for t in missing)
        raise SeedError(f"{where}: no seed task of type {', '.join(names[t] for t in missing)} among "
                        f"{len(seeds)} usable seed(s); add such seeds or set {keys}: 0")


def preflight_seeds(cfg: EnsembleInstructConfig) -> None:
    """Before any generation: the seeds (the inputs, else the bundled sample) have a seed of every type with a
    target (SeedError, one line, otherwise). Records the readers cannot read are the run's quarantine, not here."""
    from corpora.readers import BadRecord, FieldMap, expand_inputs, read_records

    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    paths = cfg.inputs or [str(SAMPLE_SEEDS)]
    records = [r for p in expand_inputs(paths) for r in read_records(p, fields) if not isinstance(r, BadRecord)]
    seeds, bad = seed_tasks(records[:cfg.max_seeds] if cfg.max_seeds else records)
    where = ", ".join(str(p) for p in paths)
    if bad:
        where += f" ({len(bad)} seed(s) with unusable instances, quarantined at run time)"
    check_seed_types(seeds, cfg.instructions, where)
