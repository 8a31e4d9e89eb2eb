"""`flows run impossible-distillation`: Impossible Distillation paraphrase / summary pairs (the generator:
`generators/impossible_distillation.py`).

prefixes -> round `contexts` (continuations -> sentences, x_l / y_orig) -> round `candidates` (first sentence of n
continuations per x_l) -> pair filters + critic (NLI model, MiniLM, or the LLM through round `judge`) -> language
ID, exact dedup (the dolma document steps) -> data / rejected / contexts / candidates. Wiring: `flows/generation.py`.
"""
from __future__ import annotations

from flows.generation import generator_flow, generator_pipeline
from generators.impossible_distillation import GENERATOR, ImpossibleConfig

impossible_distillation_flow = generator_flow(GENERATOR)
PIPELINE = generator_pipeline(GENERATOR, impossible_distillation_flow)

__all__ = ["PIPELINE", "ImpossibleConfig", "impossible_distillation_flow"]
