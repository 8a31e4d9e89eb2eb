"""`flows run mix`: build a training mixture from any document sources with per-source rules and token shares.

resolve sources (stage non-Parquet inputs) -> count (rules + tokens per kept document, per file, resumable)
-> unique ids (a kept id seen before becomes `<id>#n`, as everywhere) -> plan (targets, epochs, seeded samples; an unmet share stops the run before anything is written)
-> scatter (copies into hashed buckets) -> gather (each bucket sorted by its seeded key) -> publish -> report
Logic: corpora/mix_rules.py, mix_sources.py, mix_count.py, mix_plan.py, mix_shuffle.py, mix_steps.py.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.layout import Kind, Layout
from corpora.mix_count import (
    EXCLUDED_SCHEMA,
    SourceRules,
    TokenCounter,
    TokenizerConfig,
    count_file,
    unique_kept_ids,
)
from corpora.mix_plan import MixPlan, MixPlanConfig, make_plan, resolve_shares
from corpora.mix_shuffle import (
    ShuffleConfig,
    gather_bucket,
    output_schema,
    scatter_file,
)
from corpora.mix_sources import MixSource, ResolvedSource, resolve_source
from corpora.mix_steps import check_names as _check_names
from corpora.mix_steps import demo_sources, plan_table, rules_table
from corpora.mix_steps import source_stats as _source_stats  # flows.tokenize uses it
from corpora.mix_steps import tokenizer_path as _tokenizer_path
from corpora.plan import WORK_DIR, OutputError, check_output, clear_output
from corpora.readers import InputError
from corpora.records import QUARANTINE_SCHEMA
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run

# data/ (the mixture, its schema from the sources), excluded/ (rows a source's rules left out), quarantine/
LAYOUT = Layout((Kind("data"), Kind("excluded", EXCLUDED_SCHEMA), Kind("quarantine", QUARANTINE_SCHEMA)))
DEMO_BUDGET = 40_000  # the demo's budget (when neither `sources` nor `budget_tokens` is set): shows upsampling


class MixConfig(MixPlanConfig, RunConfig):
    seed: int = 0  # sampling and shuffle; the same seed and inputs give the same mixture
    sources: list[MixSource] = Field(default_factory=demo_sources, min_length=1)
    tokenizer: TokenizerConfig = TokenizerConfig()
    shuffle: ShuffleConfig = ShuffleConfig()
    batch_docs: int = Field(2000, ge=1)  # rows read (and tokenized) per batch


@task(name="resolve-sources", cache_policy=NO_CACHE)
def resolve_sources(cfg: MixConfig, work: Path) -> list[ResolvedSource]:
    return [resolve_source(s, work / "inputs") for s in cfg.sources]


@task(name="count-tokens", cache_policy=NO_CACHE, retries=1)
def count_tokens(src: ResolvedSource, cfg: MixConfig, counter: TokenCounter, work: Path) -> list[dict]:
    rules = SourceRules.of(src)
    group_col = None if cfg.by == "source" else cfg.by
    if group_col and src.column_type(group_col) is None:
        raise InputError(f"source '{src.name}': no column '{group_col}' to mix by (by: {group_col})")
    out = []
    for sf in src.files:
        d = count_file(src, sf, rules, counter, work / "count" / src.name / sf.key, group_col, cfg.batch_docs)
        out.append({**d, "dir": str(work / "count" / src.name / sf.key)})
    log = run_logger()
    log.info("%s: %d files, %d kept (%d tokens), %d excluded", src.name, len(out), sum(d["kept"] for d in out),
             sum(d["tokens"] for d in out), sum(d["excluded"] for d in out))
    return out


@task(name="scatter", cache_policy=NO_CACHE, retries=1)
def scatter(src: ResolvedSource, counts: list[dict], plan: MixPlan, work: Path, nbuckets: int, schema,
            cfg: MixConfig) -> list[tuple[Path, dict]]:
    out = []
    for sf, c in zip(src.files, counts):
        d = work / "shuffle" / src.name / sf.key
        out.append((d, scatter_file(src, sf, Path(c["index"]), c["index_key"], plan, d, nbuckets,
                                    schema, cfg.shuffle, cfg.batch_docs)))
    return out


@task(name="gather", cache_policy=NO_CACHE, retries=1)
def gather(scattered: list[tuple[Path, dict]], nbuckets: int, schema, work: Path) -> list[tuple[Path, dict]]:
    from corpora.hashing import short_hash

    key = short_hash(*(d["key"] for _, d in scattered), str(nbuckets), length=16)
    return [(work / "gather" / f"part-{b:05d}.parquet",
             gather_bucket(b, scattered, work / "gather" / f"part-{b:05d}.parquet", schema, key))
            for b in range(nbuckets)]



@flow(name="mix", log_prints=True)
def mix_flow(config: MixConfig) -> dict:
    _check_names(config)
    out_dir = Path(config.output or "output/mix").resolve()
    if config.overwrite:
        clear_output(out_dir, LAYOUT.names() + ("plan.json",))
    work = out_dir / WORK_DIR / "mix"
    if not {"sources", "budget_tokens"} & config.model_fields_set:
        config = config.model_copy(update={"budget_tokens": DEMO_BUDGET})
        run_logger().info("demo mixture of the bundled sample: budget %d tokens (set sources / budget_tokens)",
                          DEMO_BUDGET)
    counter = TokenCounter(_tokenizer_path(config), config.tokenizer.add_special_tokens)
    seconds, t0 = {}, time.perf_counter()
    sources = resolve_sources(config, work)
    seconds["resolve"], t0 = time.perf_counter() - t0, time.perf_counter()
    counts = {s.name: count_tokens(s, config, counter, work) for s in sources}
    seconds["count"], t0 = time.perf_counter() - t0, time.perf_counter()
    # the one id policy over the kept documents: a repeated id becomes `<id>#n` (metadata.original_id)
    unique, renamed = unique_kept_ids([(s.name, Path(d["dir"]) / "index.parquet", d["key"]) for s in sources
                                       for d in counts[s.name]], work / "ids")
    it = iter(unique)
    for s in sources:
        counts[s.name] = [{**d, "index": str(f), "index_key": k} for d, (f, k) in zip(counts[s.name], it)]
    index_files = [Path(d["index"]) for s in sources for d in counts[s.name]]
    seconds["ids"], t0 = time.perf_counter() - t0, time.perf_counter()
    plan = make_plan(config, index_files, {s.name: s.spec.share for s in sources},
                     {s.name: s.spec.max_epochs for s in sources}, config.seed)  # PlanError: nothing written
    seconds["plan"], t0 = time.perf_counter() - t0, time.perf_counter()
    console.print(plan_table(plan))
    console.print(rules_table(sources, counts))
    run = Run.start("mix", config, kinds=LAYOUT, clear=False)
    schema = output_schema(sources, renamed=any(renamed.values()))
    est = sum(g.available_bytes * (g.delivered_tokens / g.available_tokens) for g in plan.groups.values()
              if g.available_tokens)
    nbuckets = max(1, math.ceil(est * 1.25 / (config.shuffle.bucket_mb * 2 ** 20)))
    scattered = [x for s in sources for x in scatter(s, counts[s.name], plan, work, nbuckets, schema, config)]
    seconds["scatter"], t0 = time.perf_counter() - t0, time.perf_counter()
    gathered = gather(scattered, nbuckets, schema, work)
    seconds["gather"], t0 = time.perf_counter() - t0, time.perf_counter()
    run.publish("data", [p for p, _ in gathered], schema)
    run.publish("excluded", [Path(d["dir"]) / "excluded.parquet" for s in sources for d in counts[s.name]])
    run.publish("quarantine", [p for s in sources for p in s.quarantine_parts]
                + [Path(d["dir"]) / "quarantine.parquet" for s in sources for d in counts[s.name]])
    seconds["publish"] = time.perf_counter() - t0
    per_source = {s.name: _source_stats(s, counts[s.name], renamed[s.name]) for s in sources}
    planned_rows = sum(g.rows for g in plan.groups.values())
    data_rows = run.rows("data")
    delivered = sum(d["tokens"] for _, d in gathered)
    read = sum(v["records_read"] for v in per_source.values())
    accounted = sum(v["kept"] + v["excluded"] + v["quarantined"] for v in per_source.values())
    inv = {"records_read": read, "kept": sum(v["kept"] for v in per_source.values()),
           "rows_excluded": run.rows("excluded"), "rows_quarantine": run.rows("quarantine"),
           "rows_data": data_rows, "rows_planned": planned_rows,
           "tokens_planned": sum(g.delivered_tokens for g in plan.groups.values()), "tokens_data": delivered,
           "holds": (read == accounted and data_rows == planned_rows
                     and run.rows("excluded") == sum(v["excluded"] for v in per_source.values())
                     and delivered == sum(g.delivered_tokens for g in plan.groups.values()))}
    summary = plan.summary()
    atomic_write_json(out_dir / "plan.json", {**summary, "sources": per_source})
    dup = sum(d["duplicate_keys"] for _, d in gathered)
    stats = {"plan": summary, "sources": per_source, "buckets": nbuckets, "duplicate_rows": dup,
             "duplicate_ids_renamed": sum(v["duplicate_ids_renamed"] for v in per_source.values()),
             "tokenizer": str(counter.file), "seconds": {k: round(v, 3) for k, v in seconds.items()}}
    if dup:
        run_logger().warning("%d output rows repeat a (source, id, epoch) of another row: ids repeat within a "
                             "source", dup)
    line = (f"mix: {data_rows:,} rows, {delivered:,} tokens (budget {plan.budget:,}) from {read:,} records in "
            f"{len(sources)} sources; {inv['rows_excluded']:,} excluded by rules, {inv['rows_quarantine']:,} "
            f"quarantined; {nbuckets} shuffle bucket(s); invariants hold: {'yes' if inv['holds'] else 'NO'}")
    md = "```\n" + line + "\n```"
    stats = run.finish(stats, invariant=inv, summary=line, markdown=md, cfg_hash=config_hash(config),
                       inputs=[{"source": s.name, "path": f.origin, "rows": f.rows} for s in sources
                               for f in s.files])
    return {"output": str(out_dir), "stats": stats, "plan": plan}


def preflight(cfg: MixConfig) -> None:
    """Before the flow: names, shares, rules against the columns of Parquet sources, the tokenizer, the output
    not inside a source."""
    _check_names(cfg)
    if cfg.inputs:
        raise ValueError("mix: name the sources in the config (`sources:` with their `paths`), not with --input")
    for s in cfg.sources:
        try:
            check_output(cfg.output or "output/mix", [p for p in s.paths if not p.startswith("sample:")])
        except OutputError as e:
            raise OutputError(f"source '{s.name}': {e}") from None
        SourceRules.of(resolve_source(s, stage=False))
    resolve_shares(cfg, {s.name: s.share for s in cfg.sources})
    TokenCounter(_tokenizer_path(cfg))  # the default one is made here, before the flow, on first use


PIPELINE = Pipeline(
    name="mix",
    description="Training mixture: sources with include/exclude rules, token shares + budget, upsampling caps, "
                "seeded out-of-core shuffle",
    config_model=MixConfig,
    flow=mix_flow,
    preflight=preflight,
    layout=LAYOUT,
)
