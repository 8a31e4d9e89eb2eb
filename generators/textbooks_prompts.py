"""The textbooks generator's prompts (ours, in the spirit of Cosmopedia's published ones): the styles and audiences,
their task and rule texts, a seed's seeded draw of style / audience / topic (`choose`), the prompt (`render_prompt`)
and the per-style templates (`TEMPLATE_VERSION` is in every request's template id, hence in the cache key)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from generators.task import Template
from generators.textbooks_seeds import Seed

if TYPE_CHECKING:
    from generators.textbooks_config import TextbookMixture

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
