"""C4 rules (Raffel et al. 2020), as datatrove's C4QualityFilter: line-level cleaning plus document rules.

Lines are dropped when they do not end in terminal punctuation, have < 3 words, mention javascript, hold a
word over 1000 chars or a cookie/terms-of-use phrase; the document is dropped for "lorem ipsum", a curly
bracket, or < 5 sentences left. The cleaned text replaces the document's text.
"""
from __future__ import annotations

import re

from corpora.config import StrictModel
from filters.decision import Decision
from filters.text import count_sentences

CITATION_RE = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
END_PUNCTUATION = (".", "?", "!", '"', "'")
POLICY_SUBSTRINGS = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies",
                     "use cookies")


class C4Config(StrictModel):
    enabled: bool = True
    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int = 5  # -1 disables
    min_words_per_line: int = 3  # -1 disables
    max_word_length: int = 1000  # -1 disables
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


def c4_quality(text: str, cfg: C4Config) -> Decision:
    num_sentences = 0
    kept: list[str] = []
    removed_lines = 0
    for line in text.splitlines():
        line = line.strip()
        words = line.split()
        if cfg.max_word_length != -1 and len(line) > cfg.max_word_length and any(
                len(w) > cfg.max_word_length for w in words):
            removed_lines += 1
            continue
        if cfg.remove_citations and "[" in line:
            line = CITATION_RE.sub("", line)
        if cfg.filter_no_terminal_punct and (not line.endswith(END_PUNCTUATION) or line.endswith("...")):
            removed_lines += 1
            continue
        if len(words) < cfg.min_words_per_line:
            removed_lines += 1
            continue
        low = line.lower()
        if cfg.filter_lorem_ipsum and "lorem ipsum" in low:
            return Decision(False, "lorem_ipsum", {"c4_lines_removed": removed_lines})
        if cfg.filter_javascript and "javascript" in low:
            removed_lines += 1
            continue
        if cfg.filter_curly_bracket and "{" in line:
            return Decision(False, "curly_bracket", {"c4_lines_removed": removed_lines})
        if cfg.filter_policy and any(p in low for p in POLICY_SUBSTRINGS):
            removed_lines += 1
            continue
        if cfg.min_num_sentences != -1:
            num_sentences += count_sentences(line)
        kept.append(line)
    scores = {"c4_lines_removed": removed_lines}
    if num_sentences < cfg.min_num_sentences:
        return Decision(False, "too_few_sentences", scores)
    return Decision(True, None, scores, "\n".join(kept).strip())
