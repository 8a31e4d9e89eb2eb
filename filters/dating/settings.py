"""The diachronic pipeline's settings, one model each, their defaults taken from the dating modules' constants
(never retyped): metadata CSV, authors table (name-match threshold), style model, listings, the LLM question,
slicing, and the style classifier's training."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from corpora.config import StrictModel
from filters.dating.authors import MATCH_THRESHOLD
from filters.dating.bibliography import LISTED_CONFIDENCE
from filters.dating.periods import parse_slice_name
from filters.dating.slicing import DEFAULT_BUDGETS, DEFAULT_MAX_WORKS_PER_AUTHOR, DEFAULT_MIN_PARAGRAPH_WORDS
from filters.dating.style import DEFAULT_CHUNK_WORDS

PAPER_SLICES = ["1750_1820", "1820_1850", "1850_1880", "1880_1910", "1910_1940"]
LLM_CONFIDENCE = 0.6  # trust in an LLM year (the paper: 53-68% exact); `generators/work_dates.py` uses it too


class MetadataSettings(StrictModel):
    path: str | None = Field(None, description="CSV id,title,author[,year]; wins over the Gutenberg header")


class AuthorsSettings(StrictModel):
    path: str | None = Field(None, description="Gutenberg catalogue CSV, gutenbergr authors CSV or Wikidata JSONL")
    min_score: float = Field(MATCH_THRESHOLD, ge=0, le=100, description="name match threshold (the paper's 90)")
    prior_coverage: bool = Field(
        True, description="weigh the author prior by a public-domain corpus' coverage (few works after ~1925, "
                          "fitted on Gutenberg); set false for corpora whose works run later")


class StyleSettings(StrictModel):
    # Off by default: the model must first be trained on time-labelled slices (`flows run diachronic-train`), and
    # it is weak on its own (~54% chunk / ~71% 1000-word accuracy on the held-out test split). With the fitted
    # author prior it helps the works whose text carries no date (bench/dating.py: slice 89.2% -> 91.9% on the
    # reference books), so turn it on when you have a model.
    model: str | None = Field(None, description="folder written by `flows run diachronic-train`; None = no style")


class ListingsSettings(StrictModel):
    enabled: bool = Field(True, description="a work listed by another dated work of its author ('Author of ...', "
                                            "'By the same author') is bounded by that work's date")
    confidence: float = Field(LISTED_CONFIDENCE, ge=0, le=1, description="trust that the list was in the listing "
                                                                         "work's first edition (a later printing "
                                                                         "may list later books)")


class LLMSettings(StrictModel):
    """The paper's LLM question (round `work_dates`; its model and stage settings are `generation.*`)."""

    enabled: bool = False
    confidence: float = Field(LLM_CONFIDENCE, ge=0, le=1, description="trust in an LLM year (the paper: 53-68% exact)")


class SlicingSettings(StrictModel):
    periods: list[str] = Field(default_factory=lambda: list(PAPER_SLICES))
    budgets: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_BUDGETS), description="words per split")
    max_works_per_author: int = Field(DEFAULT_MAX_WORKS_PER_AUTHOR, ge=1)
    drop_first_chapter: bool = True
    min_paragraph_words: int = Field(DEFAULT_MIN_PARAGRAPH_WORDS, ge=1)
    split_by: Literal["paragraph", "work"] = "paragraph"
    seed: int = 0
    min_confidence: float = Field(0.0, ge=0, le=1, description="works less sure of their slice are left out")
    exclude_flags: list[str] = Field(default_factory=list, description="e.g. [collection, translation]")

    @field_validator("periods", mode="before")
    @classmethod
    def _yaml_ints(cls, v):
        # YAML reads an unquoted 1750_1820 as the integer 17501820: give it its underscore back
        if isinstance(v, list):
            return [f"{str(p)[:4]}_{str(p)[4:]}" if isinstance(p, int) and len(str(p)) == 8 else p for p in v]
        return v

    @field_validator("periods")
    @classmethod
    def _periods(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if parse_slice_name(p) is None]
        if bad or not v:
            raise ValueError(f"periods must be '<start>_<end>' names, got {bad or v}")
        return v

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, v: dict[str, int]) -> dict[str, int]:
        if not v or any(n < 0 for n in v.values()):
            raise ValueError("budgets: give at least one split with a word count >= 0")
        return v


class StyleTrainSettings(StrictModel):
    chunk_words: int = Field(DEFAULT_CHUNK_WORDS, ge=20)
    C: float = Field(10.0, gt=0, description="inverse regularisation of the logistic regression")
    max_features: int = Field(100_000, ge=100)
    max_train_words: int | None = Field(None, description="cap words per slice (quick runs)")
    seed: int = 0
