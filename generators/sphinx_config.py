"""sPhinX's settings: the language table (50 languages, each with a tier and its English name), the per-language
selection, the translation prompts and sampling, the LANGIT neighbours, and `SphinxConfig` with its validation
(unknown targets with a did-you-mean, codes, tiers) and the preflight of its model files."""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from corpora.config import StrictModel
from filters.dedup.config import ExactDedup, MinHashDedup
from filters.langid import LangIdConfig, find_lid_model
from filters.short_text_lid import require_lingua
from generators.backends.base import SamplingParams
from generators.contract import GeneratedDedup, GeneratedFilters, GeneratorConfig
from generators.sphinx_checks import ChecksConfig
from generators.sphinx_rules import RulesConfig

PROMPT = ("Translate the following text from English into {language}. Copy every marker such as ⟦1⟧ unchanged, "
          "in the place where it belongs. Translate only: do not answer it, explain it or add anything. "
          "Reply with the {language} translation only.\n\n{text}")
PROMPT_TOGETHER = ("Translate the following instruction and its response from English into {language}. Keep the "
                   "two headings '### Instruction' and '### Response' in English and copy every marker such as "
                   "⟦1⟧ unchanged. Translate only. Reply with the translation only.\n\n{text}")
Tier = Literal["high", "mid", "low"]


class LanguageSpec(StrictModel):
    name: str
    tier: Tier
    lid: str | None = Field(None, description="lid.176 label when it is not the code")
    prompt: str | None = Field(None, description="this language's prompt ({language}, {text}); None: translation.prompt")
    len_ratio: tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]] | None = Field(
        None, description="None: checks.len_ratio")
    lid_threshold: float | None = Field(None, ge=0, le=1, description="lid.176 threshold of this language; "
                                        "None: checks.lid_tier_thresholds of its tier")


DENSE_SCRIPT_LEN_RATIO = (0.15, 1.3)  # CJK / Thai: far fewer characters than English
TIER_LANGUAGE_CODES = {"high": "ar de es fr it ja ko nl pl pt ru zh",
                       "mid": "bg ca cs da el fa fi he hi hu id no ro sv th tr uk vi",
                       "low": "af as bn gu hr kn lt lv ml mr ms or pa sk sl sr sw ta te ur"}
LANGUAGE_NAME_BY_CODE = dict(
    ar="Arabic", de="German", es="Spanish", fr="French", it="Italian", ja="Japanese", ko="Korean", nl="Dutch",
    pl="Polish", pt="Portuguese", ru="Russian", zh="Chinese (Simplified)", bg="Bulgarian", ca="Catalan", cs="Czech",
    da="Danish", el="Greek", fa="Persian", fi="Finnish", he="Hebrew", hi="Hindi", hu="Hungarian", id="Indonesian",
    no="Norwegian (Bokmål)", ro="Romanian", sv="Swedish", th="Thai", tr="Turkish", uk="Ukrainian", vi="Vietnamese",
    af="Afrikaans", **{"as": "Assamese"}, bn="Bengali", gu="Gujarati", hr="Croatian", kn="Kannada", lt="Lithuanian",
    lv="Latvian", ml="Malayalam", mr="Marathi", ms="Malay", pa="Punjabi", sk="Slovak", sl="Slovenian", sr="Serbian",
    sw="Swahili", ta="Tamil", te="Telugu", ur="Urdu", **{"or": "Odia"})


def default_languages() -> dict[str, LanguageSpec]:
    return {c: LanguageSpec(name=LANGUAGE_NAME_BY_CODE[c], tier=t,
                            len_ratio=DENSE_SCRIPT_LEN_RATIO if c in ("ja", "zh", "ko", "th") else None)
            for t, codes in TIER_LANGUAGE_CODES.items() for c in codes.split()}


class SelectionConfig(StrictModel):
    seed: int = 0
    tier_counts: dict[str, int] = Field(default_factory=lambda: {"high": 100_000, "mid": 50_000, "low": 25_000},
                                        description="English samples drawn per language of each tier")


class TranslateSampling(SamplingParams):
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(1024, ge=1)


class TranslationConfig(StrictModel):
    mode: Literal["separate", "together"] = "separate"
    prompt: str = PROMPT
    prompt_together: str = PROMPT_TOGETHER
    system: str | None = None
    sampling: TranslateSampling = TranslateSampling()


class NShotConfig(StrictModel):
    n: int = Field(3, ge=0, description="same-language neighbours per row (LANGIT); 0: off")
    model_path: str | None = Field(None, description="a local sentence-embedding folder (mean pooling), e.g. a "
                                                     "multilingual MiniLM; None: all-MiniLM-L6-v2 (English)")
    embed: Literal["source", "translation"] = Field("source", description="embed the English source (right for "
                                                    "an English model) or the translation (a multilingual model)")
    pool: Literal["pass", "all"] = "pass"
    render_messages: bool = True


class SphinxConfig(GeneratorConfig):
    text_field: str = "instruction"
    languages: dict[str, LanguageSpec] = Field(default_factory=default_languages)
    english_rows: bool = Field(True, description="every usable English source is also a row of data/lang=en/ "
                               "(sPhinX's mixture keeps English), code/math-heavy and language-bound ones included")
    targets: list[str] | None = Field(None, description="language codes to build; None: every language in the table")
    selection: SelectionConfig = SelectionConfig()
    rules: RulesConfig = RulesConfig()
    translation: TranslationConfig = TranslationConfig()
    checks: ChecksConfig = ChecksConfig()
    nshot: NShotConfig = NShotConfig()
    keep_failed: bool = Field(False, description="false: rows failing a check go to rejected/ with their reasons "
                              "(data/ means kept); true: they stay in data/ with status=fail")
    # the shared post-filter keeps `filters.langid.languages` (English) only: a translation is checked for its own
    # target language instead, per field, with the same lid.176 model (`lid_model`, `generators.sphinx_checks`)
    filters: GeneratedFilters = GeneratedFilters(langid=LangIdConfig(enabled=False))
    dedup: GeneratedDedup = GeneratedDedup(exact=ExactDedup(enabled=False), minhash=MinHashDedup(enabled=False))

    @field_validator("targets")
    @classmethod
    def _known_targets(cls, targets: list[str] | None, info: ValidationInfo) -> list[str] | None:
        table = info.data.get("languages")
        if targets is None or table is None:  # no table: its own error is reported
            return targets
        for code in targets:
            if code == "en" and info.data.get("english_rows", True):
                raise ValueError("'en' is the source language: english_rows writes data/lang=en/ from the sources")
            if code not in table:
                raise ValueError(f"{code!r} is not in the language table (languages.<code>)"
                                 + _did_you_mean(code, table))
        return targets

    @model_validator(mode="after")
    def _known(self) -> "SphinxConfig":
        if self.english_rows and "en" in self.target_codes():
            raise ValueError("targets: 'en' is the source language (english_rows writes data/lang=en/)")
        for code, spec in self.languages.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]+", code):
                raise ValueError(f"languages: {code!r} is not a usable language code (letters, digits, '_', '-')")
        for code in self.target_codes():
            spec = self.languages[code]
            if spec.tier not in self.selection.tier_counts:
                raise ValueError(f"languages.{code}.tier: {spec.tier!r} has no selection.tier_counts entry")
        return self

    def target_codes(self) -> list[str]:
        return list(self.targets) if self.targets is not None else list(self.languages)


def _did_you_mean(code: str, table: dict[str, LanguageSpec]) -> str:
    """"; did you mean 'de' (German)?": by language name ("german", "Germn") or by a close code ("dee")."""
    names = {spec.name.lower(): c for c, spec in table.items()}
    names.update({spec.name.split(" (")[0].lower(): c for c, spec in table.items()})
    close = difflib.get_close_matches(code.lower(), list(names), n=1, cutoff=0.75)
    hit = names.get(code.lower()) or (names[close[0]] if close else None)
    if hit is None:
        close = difflib.get_close_matches(code.lower(), list(table), n=1, cutoff=0.5)
        hit = close[0] if close else None
    return f"; did you mean {hit!r} ({table[hit].name})?" if hit else ""


def lid_threshold(cfg: SphinxConfig, lang: str) -> float:
    spec = cfg.languages[lang]
    if spec.lid_threshold is not None:
        return spec.lid_threshold
    return cfg.checks.lid_tier_thresholds.get(spec.tier, cfg.checks.lid_threshold)


def preflight(cfg: SphinxConfig) -> None:
    """The model files the config names exist (lid.176, lingua when used, the N-shot encoder folder)."""
    find_lid_model(cfg.checks.lid_model_path, "checks.lid_model_path")
    if cfg.checks.lid_checker != "fasttext":
        require_lingua()
    if cfg.nshot.n:
        if cfg.nshot.model_path:
            if not Path(cfg.nshot.model_path).expanduser().is_dir():
                raise FileNotFoundError(f"nshot.model_path: {cfg.nshot.model_path} is not a folder")
        else:
            from filters.embeddings import minilm_path

            minilm_path()

