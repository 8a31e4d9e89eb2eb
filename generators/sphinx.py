"""sPhinX (Ahuja et al., 2024): English instruction-response pairs translated into many languages, each language
its own English subset sized by its resource tier, fine-tuned with N same-language examples prepended (LANGIT).

English sources (Self-Instruct-shaped seed tasks, or `ensemble-instruct` rows) -> one rule per source
(`generators.sphinx_rules`: english_only / skip / wrapper_only / labels / translate) -> per language a seeded
draw of its tier's count from the translatable pool -> protected spans masked (`filters.protected_spans`) ->
round `translate#<lang>` (any backend, a per-language prompt; instruction and response separately or together)
-> spans restored and checked by hash, language ID / length ratio / finish reason / refusal
(`generators.sphinx_checks`; failing rows go to `rejected/` with `status=fail` and their reasons, or stay in
`data/` with `keep_failed`) -> every usable English source as a `lang=en` row (`english_rows`) -> N
same-language neighbours by embedding similarity (never the row itself or its own source) -> `data/lang=<xx>/`
and `sources/` (every English source with its rule and the languages that drew it). `flows/sphinx.py` wires it.
"""
from __future__ import annotations

import difflib
import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationInfo, field_validator, model_validator

from corpora.config import StrictModel
from corpora.hashing import short_hash
from filters.dedup.config import ExactDedup, MinHashDedup
from filters.langid import LangIdConfig, find_lid_model, lid_model
from filters.short_text_lid import require_lingua
from filters.protected_spans import (INTACT, SPAN_RECORD_TYPE, Protected, Span, has_prose, mask_fields, prose, restore,
                                     span_record)
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import GeneratedDedup, GeneratedFilters, Generator, GeneratorConfig, GeneratorResult
from generators.sphinx_checks import ChecksConfig, CheckedField, check_row
from generators.sphinx_rules import Rule, RulesConfig, classify, label_spans, payload_spans
from generators.task import Task, Template, run_task

TEMPLATE_VERSION = 1
# prompts built in code from the configured text: its hash is the template variant (`requests_for`)
TRANSLATE_FIELD = Template("sphinx/translate-field", TEMPLATE_VERSION)
TRANSLATE_TOGETHER = Template("sphinx/translate-together", TEMPLATE_VERSION)
SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "sphinx_sample.jsonl"
PROMPT = ("Translate the following text from English into {language}. Copy every marker such as ⟦1⟧ unchanged, "
          "in the place where it belongs. Translate only: do not answer it, explain it or add anything. "
          "Reply with the {language} translation only.\n\n{text}")
PROMPT_TOGETHER = ("Translate the following instruction and its response from English into {language}. Keep the "
                   "two headings '### Instruction' and '### Response' in English and copy every marker such as "
                   "⟦1⟧ unchanged. Translate only. Reply with the translation only.\n\n{text}")
HEAD_I, HEAD_R = "### Instruction", "### Response"
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


_DENSE = (0.15, 1.3)  # CJK / Thai: far fewer characters than English
_TIERS = {"high": "ar de es fr it ja ko nl pl pt ru zh", "mid": "bg ca cs da el fa fi he hi hu id no ro sv th tr uk vi",
          "low": "af as bn gu hr kn lt lv ml mr ms or pa sk sl sr sw ta te ur"}
_NAMES = dict(ar="Arabic", de="German", es="Spanish", fr="French", it="Italian", ja="Japanese", ko="Korean",
              nl="Dutch", pl="Polish", pt="Portuguese", ru="Russian", zh="Chinese (Simplified)", bg="Bulgarian",
              ca="Catalan", cs="Czech", da="Danish", el="Greek", fa="Persian", fi="Finnish", he="Hebrew", hi="Hindi",
              hu="Hungarian", id="Indonesian", no="Norwegian (Bokmål)", ro="Romanian", sv="Swedish", th="Thai",
              tr="Turkish", uk="Ukrainian", vi="Vietnamese", af="Afrikaans", **{"as": "Assamese"}, bn="Bengali",
              gu="Gujarati", hr="Croatian", kn="Kannada", lt="Lithuanian", lv="Latvian", ml="Malayalam",
              mr="Marathi", ms="Malay", pa="Punjabi", sk="Slovak", sl="Slovenian", sr="Serbian", sw="Swahili",
              ta="Tamil", te="Telugu", ur="Urdu", **{"or": "Odia"})


def default_languages() -> dict[str, LanguageSpec]:
    return {c: LanguageSpec(name=_NAMES[c], tier=t, len_ratio=_DENSE if c in ("ja", "zh", "ko", "th") else None)
            for t, codes in _TIERS.items() for c in codes.split()}


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


# ---- English sources -----------------------------------------------------------------------------------------
@dataclass
class Source:
    id: str
    origin: str
    instruction: str  # instruction + input (what the row's instruction_en holds)
    input_start: int | None  # where the input begins inside `instruction` (None: no input)
    response: str
    rule: Rule | None = None
    problem: str | None = None
    masked: dict[str, str] = field(default_factory=dict)  # field -> masked text (only the fields translated)
    spans: dict[str, list[Protected]] = field(default_factory=dict)


def english_source(rec: Any) -> Source:
    """A Self-Instruct seed task (`instances[0]` input/output) or an ensemble-instruct row (`input`, `output`)."""
    m = rec.metadata
    inp, out = "", None
    if isinstance(m.get("instances"), list) and m["instances"] and isinstance(m["instances"][0], dict):
        inp, out = m["instances"][0].get("input") or "", m["instances"][0].get("output")
    else:
        inp = m.get("input") or ""
        out = next((m[k] for k in ("output", "response", "answer") if isinstance(m.get(k), str)), None)
    ins = rec.text.strip()
    inp = inp.strip() if isinstance(inp, str) else ""
    text = f"{ins}\n\n{inp}" if inp else ins
    src = Source(rec.id, rec.source, text, len(ins) + 2 if inp else None, (out or "").strip())
    if not ins or not src.response:
        src.problem = "no_instruction" if not ins else "no_response"
    return src


def prepare(src: Source, cfg: RulesConfig) -> None:
    """Rule, and the masked fields to translate (language-independent: done once per source)."""
    ins_only = src.instruction[:src.input_start - 2] if src.input_start else src.instruction
    src.rule = classify(ins_only, src.instruction[src.input_start:] if src.input_start else "", src.response, cfg)
    if not src.rule.translated:
        return
    extra_i: list[Span] = []
    keep_response = False
    if src.rule.name == "wrapper_only":
        extra_i = ([Span(src.input_start, len(src.instruction), "payload", src.instruction[src.input_start:])]
                   if src.input_start else payload_spans(src.instruction))
        keep_response = True
    extra_r: list[Span] = []
    if src.rule.name == "labels":
        extra_i, extra_r = label_spans(src.instruction), label_spans(src.response)
        keep_response = bool(extra_r) and extra_r[0].end - extra_r[0].start == len(src.response)
    fields = {"instruction": (src.instruction, extra_i)}
    if not keep_response:
        fields["response"] = (src.response, extra_r)
    try:
        masked = mask_fields(fields)
        src.masked, src.spans = {f: m for f, (m, _) in masked.items()}, {f: p for f, (_, p) in masked.items()}
    except ValueError as e:
        src.rule, src.problem = Rule("skip", "marker_collision", src.rule.code_math_share), str(e)
        src.masked, src.spans = {}, {}


def draw(pool: Sequence[Source], codes: Sequence[str], cfg: SphinxConfig) -> dict[str, list[Source]]:
    """Each language its own seeded subset of its tier's size (order of the inputs does not matter)."""
    pool = sorted(pool, key=lambda s: s.id)
    out = {}
    for code in codes:
        k = min(cfg.selection.tier_counts[cfg.languages[code].tier], len(pool))
        picked = random.Random(f"sphinx:{cfg.selection.seed}:{code}").sample(range(len(pool)), k)
        out[code] = [pool[i] for i in sorted(picked)]
    return out


# ---- requests ------------------------------------------------------------------------------------------------
def request_id(lang: str, src_id: str, part: str) -> str:
    return f"sphinx-{lang}-{part}-" + short_hash(lang, src_id, part, length=20)


def requests_for(src: Source, lang: str, cfg: SphinxConfig, task: Task | None = None) -> list[GenerationRequest]:
    """The source's requests of round `translate#<lang>`: one per part to translate ("both" in together mode)."""
    spec, t = cfg.languages[lang], cfg.translation
    task = task or translate_task(lang, cfg, None)
    parts = {f: m for f, m in src.masked.items() if has_prose(m)}
    if t.mode == "together" and len(parts) == 2:
        parts = {"both": f"{HEAD_I}\n{parts['instruction']}\n{HEAD_R}\n{parts['response']}"}
        prompt, template = t.prompt_together, TRANSLATE_TOGETHER
    else:
        prompt, template = spec.prompt or t.prompt, TRANSLATE_FIELD
    variant = short_hash(prompt, t.system or "", length=8)
    reqs = []
    for part, text in parts.items():
        msgs = ([{"role": "system", "content": t.system}] if t.system else []) + [
            {"role": "user", "content": prompt.format(language=spec.name, text=text)}]
        reqs.append(task.ask(request_id(lang, src.id, part), messages=msgs, template=template, variant=variant,
                             parent_ids=[src.id], meta={"src_id": src.id, "part": part}))
    return reqs


def translate_task(lang: str, cfg: SphinxConfig, lid) -> Task:
    """Round `translate#<lang>`: each drawn source's part requests, assembled into one row per source (`assemble`;
    a rejected row keeps its own reason: `generation_failed` or its check failures)."""
    def combine(src: Source, ok: list[dict], failed: list[dict]) -> tuple[dict, str | None]:
        row, why = assemble(src, lang, {r["part"]: r for r in ok}, {r["part"]: r for r in failed}, cfg, lid)
        return row, (row["reason"] if why else None)

    return Task(f"translate#{lang}", TRANSLATE_FIELD, cfg.translation.sampling,
                request=lambda task, src: requests_for(src, lang, cfg, task), combine=combine)


def split_together(text: str) -> tuple[str, str] | None:
    m = re.search(rf"^\s*{re.escape(HEAD_I)}\s*\n(.*?)\n\s*{re.escape(HEAD_R)}\s*\n(.*)$", text or "", re.S)
    return (m.group(1).strip(), m.group(2).strip()) if m else None


# ---- rows ----------------------------------------------------------------------------------------------------
STRING, FLOAT, STRINGS = pa.string(), pa.float64(), pa.list_(pa.string())
MESSAGE_TYPE = pa.struct([("role", STRING), ("content", STRING)])
FIELDS = [pa.field("src_id", STRING), pa.field("src_origin", STRING),
          pa.field("lang", pa.dictionary(pa.int32(), STRING)), pa.field("tier", STRING),
          pa.field("instruction", STRING), pa.field("response", STRING), pa.field("instruction_en", STRING),
          pa.field("response_en", STRING), pa.field("protected_spans", pa.list_(SPAN_RECORD_TYPE)),
          pa.field("rule", STRING), pa.field("lid_instruction", STRING), pa.field("lid_response", STRING),
          pa.field("lid_score", FLOAT), pa.field("len_ratio", FLOAT), pa.field("translator_model", STRING),
          pa.field("nshot_ids", STRINGS), pa.field("status", STRING), pa.field("reason", STRING),
          pa.field("messages", pa.list_(MESSAGE_TYPE))]
SOURCE_SCHEMA = pa.schema([("src_id", STRING), ("src_origin", STRING), ("instruction_en", STRING),
                           ("response_en", STRING), ("rule", STRING), ("code_math_share", FLOAT), ("problem", STRING),
                           ("drawn_by", STRINGS), ("spans", pa.int32())])
_PROV = ("model", "backend", "sampling_params", "template_id", "request_id", "finish_reason", "round")


def assemble(src: Source, lang: str, recs: dict[str, dict], failed: dict[str, dict], cfg: SphinxConfig, lid
             ) -> tuple[dict, str | None]:
    """(row, None) or (row, the reason it goes to rejected/: generation_failed / translation_check)."""
    spec = cfg.languages[lang]
    parts = {"both" if "both" in recs or "both" in failed else p: None for p in src.masked if has_prose(src.masked[p])}
    first = next((recs.get(p) or failed.get(p) for p in parts if recs.get(p) or failed.get(p)), None)
    row = {k: (first or {}).get(k) for k in _PROV}
    row.update(id=f"sphinx-{lang}-{src.id}", source="sphinx", parent_ids=[src.id], src_id=src.id,
               src_origin=src.origin, lang=lang, tier=spec.tier, instruction_en=src.instruction,
               response_en=src.response, rule=src.rule.label, translator_model=row["model"], nshot_ids=[],
               round=f"translate#{lang}", completion_tokens=sum((recs[p].get("completion_tokens") or 0)
                                                                for p in parts if p in recs) or None)
    row["metadata"] = json.dumps({"request_ids": [request_id(lang, src.id, p) for p in parts],
                                  "code_math_share": round(src.rule.code_math_share, 4)}, sort_keys=True)
    if any(p in failed for p in parts):
        err = "; ".join(f"{p}: {failed[p].get('error')}" for p in parts if p in failed)
        return {**row, "text": src.instruction, "status": "fail", "reason": "generation_failed", "error": err}, \
            "generation_failed"
    out: dict[str, str | None] = {f: m for f, m in src.masked.items()}  # nothing to translate: masked as is
    finish = {}
    failures = []
    if "both" in parts:
        both = split_together(recs["both"]["text"])
        if both is None:
            failures.append("together_unparsed")
            out = {"instruction": recs["both"]["text"], "response": None}
        else:
            out["instruction"], out["response"] = both
        finish = {"instruction": recs["both"]["finish_reason"], "response": recs["both"]["finish_reason"]}
    else:
        for p in parts:
            out[p], finish[p] = recs[p]["text"], recs[p]["finish_reason"]
    spans_rows, bad, texts = [], [], {}
    for f in ("instruction", "response"):
        if f not in src.masked:  # kept in English (wrapper_only / a label-only answer)
            texts[f] = src.instruction if f == "instruction" else src.response
            spans_rows += [span_record(f, p, "kept") for p in src.spans.get(f, [])]
            continue
        if out.get(f) is None:
            texts[f] = None
            continue
        r = restore(out[f], src.spans[f])
        texts[f] = r.text
        spans_rows += r.records(f)
        bad += r.problems
    fields = [CheckedField(f, prose(src.masked[f]), prose(out[f]) if out.get(f) is not None else None, finish.get(f))
              for f in ("instruction", "response") if f in src.masked]
    res = check_row(fields, spec.lid or lang, not bad, bad, cfg.checks, lid, spec.len_ratio, lid_threshold(cfg, lang))
    failures += res.failures
    row.update(instruction=texts["instruction"], response=texts["response"], protected_spans=spans_rows,
               lid_instruction=res.lid.get("instruction"), lid_response=res.lid.get("response"),
               lid_score=res.lid_score, len_ratio=res.len_ratio, status="fail" if failures else "pass",
               reason="; ".join(failures) or None,
               text="\n\n".join(t for t in (texts["instruction"], texts["response"]) if t))
    if failures and not cfg.keep_failed:  # rejected/, its reasons as they are
        return row, "translation_check"
    return row, None


def english_row(src: Source) -> dict:
    """The English source as a row of its own language (`lang=en`): the same trace columns, nothing translated."""
    return {"id": f"sphinx-en-{src.id}", "source": "sphinx", "parent_ids": [src.id], "src_id": src.id,
            "src_origin": src.origin, "lang": "en", "tier": "source", "instruction": src.instruction,
            "response": src.response, "instruction_en": src.instruction, "response_en": src.response,
            "protected_spans": [], "rule": src.rule.label, "nshot_ids": [], "status": "pass", "reason": None,
            "text": "\n\n".join(t for t in (src.instruction, src.response) if t),
            "metadata": json.dumps({"code_math_share": round(src.rule.code_math_share, 4)}, sort_keys=True)}


def lid_threshold(cfg: SphinxConfig, lang: str) -> float:
    spec = cfg.languages[lang]
    if spec.lid_threshold is not None:
        return spec.lid_threshold
    return cfg.checks.lid_tier_thresholds.get(spec.tier, cfg.checks.lid_threshold)


# ---- LANGIT neighbours ---------------------------------------------------------------------------------------
def nearest(query: np.ndarray, pool: np.ndarray, exclude: Sequence[set[int]], n: int, block: int = 1024
            ) -> list[list[int]]:
    """For each query row, the indices of its n most similar pool rows (cosine of L2-normalised vectors; ties by
    index), never an excluded one. Blocks of `block` query rows: memory is block x pool, not query x pool."""
    if n == 0 or not len(pool):
        return [[] for _ in range(len(query))]
    out = []
    for b in range(0, len(query), block):
        sims = query[b:b + block] @ pool.T
        for i, row in enumerate(sims, b):
            k = min(len(row), n + len(exclude[i]))  # enough candidates to survive the exclusions
            cand = np.argpartition(-row, k - 1)[:k] if k < len(row) else np.arange(len(row))
            # exact ties at the cut: take every candidate with the k-th score, then order by (score, index)
            cut = row[cand].min()
            cand = np.flatnonzero(row >= cut)
            order = cand[np.lexsort((cand, -row[cand]))]
            out.append([int(j) for j in order if int(j) not in exclude[i]][:n])
    return out


def _norm(s: str) -> str:
    return " ".join(s.lower().split())


def add_neighbours(rows: list[dict], cfg: NShotConfig, encoder) -> None:
    """Per language: `nshot_ids` (and `messages`) from the same language's pool, never the row itself, its own
    source, or a source with the same English instruction."""
    by_lang: dict[str, list[dict]] = {}
    for r in rows:
        by_lang.setdefault(r["lang"], []).append(r)
    for group in by_lang.values():
        pool = [r for r in group if cfg.pool == "all" or r["status"] == "pass"]
        key = "instruction_en" if cfg.embed == "source" else "instruction"
        if pool and cfg.n:
            vecs = encoder([r[key] or "" for r in group])
            index = {r["id"]: i for i, r in enumerate(group)}
            pvecs = vecs[[index[p["id"]] for p in pool]]
            same: dict[tuple[str, str], set[int]] = {}
            for j, p in enumerate(pool):
                for k in (("id", p["id"]), ("src", p["src_id"]), ("en", _norm(p["instruction_en"]))):
                    same.setdefault(k, set()).add(j)
            excl = [same.get(("id", r["id"]), set()) | same.get(("src", r["src_id"]), set())
                    | same.get(("en", _norm(r["instruction_en"])), set()) for r in group]
            for r, nb in zip(group, nearest(vecs, pvecs, excl, cfg.n)):
                r["nshot_ids"] = [pool[j]["id"] for j in nb]
        if cfg.render_messages:
            by_id = {r["id"]: r for r in group}
            for r in group:
                if r["instruction"] is None or r["response"] is None:
                    continue
                turns = [by_id[i] for i in r["nshot_ids"]] + [r]
                r["messages"] = [m for t in turns for m in ({"role": "user", "content": t["instruction"]},
                                                             {"role": "assistant", "content": t["response"]})]


# ---- the generator -------------------------------------------------------------------------------------------
def run(cfg: SphinxConfig, records: Sequence[Any], rounds) -> GeneratorResult:
    t0 = time.perf_counter()
    sources = [english_source(r) for r in (records[:cfg.max_seeds] if cfg.max_seeds else records)]
    for s in sources:
        if s.problem is None:
            prepare(s, cfg.rules)
    pool = [s for s in sources if s.rule is not None and s.rule.translated]
    codes = cfg.target_codes()
    draws = draw(pool, codes, cfg)
    lid = lid_model(cfg.checks.lid_model_path, "checks.lid_model_path")
    prep_s = time.perf_counter() - t0
    rows, rejected, gen_s = [], [], 0.0
    for lang in codes:
        out = run_task(rounds, translate_task(lang, cfg, lid), draws[lang])
        gen_s += rounds.reports.get(f"translate#{lang}", {}).get("wall_s", 0.0)
        rows += out.accepted
        rejected += out.rejected
    english = [english_row(s) for s in sources if s.rule is not None] if cfg.english_rows else []
    rows += english
    t1 = time.perf_counter()
    if cfg.nshot.n or cfg.nshot.render_messages:
        needs = cfg.nshot.n and any(cfg.nshot.pool == "all" or r["status"] == "pass" for r in rows)
        add_neighbours(rows, cfg.nshot, _encoder(cfg.nshot) if needs else None)
    nshot_s = time.perf_counter() - t1
    drawn_by: dict[str, list[str]] = {}
    for lang in codes:
        for s in draws[lang]:
            drawn_by.setdefault(s.id, []).append(lang)
    table = pa.Table.from_pylist([{
        "src_id": s.id, "src_origin": s.origin, "instruction_en": s.instruction, "response_en": s.response,
        "rule": s.rule.label if s.rule else f"unusable:{s.problem}",
        "code_math_share": round(s.rule.code_math_share, 4) if s.rule else None, "problem": s.problem,
        "drawn_by": drawn_by.get(s.id, []), "spans": sum(len(v) for v in s.spans.values())} for s in sources],
        schema=SOURCE_SCHEMA)
    wall = time.perf_counter() - t0
    stats = run_stats(cfg, codes, sources, pool, draws, [r for r in rows if r["lang"] in codes], rejected, drawn_by)
    stats["english"] = {"rows": len(english), "rules": dict(Counter(r["rule"] for r in english)),
                        "english_only": sum(r["rule"] == "english_only" for r in english)}
    stats["timing"] = {"wall_s": round(wall, 3), "generation_s": round(gen_s, 3), "prepare_s": round(prep_s, 3),
                       "nshot_s": round(nshot_s, 3), "rows_per_s": round((len(rows) + len(rejected)) / wall, 2)
                       if wall else None,
                       "rows_per_s_without_generation": round((len(rows) + len(rejected)) / (wall - gen_s), 1)
                       if wall - gen_s > 0 else None}
    selection = {"seed": cfg.selection.seed, "tier_counts": cfg.selection.tier_counts,
                 "pool": len(pool), "draws": {lang: [s.id for s in draws[lang]] for lang in codes}}
    return GeneratorResult(rows, rejected, stats, tables={"sources": table}, artifacts={"selection": selection})


def _encoder(cfg: NShotConfig):
    from filters.embeddings import MiniLM, load_minilm

    return MiniLM(cfg.model_path) if cfg.model_path else load_minilm()


def _rate(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def run_stats(cfg, codes, sources, pool, draws, rows, rejected, drawn_by) -> dict[str, Any]:
    per = {}
    for lang in codes:
        mine = [r for r in rows + rejected if r["lang"] == lang]
        spans = [sp for r in mine for sp in r.get("protected_spans") or [] if sp["status"] != "kept"]
        fails = Counter(f.split("=")[0].split(":")[0] for r in mine if r["status"] == "fail"
                        for f in (r.get("reason_detail") or r["reason"] or "").split("; ") if f)
        passed = sum(r["status"] == "pass" for r in mine)
        per[lang] = {"tier": cfg.languages[lang].tier, "drawn": len(draws[lang]), "rows": len(mine),
                     "pass": passed, "fail": len(mine) - passed, "pass_rate": _rate(passed, len(mine)),
                     "spans": len(spans), "spans_intact": sum(sp["status"] in INTACT for sp in spans),
                     "failures": dict(sorted(fails.items())),
                     "rules": dict(Counter(r["rule"] for r in mine))}
        per[lang]["span_preservation_rate"] = _rate(per[lang]["spans_intact"], per[lang]["spans"])
    total = sum(p["rows"] for p in per.values())
    uses = Counter(len(v) for v in drawn_by.values())
    sets = [set(s.id for s in draws[c]) for c in codes]
    jac = [len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[i + 1:] if a | b]
    return {
        "languages": per,
        "rows": total, "pass_rate": _rate(sum(p["pass"] for p in per.values()), total),
        "span_preservation_rate": _rate(sum(p["spans_intact"] for p in per.values()),
                                        sum(p["spans"] for p in per.values())),
        "sources": {"read": len(sources), "translatable_pool": len(pool),
                    "rules": dict(Counter(s.rule.label if s.rule else f"unusable:{s.problem}" for s in sources))},
        "reuse": {"sources_used": len(drawn_by), "languages_per_source": dict(sorted(uses.items())),
                  "mean_languages_per_used_source": _rate(sum(k * v for k, v in uses.items()), len(drawn_by)),
                  "mean_pairwise_jaccard": round(sum(jac) / len(jac), 4) if jac else None},
    }


def _preflight(cfg: SphinxConfig) -> None:
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


GENERATOR = Generator(
    name="sphinx",
    description="sPhinX: English instructions -> per-language tiered subsets -> span-protected translation -> "
                "checks -> LANGIT neighbours",
    config=SphinxConfig, fields=FIELDS, rounds=("translate",), run=run,
    # the bundled sample (18 tasks of ours): 3 languages of 3 tiers, short completions: minutes on a laptop CPU
    demo={"targets": ["de", "tr", "sw"], "selection.tier_counts": {"high": 3, "mid": 2, "low": 1},
          "translation.sampling.max_tokens": 48, "nshot.n": 2, "generation.shard_size": 8},
    sample_inputs=lambda cfg: [str(SAMPLE)], needs_inputs=False, kinds=("sources",), preflight=_preflight,
    partition_by="lang",
)
