"""The bundled sample corpus (`corpora/sample_data/web_sample.jsonl`): a few hundred varied web-like documents,
built deterministically from our own hand-written text so every filter has something to do: clean prose,
boilerplate, spam, near duplicates, exact duplicates, non-English, PII, toxic text, lorem ipsum, code.

Rebuild with `python -m corpora.sample` (tests check the shipped file equals the builder's output).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from corpora import sample_text as T

SAMPLE_PATH = Path(__file__).parent / "sample_data" / "web_sample.jsonl"
BASE_DATE = "2024-0{m}-1{d}T08:00:00Z"


def sample_corpus_path() -> Path:
    return SAMPLE_PATH


def _doc(i: int, kind: str, text: str, rng: random.Random, url: str | None = None) -> dict:
    return {
        "id": f"sample-{i:04d}",
        "text": text,
        "source": "flows-sample",
        "url": url or f"https://www.example-{rng.randint(1, 40)}.org/{kind}/{i}",
        "created": BASE_DATE.format(m=rng.randint(1, 9), d=rng.randint(0, 9)),
        "metadata": {"kind": kind},
    }


def _mutate(text: str, rng: random.Random, rate: float) -> str:
    words = text.split(" ")
    out = []
    for w in words:
        r = rng.random()
        if r < rate / 3:
            continue  # delete
        if r < 2 * rate / 3:
            out.append(rng.choice(["very", "quite", "also", "often", "still"]))  # substitute
            continue
        out.append(w)
        if r < rate:
            out.append(rng.choice(["indeed", "really", "now"]))  # insert
    return " ".join(out)


def build_sample(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    docs: list[dict] = []
    prose = T.PROSE

    def add(kind: str, text: str, url: str | None = None) -> None:
        docs.append(_doc(len(docs), kind, text, rng, url))

    sentences = [[x.strip() + ("" if x.strip().endswith(".") else ".") for x in p.split(". ")] for p in prose]

    def paragraph(a: list[str], b: list[str]) -> str:
        # sentences of two topics, so paragraphs rarely repeat across documents (paragraph dedup has work
        # only where we plant it) while every sentence is real prose
        return " ".join(rng.sample(a, min(len(a), rng.randint(2, 4))) + rng.sample(b, min(len(b), rng.randint(1, 3))))

    clean: list[str] = []
    for _ in range(155):  # clean multi-paragraph documents; no topic twice in one document
        n = rng.randint(2, 5)
        topics = rng.sample(sentences, 2 * n)
        text = "\n\n".join(paragraph(topics[2 * i], topics[2 * i + 1]) for i in range(n))
        clean.append(text)
        add("clean", text)
    for _ in range(30):  # near duplicates of clean documents (0.5-3% of words changed)
        add("near_duplicate", _mutate(rng.choice(clean), rng, rng.uniform(0.005, 0.03)))
    for _ in range(10):  # exact duplicates, same and different URL
        d = rng.choice(docs[:155])
        add("exact_duplicate", d["text"], d["url"] if rng.random() < 0.5 else None)
    for _ in range(25):  # navigation / cookie boilerplate with a little content
        lines = rng.sample(T.BOILERPLATE_LINES, rng.randint(8, 14))
        if rng.random() < 0.5:
            lines.insert(rng.randint(0, len(lines)), rng.choice(prose).split(". ")[0] + ".")
        add("boilerplate", "\n".join(lines))
    for _ in range(25):  # keyword spam and repetition
        phrase = rng.choice(T.SPAM_PHRASES)
        if rng.random() < 0.5:
            text = "\n".join([phrase.capitalize() + "!"] * rng.randint(10, 30))
        else:
            text = (" ".join([phrase] * rng.randint(20, 60))) + "."
        add("spam", text)
    for _ in range(10):  # fluent but repetitive: the same lines over and over (Gopher repetition)
        line = rng.choice(T.SPAM_PHRASES).capitalize() + " with the best service and the lowest prices of the year."
        add("repetitive", "\n".join([line] * rng.randint(6, 12) + [rng.choice(prose)]))
    for _ in range(5):  # a list of short entries (FineWeb's short-line rule)
        items = [f"{w.capitalize()} at {rng.randint(2, 99)} cents each." for w in
                 rng.sample("apples pears plums grapes lemons limes figs dates kiwis melons berries cherries "
                            "peaches olives onions leeks beans peas carrots radishes".split(), 20)]
        add("listy", "Here is the list of the things we need for the market on Saturday morning.\n"
            + "\n".join(items))
    for lang, paras in (("fr", T.FRENCH), ("de", T.GERMAN), ("es", T.SPANISH)):
        for _ in range(8):
            add(f"non_english_{lang}", "\n\n".join(rng.sample(paras, len(paras))))
    for _ in range(25):  # a clean document with contact details (PII to mask)
        name = rng.choice(T.NAMES)
        user = name.lower().replace(" ", ".")
        contact = (f"For questions about this article, write to {user}@example.com or call "
                   f"+1 555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}. The server at "
                   f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)} hosts the archive.")
        topics = rng.sample(sentences, 6)
        add("pii", "\n\n".join([paragraph(topics[2 * i], topics[2 * i + 1]) for i in range(3)] + [contact]))
    for _ in range(5):  # a contact dump: too many PII matches, removed
        lines = [f"Please contact {n} at {n.lower().replace(' ', '_')}@mail.example.net or call the office on "
                 f"(555) {rng.randint(100, 999)}-{rng.randint(1000, 9999)} for questions about the order."
                 for n in T.NAMES]
        add("pii_dump", "This is the staff directory of the sales department and the people in it.\n"
            + "\n".join(lines))
    for _ in range(10):  # toxic rants, long enough to pass the quality rules
        add("toxic", T.TOXIC_RANT + "\n\n" + rng.choice(prose))
    for _ in range(8):  # lorem ipsum placeholder pages
        add("lorem_ipsum", rng.choice(prose) + "\n\nLorem ipsum dolor sit amet, consectetur adipiscing elit. "
            "Sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.")
    for _ in range(8):  # code snippets with curly brackets
        add("code", rng.choice(prose) + "\n\nfunction init() { return window.location.href; }\nvar x = {a: 1};")
    for _ in range(10):  # too short
        add("short", rng.choice(prose).split(". ")[0] + ".")
    return docs


def write_sample(path: Path = SAMPLE_PATH) -> Path:
    from corpora.atomic import atomic_write_text

    lines = [json.dumps(d, ensure_ascii=False, sort_keys=True) for d in build_sample()]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    print(write_sample())
