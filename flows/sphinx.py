"""`flows run sphinx`: sPhinX multilingual instruction data (the generator: `generators/sphinx.py`).

English sources -> rule per source -> per-language tiered draw -> span-protected translation (round
`translate#<lang>`) -> spans restored by hash, LID / length / finish / refusal checks -> LANGIT neighbours ->
`data/lang=<xx>/` (Hive partitions) + `sources/` + `rejected/`. Wiring: `flows/generation.py`.
"""
from __future__ import annotations

from flows.generation import generator_flow, generator_pipeline
from generators.sphinx import GENERATOR, SphinxConfig

sphinx_flow = generator_flow(GENERATOR)
PIPELINE = generator_pipeline(GENERATOR, sphinx_flow)

__all__ = ["PIPELINE", "SphinxConfig", "sphinx_flow"]
