"""`flows run textbooks`: phi / Cosmopedia-style textbook synthesis.

load seeds (web extracts and/or a topic list) -> [educational-value selection: LLM grades a sample, a classifier
scores all] -> prompts (styles x audiences mixture) -> generation stage (cached, resumable) -> post-processing
(boilerplate, length, language, MinHash dedup, decontamination) -> Parquet shards + manifest + report
"""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from corpora.atomic import atomic_write_json
from corpora.config import StrictModel
from corpora.manifest import now_iso, write_manifest
from corpora.plan import WORK_DIR, clear_output
from corpora.publish import publish_kind
from corpora.readers import FieldMap, expand_inputs, read_records
from corpora.records import BadRecord
from corpora.sample import sample_corpus_path
from corpora.shards import write_table_atomic
from flows.config import RunConfig, config_hash
from flows.registry import Pipeline
from flows.reporting import console, publish_artifact, run_logger
from generators.backends import BackendConfig, default_backend_config, get_backend
from generators.backends.base import SamplingParams
from generators.stage import (GenerationReport, ResultStore, RetryPolicy, Shard, ShardStats, load_results,
                              plan_shards, requests_to_table, run_generation, run_shard)
from generators.textbooks import (PostprocessConfig, Seed, TextbookMixture, build_requests, fasttext_language,
                                  TextbookSampling, join_generations, load_topics, postprocess, textbook_schema,
                                  web_seeds)


class GenerationSettings(StrictModel):
    backend: BackendConfig | None = Field(
        None, description="None: vLLM on a GPU machine that has it, else transformers (SmolLM2-135M on CPU)")
    shard_size: int = Field(256, ge=1, description="requests per backend call and per cached Parquet part")
    max_retries: int = Field(2, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    workers: int = Field(1, ge=1, description="worker processes, one engine each")
    device_groups: list[str] | None = Field(None, description='CUDA_VISIBLE_DEVICES per worker, e.g. ["0", "1"]')
    shard_tasks: bool = Field(False, description="one Prefect task per shard, run by the flow's task runner "
                                                 "(e.g. prefect-ray) instead of the stage's own loop/workers")


class EduSelectionConfig(StrictModel):
    enabled: bool = False
    sample_size: int = Field(200, ge=2, description="documents the LLM grades (the classifier's training set)")
    threshold: float = Field(3.0, ge=0, le=5, description="keep web seeds whose predicted score is >= this")
    grader: BackendConfig | None = Field(None, description="the grading LLM; None: the generation backend")
    grader_max_tokens: int = 160
    grader_max_chars: int = 3000
    prefill_score: bool = Field(False, description='start the answer with "Educational score:" (small models)')
    grades_file: str | None = Field(None, description="Parquet/JSONL/CSV of doc_id, score: use these grades "
                                                      "instead of grading with the LLM")
    min_grades: int = Field(10, ge=2, description="fewest parseable grades to train the classifier on")
    alpha: float = 1.0
    seed: int = 0


class TextbooksConfig(RunConfig):
    text_field: str = "text"
    id_field: str = "id"
    topic_field: str | None = "topic"  # a document's topic (metadata field), written into its prompt with p=0.5
    topics: str | None = None  # YAML/CSV topic list: one topic-only seed per topic
    max_seed_chars: int = 1000
    max_seeds: int | None = None  # first N seeds (after selection); None: all
    mixture: TextbookMixture = TextbookMixture()
    sampling: TextbookSampling = TextbookSampling()
    generation: GenerationSettings = GenerationSettings()
    edu: EduSelectionConfig = EduSelectionConfig()
    postprocess: PostprocessConfig = PostprocessConfig()


def backend_config(cfg: TextbooksConfig):
    return cfg.generation.backend or default_backend_config()


def work_dir(out_dir: Path) -> Path:
    return out_dir / WORK_DIR


@task(name="load-seeds", cache_policy=NO_CACHE)
def load_seeds(cfg: TextbooksConfig) -> tuple[list[Seed], dict[str, str], dict]:
    """Seeds, the full text of each web seed (for grading), and counts."""
    log = run_logger()
    inputs = cfg.inputs or ([] if cfg.topics else [str(sample_corpus_path())])
    seeds: list[Seed] = []
    texts: dict[str, str] = {}
    bad = 0
    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    for path in expand_inputs(inputs) if inputs else []:
        records = []
        for rec in read_records(path, fields):
            if isinstance(rec, BadRecord):
                bad += 1
                log.warning("skipping %s %s: %s", rec.file, rec.location, rec.error)
            elif rec.text.strip():
                records.append(rec)
                texts[rec.id] = rec.text
        seeds += web_seeds(records, cfg.max_seed_chars, cfg.topic_field)
    if cfg.topics:
        seeds += load_topics(cfg.topics)
    ids = [s.id for s in seeds]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"seed id {dup!r} appears twice across the inputs: ids must be unique")
    counts = {"web_seeds": sum(s.source == "web" for s in seeds),
              "topic_seeds": sum(s.source == "topic_list" for s in seeds), "unreadable_records": bad}
    log.info("%d web seeds, %d topic seeds, %d unreadable records", counts["web_seeds"], counts["topic_seeds"], bad)
    return seeds, texts, counts


@task(name="select-educational-seeds", cache_policy=NO_CACHE)
def select_educational(seeds: list[Seed], texts: dict[str, str], cfg: TextbooksConfig, out_dir: Path
                       ) -> tuple[list[Seed], dict]:
    """Grade a sample with the LLM, train the classifier on the grades, keep web seeds scoring >= threshold."""
    import random

    from filters.embeddings import load_minilm
    from generators.edu_grader import EduClassifier, grades_from_rows, grading_requests, read_grades

    e = cfg.edu
    web = [s for s in seeds if s.source == "web"]
    if not web:
        return seeds, {"skipped": "no web seeds"}
    report = None
    if e.grades_file:
        grades = read_grades(e.grades_file, {s.id for s in web})
    else:
        sample = sorted(random.Random(e.seed).sample(web, min(e.sample_size, len(web))), key=lambda s: s.id)
        requests = grading_requests([(s.id, texts[s.id]) for s in sample],
                                    SamplingParams(temperature=0.0, max_tokens=e.grader_max_tokens),
                                    e.grader_max_chars, prefill_score=e.prefill_score)
        bcfg = e.grader or backend_config(cfg)
        store = work_dir(out_dir) / "edu" / "generation"
        report = run_generation(requests, bcfg, store, shard_size=cfg.generation.shard_size,
                                policy=RetryPolicy(cfg.generation.max_retries, cfg.generation.backoff_s))
        grades = grades_from_rows(load_results(store, requests, bcfg).to_pylist())
    write_table_atomic(work_dir(out_dir) / "edu" / "grades.parquet", pa.table({
        "doc_id": grades.doc_ids, "score": pa.array(grades.scores, pa.int8()),
        "answer": pa.array(grades.answers, pa.string())}))
    graded_ids, y = grades.labelled()
    if len(y) < e.min_grades or len(set(y.tolist())) < 2:
        example = next((a for a in grades.answers if a), "")
        raise ValueError(
            f"edu selection: the grader gave {len(y)} parseable grade(s) of {len(grades.doc_ids)} "
            f"({grades.unparseable} unparseable, {grades.failed} failed; distinct: {sorted(set(y.tolist()))}); "
            f"need >= {e.min_grades} and two distinct values. Use a stronger grader (edu.grader), "
            f"edu.prefill_score=true, or edu.grades_file. Example answer: {example[-200:]!r}")
    embed = load_minilm()
    clf = EduClassifier.fit(embed([texts[i] for i in graded_ids]), y, alpha=e.alpha, seed=e.seed)
    clf.save(work_dir(out_dir) / "edu" / "classifier.json")
    scores = clf.score(embed([texts[s.id] for s in web]))
    keep = {s.id for s, sc in zip(web, scores) if sc >= e.threshold}
    write_table_atomic(work_dir(out_dir) / "edu" / "scores.parquet", pa.table({
        "doc_id": [s.id for s in web], "edu_score": pa.array(scores, pa.float32()),
        "selected": [s.id in keep for s in web]}))
    stats = {"graded": len(grades.doc_ids), "unparseable": grades.unparseable, "grading_failed": grades.failed,
             "grade_histogram": grades.histogram(), "classifier": clf.report, "scored": len(web),
             "selected": len(keep), "threshold": e.threshold, "grading": report.as_dict() if report else None,
             "grades_file": e.grades_file}
    run_logger().info("edu selection: %d graded (%d unparseable), %d of %d web seeds >= %.1f",
                      stats["graded"], stats["unparseable"], len(keep), len(web), e.threshold)
    return [s for s in seeds if s.source != "web" or s.id in keep], stats


@task(name="build-prompts", cache_policy=NO_CACHE)
def build_prompts(seeds: list[Seed], cfg: TextbooksConfig, out_dir: Path) -> tuple[list, list[dict]]:
    requests, info = build_requests(seeds, cfg.mixture, cfg.sampling)
    write_table_atomic(work_dir(out_dir) / "prompts.parquet", requests_to_table(requests).append_column(
        "style", pa.array([i["style"] for i in info])).append_column(
        "audience", pa.array([i["audience"] for i in info])))
    return requests, info


@task(name="generate-textbooks", cache_policy=NO_CACHE)
def generate(requests: list, cfg: TextbooksConfig, out_dir: Path) -> dict:
    g = cfg.generation
    report = run_generation(requests, backend_config(cfg), work_dir(out_dir) / "generation", shard_size=g.shard_size,
                            policy=RetryPolicy(g.max_retries, g.backoff_s), workers=g.workers,
                            device_groups=g.device_groups)
    console.print(report.table())
    return report.as_dict()


@task(name="plan-shards", cache_policy=NO_CACHE)
def plan_generation_shards(requests: list, cfg: TextbooksConfig, out_dir: Path) -> tuple[list[Shard], int]:
    bcfg = backend_config(cfg)
    shards, _, cached = plan_shards(requests, get_backend(bcfg).identity(), ResultStore(work_dir(out_dir) / "generation"),
                                    cfg.generation.shard_size)
    run_logger().info("%d requests cached, %d shards to generate", cached, len(shards))
    return shards, cached


@task(name="generate-shard", cache_policy=NO_CACHE)
def generate_shard_task(shard: Shard, cfg: TextbooksConfig, out_dir: Path) -> ShardStats:
    g = cfg.generation
    return run_shard(shard, backend_config(cfg), work_dir(out_dir) / "generation", RetryPolicy(g.max_retries, g.backoff_s))


def generate_as_tasks(requests: list, cfg: TextbooksConfig, out_dir: Path) -> dict:
    """One Prefect task per shard, run by the flow's task runner (threads here; `prefect-ray`'s RayTaskRunner on a
    cluster, where each worker process keeps one engine)."""
    import time

    t0 = time.perf_counter()
    shards, cached = plan_generation_shards(requests, cfg, out_dir)
    report = GenerationReport(requests=len(requests), cached=cached)
    for stats in generate_shard_task.map(shards, unmapped(cfg), unmapped(out_dir)).result():
        report.add(stats)
    report.wall_s = time.perf_counter() - t0
    engine = get_backend(backend_config(cfg))
    report.model, report.backend = engine.model, engine.name
    console.print(report.table())
    return report.as_dict()


def model_token_counter(bcfg):
    """Counts tokens with the generating model's tokenizer (to re-measure a completion after its boilerplate
    opening is stripped); None for a remote model, whose tokenizer is not here (the count is then scaled)."""
    if bcfg.kind == "openai":
        return None
    from transformers import AutoTokenizer

    backend = get_backend(bcfg)
    kw = {"gguf_file": backend.gguf_file} if getattr(backend, "gguf_file", None) else {}
    tok = AutoTokenizer.from_pretrained(backend.model_path, **kw)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


@task(name="postprocess-and-publish", cache_policy=NO_CACHE)
def postprocess_and_publish(requests: list, info: list[dict], cfg: TextbooksConfig, out_dir: Path) -> tuple[dict, dict]:
    bcfg = backend_config(cfg)
    results = load_results(work_dir(out_dir) / "generation", requests, bcfg).to_pylist()
    ok, failed = join_generations(results, info)
    pp = cfg.postprocess
    language = fasttext_language() if pp.languages is not None else None
    kept, removed, counts = postprocess(ok, pp, language=language, token_count=model_token_counter(bcfg))
    counts["generation_failed"] = len(failed)
    staging = work_dir(out_dir) / "publish"
    outputs = {}
    for kind, rows, schema in (("data", kept, textbook_schema()),
                               ("rejected", removed + failed, textbook_schema(rejected=True))):
        table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
        staged = staging / f"{kind}.parquet"
        write_table_atomic(staged, table)
        shards = publish_kind(out_dir, kind, [staged], schema, shard_rows=cfg.shard_rows, shard_mb=cfg.shard_mb)
        outputs[kind] = [s.as_dict() for s in shards]
    return outputs, counts


@task(name="write-report", cache_policy=NO_CACHE)
def write_report(cfg: TextbooksConfig, out_dir: Path, seed_counts: dict, edu: dict | None, generation: dict,
                 counts: dict, outputs: dict, started: str) -> dict:
    stats = {"seeds": seed_counts, "edu_selection": edu, "generation": generation, "postprocess": counts}
    atomic_write_json(out_dir / "stats.json", stats)
    write_manifest(out_dir, pipeline="textbooks", config=cfg.model_dump(mode="json"), config_hash=config_hash(cfg),
                   inputs=[{"path": p} for p in cfg.inputs] + ([{"path": cfg.topics}] if cfg.topics else []),
                   outputs=outputs, started=started, status="complete")
    removed = {k: v for k, v in counts.items() if k not in ("in", "out", "boilerplate_stripped")}
    lines = [f"# textbooks: {out_dir}", "",
             f"- seeds: {seed_counts['web_seeds']} web, {seed_counts['topic_seeds']} topics",
             f"- generation: {generation['requests']} requests ({generation['cached']} cached, "
             f"{generation['failed']} failed), {generation['tokens_per_s']} tok/s, {generation['wall_s']:.1f} s",
             f"- kept {counts['out']} of {counts['in']} completions; boilerplate stripped in "
             f"{counts['boilerplate_stripped']}; removed: {removed}"]
    if edu and "selected" in edu:
        lines.insert(3, f"- edu selection: {edu['graded']} graded ({edu['unparseable']} unparseable), "
                        f"{edu['selected']} of {edu['scored']} web seeds >= {edu['threshold']}")
    console.print("\n".join(lines[2:]))
    publish_artifact("textbooks-summary", "\n".join(lines))
    return stats


@flow(name="textbooks", log_prints=True)
def textbooks_flow(config: TextbooksConfig) -> dict:
    started = now_iso()
    out_dir = Path(config.output or "output/textbooks").resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.overwrite:
        clear_output(out_dir)
    seeds, texts, seed_counts = load_seeds(config)
    edu = None
    if config.edu.enabled:
        seeds, edu = select_educational(seeds, texts, config, out_dir)
    if config.max_seeds is not None:
        seeds = seeds[:config.max_seeds]
    if not seeds:
        raise ValueError("no seeds: give --input documents and/or --set topics=<file.yaml|csv>")
    requests, info = build_prompts(seeds, config, out_dir)
    if config.generation.shard_tasks:
        generation = generate_as_tasks(requests, config, out_dir)
    else:
        generation = generate(requests, config, out_dir)
    outputs, counts = postprocess_and_publish(requests, info, config, out_dir)
    stats = write_report(config, out_dir, seed_counts, edu, generation, counts, outputs, started)
    return {"output": str(out_dir), "stats": stats}


def preflight(cfg: TextbooksConfig) -> None:
    if cfg.inputs:
        expand_inputs(cfg.inputs)
    if cfg.topics:
        load_topics(cfg.topics)
    if cfg.postprocess.languages is not None:
        from filters.langid import find_lid_model

        find_lid_model()
    bcfg = backend_config(cfg)
    if getattr(bcfg, "model", None) and bcfg.kind != "openai" and not Path(bcfg.model).expanduser().exists():
        raise FileNotFoundError(f"generation.backend.model: {bcfg.model} does not exist (local paths only)")


PIPELINE = Pipeline(
    name="textbooks",
    description="phi/Cosmopedia textbook synthesis: seeds x styles x audiences -> LLM -> dedup/decontam -> Parquet",
    config_model=TextbooksConfig,
    flow=textbooks_flow,
    preflight=preflight,
)
