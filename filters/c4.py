"""C4 rules (Raffel et al. 2020), as datatrove's C4QualityFilter: line-level cleaning plus document rules.

Lines are dropped when they do not end in terminal punctuation, have < 3 words, mention javascript, hold a
word over 1000 chars or a cookie/terms-of-use phrase; the document is dropped for "lorem ipsum", a curly
bracket, or < 5 sentences left. The cleaned text replaces the document's text.

Options as datatrove's: `split_paragraph: false` applies the line rules to sentences (spaCy's sentencizer, as
datatrove's `split_into_sentences`) instead of lines, each kept sentence counting as one, joined by spaces;
`paragraph_filter` is datatrove's C4ParagraphFilter (mC4): the text as given needs >= `min_paragraphs` lines of
>= `min_paragraph_len` chars, checked before the line rules. `c4_badwords` is datatrove's C4BadWordsFilter with a
word-list file per language.
"""
from __future__ import annotations

import hashlib
import heapq
import re
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision
from filters.text import count_sentences

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                     "use cookies")

_POLICY_RE = re.compile("|".join(map(re.escape, POLICY_SUBSTRINGS)))  # any of them, in one scan


class C4Config(StrictModel):
    enabled: bool = True
    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int = Field(5, ge=-1)  # -1 disables
    min_words_per_line: int = Field(3, ge=-1)  # -1 disables
    max_word_length: int = Field(1000, ge=-1)  # -1 disables
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    split_paragraph: bool = True  # false: the rules apply to sentences instead of lines (datatrove's option)
    paragraph_filter: bool = False  # datatrove's C4ParagraphFilter
    min_paragraphs: int = Field(3, ge=0)
    min_paragraph_len: int = Field(200, ge=0)


def c4_paragraphs_ok(text: str, min_paragraphs: int = 3, min_paragraph_len: int = 200) -> bool:
    """datatrove's C4ParagraphFilter: at least `min_paragraphs` lines ("\n") of >= `min_paragraph_len` chars."""
    lines = text.split("\n")
    return len(lines) >= min_paragraphs and min(
        heapq.nlargest(min_paragraphs, (len(line) for line in lines))) >= min_paragraph_len


def c4_quality(text: str, cfg: C4Config) -> Decision:
    if cfg.paragraph_filter and not c4_paragraphs_ok(text, cfg.min_paragraphs, cfg.min_paragraph_len):
        return Decision(False, "too_few_paragraphs", {"c4_lines_removed": 0})
    if cfg.split_paragraph:
        units, offsets = text.splitlines(), _line_offsets(text)
    else:
        from filters.sentences import split_sentences

        units, offsets = split_sentences(text), None
    num_sentences = 0
    kept: list[str] = []
    removed: list[tuple[int, int, str]] = []  # (start, end, rule) of removed lines (line mode only)

    def remove(i: int, raw: str, rule: str) -> None:
        # a blank line's removal is counted but has no span worth recording
        removed.append((offsets[i], offsets[i] + len(raw), rule) if offsets is not None and raw.strip()
                       else (-1, -1, rule))

    def decision(keep: bool, reason: str | None, cleaned: str | None = None) -> Decision:
        spans = tuple(r for r in removed if r[0] >= 0) if offsets is not None else None
        return Decision(keep, reason, {"c4_lines_removed": len(removed)}, cleaned, spans=spans)

    for i, raw in enumerate(units):
        line = raw.strip()
        words = line.split()
        if cfg.max_word_length != -1 and len(line) > cfg.max_word_length and any(
                len(w) > cfg.max_word_length for w in words):
            remove(i, raw, "max_word_length")
            continue
        if cfg.remove_citations and "[" in line:
            line = CITATION_RE.sub("", line)
        if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
            remove(i, raw, "no_terminal_punct")
            continue
        if len(words) < cfg.min_words_per_line:
            remove(i, raw, "min_words_per_line")
            continue
        low = line.lower()
        if cfg.filter_lorem_ipsum and "lorem ipsum" in low:
            return decision(False, "lorem_ipsum")
        if cfg.filter_javascript and "javascript" in low:
            remove(i, raw, "javascript")
            continue
        if cfg.filter_curly_bracket and "{" in line:
            return decision(False, "curly_bracket")
        if cfg.filter_policy and _POLICY_RE.search(low):
            remove(i, raw, "policy")
            continue
        # only `num_sentences < min_num_sentences` is used: once there are enough, the rest are not counted
        # (tokenising every kept line was C4's largest cost)
        if cfg.min_num_sentences != -1 and num_sentences < cfg.min_num_sentences:
            num_sentences += count_sentences(line) if cfg.split_paragraph else 1
        kept.append(line)
    if num_sentences < cfg.min_num_sentences:
        return decision(False, "too_few_sentences")
    return decision(True, None, ("\n" if cfg.split_paragraph else " ").join(kept).strip())


def _line_offsets(text: str) -> list[int]:
    """Start offset of each line of `text.splitlines()` (the same line boundaries)."""
    out, pos = [], 0
    for piece in text.splitlines(keepends=True):
        out.append(pos)
        pos += len(piece)
    return out


# --- bad words (datatrove's C4BadWordsFilter) ------------------------------------------------------------------
DATA_DIR = Path(__file__).parent / "data"
SHIPPED_BADWORDS = {"en": DATA_DIR / "c4_badwords_en.txt"}
# datatrove's allowlist: common subwords in languages without spaces; removed from every language's list, as there
BADWORDS_ALLOWLIST = frozenset({"sm", "グロ", "女の子", "性"})


class C4BadWordsConfig(StrictModel):
    enabled: bool = False
    # language -> word-list file (one word or phrase per line, datatrove's/LDNOOBW's format); null: the list we
    # ship (English only: filters/data/c4_badwords_en.txt)
    wordlists: dict[str, str | None] = {"en": None}
    no_space_languages: list[str] = ["ja", "th", "zh"]  # matched anywhere, not only between non-word chars
    default_language: str = "en"  # for documents without a `language` (no langid step before)
    fail_on_missing_language: bool = True  # a document in a language without a list: error (true) or kept
    keep_fraction: float = Field(0.0, ge=0, le=1)  # share of documents with bad words kept anyway (decided by a hash of seed + id)
    seed: int = 0


def wordlist_path(cfg: C4BadWordsConfig, lang: str) -> Path:
    path = cfg.wordlists[lang]
    if path is None:
        if lang not in SHIPPED_BADWORDS:
            raise ValueError(f"filters.c4_badwords.wordlists.{lang}: no list shipped for {lang!r}; give a path")
        return SHIPPED_BADWORDS[lang]
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"filters.c4_badwords.wordlists.{lang}: {p} does not exist")
    return p


@lru_cache(maxsize=64)
def badwords_regex(path: str, no_spaces: bool) -> re.Pattern | None:
    words = {line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()} - {""}
    words -= BADWORDS_ALLOWLIST
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in words)
    return re.compile(alternation if no_spaces else r"(?:\W|^)({})(?:\W|$)".format(alternation))


def _hash_fraction(seed: int, key: str) -> float:
    h = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2 ** 64


def c4_badwords(text: str, cfg: C4BadWordsConfig, language: str | None = None, key: str = "") -> Decision:
    """Remove a document holding a word of its language's list (lower-cased text; whole words except in
    `no_space_languages`). `key` (the document id) decides `keep_fraction` reproducibly."""
    lang = language or cfg.default_language
    if lang not in cfg.wordlists:
        if cfg.fail_on_missing_language:
            raise ValueError(f"filters.c4_badwords: no word list for language {lang!r} (add it to `wordlists` or "
                             "set fail_on_missing_language=false)")
        return Decision(True)
    regex = badwords_regex(str(wordlist_path(cfg, lang)), lang in cfg.no_space_languages)
    if regex is None or regex.search(text.lower()) is None:
        return Decision(True)
    if cfg.keep_fraction > 0.0 and _hash_fraction(cfg.seed, key) < cfg.keep_fraction:
        return Decision(True)
    return Decision(False, "document_removed_with_badwords")
