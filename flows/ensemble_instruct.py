"""`flows run ensemble-instruct`: Ensemble-Instruct instruction data (the generator: `generators/ensemble_instruct.py`).

seed tasks -> rounds `instructions#i` (few-shot, novelty by ROUGE-L, until each type's target) -> round `instances`
(few-shot input/output) -> rounds `votes#k` (one per voter, one engine at a time) -> consensus -> language ID,
exact + MinHash dedup (the dolma document steps) -> data / rejected + instructions / instances / votes Parquet.
Wiring: `flows/generation.py`.
"""
from __future__ import annotations

from flows.generation import generator_flow, generator_pipeline
from generators.ensemble_instruct import GENERATOR, EnsembleInstructConfig

ensemble_instruct_flow = generator_flow(GENERATOR)
PIPELINE = generator_pipeline(GENERATOR, ensemble_instruct_flow)

__all__ = ["PIPELINE", "EnsembleInstructConfig", "ensemble_instruct_flow"]
