"""The config of `flows run textbooks` (`generators/textbooks.py`): the seeds, the style / audience mixture, the
sampling (Cosmopedia's defaults), the post-processing and the educational-value selection (`generators.edu_grader`)."""
from __future__ import annotations

from pydantic import Field, field_validator

from corpora.config import StrictModel
from generators.backends.base import SamplingParams
from generators.contract import GeneratorConfig
from generators.edu_grader import EduSelectionConfig
from generators.textbooks_prompts import AUDIENCES, STYLES


class TextbookMixture(StrictModel):
    """Style and audience weights (normalised), and the chance a seed's topic is written into its prompt."""

    styles: dict[str, float] = Field(default_factory=lambda: {s: 0.25 for s in STYLES})
    # Cosmopedia v2: 40% middle school, 30% college, 30% other
    audiences: dict[str, float] = Field(default_factory=lambda: {"middle_school": 0.4, "college": 0.3,
                                                                 "young_children": 0.15, "professionals": 0.15})
    topic_probability: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0

    @field_validator("styles", "audiences")
    @classmethod
    def _weights(cls, v: dict[str, float], info) -> dict[str, float]:
        known = STYLES if info.field_name == "styles" else AUDIENCES
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(f"unknown {info.field_name[:-1]} {unknown} (known: {', '.join(known)})")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"{info.field_name} weights must be >= 0 with a positive sum")
        return v


class TextbookSampling(SamplingParams):
    """Cosmopedia's sampling settings as defaults (so overriding one key keeps the others)."""

    temperature: float = Field(0.6, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = 50
    repetition_penalty: float = Field(1.2, gt=0.0)
    max_tokens: int = Field(1024, ge=1)


def textbook_sampling(max_tokens: int = 1024) -> SamplingParams:
    return SamplingParams(**TextbookSampling(max_tokens=max_tokens).model_dump())


class CleanupConfig(StrictModel):
    min_tokens: int = Field(100, ge=0, description="drop completions shorter than this (model tokens)")
    strip_boilerplate: bool = True
    drop_truncated: bool = False  # also drop completions that hit max_tokens (finish_reason == "length")


class TextbooksConfig(GeneratorConfig):
    topic_field: str | None = "topic"  # a document's topic (metadata field), written into its prompt with p=0.5
    topics: str | None = None  # YAML/CSV topic list: one topic-only seed per topic
    max_seed_chars: int = 1000
    mixture: TextbookMixture = TextbookMixture()
    sampling: TextbookSampling = TextbookSampling()
    cleanup: CleanupConfig = CleanupConfig()
    edu: EduSelectionConfig = EduSelectionConfig()
