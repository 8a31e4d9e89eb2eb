"""Ensemble-Instruct's run statistics: per type (candidates, novelty rejects, instance parse rates), the ensemble's
decisions, throughput per round, and the verb-noun diversity of the accepted instructions (spaCy, when a model
loads).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generators.ensemble_config import TYPES

def verb_noun_diversity(instructions: Sequence[str], model: str) -> dict[str, Any]:
    """Root verb + its first direct object (Self-Instruct's diversity figure), with spaCy when `model` loads."""
    try:
        import spacy

        nlp = spacy.load(model, disable=["ner"])
    except (ImportError, OSError) as e:
        return {"skipped": f"spaCy model {model!r} not available ({type(e).__name__})"}
    pairs = []
    for doc in nlp.pipe(instructions):
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is not None and root.pos_ == "VERB":
            obj = next((c for c in root.children if c.dep_ == "dobj"), None)
            pairs.append((root.lemma_.lower(), obj.lemma_.lower() if obj is not None else None))
    top: dict[str, int] = {}
    for verb, noun in pairs:
        key = f"{verb} {noun or ''}".strip()
        top[key] = top.get(key, 0) + 1
    return {"instructions": len(instructions), "with_root_verb": len(pairs),
            "distinct_verbs": len({p[0] for p in pairs}),
            "distinct_verb_noun": len({p for p in pairs if p[1]}),
            "top": dict(sorted(top.items(), key=lambda kv: -kv[1])[:20])}


def run_stats(cfg, seeds, skipped, instruction_rows, accepted, instance_rows, valid, rows, rejected, voter_info,
              rounds, ins_outs, novelty_s, pools) -> dict[str, Any]:
    def share(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    per_type = {}
    for t in TYPES:
        irows = [r for r in instruction_rows if r["type"] == t]
        status = {}
        for r in irows:
            status[r["status"]] = status.get(r["status"], 0) + 1
        checked = status.get("accepted", 0) + status.get("not_novel", 0)
        parsed = [r for r in instance_rows if r["type"] == t]
        ok = sum(r["parse_status"] == "ok" for r in parsed)
        per_type[t] = {"seeds": sum(s.type == t for s in seeds), "candidates": len(irows), "status": status,
                       "accepted": sum(a["type"] == t for a in accepted),
                       "novelty_reject_rate": share(status.get("not_novel", 0), checked),
                       "instances": len(parsed), "instances_parsed": ok, "parse_valid_rate": share(ok, len(parsed)),
                       "parse_failures": {k: sum(r["parse_status"] == k for r in parsed)
                                          for k in sorted({r["parse_status"] for r in parsed} - {"ok"})}}
    decided = {}
    considered = [r for r in rows + rejected if r.get("decided_by")]
    for r in considered:
        decided[r["decided_by"]] = decided.get(r["decided_by"], 0) + 1
    reports = rounds.reports
    ins_wall = sum(reports[o.name]["wall_s"] for o in ins_outs)
    throughput = {name: {"tokens_per_s": r["tokens_per_s"], "wall_s": r["wall_s"],
                         "completion_tokens": r["completion_tokens"], "requests": r["requests"]}
                  for name, r in reports.items()}
    gen_model = next((r["model"] for r in instance_rows), None)
    models = {v["model"] for v in voter_info if v["model"]} | ({gen_model} if gen_model else set())
    return {
        "seeds": {"used": len(seeds), "quarantined_bad_instances": skipped},
        "stop_string_in_text": False,  # `|EoS|` is cut by the backends and by the parsers
        "types": per_type,
        "novelty": {"method": cfg.instructions.novelty.method, "tokenizer": cfg.instructions.novelty.tokenizer,
                    "exact_scores": sum(p.scored for p in pools.values()),
                    "pool_sizes": {t: len(p) for t, p in pools.items()}, "seconds": round(novelty_s, 3)},
        "ensemble": {"considered": len(considered), "kept": len(rows),
                     "keep_rate": share(len(rows), len(considered)), "decided_by": decided,
                     "decided_by_share": {k: share(v, len(considered)) for k, v in decided.items()},
                     "kind": "distinct_models" if len(models) > 1 else "distinct_configurations_of_one_model",
                     "voters": voter_info},
        "instructions_per_s": share(len(accepted), ins_wall),
        "throughput": throughput,
        "verb_noun": verb_noun_diversity([a["text"] for a in accepted], cfg.spacy_model),
    }
