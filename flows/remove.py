"""`flows run remove`: corpus-level removal with lineage. Wiring only: the logic is in `filters/removal.py`,
`filters/forget_match.py` and `filters/lineage.py`.

load the version (every kind) -> match + near duplicates -> lineage through the version and the derived datasets ->
publish `<corpus>@vN` (and `<derived>@vN`) with tombstones/ and changelog.json.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import field_validator

from corpora.atomic import atomic_write_json, read_json
from corpora.manifest import now_iso
from corpora.readers import InputError
from filters import forget_packages as pk
from filters import removal as rm
from filters.forget_match import MatchSpec, NearDupConfig
from filters.lineage import DEFAULT_LINKS
from filters.removal import DerivedSpec
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console
from flows.scaffold import Run

WORK = "_work"


def _say(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


class RemoveConfig(RunConfig):
    corpus: str | None = None  # the version to remove from (an output folder: manifest + data/ ...)
    ids: str | None = None  # a file of ids to remove (one per line; or .jsonl / .parquet with an `id` column)
    match: MatchSpec = MatchSpec()
    near_duplicates: NearDupConfig = NearDupConfig()
    link: list[str] = list(DEFAULT_LINKS)  # link columns followed inside the corpus (slices -> works)
    derived: list[DerivedSpec] = []
    strict: bool = False  # ids / rules that name no row (or an id file with none): an error, not a note

    @field_validator("derived", mode="before")
    @classmethod
    def _paths(cls, v):  # `--set derived=[out/textbooks]` or `--derived out/textbooks`
        v = [v] if isinstance(v, (str, dict)) else v
        return [{"path": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v


CLI_DEFAULT_OUTPUT = "output/remove"  # what `flows run` passes when --output is not given


def _plans(cfg: RemoveConfig) -> tuple[rm.VersionPlan, list[rm.VersionPlan | None], str]:
    """The new versions and the removal key (its rules and the exact source versions)."""
    plan, derived = rm.removal_plans(cfg.corpus, cfg.ids, cfg.match, cfg.derived,
                                     None if cfg.output in (None, CLI_DEFAULT_OUTPUT) else cfg.output)
    key = rm.removal_key(cfg.model_dump(mode="json", exclude={"output", "overwrite"}),
                         [plan.source] + [Path(d.path) for d in cfg.derived])
    return plan, derived, key


find_removals = task(name="match-and-follow-lineage", cache_policy=NO_CACHE)(rm.find_removals)


def _write_version(cfg: RemoveConfig, plan: rm.VersionPlan, key: str, tables: dict, schemas: dict, hits: dict,
                   rules: dict, lineage: list[dict], extra_kinds: dict) -> dict:
    """Publish one new version: every kind minus its removed rows, tombstones (earlier + new), changelog."""
    t0 = time.monotonic()
    if rm.target_state(plan.target, key) == "retry":
        shutil.rmtree(plan.target)
    run = Run.start("remove", cfg.model_copy(update={"output": str(plan.target), "overwrite": False}),
                    kinds=(), clear=False)
    parts = rm.version_parts(plan, tables, schemas, hits, extra_kinds, run.out_dir / WORK)
    for path, files, schema in parts.kinds:  # the source run's folders: its layout, as its manifest names them
        run.publish_at(path, files, schema)
    entry = rm.write_changelog(run.out_dir, plan, rules, parts.counts, lineage, parts.unchecked, now_iso())
    removed, rows_in, rows_out = parts.counts["rows"], parts.rows_in, parts.rows_out
    inv = {"rows_in": rows_in, "rows_out": rows_out, "rows_removed": removed, "holds": rows_in == rows_out + removed}
    stats = {"removal_key": key, "version": plan.version, "from": str(plan.source), "removed": parts.counts,
             "tombstones": parts.tombstones.num_rows, "unchecked_kinds": parts.unchecked,
             "seconds_write": round(time.monotonic() - t0, 3)}
    out = run.finish(stats, invariant=inv, inputs=rm.source_inputs(plan), cfg_hash=config_hash(cfg),
                     summary=f"{plan.version}: {rows_in:,} rows -> {rows_out:,} ({removed:,} removed: "
                             + ", ".join(f"{k} {v}" for k, v in parts.counts["by_rule"].items()) + ")",
                     markdown="# remove\n\n" + rm.changelog_markdown([entry]))
    shutil.rmtree(run.out_dir / WORK, ignore_errors=True)
    return out


@flow(name="remove", log_prints=True)
def remove_flow(config: RemoveConfig) -> dict:
    plan, derived_plans, key = _plans(config)
    names = rm.derived_names(config.derived)
    if rm.target_state(plan.target, key) == "done":
        console.print(f"remove: {plan.target} already holds this removal (same rules, same source): nothing to do")
        return {"output": str(plan.target), "stats": read_json(plan.target / "stats.json")}
    for dp in derived_plans:  # fail before writing anything when a derived target is unusable
        if dp is not None:
            rm.target_state(dp.target, key)
    found = find_removals(config.corpus, config.ids, config.match, config.near_duplicates, config.link,
                          config.derived, names)
    pk.say_unmatched("remove", found["match"], pk.empty_id_files([config.ids, config.match.ids_file]), config.strict,
                     _say)
    hits, tables, schemas = found["hits"], found["tables"], found["schemas"]
    rules = rm.removal_rules(config.ids, config.match, config.near_duplicates, config.link,
                             found["match"].get("unmatched", {}))
    lineage, regenerate = rm.derived_lineage(names, config.derived, derived_plans, hits, tables, plan.version)
    stats = _write_version(config, plan, key, tables[""], schemas[""], hits.get("", {}), rules, lineage, regenerate)
    derived_out = []
    for name, d, dp in zip(names, config.derived, derived_plans):
        if dp is not None:
            d_rules = {"lineage_from": str(plan.source), "corpus_version": plan.version, "link": d.link}
            derived_out.append(_write_version(config.model_copy(update={"derived": []}), dp, key, tables[name],
                                              schemas[name], hits.get(name, {}), d_rules, [], {}))
    rows_checked, t_match = found["match"].get("rows_checked", 0), found["seconds_match"]
    stats["throughput"] = {"rows_checked": rows_checked, "seconds_match": round(t_match, 3),
                           "seconds_total": round(found["seconds"], 3), "lineage_levels": found["levels"],
                           "docs_per_s": round(rows_checked / t_match, 1) if t_match else None}
    atomic_write_json(plan.target / "stats.json", stats)
    return {"output": str(plan.target), "stats": stats, "derived": [s["version"] for s in derived_out],
            "lineage": lineage}


def remove_preflight(cfg: RemoveConfig) -> None:
    plan, derived, key = _plans(cfg)
    rm.derived_names(cfg.derived)
    rm.dataset_kinds(plan.source)
    for d in cfg.derived:
        rm.dataset_kinds(Path(d.path))
    for p in [plan, *derived]:  # an unusable target is one line before anything starts
        if p is not None:
            rm.target_state(p.target, key)
    for f in (cfg.ids, cfg.match.ids_file):
        if f and not rm.read_id_list(f) and cfg.strict:
            raise InputError(f"remove: id file {f} holds no ids (strict)")


REMOVE_PIPELINE = Pipeline(
    name="remove",
    description="Remove documents + near-dups from an output as a new version (tombstones, changelog, lineage)",
    config_model=RemoveConfig, flow=remove_flow, preflight=remove_preflight,
)
