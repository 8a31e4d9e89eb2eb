"""The generator contract: what a generator module declares, and the config every generator pipeline shares.

A generator knows prompts and parsing only. It declares its name, its config model (a `GeneratorConfig`
subclass: its own keys next to the shared `generation`, `filters`, `dedup` sections), the columns it adds to the
generated-record schema, its round names, and `run(cfg, seeds, rounds) -> GeneratorResult`: it builds requests,
hands them to `rounds.generate(name, requests)` and turns the records that come back into rows (or rejects them
with a reason). It never sees Parquet paths, caches, retries or Prefect; `flows/generation.py` wires it.

Generated rows then go through the same document steps as `dolma` (`filters` = the web filter models, with only
language ID on by default; `dedup` = the dedup stage's model, with exact and MinHash near-dedup on and n-gram
decontamination available), and rejected rows land in `rejected/` with their reason.

A generator whose rows are not generated documents (`unlearning-whp`: labelled token blocks) declares
`postprocess=False`: it hands `data` and `rejected` over as tables of its own schema (`GeneratorResult.tables`),
published as they are (no filters, dedup or empty-text check; its config needs no `filters` / `dedup` /
`execution` sections, so any `DocumentFields, RunConfig` model with a `generation` section will do), and may bring
its own seed reader (`read_seeds`), its own last step and row accounting (`finish`) and say which configs run no
round at all (`uses_rounds`: no backend is checked for them).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import pyarrow as pa
from pydantic import Field

from corpora.config import RunConfig, StrictModel
from corpora.records import Record
from filters.c4 import C4Config
from filters.dedup.config import DedupConfig, ExactDedup, KeepPolicyName, MinHashDedup, ParagraphDedup, UrlDedup
from filters.execution import ExecutorConfig
from filters.fineweb import FineWebConfig
from filters.gopher import GopherQualityConfig, GopherRepetitionConfig
from filters.pii import PIIConfig
from filters.toxicity import ToxicityConfig
from filters.web_steps import WebFilters
from generators.settings import GenerationSettings


class GeneratedFilters(WebFilters):
    """`filters.*` for generated text: the dolma filter models; only language ID is on by default."""

    gopher_quality: GopherQualityConfig = GopherQualityConfig(enabled=False)
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig(enabled=False)
    c4: C4Config = C4Config(enabled=False)
    fineweb: FineWebConfig = FineWebConfig(enabled=False)
    pii: PIIConfig = PIIConfig(enabled=False)
    toxicity: ToxicityConfig = ToxicityConfig(enabled=False)


class GeneratedDedup(DedupConfig):
    """`dedup.*` for generated text: the dedup stage's model; exact + MinHash near-dedup on (no URLs, no
    paragraph Bloom filter by default); `dedup.decontam` against benchmark files."""

    keep: KeepPolicyName = "smallest_id"
    url: UrlDedup = UrlDedup(enabled=False)
    exact: ExactDedup = ExactDedup()
    paragraph: ParagraphDedup = ParagraphDedup(enabled=False)
    minhash: MinHashDedup = MinHashDedup()


class DocumentFields(StrictModel):
    """The input records' text and id columns. A mixin, listed before `RunConfig` in a config's bases
    (`class C(DocumentFields, RunConfig)`), so its keys come right after RunConfig's (YAML, help, config hash)."""

    text_field: str = "text"
    id_field: str = "id"


class GeneratorConfig(DocumentFields, RunConfig):
    """Keys every generator pipeline has: `RunConfig`'s (`inputs`: files or folders of seed documents; empty: the
    generator's bundled sample), `DocumentFields`' and these (its own keys are added by subclassing)."""

    # the generator applies it, after any seed selection of its own
    max_seeds: int | None = Field(None, ge=1, description="first N seeds; None: all (the bundled sample: a demo size)")
    generation: GenerationSettings = GenerationSettings()
    filters: GeneratedFilters = GeneratedFilters()
    dedup: GeneratedDedup = GeneratedDedup()
    execution: ExecutorConfig = ExecutorConfig()


@dataclass
class GeneratorResult:
    rows: list[dict]  # generated records the generator keeps (they go on to the document steps)
    rejected: list[dict] = field(default_factory=list)  # records it rejects, each with `reason` (+ `error`)
    stats: dict[str, Any] = field(default_factory=dict)
    # further output kinds published beside data/ (e.g. an intermediate round's rows: `instructions/`), each a
    # table the generator builds from its records (`corpora.generated.to_table`); declared in `Generator.kinds`
    tables: dict[str, pa.Table] = field(default_factory=dict)
    # files for `_work/` (a classifier, grades): name -> pa.Table (Parquet) or a JSON-able dict
    artifacts: dict[str, Any] = field(default_factory=dict)
    # seed records the generator cannot use (file, location, error, raw: QUARANTINE_SCHEMA rows), published with the
    # reader's quarantine rows and counted out of the seeds
    quarantine: list[dict] = field(default_factory=list)
    # JSON files published at the output's root (name -> JSON-able), e.g. unlearning-whp's `anchors.review.json`
    files: dict[str, Any] = field(default_factory=dict)


@dataclass
class Published:
    """What `Generator.finish` gets once the run's outputs are published."""

    run: Any  # flows.scaffold.Run: `out_dir`, `rows(kind)`
    rounds: Any  # the run's Rounds (`hold` before a step loads a model of its own)
    inputs: list[dict]  # the seed reader's per-input entries (the manifest's inputs)
    demo: dict[str, Any]  # the demo overrides applied (bundled sample)


@dataclass(frozen=True)
class Generator:
    name: str
    description: str
    config: type[GeneratorConfig]  # (postprocess=False: a DocumentFields, RunConfig model with `generation`)
    fields: list[pa.Field]  # the columns this generator adds to the generated-record schema
    rounds: tuple[str, ...]  # round names (generation.rounds.<name> overrides)
    run: Callable[[Any, Sequence[Record], Any], GeneratorResult]  # (cfg, seeds, rounds) -> result
    # config overrides for a first run on the bundled sample (keys the user did not set): minutes on a laptop CPU
    demo: dict[str, Any] = field(default_factory=dict)
    sample_inputs: Callable[[Any], list[str]] | None = None  # (cfg) -> the bundled sample's paths; None: none
    needs_inputs: bool = True  # False: the generator can run from its config alone (e.g. a topic list)
    kinds: tuple[str, ...] = ()  # output kinds beyond data / rejected / quarantine (cleared by overwrite=true)
    preflight: Callable[[Any], None] | None = None  # the generator's own checks (its files)
    # publish data/ as Hive partitions `data/<column>=<value>/part-*.parquet` (e.g. "lang"); None: one data/
    partition_by: str | None = None
    # False: no document steps; `run` gives `tables["data"]` and `tables["rejected"]` (its own schemas), published
    # as they are (see the module docstring)
    postprocess: bool = True
    # its own seed reader: (inputs, cfg, warn) -> (seeds, quarantine rows, per-input entries); None: generators.seeds
    read_seeds: Callable[[list[str], Any, Callable[..., None]], tuple[list, list[dict], list[dict]]] | None = None
    # its own last step and accounting, after publishing: (cfg, result, Published) -> (stats, invariant, summary,
    # markdown); None: generators.outcome's (data + rejected == generated rows)
    finish: Callable[[Any, GeneratorResult, Published], tuple[dict, dict, Any, str]] | None = None
    uses_rounds: Callable[[Any], bool] | None = None  # (cfg) -> whether it runs any round; None: always
    # True: the demo overrides are applied before the run starts, so the manifest and the card show the config
    # that ran (False, the older generators': they are in stats.json's `seeds.demo` only)
    demo_in_card: bool = False
