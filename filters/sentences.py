"""Sentences of generated text: spaCy's rule-based sentencizer on its blank-English tokenizer (no model to load;
the Impossible Distillation reference uses en_core_web_sm's parser, which is not installable offline), and the
reference's test of a usable sentence (>= 3 characters, one line, ending in `.`, `?` or `!`)."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _nlp():
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def split_sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, empty ones dropped."""
    text = text.strip()
    if not text:
        return []
    return [s for s in (span.text.strip() for span in _nlp()(text).sents) if s]


def is_full_sentence(text: str, min_chars: int = 3) -> bool:
    return len(text) >= min_chars and "\n" not in text and text[-1:] in (".", "?", "!")


def left_contexts(continuation: str) -> list[tuple[int, str, str]]:
    """(index, x_l, y_orig) for every full sentence of a continuation (the prefix already cut): `x_l` is the
    sentences before it joined by a space, `y_orig` the sentence."""
    sents = split_sentences(continuation)
    return [(i, " ".join(sents[:i]), s) for i, s in enumerate(sents) if is_full_sentence(s)]


def first_sentence(text: str) -> str:
    sents = split_sentences(text)
    return sents[0] if sents else ""
