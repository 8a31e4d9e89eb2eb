"""Ensemble-Instruct's prompts: the versioned templates of its rounds (their ids are in the cache key), the
instructions round's numbered list (`encode_prompt`, the reference's) and the instances round's few-shot templates
per type, read from a demos file (`templates`). The generator: `generators.ensemble_instruct`.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import yaml

from generators.ensemble_config import EOS, TYPES
from generators.task import Template

TEMPLATE_VERSION = 1
# the rounds' prompts (their ids are in the cache key); the instances' few-shot templates: `templates(demos_file)`
INSTRUCTIONS = Template("ensemble-instruct/instructions", 1)  # `encode_prompt`
ZERO_SHOT = Template("ensemble-instruct/zero-shot", 1)  # instruction + newline + input
DEMOS_PATH = Path(__file__).with_name("ensemble_instruct_demos.yaml")
# the instances' prompts: one template per type, its variant the demos file's version (`templates`)
INSTANCES = {t: Template(f"ensemble-instruct/instances-{t}", TEMPLATE_VERSION) for t in TYPES}


def encode_prompt(instructions: Sequence[str]) -> str:
    prompt = "Come up with a series of tasks:\n"
    for i, ins in enumerate(instructions):
        ins = re.sub(r"\s+", " ", ins).strip().rstrip(":")
        prompt += f"{i + 1}. {ins} {EOS}\n"
    return prompt + f"{len(instructions) + 1}."


def demos_path(path: str | None) -> Path:
    """A demos file: the bundled one for None; a relative path that is not under the working directory is looked
    up in the project (so `generators/ensemble_instruct_reference_demos.yaml` works from anywhere)."""
    if path is None:
        return DEMOS_PATH
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists():
        for root in (DEMOS_PATH.parents[1], DEMOS_PATH.parent):
            if (root / p).is_file():
                return root / p
    return p


@lru_cache(maxsize=4)
def templates(path: str | None = None) -> dict[str, tuple[str, int]]:
    """{type: (few-shot template ending in 'instruction:', template version)}. Per type, either `header` + `demos`
    (built into the reference's format) or `template`: the whole prompt prefix, verbatim (the reference's own
    templates: ensemble_instruct_reference_demos.yaml)."""
    doc = yaml.safe_load(demos_path(path).read_text(encoding="utf-8"))
    out = {}
    for t, key in (("A", "with_input"), ("B", "without_input")):
        if "template" in doc[key]:
            out[t] = (doc[key]["template"], doc.get("version", 1))
            continue
        blocks = [f"instruction: {d['instruction']}\n" + (f"input: {d['input']}\n" if t == "A" else "")
                  + f"output: {d['output']}\n{EOS}\n\n" for d in doc[key]["demos"]]
        out[t] = (doc[key]["header"].strip() + "\n\n" + "".join(blocks) + "instruction:", doc.get("version", 1))
    return out
