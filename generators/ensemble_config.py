"""Ensemble-Instruct's settings (`EnsembleInstructConfig` and its sections) and the check that refuses an ensemble
of one model voting with itself (`ensemble.allow_same_model: false`). The generator: `generators.ensemble_instruct`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from corpora.config import StrictModel
from filters.rouge import Tokenizer
from generators.backends import BackendConfig
from generators.backends.base import SamplingParams
from generators.contract import GeneratorConfig
from generators.voting import AgreeKeep

EOS = "|EoS|"
TYPES = ("A", "B")  # A: with input, B: output only
BLACKLIST = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to"]


class Sampled(SamplingParams):
    temperature: float = Field(0.7, ge=0.0)
    top_k: int = 50
    max_tokens: int = Field(256, ge=1)
    stop: list[str] = Field(default_factory=lambda: [EOS])


class InstanceSampling(Sampled):
    max_tokens: int = Field(512, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n\n", EOS])


class VoteSampling(SamplingParams):
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(256, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n\n", EOS])


class NoveltyConfig(StrictModel):
    threshold: float = Field(0.7, gt=0, lt=1, description="reject an instruction above this ROUGE-L F1")
    # the reference's novelty scorer: rouge_score's RougeScorer(["rougeL"], use_stemmer=False)
    # (ensemble_instruct/gen_instructions.py, line 151)
    tokenizer: Tokenizer = "rouge_score"
    method: Literal["index", "brute"] = "index"  # same decisions; brute scores the whole pool


class InstructionsConfig(StrictModel):
    target_a: int = Field(100, ge=0, description="accepted instructions with input (type A)")
    target_b: int = Field(100, ge=0, description="accepted instructions without input (type B)")
    examples_a: int = Field(24, ge=1)
    examples_b: int = Field(10, ge=1)
    max_machine_examples: int = Field(4, ge=0)
    requests_per_round: int = Field(32, ge=1, description="prompts per type per round")
    max_rounds: int = Field(50, ge=1)
    min_words: int = Field(3, ge=0)  # drop instructions of <= min_words words
    max_words: int = Field(150, ge=1)  # ... and of > max_words
    blacklist: list[str] = Field(default_factory=lambda: list(BLACKLIST))
    novelty: NoveltyConfig = NoveltyConfig()
    sampling: Sampled = Sampled()
    seed: int = 42


class InstancesConfig(StrictModel):
    demos_file: str | None = Field(None, description=(
        "YAML of few-shot demos; None: the bundled ones (ensemble_instruct_demos.yaml); the reference's: "
        "generators/ensemble_instruct_reference_demos.yaml"))
    parse: Literal["ours", "reference"] = Field("ours", description=(
        "ours: the first block, labels case-insensitive, multi-line input/output kept, the type decides the "
        "labels; reference: sample_instances.py's rules (first line = input, next line = output; case-sensitive "
        "substrings; later `instruction:` blocks become instances of their own)"))
    sampling: InstanceSampling = InstanceSampling()


class Voter(StrictModel):
    name: str = Field(min_length=1)
    backend: BackendConfig | None = Field(None, description="None: the round's (generation.rounds.votes / run's)")
    temperature: float | None = Field(None, ge=0.0)  # on top of votes.sampling: distinct configurations of one model
    top_k: int | None = None
    seed: int | None = None


class VotesConfig(StrictModel):
    voters: list[Voter] = Field(default_factory=lambda: [Voter(name="greedy"),
                                                         Voter(name="t0.7-seed1", temperature=0.7, top_k=50, seed=1)],
                                min_length=2)
    sampling: VoteSampling = VoteSampling()


class EnsembleConfig(StrictModel):
    tau: float = Field(0.01, ge=0.0, le=1.0, description="keep a row only if its worst pairwise ROUGE-L F1 > tau")
    stem: bool = True
    tokenizer: Tokenizer = "rouge_score"
    votes_agree_keep: AgreeKeep = Field("vote", description=(
        "when two votes agree exactly (and the generator's output agrees with neither): keep the agreeing vote "
        "(ours) or the generator's output (the reference's ensemble_output.py, line 147)"))
    allow_same_model: bool = Field(True, description=(
        "let two candidates of the vote (the instance generator and the voters) be one model; true in the default "
        "config because only one real LM (SmolLM2-135M) is available offline, so the default ensemble is "
        "distinct sampling configurations of one model (stats: ensemble.kind); false refuses such a config"))


class EnsembleInstructConfig(GeneratorConfig):
    text_field: str = "instruction"  # Self-Instruct seed tasks
    instructions: InstructionsConfig = InstructionsConfig()
    instances: InstancesConfig = InstancesConfig()
    votes: VotesConfig = VotesConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    spacy_model: str = Field("en_core_web_sm", description="for the verb-noun diversity stat (skipped if absent)")

    @model_validator(mode="after")
    def _distinct_voters(self) -> "EnsembleInstructConfig":
        if not self.ensemble.allow_same_model:
            same = same_model_candidates(self)
            if same:
                a, b, model = same[0]
                raise ValueError(f"ensemble: {a} and {b} are the same model ({model}): an ensemble of one model "
                                 "voting with itself; give the voters different backends/models, or set "
                                 "ensemble.allow_same_model: true to allow it")
        return self


def _model_of(backend) -> str:
    """What a backend config generates with, as a name two candidates can be compared by."""
    if backend is None or (backend.kind in ("transformers", "vllm") and not backend.model):
        return "SmolLM2-135M-Instruct (the default model)"
    if backend.kind in ("transformers", "vllm"):
        return str(Path(backend.model).expanduser())
    if backend.kind == "replay":
        return backend.model or f"replay:{Path(backend.path).expanduser()}"
    return backend.model  # openai: the served model's name (wherever it is served)


def same_model_candidates(cfg: "EnsembleInstructConfig") -> list[tuple[str, str, str]]:
    """Pairs of vote candidates (the instance generator, then each voter) that generate with one model."""
    cands = [("the instance generator", _model_of(cfg.generation.for_round("instances").backend))]
    for k, v in enumerate(cfg.votes.voters):
        backend = v.backend if v.backend is not None else cfg.generation.for_round(f"votes#{k}").backend
        cands.append((f"voter {v.name!r}", _model_of(backend)))
    return [(a[0], b[0], a[1]) for i, a in enumerate(cands) for b in cands[i + 1:] if a[1] == b[1]]

