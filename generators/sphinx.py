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

Here: the requests of each `translate#<lang>` round, a row assembled from its completions, the run. The rest has its
own room: `sphinx_config` (settings, the language table, preflight), `sphinx_sources` (sources, rule + masking,
draws), `sphinx_rules`, `sphinx_checks`, `sphinx_nshot` (LANGIT neighbours), `sphinx_schema` (columns),
`sphinx_stats` (`stats.json`), `sphinx_report` (the report section).
"""
from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from corpora.hashing import short_hash
from filters.langid import lid_model
from filters.protected_spans import has_prose, prose, restore, span_record
from generators.backends.base import GenerationRequest
from generators.contract import Generator, GeneratorResult
from generators.sphinx_checks import CheckedField, check_row
from generators.sphinx_config import SphinxConfig, lid_threshold, preflight
from generators.sphinx_nshot import add_neighbours, load_encoder
from generators.sphinx_schema import FIELDS, PROVENANCE_KEYS, SOURCE_SCHEMA
from generators.sphinx_sources import Source, draw, english_source, prepare
from generators.sphinx_stats import run_stats
from generators.task import Task, Template, run_task

TEMPLATE_VERSION = 1
# prompts built in code from the configured text: its hash is the template variant (`requests_for`)
TRANSLATE_FIELD = Template("sphinx/translate-field", TEMPLATE_VERSION)
TRANSLATE_TOGETHER = Template("sphinx/translate-together", TEMPLATE_VERSION)
SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "sphinx_sample.jsonl"
HEAD_I, HEAD_R = "### Instruction", "### Response"


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



def assemble(src: Source, lang: str, recs: dict[str, dict], failed: dict[str, dict], cfg: SphinxConfig, lid
             ) -> tuple[dict, str | None]:
    """(row, None) or (row, the reason it goes to rejected/: generation_failed / translation_check)."""
    spec = cfg.languages[lang]
    parts = {"both" if "both" in recs or "both" in failed else p: None for p in src.masked if has_prose(src.masked[p])}
    first = next((recs.get(p) or failed.get(p) for p in parts if recs.get(p) or failed.get(p)), None)
    row = {k: (first or {}).get(k) for k in PROVENANCE_KEYS}
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
        add_neighbours(rows, cfg.nshot, load_encoder(cfg.nshot) if needs else None)
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

GENERATOR = Generator(
    name="sphinx",
    description="sPhinX: English instructions -> per-language tiered subsets -> span-protected translation -> "
                "checks -> LANGIT neighbours",
    config=SphinxConfig, fields=FIELDS, rounds=("translate",), run=run,
    # the bundled sample (18 tasks of ours): 3 languages of 3 tiers, short completions: minutes on a laptop CPU
    demo={"targets": ["de", "tr", "sw"], "selection.tier_counts": {"high": 3, "mid": 2, "low": 1},
          "translation.sampling.max_tokens": 48, "nshot.n": 2, "generation.shard_size": 8},
    sample_inputs=lambda cfg: [str(SAMPLE)], needs_inputs=False, kinds=("sources",), preflight=preflight,
    partition_by="lang",
)
