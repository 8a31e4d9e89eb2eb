"""`flows run textbooks`: phi / Cosmopedia-style textbook synthesis (the generator: `generators/textbooks.py`).

seeds (web extracts and/or a topic list) -> [educational-value selection, round `edu_grade`] -> prompts (styles x
audiences mixture) -> round `textbooks` (cached, resumable) -> cleanup -> language ID, exact + MinHash dedup,
decontamination (the dolma document steps) -> Parquet shards + manifest + report. Wiring: `flows/generation.py`.
"""
from __future__ import annotations

from flows.generation import generator_flow, generator_pipeline
from generators.textbooks import GENERATOR, TextbooksConfig

textbooks_flow = generator_flow(GENERATOR)
PIPELINE = generator_pipeline(GENERATOR, textbooks_flow)

__all__ = ["PIPELINE", "TextbooksConfig", "textbooks_flow"]
