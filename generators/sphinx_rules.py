"""sPhinX: which English samples are translated, and how (pure; the rules are ours, the paper's are not public).

Every source pair gets one rule, recorded on its row:
- `english_only`: mostly code or math (`code_math_share` >= threshold): never translated, stays in English.
- language-bound tasks, detected from the English instruction (first match in `TASKS` order), each with an action
  from config: `skip` (not translated: the task only makes sense in English: rhymes, anagrams, letter / word
  counting) or `wrapper_only` (the instruction is translated, the payload it works on (the input, quoted text)
  and the response stay byte-identical: translate-this, spelling / grammar correction) or `labels` (multiple
  choice: everything translated, the option labels `A)`, `(b)`, `3.` protected, a label-only answer kept).
- `translate`: everything else, instruction and response translated with their protected spans.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from corpora.config import StrictModel
from filters.protected_spans import Span, code_math_share

Action = Literal["skip", "wrapper_only", "labels", "translate"]

# Language names a task can name as its source or target ("into French", "the Spanish word for"): the 50 of the
# language table, English, and others seen in instruction data.
LANGUAGE_NAMES = (
    "English|French|German|Spanish|Italian|Portuguese|Dutch|Russian|Chinese|Mandarin|Cantonese|Japanese|Korean|"
    "Arabic|Hindi|Urdu|Bengali|Bangla|Punjabi|Gujarati|Marathi|Tamil|Telugu|Kannada|Malayalam|Odia|Oriya|Assamese|"
    "Persian|Farsi|Hebrew|Turkish|Greek|Latin|Polish|Czech|Slovak|Slovenian|Croatian|Serbian|Bosnian|Bulgarian|"
    "Romanian|Hungarian|Finnish|Swedish|Norwegian|Danish|Icelandic|Ukrainian|Lithuanian|Latvian|Estonian|Catalan|"
    "Basque|Galician|Irish|Welsh|Afrikaans|Swahili|Zulu|Xhosa|Yoruba|Igbo|Hausa|Amharic|Somali|Malay|Indonesian|"
    "Tagalog|Filipino|Vietnamese|Thai|Khmer|Lao|Burmese|Nepali|Sinhala|Esperanto|Klingon|Pig Latin|Morse code|"
    "(?:another|a different|other|a foreign|foreign|any other) languages?")
_LANG = rf"(?:{LANGUAGE_NAMES})\b"
# the text a task works on: "the sentence", "this paragraph", "the following", a quoted string
_TEXT = (r"(?:the|this|that|these|those|following|given|each|every|its|my|your)\s+(?:\w+\s+){0,2}?"
         r"(?:sentences?|text|phrases?|words?|paragraphs?|passages?|statements?|lines?|quotes?|titles?|names?|"
         r"e-?mails?|letters?|essays?|messages?|paragraph|following|tweets?|excerpts?|sayings?|expressions?|"
         r"idioms?|poems?|lyrics|dialogues?|questions?|answers?)\b")
_QUOTE = r"(?:\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»|'[^'\n]{2,}'(?!\w))"
_ASK = (r"^(?:(?:please|kindly|now|then|also|and|otherwise|if not|else|finally|first|next),?\s+"
        r"|(?:can|could|would|will) you\s+(?:please\s+)?|i (?:want|need) you to\s+)*")
_MAKE = (r"(?:write|compose|create|generate|make|come up with|give|tell|suggest|list|name|find|think of|provide|"
         r"produce|brainstorm|invent|craft|complete|finish|rewrite|turn|convert)")
_IGNORECASE = re.IGNORECASE

# Each task: patterns tried on every sentence of the instruction (sentence-start anchors `^` mean the task verb
# is the sentence's own imperative, "Describe the process of translation" is no translate task).
TASKS: list[tuple[str, list[re.Pattern]]] = [
    ("anagram", [re.compile(p, _IGNORECASE) for p in (
        r"\banagrams?\b", r"\bunscrambl\w*", r"\bscrambled (?:words?|letters?|sentences?)\b",
        r"\bspell\w*\b[^.?!\n]{0,40}\bbackwards?\b", r"\b(?:reverse|backwards?)\b[^.?!\n]{0,20}\bletters\b",
        # a palindrome of words (a palindromic number or DNA sequence is no language-bound task)
        rf"\bpalindrom\w*\b(?=[^.?!\n]*(?:\b(?:words?|phrases?|sentences?|names?)\b|{_QUOTE}))",
        rf"(?:\b(?:words?|phrases?|sentences?|names?)\b|{_QUOTE})[^.?!\n]*\bpalindrom\w*")]),
    ("rhyme", [re.compile(p, _IGNORECASE) for p in (
        r"\brhym\w* (?:with|for)\b", r"\b(?:that|which|to) rhymes?\b", r"\brhyming\b",
        rf"{_ASK}{_MAKE}\b[^.?!\n]*\b(?:rhym\w*|haikus?|limericks?|alliterat\w*|tongue[- ]twisters?|acrostics?|puns?|"
        r"spoonerisms?|homophones?|homonyms?|onomatopoeias?)\b",
        r"\b(?:in|with|using) (?:an? )?(?:alliteration|rhyme|acrostic)\b", r"\bas an? (?:haiku|limerick|acrostic)\b")]),
    ("counting", [re.compile(p, _IGNORECASE) for p in (
        r"\bhow many (?:letters|syllables|vowels|consonants)\b",
        rf"\bhow many (?:characters|words|sentences)\b[^?\n]*\b(?:in|of|does|do|are|has|have)\b[^?\n]*"
        rf"(?:{_TEXT}|{_QUOTE})",
        rf"\bhow many times does\b[^?\n]*(?:\bletter\b|\bword\b|{_QUOTE})",
        r"(?:^|\b(?:and|then)\s+)count (?:the )?(?:number of )?(?:letters|characters|words|syllables|vowels|consonants|"
        r"sentences)\b",
        r"\b(?:word|letter|character|syllable) count of\b", r"\b(?:number of|count the) (?:letters|characters|"
        r"syllables|vowels|consonants) (?:in|of)\b",
        r"\b(?:starts?|begins?|ends?|starting|beginning|ending) with (?:the )?(?:letter|letters|syllable)\b",
        rf"\bletters? {_QUOTE}", r"\bthe letter [A-Za-z]\b(?! (?:grade|size|paper|bomb)s?\b)",
        r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten)[- ](?:letter|syllable) words?\b")]),
    ("translate_this", [re.compile(p, _IGNORECASE) for p in (
        rf"\btranslat\w*\b[^.?!\n]{{0,80}}?\b(?:into|to|from|in)\s+(?:the\s+)?{_LANG}",
        rf"{_ASK}translat\w*\s+(?:{_TEXT}|{_QUOTE}|it\b|this\b|these\b|that\b|the above\b|below\b|:|$)",
        rf"\b{_LANG}\s+(?:translation|equivalent|version|word|words|term|phrase|expression|name|spelling|"
        r"pronunciation|meaning)s?\s+(?:of|for)\b",
        rf"\bhow (?:do|would|can|could|does|did) (?:you|i|we|one|someone|people) (?:say|write|spell|pronounce)\b"
        rf"[^?\n]*\bin {_LANG}",
        rf"\b(?:mean|means|meaning)\b[^.?!\n]{{0,40}}\bin {_LANG}",
        rf"{_ASK}(?:write|respond|reply|answer|rewrite|say|explain|describe|summari[sz]e|tell)\b[^.?!\n]{{0,60}}"
        rf"\b(?:in|into) {_LANG}",
        rf"\b(?:from|of) {_LANG}\s+(?:in)?to\s+{_LANG}")]),
    ("grammar", [re.compile(p, _IGNORECASE) for p in (
        r"\bproofread\w*\b",
        rf"{_ASK}(?:correct|fix|check|edit|improve|identify|find|spot|locate|detect|highlight|rewrite|revise|review|"
        r"clean up|point out|underline|list|mark|remove)\b[^.?!\n]{0,80}?\b(?:grammar|grammatical\w*|spelling|"
        r"misspell\w*|typos?|typographical|punctuation|capitali[sz]ation|tenses?|verb forms?|subject[- ]verb)\b",
        rf"{_ASK}(?:correct|fix|check|edit|improve|identify|find|spot|locate|detect|highlight|point out|underline|list|"
        r"mark|remove)\b[^.?!\n]{0,40}?\b(?:errors?|mistakes?)\b[^.?!\n]{0,30}\b(?:in|of) (?:the|this|these|that|"
        r"following|given|my) (?:\w+ )?(?:sentences?|text|paragraphs?|passages?|phrases?|essays?|letters?|e-?mails?|"
        r"statements?)\b",
        r"^(?:is|are|was|were|does|do)\b[^.?!\n]{0,80}\b(?:grammatical(?:ly)? (?:correct|incorrect|right|"
        r"wrong|sound|accurate)|(?:spelt|spelled) (?:correctly|right|wrong)|(?:grammar|grammatical|spelling|"
        r"punctuation) (?:errors?|mistakes?))\b",
        r"\b(?:if|whether)\b[^.?!\n]{0,60}\b(?:grammatical(?:ly (?:correct|incorrect))?|(?:spelt|spelled) "
        r"(?:correctly|right))\b",
        r"\bhow (?:do|would|should) (?:you|i|we|one) spell\b",
        rf"{_ASK}spell (?:out )?(?:{_TEXT}|{_QUOTE}|\w+\b\s*[.?]?$)",
        r"\b(?:in|with) (?:the )?correct (?:grammar|spelling|punctuation)\b",
        rf"\b(?:part of speech|parts of speech|tense|plural|singular|past tense|past participle|synonyms?|antonyms?)"
        rf"\b[^.?!\n]{{0,40}}(?:{_QUOTE}|\bof (?:the )?(?:word|verb|noun|adjective)s?\b|{_TEXT})")]),
    ("multiple_choice", [re.compile(p, _IGNORECASE) for p in (
        r"\bmultiple[- ]choice\b", r"\bchoose (?:the )?(?:correct|right|best) (?:answer|option)\b", r"\boptions?:")]),
]
TASK_NAMES = tuple(n for n, _ in TASKS)
_OPTION = re.compile(r"^[ \t]*(\(?[A-Ha-h1-8][\).:])[ \t]+\S", re.M)
_LABEL_ANSWER = re.compile(r"^\s*\(?([A-Ha-h1-8])[\).:]?\s*$")
_QUOTED = re.compile(r"\"[^\"\n]+\"|“[^”\n]+”|«[^»\n]+»|'[^'\n]{2,}'(?!\w)")


class RulesConfig(StrictModel):
    code_math_threshold: float = Field(0.5, gt=0, le=1, description="english_only at or above this code/math share")
    response_weight: float = Field(0.6, ge=0, le=1, description="the code share of the response alone counts this much")
    actions: dict[str, Action] = Field(default_factory=lambda: {
        "anagram": "skip", "rhyme": "skip", "counting": "skip", "translate_this": "wrapper_only",
        "grammar": "wrapper_only", "multiple_choice": "labels"},
        description="language-bound task -> skip / wrapper_only / labels / translate")


@dataclass(frozen=True)
class Rule:
    name: str  # english_only / skip / wrapper_only / labels / translate
    task: str | None  # the language-bound task that decided it (None: none)
    code_math_share: float

    @property
    def label(self) -> str:  # what the row's `rule` column says, e.g. "wrapper_only:translate_this"
        return f"{self.name}:{self.task}" if self.task else self.name

    @property
    def translated(self) -> bool:
        return self.name not in ("english_only", "skip")


_SENTENCE = re.compile(r"(?<=[.!?;:])\s+|\n+")


def sentences(instruction: str) -> list[str]:
    """The instruction's sentences (a task verb begins one of them: "Read the text. Then correct its grammar.")."""
    return [s.strip() for s in _SENTENCE.split(instruction or "") if s.strip()]


def language_bound_task(instruction: str, inp: str) -> str | None:
    """The language-bound task the instruction asks for (first in `TASKS` order), None: none. Patterns match the
    task (translate X into/from a language, correct this text's grammar, a rhyme / pun / anagram / letter count
    about the English text itself), not a keyword: "the process of translation in protein synthesis" and "the
    basic grammar rules of Spanish" are no such task."""
    sents = sentences(instruction)
    for name, pats in TASKS:
        if any(p.search(s) for p in pats for s in sents):
            return name
    if len(_OPTION.findall(inp or "")) >= 2:  # an input that lists options: multiple choice
        return "multiple_choice"
    return None


def classify(instruction: str, inp: str, response: str, cfg: RulesConfig) -> Rule:
    # the whole sample, or the code in its response: "write a function" + a code-only answer is a code sample
    # (formulas count in the whole sample only: a bare "3" answering "how many words" is no math sample)
    share = max(code_math_share("\n".join(p for p in (instruction, inp, response) if p)),
                code_math_share(response, formulas=False) * cfg.response_weight)
    if share >= cfg.code_math_threshold:
        return Rule("english_only", None, share)
    task = language_bound_task(instruction, inp)
    if task is None:
        return Rule("translate", None, share)
    action = cfg.actions.get(task, "translate")
    return Rule(action, task if action != "translate" else None, share)


def payload_spans(instruction: str) -> list[Span]:
    """For `wrapper_only` without an input: the quoted text the task works on stays as it is."""
    return [Span(m.start(), m.end(), "payload", m.group(0)) for m in _QUOTED.finditer(instruction)]


def label_spans(text: str) -> list[Span]:
    """Option labels at the start of lines (`A)`, `(b)`, `3.`), or a whole label-only answer."""
    m = _LABEL_ANSWER.match(text)
    if m:
        return [Span(0, len(text), "label", text)]
    return [Span(m.start(1), m.end(1), "label", m.group(1)) for m in _OPTION.finditer(text)]
