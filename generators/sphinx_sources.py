"""sPhinX's English sources: one `Source` per input record (a Self-Instruct seed task or an ensemble-instruct row),
its rule and masked fields (`prepare`, once per source, language-independent), and each language's seeded draw of
its tier's count from the translatable pool (`draw`)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Sequence

from filters.protected_spans import Protected, Span, mask_fields
from generators.sphinx_config import SphinxConfig
from generators.sphinx_rules import Rule, RulesConfig, classify, label_spans, payload_spans


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
