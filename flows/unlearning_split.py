"""`flows run unlearning-split` (forget / retain / holdout packages) and `flows run remove` (corpus-level removal
with lineage). Wiring only: the logic is in `filters/forget_split.py`, `filters/forget_match.py`,
`filters/removal.py` and `filters/lineage.py`.

unlearning-split: read corpus (documents or QA) -> match the forget spec, MinHash clusters, units -> assign
splits -> publish forget/ retain/ holdout/ (+ layouts: tofu/, muse/, verbmem/, knowmem/, sets/) -> manifest.
remove: load the version (every kind) -> match + near duplicates -> lineage through the version and the derived
datasets -> publish `<corpus>@vN` (and `<derived>@vN`) with tombstones/ and changelog.json.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import yaml
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from pydantic import Field, field_validator

from corpora.atomic import atomic_write_json, atomic_write_text, read_json
from corpora.config import StrictModel
from corpora.manifest import now_iso, write_manifest
from corpora.readers import FieldMap, InputError, expand_inputs
from corpora.records import QUARANTINE_SCHEMA
from corpora.sample import sample_corpus_path
from corpora.shards import write_table_atomic
from filters import forget_split as fs
from filters import removal as rm
from filters.forget_match import MatchSpec, NearDupConfig, read_id_list, unmatched_summary
from filters.lineage import DEFAULT_LINKS, follow_lineage
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console, run_logger
from flows.scaffold import Run

SAMPLE_SPEC = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "forget_sample.yaml"
WORK = "_work"


# ---- unlearning-split ----------------------------------------------------------------------------------------
class SplitConfig(RunConfig):
    corpus_kind: Literal["auto", "documents", "qa"] = "auto"
    text_field: str = "text"
    id_field: str = "id"
    qa: fs.QAInput = fs.QAInput()
    forget: fs.ForgetSpec = fs.ForgetSpec()
    group_by: str | None = None  # e.g. author: an author's rows never straddle two splits
    near_duplicates: NearDupConfig = NearDupConfig()
    holdout_fraction: float = Field(0.1, ge=0, lt=1)
    retain2_fraction: float = Field(0.5, ge=0, le=1)  # MUSE retain2's share of retain
    seed: int = 0
    sets: fs.SetsConfig = fs.SetsConfig()
    layouts: list[Literal["tofu", "muse", "verbmem", "knowmem"]] | None = None  # null: every one that applies
    verbmem: fs.ProbeConfig = fs.ProbeConfig()
    knowmem: fs.KnowledgeConfig = fs.KnowledgeConfig()
    strict: bool = False  # forget ids / rules that name no row (or an id file with none): an error, not a note


SEMANTICS = {
    "unit": "connected component of 'same MinHash near-duplicate cluster' and 'same group_by value'; every "
            "decision is per unit, so forget/retain/holdout are disjoint by id, cluster and group",
    "forget": "units of rows the forget rules name (ids, url, domain, author, query, regex, qa_file) plus "
              "forget.fraction of the corpus's units (groups when group_by is set, else rows) taken in "
              "forget.order (last/first in corpus order, random by seeded hash)",
    "holdout": "holdout_fraction of the corpus (same counting) from the other units, by sha256(seed, 'holdout', "
               "unit id)",
    "retain": "everything else; retain_part 2 (MUSE retain2) = retain2_fraction of it by sha256(seed, 'retain2', "
              "unit id), retain_part 1 = retain1",
    "sets.nested": "set k = the first sizes[k] of the forget pool in its selection order (each inside the next); "
                   "its retain = corpus - set - holdout; named forgetNN by percent of the corpus when whole",
    "sets.sequential": "step k = the next sizes[k] share of the pool (disjoint); its retain = corpus - steps 1..k "
                       "- holdout",
    "verbmem": "forget text up to its prompt_words-th word (prompt) and the next gt_words words (gt); QA rows: "
               "question / answer",
    "knowmem": "QA rows of each split (a QA corpus), or knowmem.qa_file rows following their linked document",
}


def _split_inputs(cfg: SplitConfig) -> tuple[list[Path], fs.ForgetSpec, bool]:
    """(input files, forget spec, whether this is the bundled demo). A folder with a manifest and a `data/`
    (one of our outputs) means its `data/`."""
    demo = not cfg.inputs
    spec = cfg.forget
    if spec.is_empty():
        if not demo:
            raise InputError("unlearning-split: give a forget spec (forget.ids / ids_file / url / domain / author / "
                             "query / regex / qa_file / fraction)")
        spec = fs.ForgetSpec.model_validate(yaml.safe_load(SAMPLE_SPEC.read_text()))
    raw = []
    for i in cfg.inputs or [str(sample_corpus_path())]:
        p = Path(i).expanduser()
        raw.append(str(p / "data") if p.is_dir() and (p / "manifest.json").is_file() and (p / "data").is_dir()
                   else i)
    return expand_inputs(raw), spec, demo


@task(name="read-corpus", cache_policy=NO_CACHE)
def read_corpus(cfg: SplitConfig, paths: list[Path]) -> fs.Corpus:
    kind = fs.detect_kind(paths, cfg.text_field) if cfg.corpus_kind == "auto" else cfg.corpus_kind
    if kind == "qa":
        return fs.read_qa(paths, cfg.qa)
    return fs.read_documents(paths, FieldMap(text_field=cfg.text_field, id_field=cfg.id_field))


@task(name="assign-splits", cache_policy=NO_CACHE)
def split_corpus(cfg: SplitConfig, corpus: fs.Corpus, spec: fs.ForgetSpec) -> fs.SplitResult:
    return fs.assign_splits(corpus, spec, group_by=cfg.group_by, near_dup=cfg.near_duplicates,
                            holdout_fraction=cfg.holdout_fraction, retain2_fraction=cfg.retain2_fraction,
                            seed=cfg.seed, sets=cfg.sets)


def _publish_table(run: Run, kind: str, table: pa.Table, *, under: str | None = None) -> None:
    stage = run.out_dir / WORK / (f"{under}/{kind}" if under else kind).replace("/", "__")
    path = stage.with_suffix(".parquet")
    write_table_atomic(path, table)
    run.publish(kind, [path], table.schema, under=Path(under) if under else None,
                name=f"{under}/{kind}" if under else kind)


@flow(name="unlearning-split", log_prints=True)
def split_flow(config: SplitConfig) -> dict:
    log = run_logger()
    paths, spec, demo = _split_inputs(config)
    if demo:
        log.info("unlearning-split: no --input: the bundled sample corpus with the bundled spec %s", SAMPLE_SPEC)
    layout_kinds = ("tofu", "muse", "verbmem", "knowmem", "sets")
    run = Run.start("unlearning-split", config, kinds=fs.SPLITS + ("quarantine",) + layout_kinds)
    started = time.monotonic()
    corpus = read_corpus(config, paths)
    res = split_corpus(config, corpus, spec)
    _say_unmatched("unlearning-split", res.stats["match"], _empty_id_files([spec.ids_file]), config.strict)
    table = res.table
    split_col = table.column("split")
    for s in fs.SPLITS:
        _publish_table(run, s, table.filter(pc.equal(split_col, s)))
    run.publish("quarantine", [write_table_atomic(run.out_dir / WORK / "quarantine.parquet",
                                                  pa.Table.from_pylist(corpus.quarantine, schema=QUARANTINE_SCHEMA)
                                                  ).path], QUARANTINE_SCHEMA)
    probes = None
    if config.knowmem.qa_file and corpus.kind != "qa":
        probes = fs.read_qa([Path(config.knowmem.qa_file)], fs.QAInput(id_prefix="probe-")).table
    layouts, skipped = fs.applicable_layouts(corpus.kind, config.layouts, probes is not None)
    layout_stats: dict = {"written": layouts, "skipped": skipped}
    if "tofu" in layouts:
        for s, t in fs.tofu_tables(table).items():
            _publish_table(run, s, t, under="tofu")
    if "muse" in layouts:
        for s, t in fs.muse_tables(table).items():
            _publish_table(run, s, t, under="muse")
    if "verbmem" in layouts:
        t, short = fs.verbmem_table(table, config.verbmem, corpus.kind)
        _publish_table(run, "forget", t, under="verbmem")
        layout_stats["verbmem"] = {"probes": t.num_rows, "too_short": short}
    if "knowmem" in layouts:
        tabs, kstats = fs.knowmem_tables(table, corpus.kind, probes, config.knowmem.link)
        for s, t in tabs.items():
            _publish_table(run, s, t, under="knowmem")
        layout_stats["knowmem"] = {**{s: t.num_rows for s, t in tabs.items()}, **kstats}
    for name, masks in res.sets.items():
        for part in ("forget", "retain"):
            _publish_table(run, part, table.filter(pa.array(masks[part])), under=f"sets/{name}")
    written = {k.split("/")[0] for k in run.outputs} | {f"sets/{k}" for k in res.sets}
    for k in layout_kinds:  # a layout (or forget set) this run did not write must not survive from an earlier run
        if k not in written:
            shutil.rmtree(run.out_dir / k, ignore_errors=True)
    for old_set in (run.out_dir / "sets").glob("*") if (run.out_dir / "sets").is_dir() else []:
        if f"sets/{old_set.name}" not in written:
            shutil.rmtree(old_set, ignore_errors=True)
    seconds = time.monotonic() - started
    rows = {s: run.rows(s) for s in fs.SPLITS}
    inv = {"records_read": corpus.records_read, **{f"rows_{s}": n for s, n in rows.items()},
           "rows_quarantine": run.rows("quarantine"),
           "holds": sum(rows.values()) + run.rows("quarantine") == corpus.records_read}
    stats = {"corpus_kind": corpus.kind, "demo": demo, "duplicate_ids_renamed": corpus.duplicate_ids_renamed, "forget_spec": spec.model_dump(mode="json"),
             "split": res.stats, "layouts": layout_stats, "seconds": round(seconds, 3),
             "rows_per_s": round(corpus.records_read / seconds, 1) if seconds else None}
    line = (f"{corpus.kind}: read {corpus.records_read:,}: forget {rows['forget']:,}, retain {rows['retain']:,}, "
            f"holdout {rows['holdout']:,}, quarantine {inv['rows_quarantine']:,} ({res.stats['units']:,} units); "
            f"layouts {', '.join(layouts) or '-'}"
            + ("; sets " + ", ".join(f"{k} {v['forget']}/{v['retain']}" for k, v in res.stats["sets"].items())
               if res.stats["sets"] else ""))
    cfg_hash = config_hash(config)
    out = run.finish(stats, invariant=inv, inputs=corpus.inputs, summary=line, cfg_hash=cfg_hash,
                     markdown=f"# unlearning-split: {run.out_dir}\n\n{line}\n")
    # the manifest also says how the splits were made (seeds and semantics), for whoever reads the packages
    write_manifest(run.out_dir, pipeline=run.pipeline, config=config.model_dump(mode="json"), config_hash=cfg_hash,
                   inputs=corpus.inputs, outputs=run.outputs, started=run.started, status="complete",
                   extra={"unlearning": {"seed": config.seed, "near_duplicates": config.near_duplicates.model_dump(),
                                         "forget_spec": spec.model_dump(mode="json"), "semantics": SEMANTICS,
                                         "sizes": {"rows": rows, "weights": res.stats["weight_by_split"],
                                                   "sets": res.stats["sets"]}}})
    shutil.rmtree(run.out_dir / WORK, ignore_errors=True)
    return {"output": str(run.out_dir), "stats": out}


def _empty_id_files(files: list[str | None]) -> list[str]:
    return [f for f in files if f and not read_id_list(f)]


def _say_unmatched(pipeline: str, match_stats: dict, empty_files: list[str], strict: bool) -> None:
    """What the rules named nothing with: one console line, or (strict) the run's one-line error."""
    line = unmatched_summary(match_stats, empty_files)
    if line is None:
        return
    if strict:
        raise InputError(f"{pipeline}: {line} (strict: every listed id and rule must name a row)")
    console.print(f"{pipeline}: note: {line} (strict=true makes this an error)", markup=False, highlight=False,
                  soft_wrap=True)


def split_preflight(cfg: SplitConfig) -> None:
    paths, spec, _ = _split_inputs(cfg)
    if spec.ids_file and not read_id_list(spec.ids_file) and cfg.strict:
        raise InputError(f"unlearning-split: id file {spec.ids_file} holds no ids (strict)")
    if spec.qa_file:
        fs.read_qa_keys(spec.qa_file)
    if cfg.knowmem.qa_file and not Path(cfg.knowmem.qa_file).is_file():
        raise InputError(f"knowmem.qa_file: {cfg.knowmem.qa_file} does not exist")
    kind = fs.detect_kind(paths, cfg.text_field) if cfg.corpus_kind == "auto" else cfg.corpus_kind
    fs.applicable_layouts(kind, cfg.layouts, bool(cfg.knowmem.qa_file))


SPLIT_PIPELINE = Pipeline(
    name="unlearning-split",
    description="Forget/retain/holdout packages disjoint by id and near-dup cluster (TOFU, MUSE, verbmem, knowmem)",
    config_model=SplitConfig, flow=split_flow, preflight=split_preflight,
)


# ---- remove --------------------------------------------------------------------------------------------------
class DerivedSpec(StrictModel):
    path: str  # a derived dataset's output folder (e.g. a textbooks run on the corpus)
    action: Literal["remove", "list"] = "remove"  # remove: write <path>@vN; list: list rows for regeneration
    name: str | None = None  # default: the folder's name without its version (qa@v2 -> qa)
    link: list[str] = list(DEFAULT_LINKS)
    output: str | None = None  # the derived dataset's new version; default <path>@v(N+1)


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


def _target(cfg: RemoveConfig) -> str | None:
    return None if cfg.output in (None, CLI_DEFAULT_OUTPUT) else cfg.output


def _derived_names(cfg: RemoveConfig) -> list[str]:
    names = [d.name or rm.version_of(Path(d.path).resolve())[0] for d in cfg.derived]  # qa@v2 -> qa
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"derived: two datasets are named {dup!r}: give each a distinct name")
    return names


def _removal_plans(cfg: RemoveConfig) -> tuple[rm.VersionPlan, list[rm.VersionPlan | None]]:
    if not cfg.corpus:
        raise InputError("remove: give the corpus to remove from: flows run remove --corpus DIR --ids FILE "
                         "(or --set match.url=... / match.domain=... / match.author=... / match.query=...)")
    if cfg.ids is None and cfg.match.is_empty():
        raise InputError("remove: give what to remove: --ids FILE, or --set match.ids / match.url / match.domain / "
                         "match.author / match.query / match.regex")
    corpus = rm.plan_version(Path(cfg.corpus), _target(cfg))
    derived = []
    for d in cfg.derived:
        src = Path(d.path).expanduser().resolve()
        if src == corpus.source:
            raise ValueError(f"derived: {d.path} is the corpus itself")
        derived.append(rm.plan_version(src, d.output) if d.action == "remove" else None)
    return corpus, derived


def _removal_key(cfg: RemoveConfig, plan: rm.VersionPlan) -> str:
    return rm.removal_key(cfg.model_dump(mode="json", exclude={"output", "overwrite"}),
                          [plan.source] + [Path(d.path) for d in cfg.derived])


@task(name="match-and-follow-lineage", cache_policy=NO_CACHE)
def find_removals(cfg: RemoveConfig, names: list[str]) -> dict:
    t0 = time.monotonic()
    tables, schemas = rm.load_dataset(Path(cfg.corpus))
    extra = read_id_list(cfg.ids) if cfg.ids else []
    hits, mstats = rm.match_dataset(tables, cfg.match, cfg.near_duplicates, extra)
    t_match = time.monotonic() - t0
    all_tables, all_schemas, links = {"": tables}, {"": schemas}, {"": cfg.link}
    for name, d in zip(names, cfg.derived):
        all_tables[name], all_schemas[name] = rm.load_dataset(Path(d.path))
        links[name] = d.link
    # earlier removals' tombstones count as removed too: a derived dataset named only now still loses its rows
    prior = tables.get(rm.TOMBSTONES)
    prior_ids = set(prior.column("id").to_pylist()) if prior is not None else set()
    visible = {d: {k: t for k, t in kinds.items() if not rm.is_internal(k)} for d, kinds in all_tables.items()}
    hits, levels = follow_lineage(visible, hits, links, removed_ids=prior_ids)
    return {"tables": all_tables, "schemas": all_schemas, "hits": hits, "match": mstats, "levels": levels,
            "seconds_match": t_match, "seconds": time.monotonic() - t0}


def _write_version(cfg: RemoveConfig, plan: rm.VersionPlan, key: str, tables: dict, schemas: dict, hits: dict,
                   rules: dict, lineage: list[dict], extra_kinds: dict[str, pa.Table]) -> dict:
    """Publish one new version: every kind minus its removed rows, tombstones (earlier + new), changelog."""
    t0 = time.monotonic()
    state = rm.target_state(plan.target, key)
    if state == "retry":
        shutil.rmtree(plan.target)
    run = Run.start("remove", cfg.model_copy(update={"output": str(plan.target), "overwrite": False}),
                    kinds=(), clear=False)
    work = run.out_dir / WORK
    tomb_parts, unchecked, rows_in, rows_out = [], [], 0, 0
    source_files = rm.dataset_kinds(plan.source)
    old_tomb = tables.get(rm.TOMBSTONES)
    if old_tomb is not None and old_tomb.num_rows:
        tomb_parts.append(old_tomb)
    for kind, t in tables.items():
        if kind == rm.TOMBSTONES:
            continue
        under, leaf = (str(Path(kind).parent), Path(kind).name) if "/" in kind else (None, kind)
        if rm.is_internal(kind) or "id" not in t.column_names:
            kept = t
            if not rm.is_internal(kind) and t.num_rows:
                unchecked.append(kind)
        else:
            kept, tomb = rm.split_kind(t, hits.get(kind, {}), kind, plan.version) if hits.get(kind) else (t, None)
            if tomb is not None:
                tomb_parts.append(tomb)
        rows_in += t.num_rows if not rm.is_internal(kind) else 0
        rows_out += kept.num_rows if not rm.is_internal(kind) else 0
        if kept is t:  # nothing removed: the source shards are republished as they are (one write, not two)
            files = source_files[kind]
        else:
            files = [Path(write_table_atomic(work / (kind.replace("/", "__") + ".parquet"), kept).path)]
        run.publish(leaf, files, schemas[kind], under=Path(under) if under else None, name=kind)
    for kind, t in extra_kinds.items():  # regenerate/<dataset>
        path = write_table_atomic(work / (kind.replace("/", "__") + ".parquet"), t).path
        run.publish(Path(kind).name, [Path(path)], t.schema, under=Path(kind).parent, name=kind)
    tomb = pa.concat_tables([p.cast(rm.TOMBSTONE_SCHEMA) for p in tomb_parts]) if tomb_parts else \
        rm.TOMBSTONE_SCHEMA.empty_table()
    path = write_table_atomic(work / "tombstones.parquet", tomb).path
    run.publish(rm.TOMBSTONES, [Path(path)], rm.TOMBSTONE_SCHEMA)
    counts = rm.counts_of({k: v for k, v in hits.items() if k in tables and not rm.is_internal(k)})
    entry = rm.changelog_entry(plan.version, plan.source, rules, counts, lineage, unchecked, now_iso())
    entries = (read_json(plan.source / rm.CHANGELOG) or []) + [entry]
    atomic_write_json(run.out_dir / rm.CHANGELOG, entries)
    atomic_write_text(run.out_dir / "CHANGELOG.md", rm.changelog_markdown(entries))
    origin = rm.origin_manifest(plan.source)
    if origin is not None:
        atomic_write_json(run.out_dir / rm.ORIGIN_MANIFEST, origin)
    removed = counts["rows"]
    inv = {"rows_in": rows_in, "rows_out": rows_out, "rows_removed": removed, "holds": rows_in == rows_out + removed}
    stats = {"removal_key": key, "version": plan.version, "from": str(plan.source), "removed": counts,
             "tombstones": tomb.num_rows, "unchecked_kinds": unchecked,
             "seconds_write": round(time.monotonic() - t0, 3)}
    inputs = [{"path": str(plan.source / "manifest.json"),
               "sha256": rm.text_hash((plan.source / "manifest.json").read_text())
               if (plan.source / "manifest.json").is_file() else None}]
    out = run.finish(stats, invariant=inv, inputs=inputs, cfg_hash=config_hash(cfg),
                     summary=f"{plan.version}: {rows_in:,} rows -> {rows_out:,} ({removed:,} removed: "
                             + ", ".join(f"{k} {v}" for k, v in counts["by_rule"].items()) + ")",
                     markdown="# remove\n\n" + rm.changelog_markdown([entry]))
    shutil.rmtree(work, ignore_errors=True)
    return out


@flow(name="remove", log_prints=True)
def remove_flow(config: RemoveConfig) -> dict:
    plan, derived_plans = _removal_plans(config)
    names = _derived_names(config)
    key = _removal_key(config, plan)
    if rm.target_state(plan.target, key) == "done":
        console.print(f"remove: {plan.target} already holds this removal (same rules, same source): nothing to do")
        return {"output": str(plan.target), "stats": read_json(plan.target / "stats.json")}
    for dp in derived_plans:  # fail before writing anything when a derived target is unusable
        if dp is not None:
            rm.target_state(dp.target, key)
    found = find_removals(config, names)
    _say_unmatched("remove", found["match"], _empty_id_files([config.ids, config.match.ids_file]), config.strict)
    hits, tables, schemas = found["hits"], found["tables"], found["schemas"]
    ids_path = Path(config.ids).expanduser().resolve() if config.ids else None
    rules = {"ids_file": str(ids_path) if ids_path else None,
             "ids_file_sha256": rm.text_hash(ids_path.read_text(encoding="utf-8")) if ids_path else None,
             "match": config.match.model_dump(mode="json", exclude_defaults=True),
             "near_duplicates": config.near_duplicates.model_dump() if config.near_duplicates.enabled else False,
             "link": config.link, "unmatched": found["match"].get("unmatched", {})}
    lineage, regenerate, derived_out = [], {}, []
    for name, d, dp in zip(names, config.derived, derived_plans):
        dh = {k: v for k, v in hits.get(name, {}).items() if v}
        n = sum(len(v) for v in dh.values())
        item = {"dataset": name, "path": str(Path(d.path).resolve()), "action": d.action, "rows": n,
                "by_kind": {k: len(v) for k, v in dh.items()}}
        if d.action == "list":
            rows = [r for k, v in dh.items() for r in rm.regenerate_rows(tables[name][k], v, name, k)]
            regenerate[f"{rm.REGENERATE}/{name}"] = pa.Table.from_pylist(rows, schema=rm.REGENERATE_SCHEMA)
            item["listed_in"] = f"{plan.version}/{rm.REGENERATE}/{name}"
        else:
            item["new_version"] = str(dp.target)
        lineage.append(item)
    stats = _write_version(config, plan, key, tables[""], schemas[""], hits.get("", {}), rules, lineage, regenerate)
    for name, d, dp in zip(names, config.derived, derived_plans):
        if dp is None:
            continue
        d_rules = {"lineage_from": str(plan.source), "corpus_version": plan.version, "link": d.link}
        derived_out.append(_write_version(config.model_copy(update={"derived": []}), dp, key, tables[name],
                                          schemas[name], hits.get(name, {}), d_rules, [], {}))
    rows_checked = found["match"].get("rows_checked", 0)
    stats["throughput"] = {"rows_checked": rows_checked, "seconds_match": round(found["seconds_match"], 3),
                           "seconds_total": round(found["seconds"], 3), "lineage_levels": found["levels"],
                           "docs_per_s": round(rows_checked / found["seconds_match"], 1)
                           if found["seconds_match"] else None}
    atomic_write_json(plan.target / "stats.json", stats)
    return {"output": str(plan.target), "stats": stats, "derived": [s["version"] for s in derived_out],
            "lineage": lineage}


def remove_preflight(cfg: RemoveConfig) -> None:
    plan, derived = _removal_plans(cfg)
    _derived_names(cfg)
    rm.dataset_kinds(plan.source)
    for d in cfg.derived:
        rm.dataset_kinds(Path(d.path))
    key = _removal_key(cfg, plan)
    for p in [plan, *derived]:  # an unusable target is one line before anything starts
        if p is not None:
            rm.target_state(p.target, key)
    for f in (cfg.ids, cfg.match.ids_file):
        if f and not read_id_list(f) and cfg.strict:
            raise InputError(f"remove: id file {f} holds no ids (strict)")


REMOVE_PIPELINE = Pipeline(
    name="remove",
    description="Remove documents + near-dups from an output as a new version (tombstones, changelog, lineage)",
    config_model=RemoveConfig, flow=remove_flow, preflight=remove_preflight,
)
