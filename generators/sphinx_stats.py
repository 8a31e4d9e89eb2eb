"""sPhinX's `stats.json` section: per language rows, pass rate, span preservation, failures by check and rules;
the sources read and the translatable pool; how often a source was drawn by several languages (reuse, pairwise
Jaccard of the draws)."""
from __future__ import annotations

from collections import Counter
from typing import Any

from filters.protected_spans import INTACT


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
