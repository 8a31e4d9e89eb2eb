"""`flows run mix`: build a training mixture from any document sources with per-source rules and token shares.

resolve sources (stage non-Parquet inputs) -> count (rules + tokens per kept document, per file, resumable)
-> unique ids (a kept id seen before becomes `<id>#n`, as everywhere) -> plan (targets, epochs, seeded samples;
an unmet share stops the run before anything is written)
-> scatter (copies into hashed buckets) -> gather (each bucket sorted by its seeded key) -> publish -> report
Logic: corpora/mix_rules.py, mix_sources.py, mix_count.py, mix_plan.py, mix_shuffle.py, mix_steps.py.
"""
from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.layout import Kind, Layout
from corpora.mix_count import EXCLUDED_SCHEMA, SourceRules, TokenCounter, TokenizerConfig
from corpora.mix_plan import MixPlan, MixPlanConfig, make_plan, resolve_shares
from corpora.mix_shuffle import ShuffleConfig, gather_bucket, output_schema
from corpora.mix_sources import MixSource, ResolvedSource, resolve_source
from corpora.mix_steps import (Laps, assign_unique_ids, bucket_count, count_source, demo_sources, mix_outcome,
                               plan_table, rules_table, scatter_source)
from corpora.mix_steps import check_names as _check_names
from corpora.mix_steps import tokenizer_path as _tokenizer_path
from corpora.plan import WORK_DIR, OutputError, check_output, clear_output
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
    out = count_source(src, cfg, counter, work)
    log = run_logger()
    log.info("%s: %d files, %d kept (%d tokens), %d excluded", src.name, len(out), sum(d["kept"] for d in out),
             sum(d["tokens"] for d in out), sum(d["excluded"] for d in out))
    return out


@task(name="scatter", cache_policy=NO_CACHE, retries=1)
def scatter(src: ResolvedSource, counts: list[dict], plan: MixPlan, work: Path, nbuckets: int, schema,
            cfg: MixConfig) -> list[tuple[Path, dict]]:
    return scatter_source(src, counts, plan, work, nbuckets, schema, cfg)


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
    lap = Laps()
    sources = resolve_sources(config, work)
    lap("resolve")
    counts = {s.name: count_tokens(s, config, counter, work) for s in sources}
    lap("count")
    renamed = assign_unique_ids(sources, counts, work)
    lap("ids")
    plan = make_plan(config, [Path(d["index"]) for s in sources for d in counts[s.name]],
                     {s.name: s.spec.share for s in sources}, {s.name: s.spec.max_epochs for s in sources},
                     config.seed)  # PlanError: nothing written
    lap("plan")
    console.print(plan_table(plan))
    console.print(rules_table(sources, counts))
    run = Run.start("mix", config, kinds=LAYOUT, clear=False)
    schema = output_schema(sources, renamed=any(renamed.values()))
    nbuckets = bucket_count(plan, config.shuffle.bucket_mb)
    scattered = [x for s in sources for x in scatter(s, counts[s.name], plan, work, nbuckets, schema, config)]
    lap("scatter")
    gathered = gather(scattered, nbuckets, schema, work)
    lap("gather")
    run.publish("data", [p for p, _ in gathered], schema)
    run.publish("excluded", [Path(d["dir"]) / "excluded.parquet" for s in sources for d in counts[s.name]])
    run.publish("quarantine", [p for s in sources for p in s.quarantine_parts]
                + [Path(d["dir"]) / "quarantine.parquet" for s in sources for d in counts[s.name]])
    lap("publish")
    stats, inv, line = mix_outcome(sources, counts, renamed, plan, gathered, {k: run.rows(k) for k in LAYOUT.names()},
                                   nbuckets, str(counter.file), lap)
    atomic_write_json(out_dir / "plan.json", {**stats["plan"], "sources": stats["sources"]})
    if stats["duplicate_rows"]:
        run_logger().warning("%d output rows repeat a (source, id, epoch) of another row: ids repeat within a "
                             "source", stats["duplicate_rows"])
    stats = run.finish(stats, invariant=inv, summary=line, markdown="```\n" + line + "\n```",
                       cfg_hash=config_hash(config),
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
