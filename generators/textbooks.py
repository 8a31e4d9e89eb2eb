"""Textbook-quality synthetic text (phi / Cosmopedia recipe): seeds x styles x audiences -> prompts; completions ->
post-processed rows.

Seeds are web extracts (truncated to `max_chars` on a word boundary) and/or topics from a list. Each seed draws
its style, audience and whether its topic goes into the prompt (p = `topic_probability`) from a random stream
seeded by (mixture seed, seed id): a seed's prompt does not change when other seeds are added or removed.

The prompts are ours, written in the spirit of Cosmopedia's published ones: an imperative task, a few bullets on
what good looks like for the audience, and anti-boilerplate rules (no title, no introduction, no "Once upon a
time"). `TEMPLATE_VERSION` is part of every request's template id, hence of the generation cache key: editing a
template means bumping it, and only then are the completions regenerated.

Post-processing is pure functions over rows (tested without a model): boilerplate openings stripped (the raw
completion kept in `completion_unfiltered`), a minimum token length, a language check, MinHash near-duplicate
clusters and n-gram benchmark decontamination (from `filters.dedup`). A removed row keeps its reason.
"""
from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import yaml
from pydantic import Field, field_validator

from corpora.config import StrictModel
from corpora.hashing import short_hash
from generators.backends.base import GenerationRequest, SamplingParams

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


def template_id(style: str) -> str:
    return f"textbooks/{style}@v{TEMPLATE_VERSION}"


def build_requests(seeds: Sequence[Seed], mixture: TextbookMixture, sampling: SamplingParams
                   ) -> tuple[list[GenerationRequest], list[dict[str, Any]]]:
    """One chat request per seed, and per request its prompt metadata row (request_id, prompt, seed_id,
    seed_source, topic, style, audience)."""
    requests, info = [], []
    for seed in seeds:
        c = choose(seed, mixture)
        prompt = render_prompt(c)
        rid = "tb-" + short_hash(seed.id, c.style, c.audience, str(c.topic_in_prompt), str(TEMPLATE_VERSION),
                                 length=20)
        requests.append(GenerationRequest(id=rid, messages=[{"role": "user", "content": prompt}], sampling=sampling,
                                          template_id=template_id(c.style), parent_ids=[seed.id]))
        info.append({"request_id": rid, "prompt": prompt, "seed_id": seed.id, "seed_source": seed.source,
                     "topic": seed.topic if c.topic_in_prompt else None, "style": c.style,
                     "audience": c.audience})
    return requests, info


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


class PostprocessConfig(StrictModel):
    min_tokens: int = Field(100, ge=0, description="drop completions shorter than this (model tokens)")
    strip_boilerplate: bool = True
    drop_truncated: bool = False  # also drop completions that hit max_tokens (finish_reason == "length")
    languages: list[str] | None = Field(default_factory=lambda: ["en"], description="None: no language check")
    language_threshold: float = 0.65
    dedup: bool = True
    dedup_threshold: float = Field(0.7, ge=0, le=1, description="estimated Jaccard confirming an LSH candidate")
    benchmarks: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="decontamination sets: {name: {path, field}} (JSONL/JSON/CSV/Parquet)")
    decontam_ngram: int = 13
    decontam_threshold: float = 0.5


LanguageFn = Callable[[str], tuple[str | None, float]]


def postprocess(rows: list[dict[str, Any]], cfg: PostprocessConfig, language: LanguageFn | None = None,
                token_count: Callable[[str], int] | None = None) -> tuple[list[dict], list[dict], dict[str, int]]:
    """Split generated rows (needs `id`, `text`, `text_token_length`, `finish_reason`) into (kept, removed,
    counts). Adds `completion_unfiltered`, `language`, `language_score`, `dedup_cluster`, `decontam_hit`; a
    removed row gets `reason`. `token_count` recounts the length after stripping (else the model's count is
    scaled by the characters kept)."""
    counts = {"in": len(rows), "boilerplate_stripped": 0}
    kept: list[dict] = []
    removed: list[dict] = []

    def drop(row: dict, reason: str) -> None:
        removed.append({**row, "reason": reason})
        counts[reason] = counts.get(reason, 0) + 1

    for row in rows:
        raw = row["text"] or ""
        text = strip_boilerplate(raw).strip() if cfg.strip_boilerplate else raw.strip()
        if text != raw.strip():
            counts["boilerplate_stripped"] += 1
            if token_count is not None:
                row["text_token_length"] = token_count(text)
            elif raw:
                row["text_token_length"] = int(round((row["text_token_length"] or 0) * len(text) / len(raw)))
        row.update(text=text, completion_unfiltered=raw, language=None, language_score=None, dedup_cluster=None,
                   decontam_hit=None)
        if (row["text_token_length"] or 0) < cfg.min_tokens or not text:
            drop(row, "too_short")
            continue
        if cfg.drop_truncated and row.get("finish_reason") == "length":
            drop(row, "truncated")
            continue
        if cfg.languages is not None and language is not None:
            lang, score = language(text)
            row.update(language=lang, language_score=score)
            if lang not in cfg.languages or score < cfg.language_threshold:
                drop(row, "language")
                continue
        kept.append(row)

    if cfg.dedup and kept:
        kept = _dedup(kept, cfg, drop)
    if cfg.benchmarks and kept:
        kept = _decontaminate(kept, cfg, drop)
    counts["out"] = len(kept)
    return kept, removed, counts


def _dedup(rows: list[dict], cfg: PostprocessConfig, drop) -> list[dict]:
    from filters.dedup.minhash import MinHashConfig, near_duplicate_clusters

    clusters = near_duplicate_clusters([r["text"] for r in rows], ids=[r["id"] for r in rows],
                                       config=MinHashConfig(verify_threshold=cfg.dedup_threshold))
    out = []
    for i, row in enumerate(rows):
        if clusters.size[i] > 1:
            row["dedup_cluster"] = rows[int(clusters.cluster_min[i])]["id"]
        if clusters.keep[i]:
            out.append(row)
        else:
            drop(row, "near_duplicate")
    return out


def _decontaminate(rows: list[dict], cfg: PostprocessConfig, drop) -> list[dict]:
    from filters.dedup.decontam import BenchmarkIndex, BenchmarkSpec, DecontamConfig, contaminated_by

    specs = {name: BenchmarkSpec(path=str(s["path"]), field=s.get("field", "text") if isinstance(
        s.get("field", "text"), str) else tuple(s["field"])) for name, s in cfg.benchmarks.items()}
    index = BenchmarkIndex.build(specs, DecontamConfig(ngram_size=cfg.decontam_ngram,
                                                       threshold=cfg.decontam_threshold))
    out = []
    for row, hits in zip(rows, index.match([r["text"] for r in rows])):
        row["decontam_hit"] = contaminated_by(hits)
        if hits:
            drop(row, "contaminated")
        else:
            out.append(row)
    return out


def fasttext_language(model_path: str | None = None) -> LanguageFn:
    """Language of a text with fastText lid.176 (local file, see `filters.langid`)."""
    from filters.langid import find_lid_model, load_fasttext, predict_languages

    model = load_fasttext(str(find_lid_model(model_path)))

    def detect(text: str) -> tuple[str | None, float]:
        scores = predict_languages(model, text, k=1)
        if not scores:
            return None, 0.0
        lang, score = max(scores.items(), key=lambda kv: kv[1])
        return lang, round(score, 4)

    return detect


OUTPUT_COLUMNS = ["id", "text", "prompt", "seed_id", "seed_source", "topic", "style", "audience", "model",
                  "backend", "sampling_params", "template_id", "request_id", "finish_reason", "text_token_length",
                  "language", "language_score", "dedup_cluster", "decontam_hit", "completion_unfiltered"]


def join_generations(results: Iterable[dict], prompt_info: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """Stage rows + prompt metadata -> textbook rows (ok) and failed generations (with their error)."""
    info = {p["request_id"]: p for p in prompt_info}
    ok, failed = [], []
    for r in results:
        p = info[r["request_id"]]
        row = {"id": r["id"], "text": r["text"], "prompt": p["prompt"], "seed_id": p["seed_id"],
               "seed_source": p["seed_source"], "topic": p["topic"], "style": p["style"], "audience": p["audience"],
               "model": r["model"], "backend": r["backend"], "sampling_params": r["sampling_params"],
               "template_id": r["template_id"], "request_id": r["request_id"], "finish_reason": r["finish_reason"],
               "text_token_length": r["completion_tokens"]}
        if r["status"] == "ok":
            ok.append(row)
        else:
            failed.append({**row, "reason": "generation_failed", "error": r["error"]})
    return ok, failed



def textbook_schema(rejected: bool = False):
    """The columns of the `textbooks` output (and of its `rejected` rows, which add `reason` and `error`)."""
    import pyarrow as pa

    string = pa.string()
    fields = [pa.field(name, string) for name in OUTPUT_COLUMNS]
    types = {"text_token_length": pa.int32(), "language_score": pa.float32()}
    fields = [pa.field(f.name, types.get(f.name, string), nullable=f.name not in ("id", "request_id")) for f in fields]
    if rejected:
        fields += [pa.field("reason", string, nullable=False), pa.field("error", string)]
    return pa.schema(fields)
