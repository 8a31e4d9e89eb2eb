"""Textbook-quality synthetic text (phi / Cosmopedia recipe): seeds x styles x audiences -> prompts; completions ->
post-processed rows.

Seeds are web extracts (truncated to `max_chars` on a word boundary) and/or topics from a list. Each seed draws
its style, audience and whether its topic goes into the prompt (p = `topic_probability`) from a random stream
seeded by (mixture seed, seed id): a seed's prompt does not change when other seeds are added or removed.

The prompts are ours, written in the spirit of Cosmopedia's published ones: an imperative task, a few bullets on
what good looks like for the audience, and anti-boilerplate rules (no title, no introduction, no "Once upon a
time"). `TEMPLATE_VERSION` is part of every request's template id, hence of the generation cache key: editing a
template means bumping it, and only then are the completions regenerated.

Parsing a completion (`clean`, a pure function): boilerplate openings stripped (the raw completion kept in
`completion_unfiltered`), a minimum token length, optionally no truncated completions. Language ID, near-dedup and
decontamination are the shared document steps (`filters.*`, `dedup.*`, as in `dolma`), run by the flow.

The generator (`GENERATOR`): [educational-value selection of web seeds, round `edu_grade`] -> one request per
seed, round `textbooks` -> rows. `flows/textbooks.py` registers it.

This module holds the round (`textbook_task`) and its wiring (`run`); beside it: the config (`textbooks_config.py`),
the seeds (`textbooks_seeds.py`), the prompts (`textbooks_prompts.py`) and the post-processing
(`textbooks_cleanup.py`); their public names stay importable from here.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import pyarrow as pa

from corpora.hashing import short_hash
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import Generator, GeneratorResult
from generators.edu_grader import select_educational
from generators.task import Task, run_task
from generators.textbooks_cleanup import clean, strip_boilerplate  # noqa: F401
from generators.textbooks_config import (  # noqa: F401
    CleanupConfig, TextbookMixture, TextbooksConfig, TextbookSampling, textbook_sampling)
from generators.textbooks_prompts import (  # noqa: F401
    AUDIENCE_RULES, AUDIENCE_TEXT, AUDIENCES, COMMON_RULES, STYLE_RULES, STYLE_TASK, STYLES, TEMPLATE_VERSION,
    TEMPLATES, PromptChoice, choose, render_prompt, template_id)
from generators.textbooks_seeds import (  # noqa: F401
    Seed, TopicFileError, load_topics, truncate_extract, unique_seed_ids, web_seeds)


def textbook_task(mixture: TextbookMixture, sampling: SamplingParams, cleanup: CleanupConfig | None = None,
                  token_count: Callable[[], Callable[[str], int] | None] | None = None) -> Task:
    """Round `textbooks`: one chat request per seed (its `meta`: prompt, seed_id, seed_source, topic, style,
    audience, which every generated row carries; its template: the style's); each completion is `clean`ed into a
    row or rejected with the reason (`token_count()`: the counter to re-measure cleaned text, asked once)."""
    def request(task: Task, seed: Seed) -> GenerationRequest:
        c = choose(seed, mixture)
        prompt = render_prompt(c)
        rid = "tb-" + short_hash(seed.id, c.style, c.audience, str(c.topic_in_prompt), str(TEMPLATE_VERSION),
                                 length=20)
        meta = {"prompt": prompt, "seed_id": seed.id, "seed_source": seed.source,
                "topic": seed.topic if c.topic_in_prompt else None, "style": c.style, "audience": c.audience}
        return task.ask(rid, user=prompt, template=TEMPLATES[c.style], parent_ids=[seed.id], meta=meta)

    count = functools.cache(token_count or (lambda: None))
    return Task("textbooks", None, sampling, request=request,
                accept=lambda record, _: clean(record, cleanup or CleanupConfig(), count()))


def build_requests(seeds: Sequence[Seed], mixture: TextbookMixture, sampling: SamplingParams
                   ) -> tuple[list[GenerationRequest], list[dict[str, Any]]]:
    """The task's requests, and per request its metadata with its request_id."""
    requests = textbook_task(mixture, sampling).requests(seeds)
    return requests, [{"request_id": r.id, **r.meta} for r in requests]


FIELDS = [pa.field(n, pa.string()) for n in ("prompt", "seed_id", "seed_source", "topic", "style", "audience")] + [
    pa.field("text_token_length", pa.int32()), pa.field("completion_unfiltered", pa.string())]


def run(cfg: TextbooksConfig, records: Sequence[Any], rounds) -> GeneratorResult:
    """Seeds (web records + topics) -> [edu selection] -> one request per seed -> cleaned rows."""
    from generators.backends import token_counter

    seeds = web_seeds(records, cfg.max_seed_chars, cfg.topic_field)
    if cfg.topics:
        seeds += load_topics(cfg.topics)
    seeds, renamed = unique_seed_ids(seeds)
    stats: dict[str, Any] = {"web_seeds": sum(s.source == "web" for s in seeds),
                             "topic_seeds": sum(s.source == "topic_list" for s in seeds)}
    if renamed:
        stats["duplicate_ids_renamed"] = renamed
    artifacts: dict[str, Any] = {}
    if cfg.edu.enabled:
        texts = {s.id: r.text for s, r in zip(seeds, records)}  # web seeds first, one per record
        keep, stats["edu_selection"], artifacts = select_educational(
            [(s.id, texts[s.id]) for s in seeds if s.source == "web"], cfg.edu, rounds)
        seeds = [s for s in seeds if s.source != "web" or s.id in keep]
    if cfg.max_seeds is not None:
        seeds = seeds[:cfg.max_seeds]
    if not seeds:
        raise ValueError("no seeds: give --input documents and/or --set topics=<file.yaml|csv>")
    out = run_task(rounds, textbook_task(cfg.mixture, cfg.sampling, cfg.cleanup, lambda: token_counter(
        cfg.generation.for_round("textbooks").backend_config())), seeds)
    kept, rejected = out.accepted, out.failed + out.rejected
    stats["boilerplate_stripped"] = sum(r["text"] != (r["completion_unfiltered"] or "").strip()
                                        for r in kept + rejected if r.get("completion_unfiltered") is not None)
    stats["cleanup_removed"] = {k: sum(r["reason"] == k for r in rejected) for k in
                                ("generation_failed", "too_short", "truncated")}
    return GeneratorResult(kept, rejected, stats, artifacts=artifacts)


def _sample_inputs(cfg: TextbooksConfig) -> list[str]:
    from corpora.sample import sample_corpus_path

    return [] if cfg.topics else [str(sample_corpus_path())]


def _preflight(cfg: TextbooksConfig) -> None:
    if cfg.topics:
        load_topics(cfg.topics)


GENERATOR = Generator(
    name="textbooks",
    description="phi/Cosmopedia textbook synthesis: seeds x styles x audiences -> LLM -> dedup/decontam -> Parquet",
    config=TextbooksConfig, fields=FIELDS, rounds=("edu_grade", "textbooks"), run=run,
    # the bundled sample: 24 seeds x 256 tokens in two shards (progress, and an estimate after the first): a
    # minute or two with SmolLM2-135M on two CPU cores, instead of 350 x 1,024 tokens (over an hour)
    demo={"max_seeds": 24, "sampling.max_tokens": 256, "generation.shard_size": 12},
    sample_inputs=_sample_inputs, needs_inputs=False, preflight=_preflight,
)
