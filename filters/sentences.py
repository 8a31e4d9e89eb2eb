"""Sentences of generated text, and the reference's test of a usable sentence (>= 3 characters, one line, ending in
`.`, `?` or `!`).

The splitter: a spaCy pipeline when one is named and installed (the Impossible Distillation reference uses
en_core_web_sm's parser: `spacy.load("en_core_web_sm")`, pipeline/con.py:22 and pipeline/filter.py:37), else spaCy's
rule-based sentencizer on its blank-English tokenizer (no model to load; no spaCy model is installable offline here,
so this is what runs). `splitter(name)` says which one a name gives."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=4)
def _nlp(model: str | None = None):
    import spacy

    if model and spacy.util.is_package(model):
        return spacy.load(model)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def splitter(model: str | None = None) -> str:
    """The splitter `model` gives: the model's name when it is installed, else "sentencizer"."""
    nlp = _nlp(model)
    return model if model and "sentencizer" not in nlp.pipe_names else "sentencizer"


def nlp_for(model: str | None = None):
    """The spaCy pipeline of `model` (the blank sentencizer one when it is not installed)."""
    return _nlp(model)


def split_sentences(text: str, model: str | None = None) -> list[str]:
    """The sentences of `text`, stripped, empty ones dropped."""
    text = text.strip()
    if not text:
        return []
    return [s for s in (span.text.strip() for span in _nlp(model)(text).sents) if s]


def is_full_sentence(text: str, min_chars: int = 3) -> bool:
    return len(text) >= min_chars and "\n" not in text and text[-1:] in (".", "?", "!")


def left_contexts(continuation: str, model: str | None = None) -> list[tuple[int, str, str]]:
    """(index, x_l, y_orig) for every full sentence of a continuation (the prefix already cut): `x_l` is the
    sentences before it joined by a space, `y_orig` the sentence."""
    sents = split_sentences(continuation, model)
    return [(i, " ".join(sents[:i]), s) for i, s in enumerate(sents) if is_full_sentence(s)]


def first_sentence(text: str, model: str | None = None) -> str:
    sents = split_sentences(text, model)
    return sents[0] if sents else ""
