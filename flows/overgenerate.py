"""`flows run overgenerate`: POROver-style overgeneration (the generator: `generators/overgenerate.py`).

prompts with a kind (general / toxic / seemingly_toxic) -> rounds `teacher#<name>` (N completions per prompt per
teacher) [+ round `student`] -> judges on every completion (refusal patterns, offline safety, optional LLM judges)
-> per-kind selection -> `data/` (SFT rows), `preferences/` (prompt, chosen, rejected), `rejected/` (every other
completion with its reason) -> language ID (the dolma document steps) -> Parquet + manifest + report. Wiring:
`flows/generation.py`.
"""
from __future__ import annotations

from flows.generation import generator_flow, generator_pipeline
from generators.overgenerate import GENERATOR, OvergenerateConfig

overgenerate_flow = generator_flow(GENERATOR)
PIPELINE = generator_pipeline(GENERATOR, overgenerate_flow)

__all__ = ["OvergenerateConfig", "PIPELINE", "overgenerate_flow"]
