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
"""
from __future__ import annotations

import csv
import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pyarrow as pa
import yaml
from pydantic import Field, field_validator

from corpora.config import StrictModel
from corpora.hashing import short_hash
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import Generator, GeneratorConfig, GeneratorResult
from generators.edu_grader import EduSelectionConfig, select_educational
from generators.task import Task, Template, run_task

TEMPLATE_VERSION = 1

STYLES = ("wikihow", "textbook_narrative", "textbook_academic", "blogpost")
AUDIENCES = ("young_children", "middle_school", "college", "professionals")

AUDIENCE_TEXT = {
    "young_children": "young children (ages 5 to 10)",
    "middle_school": "middle school students",
    "college": "college students",
    "professionals": "professionals and researchers in the field",
}

AUDIENCE_RULES = {
    "young_children": ("Use short sentences and everyday words a young child knows. Explain every new idea "
                       "with a familiar example from home, school or play. Avoid jargon and abstract terms."),
    "middle_school": ("Keep the language clear and concrete, introduce any technical term with a plain "
                      "definition, and connect ideas to things a 12-year-old has seen or done."),
    "college": ("Aim for the depth of a university course: precise definitions, reasoning from first "
                "principles, and worked examples or derivations where they help."),
    "professionals": ("Assume expertise: be precise and dense, engage with current practice, trade-offs "
                      "and open questions, and skip the basics a practitioner already knows."),
}

STYLE_TASK = {
    "wikihow": "Write a long, detailed how-to tutorial in the style of a WikiHow article{about}.",
    "textbook_narrative": ("Write a long, engaging section of a textbook that teaches through a narrative: a "
                           "scene or a short story that carries the explanation{about}."),
    "textbook_academic": ("Write a long, rigorous course unit for a textbook{about}. Develop each concept in "
                          "depth before moving on to the next: depth matters more than breadth."),
    "blogpost": "Write a long, thoughtful blog post{about}.",
}

STYLE_RULES = {
    "wikihow": ["Number the steps; give each step a clear instruction followed by a detailed explanation of how "
                "and why.", "Add key tips and warnings inside the steps where they apply."],
    "textbook_narrative": ["Let characters discover the ideas through dialogue and action, not lectures.",
                           "Keep the facts correct: the story serves the explanation."],
    "textbook_academic": ["Rigor: cover each concept thoroughly and correctly.",
                          "Engagement: write in a professional, engaging tone.",
                          "Application: include concrete, practical examples (a proof, a calculation, a dated "
                          "historical fact, a worked problem)."],
    "blogpost": ["Offer a fresh angle with concrete examples and analysis.",
                 "Write in a personal, lively voice that invites the reader to think further."],
}

COMMON_RULES = [
    "Do not write a title or an introduction; start directly with the content.",
    'Do not start with "Once upon a time" or any other stock opening.',
    "Do not mention the extract, this prompt or the audience.",
    "Do not use images or headings.",
]


class TopicFileError(ValueError):
    """A topic list that cannot be used; names the file and the row."""


class TextbookMixture(StrictModel):
    """Style and audience weights (normalised), and the chance a seed's topic is written into its prompt."""

    styles: dict[str, float] = Field(default_factory=lambda: {s: 0.25 for s in STYLES})
    # Cosmopedia v2: 40% middle school, 30% college, 30% other
    audiences: dict[str, float] = Field(default_factory=lambda: {"middle_school": 0.4, "college": 0.3,
                                                                 "young_children": 0.15, "professionals": 0.15})
    topic_probability: float = Field(0.5, ge=0.0, le=1.0)
    seed: int = 0

    @field_validator("styles", "audiences")
    @classmethod
    def _weights(cls, v: dict[str, float], info) -> dict[str, float]:
        known = STYLES if info.field_name == "styles" else AUDIENCES
        unknown = sorted(set(v) - set(known))
        if unknown:
            raise ValueError(f"unknown {info.field_name[:-1]} {unknown} (known: {', '.join(known)})")
        if any(w < 0 for w in v.values()) or sum(v.values()) <= 0:
            raise ValueError(f"{info.field_name} weights must be >= 0 with a positive sum")
        return v


class TextbookSampling(SamplingParams):
    """Cosmopedia's sampling settings as defaults (so overriding one key keeps the others)."""

    temperature: float = Field(0.6, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    top_k: int = 50
    repetition_penalty: float = Field(1.2, gt=0.0)
    max_tokens: int = Field(1024, ge=1)


def textbook_sampling(max_tokens: int = 1024) -> SamplingParams:
    return SamplingParams(**TextbookSampling(max_tokens=max_tokens).model_dump())


# ---- seeds ---------------------------------------------------------------------------------------------------
@dataclass
class Seed:
    id: str
    source: str  # "web" or "topic_list"
    extract: str | None  # web text (truncated); None for a topic-only seed
    topic: str | None


def truncate_extract(text: str, max_chars: int = 1000) -> str:
    """At most `max_chars` characters, cut at the last whitespace when there is one in the second half."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip()


def web_seeds(records: Iterable[Any], max_chars: int = 1000, topic_field: str | None = "topic") -> list[Seed]:
    """Seeds from document records (`corpora.records.Record`: id, text, metadata). A record's topic is
    `metadata[topic_field]` when present."""
    out = []
    for r in records:
        topic = r.metadata.get(topic_field) if topic_field else None
        out.append(Seed(id=r.id, source="web", extract=truncate_extract(r.text, max_chars),
                        topic=str(topic) if topic else None))
    return out


def load_topics(path: str | Path) -> list[Seed]:
    """Topics from YAML (a list of strings, or of {topic: ...} / {id, topic}) or CSV (a `topic` column, optional
    `id`). Ids default to a hash of the topic."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TopicFileError(f"{path}: topic file does not exist")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise TopicFileError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
        if isinstance(data, dict) and "topics" in data:
            data = data["topics"]
        if not isinstance(data, list):
            raise TopicFileError(f"{path}: expected a list of topics (or a mapping with a 'topics' list)")
        rows = [(i, item) for i, item in enumerate(data)]
        where = "item"
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "topic" not in reader.fieldnames:
                raise TopicFileError(f"{path}: CSV needs a 'topic' column (has {reader.fieldnames})")
            rows = [(i + 2, row) for i, row in enumerate(reader)]
        where = "line"
    else:
        raise TopicFileError(f"{path}: topic list must be .yaml, .yml or .csv")
    seeds, seen = [], set()
    for pos, item in rows:
        if isinstance(item, str):
            topic, sid = item, None
        elif isinstance(item, dict) and isinstance(item.get("topic"), str):
            topic, sid = item["topic"], item.get("id")
        else:
            raise TopicFileError(f"{path}: {where} {pos}: expected a topic string or a mapping with 'topic'")
        topic = topic.strip()
        if not topic:
            raise TopicFileError(f"{path}: {where} {pos}: empty topic")
        sid = str(sid) if sid not in (None, "") else "topic-" + short_hash(topic, length=12)
        if sid in seen:
            raise TopicFileError(f"{path}: {where} {pos}: duplicate topic id {sid!r}")
        seen.add(sid)
        seeds.append(Seed(id=sid, source="topic_list", extract=None, topic=topic))
    return seeds


# ---- prompts -------------------------------------------------------------------------------------------------
@dataclass
class PromptChoice:
    seed: Seed
    style: str
    audience: str
    topic_in_prompt: bool


def _draw(weights: dict[str, float], rng: random.Random) -> str:
    names = sorted(k for k, w in weights.items() if w > 0)
    return rng.choices(names, weights=[weights[n] for n in names], k=1)[0]


def choose(seed: Seed, mixture: TextbookMixture) -> PromptChoice:
    rng = random.Random(f"{mixture.seed}:{seed.id}")
    style = _draw(mixture.styles, rng)
    audience = _draw(mixture.audiences, rng)
    with_topic = rng.random() < mixture.topic_probability
    # a topic-only seed has nothing else to write about
    return PromptChoice(seed, style, audience, seed.topic is not None and (with_topic or seed.extract is None))


def render_prompt(choice: PromptChoice) -> str:
    seed, audience = choice.seed, choice.audience
    topic = seed.topic if choice.topic_in_prompt else None
    if seed.extract is not None:
        head = f'Here is an extract from a web page:\n"{seed.extract}"\n\n'
        about = " related to the extract" + (f", within the topic of {topic}" if topic else "")
    else:
        head = ""
        about = f" about {topic}"
    if choice.style == "textbook_narrative" and audience == "young_children":
        task = ("Write a long, lively story for young children that teaches something true" + about +
                ". The characters ask questions and find the answers together.")
    else:
        task = STYLE_TASK[choice.style].format(about=about)
    task += f" The readers are {AUDIENCE_TEXT[audience]}."
    rules = STYLE_RULES[choice.style] + [AUDIENCE_RULES[audience]] + COMMON_RULES
    return head + task + "\n\n" + "\n".join(f"- {r}" for r in rules)


TEMPLATES = {style: Template(f"textbooks/{style}", TEMPLATE_VERSION) for style in STYLES}  # prompts built in code


def template_id(style: str) -> str:
    return TEMPLATES[style].id


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


# ---- post-processing -----------------------------------------------------------------------------------------
_BOILERPLATE = [
    # chatty preambles: "Sure! Here is the course unit:" / "Certainly, here's a blog post about ..."
    re.compile(r"^\s*(sure|certainly|of course|absolutely|okay|ok)\b[^\n]{0,200}?(:|\.|!)\s*\n+", re.I),
    re.compile(r"^\s*here(?:'s| is| are)\b[^\n]{0,200}?:\s*\n+", re.I),
    # a title line: markdown heading, "Title: ...", or a short line in bold
    re.compile(r"^\s*#{1,6}[^\n]*\n+"),
    re.compile(r"^\s*(title|chapter|unit|course unit|section)\s*\d*\s*:[^\n]*\n+", re.I),
    re.compile(r"^\s*\*\*[^\n*]{1,120}\*\*\s*\n+"),
    re.compile(r"^\s*(introduction|overview)\s*:?\s*\n+", re.I),
    # stock openings
    re.compile(r"^\s*once upon a time,?\s*(in [^,.]{1,60},\s*)?", re.I),
    re.compile(r"^\s*in this (unit|chapter|section|lesson|article|blog post|post|tutorial|guide)"
               r"[^.\n]{0,200}\.\s*", re.I),
    re.compile(r"^\s*welcome to [^.\n!]{1,120}[.!]\s*", re.I),
]


def strip_boilerplate(text: str, max_rounds: int = 4) -> str:
    """Remove boilerplate openings (preambles, titles, "Once upon a time", "In this unit we will ...") from the
    start of a completion; the rest is untouched. Repeats a few rounds (a preamble, then a title)."""
    out = text
    for _ in range(max_rounds):
        before = out
        for pattern in _BOILERPLATE:
            out = pattern.sub("", out, count=1)
        if out == before:
            break
    out = out.lstrip()
    if out and out[0].islower() and out != text.lstrip():
        out = out[0].upper() + out[1:]  # "Once upon a time, there was" -> "There was"
    return out


class CleanupConfig(StrictModel):
    min_tokens: int = Field(100, ge=0, description="drop completions shorter than this (model tokens)")
    strip_boilerplate: bool = True
    drop_truncated: bool = False  # also drop completions that hit max_tokens (finish_reason == "length")


def clean(row: dict[str, Any], cfg: CleanupConfig, token_count: Callable[[str], int] | None = None
          ) -> tuple[dict[str, Any], str | None]:
    """(the row with its text cleaned, a reject reason or None). Adds `completion_unfiltered` and
    `text_token_length` (recounted with `token_count` after stripping; else the model's count scaled by the
    characters kept)."""
    raw = row["text"] or ""
    text = strip_boilerplate(raw).strip() if cfg.strip_boilerplate else raw.strip()
    tokens = row.get("completion_tokens") or 0
    if text != raw.strip():
        tokens = token_count(text) if token_count is not None else (
            int(round(tokens * len(text) / len(raw))) if raw else 0)
    row = {**row, "text": text, "completion_unfiltered": raw, "text_token_length": tokens}
    if tokens < cfg.min_tokens or not text:
        return row, "too_short"
    if cfg.drop_truncated and row.get("finish_reason") == "length":
        return row, "truncated"
    return row, None


# ---- the generator -------------------------------------------------------------------------------------------
class TextbooksConfig(GeneratorConfig):
    topic_field: str | None = "topic"  # a document's topic (metadata field), written into its prompt with p=0.5
    topics: str | None = None  # YAML/CSV topic list: one topic-only seed per topic
    max_seed_chars: int = 1000
    mixture: TextbookMixture = TextbookMixture()
    sampling: TextbookSampling = TextbookSampling()
    cleanup: CleanupConfig = CleanupConfig()
    edu: EduSelectionConfig = EduSelectionConfig()


FIELDS = [pa.field(n, pa.string()) for n in ("prompt", "seed_id", "seed_source", "topic", "style", "audience")] + [
    pa.field("text_token_length", pa.int32()), pa.field("completion_unfiltered", pa.string())]


def unique_seed_ids(seeds: list[Seed]) -> tuple[list[Seed], int]:
    """The one id policy (`corpora.staging.unique_id`): a seed (a topic whose id a web seed or an earlier topic
    holds) becomes `<id>#n`, in seed order (web seeds first). Returns (seeds, number renamed)."""
    import dataclasses

    from corpora.staging import unique_id

    taken: set[str] = set()
    out, n = [], 0
    for s in seeds:
        new = unique_id(s.id, taken)
        n += new != s.id
        out.append(s if new == s.id else dataclasses.replace(s, id=new))
    return out, n


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
