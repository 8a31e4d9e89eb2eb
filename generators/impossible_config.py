"""The config of `flows run impossible-distillation` (`generators/impossible_distillation.py`): prefixes, sentence
splitting, the rounds' sampling (the reference's defaults), the critic, self-distillation and the dedup of pair rows.
The pair filters' settings (`PairFilterConfig`, `GraphDedupConfig`) are `filters/pairs.py`'s."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from corpora.config import StrictModel
from filters.dedup.config import MinHashDedup
from filters.pairs import GraphDedupConfig, PairFilterConfig
from generators.backends.base import SamplingParams
from generators.contract import GeneratedDedup, GeneratorConfig
from generators.student import TrainSettings

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "corpora" / "sample_data"
SAMPLE_RESOURCE = SAMPLE_DIR / "impossible_news_resource.json"  # ours: a few media and capitals
SAMPLE_PREFIXES = SAMPLE_DIR / "impossible_prefixes.jsonl"  # news_prefixes(SAMPLE_RESOURCE, 16, seed=0)


class PrefixConfig(StrictModel):
    news_file: str | None = Field(None, description="news_prefix.json ({city_country, media_list}): draw `count` "
                                                    "news prefixes from it; None: prefixes are the input records")
    count: int = Field(1000, ge=1, le=10_000_000)
    seed: int = 0


class SentenceConfig(StrictModel):
    spacy_model: str | None = Field(None, description="a spaCy pipeline (en_core_web_sm: the reference's parser and "
                                    "entities) used when installed, else the rule sentencizer; None: the rules")


class ContextSampling(SamplingParams):  # the reference's y_orig generation
    n: int = Field(100, ge=1)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(150, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


class CandidateSampling(SamplingParams):  # the reference's stage-0 y_con generation
    n: int = Field(100, ge=1)
    temperature: float = Field(0.5, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(100, ge=1)
    no_repeat_ngram_size: int | None = Field(3, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


# MiniLM cosine threshold chosen on the calibration half of the hand labels (bench/impossible_critics.py,
# seeded split; held-out metrics in bench/results/impossible-critics.txt)
MINILM_CALIBRATED = 0.975


class CriticConfig(StrictModel):
    kind: Literal["minilm", "nli", "llm"] = Field("minilm", description="nli needs nli_model (none ships offline)")
    nli_model: str | None = Field(None, description="local HF sequence-classification folder (roberta-large-wanli)")
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(512, ge=8)
    device: str = "auto"
    edge_threshold: float = Field(0.75, ge=0, le=1, description="llm: a graph edge at this score (yes = 1)")
    minilm_threshold: float | None = Field(
        MINILM_CALIBRATED, ge=0, le=1, description="kind=minilm: the forward / reverse thresholds and the graph "
        "edge (a cosine, calibrated on held-out hand labels); None: the mode's nli_fwd / nli_rev and "
        "edge_threshold")


class DistillSampling(SamplingParams):  # the reference's stage > 0 sampling (pipeline/con.py:78-82)
    n: int = Field(10, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(100, ge=1)
    no_repeat_ngram_size: int | None = Field(3, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


class SelfDistillConfig(StrictModel):
    enabled: bool = False
    student: str | None = Field(None, description="local HF folder, causal LM or seq2seq (T5); None: SmolLM2-135M "
                                                  "(dequantised)")
    stages: int = Field(1, ge=1, le=20, description="self-distillation stages 1..k: the stage-k student is the "
                        "stage-(k-1) student fine-tuned on stage k-1's pairs (stage 0: the LM's pairs)")
    contexts: int | None = Field(None, ge=1, description="NEW contexts per stage: the shuffled contexts after "
                                 "the ones stage 0 used (and earlier stages'); None: all that are left, split "
                                 "evenly over the stages")
    train: TrainSettings = TrainSettings()
    sampling: DistillSampling = DistillSampling()


class PairDedup(GeneratedDedup):
    # one-sentence rows: MinHash's 5-gram shingles over y_new alone would drop pairs whose y_orig differ; the
    # entailment graph is the near-dedup within a context, exact dedup of y_new across contexts stays on
    minhash: MinHashDedup = MinHashDedup(enabled=False)


class ImpossibleConfig(GeneratorConfig):
    mode: Literal["paraphrase", "summary"] = "paraphrase"
    prefixes: PrefixConfig = PrefixConfig()
    contexts_sampling: ContextSampling = ContextSampling()
    candidates_sampling: CandidateSampling = CandidateSampling()
    sentences: SentenceConfig = SentenceConfig()
    shuffle_seed: int = 3  # the reference's random.seed(3) (its shuffle never ran)
    max_contexts: int | None = Field(None, ge=1, description="first N shuffled contexts; None: all")
    paraphrase: PairFilterConfig = PairFilterConfig()
    summary: PairFilterConfig = PairFilterConfig(min_len_ratio=None, max_len_ratio=0.75, nli_rev=None)
    graph: GraphDedupConfig = GraphDedupConfig()
    critic: CriticConfig = CriticConfig()
    score_all: bool = Field(False, description="critic scores on every pair (else: on the pairs still alive)")
    self_distill: SelfDistillConfig = SelfDistillConfig()
    dedup: PairDedup = PairDedup()
