"""Impossible Distillation's critic and pair-filter settings: the critic by `critic.kind` (an NLI model, MiniLM
cosine: `filters.nli`; or the LLM as a yes/no judge: `JudgeCritic` on `generators.judge.Judge`), the mode's pair
filters with the critic's calibrated thresholds, and the number extractor of the numbers check."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from corpora.hashing import short_hash
from filters.pairs import PairFilterConfig, numbers_in, numbers_numerizer
from filters.sentences import nlp_for, splitter
from generators.backends.base import SamplingParams
from generators.impossible_config import CriticConfig, ImpossibleConfig
from generators.impossible_tasks import JUDGE, TEMPLATE_VERSION
from generators.judge import Judge, yes_no


class JudgeCritic:
    """The LLM as the critic: "if A is true, must B be true?" (`generators.judge.Judge`, rounds `judge#k`); yes = 1.0,
    else (no, unreadable, failed) 0.0."""

    def __init__(self, rounds, edge_threshold: float = 0.5):
        self.edge_threshold = edge_threshold
        self.judge = Judge(rounds, JUDGE, yes_no, SamplingParams(temperature=0.0, max_tokens=3), round="judge",
                           request_id=lambda it: "idj-" + short_hash(it["a"], it["b"], str(TEMPLATE_VERSION), length=20))

    @property
    def model(self) -> str:
        return self.judge.model or "llm-judge"

    @property
    def calls(self) -> int:
        return self.judge.calls

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        verdicts = self.judge.ask([{"a": a, "b": b} for a, b in zip(premises, hypotheses)])
        return np.array([float(v.answer is True) for v in verdicts], dtype=np.float64)

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        return self.entailment(premises, hypotheses) >= self.edge_threshold


def build_critic(cfg: CriticConfig, rounds):
    from filters.nli import EmbeddingCritic, NLICritic

    if cfg.kind == "llm":
        return JudgeCritic(rounds, cfg.edge_threshold)
    rounds.hold("critic")  # the generator's engine leaves the GPU before the critic loads
    if cfg.kind == "nli":
        return NLICritic(cfg.nli_model, cfg.batch_size, cfg.max_length, cfg.device)
    edge = cfg.edge_threshold if cfg.minilm_threshold is None else cfg.minilm_threshold
    return EmbeddingCritic(edge_threshold=edge)


def pair_filter(cfg: ImpossibleConfig) -> PairFilterConfig:
    """The mode's pair filters, with the critic's calibrated thresholds: kind=minilm with a `minilm_threshold`
    sets nli_fwd / nli_rev (those that are on) to it (a cosine is not an NLI probability)."""
    filt = getattr(cfg, cfg.mode)
    t = cfg.critic.minilm_threshold
    if cfg.critic.kind != "minilm" or t is None:
        return filt
    return filt.model_copy(update={k: t for k in ("nli_fwd", "nli_rev") if getattr(filt, k) is not None})


def number_extractor(cfg: ImpossibleConfig):
    """text -> number set, by the mode's `number_parser` (numerizer reads entities when the spaCy model is
    installed, the numerized sentence otherwise)."""
    if getattr(cfg, cfg.mode).number_parser != "numerizer":
        return numbers_in
    model = cfg.sentences.spacy_model
    nlp = nlp_for(model) if splitter(model) != "sentencizer" else None
    return lambda text: numbers_numerizer(text, nlp)
