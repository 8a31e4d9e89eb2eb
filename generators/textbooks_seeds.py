"""The textbooks generator's seeds: web extracts (truncated on a word boundary) and topics from a YAML / CSV list
(clear errors naming the file and the row), and the one id policy for them."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from corpora.hashing import short_hash


class TopicFileError(ValueError):
    """A topic list that cannot be used; names the file and the row."""


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
