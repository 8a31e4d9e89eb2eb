"""Pipeline registry: name -> "module:attribute" of a `Pipeline`. Modules are imported only when used, so
`flows list` stays fast and one pipeline's heavy imports never slow another."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel

PIPELINES: dict[str, str] = {
    "dolma": "flows.dolma:PIPELINE",
    "dedup": "flows.dedup:PIPELINE",
    "quality-train": "flows.quality_train:PIPELINE",
    "textbooks": "flows.textbooks:PIPELINE",
    "ensemble-instruct": "flows.ensemble_instruct:PIPELINE",
    "impossible-distillation": "flows.impossible_distillation:PIPELINE",
    "diachronic": "flows.diachronic:PIPELINE", "diachronic-train": "flows.diachronic_train:TRAIN_PIPELINE",
    "sphinx": "flows.sphinx:PIPELINE",
    "overgenerate": "flows.overgenerate:PIPELINE",
    "mix": "flows.mix:PIPELINE",
    "mix-ratios": "flows.mix_ratios:PIPELINE", "tokenize": "flows.tokenize:PIPELINE",
    "unlearning-whp": "flows.unlearning:WHP_PIPELINE", "unlearning-reinforce": "flows.unlearning:REINFORCE_PIPELINE",
    "unlearning-split": "flows.unlearning_split:SPLIT_PIPELINE", "remove": "flows.remove:REMOVE_PIPELINE",
}


@dataclass(frozen=True)
class Pipeline:
    name: str
    description: str
    config_model: type[BaseModel]
    flow: Callable[[Any], dict]  # a Prefect flow taking the validated config, returning the run summary
    # checks inputs/model paths before the flow starts, so bad input is one clear line, not a flow failure
    preflight: Callable[[Any], None] | None = None
    # what a run publishes (corpora.layout.Layout, or (config) -> Layout when it depends on the config): the flow
    # passes it to Run.start, the report and the dataset card read it here; None: kinds as their names imply
    layout: Any = None


class UnknownPipeline(KeyError):
    pass


def get_pipeline(name: str) -> Pipeline:
    target = PIPELINES.get(name)
    if target is None:
        import difflib

        close = difflib.get_close_matches(name, list(PIPELINES), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownPipeline(f"unknown pipeline '{name}'{hint} (known: {', '.join(sorted(PIPELINES))})")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
