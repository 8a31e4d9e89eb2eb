"""The one ROUGE-L of the project: F1 as `rouge_score` computes it (`rouge_l`, `rouge_l_text`), all pairs of a
candidate set at once (`rouge_l_pairs`, the Impossible Distillation pair filter), and a novelty pool that finds "is
any pool item above a threshold" without scoring the whole pool (Ensemble-Instruct).

Options per caller, as each reference calls rouge-score:
- Impossible Distillation (`filters.pairs`): `evaluate.load('rouge').compute(predictions, references,
  use_aggregator=False)` (jaehunjung1/impossible-distillation `pipeline/util.py`, `compute_rouge`), i.e. rouge-score's
  default tokenizer without stemming: `stem=False`.
- Ensemble-Instruct: novelty `use_stemmer=False` (Self-Instruct's scorer), consensus `stem=True` (see
  `generators.ensemble_instruct`).

Tokenizers (`tokenizer`):
- "rouge_score" (reference-compatible): `rouge_score`'s own tokenizer (lowercase, every non-[a-z0-9] character is a
  space, Porter stemming of tokens longer than 3 characters when `stem`, with NLTK's default Porter mode as
  rouge_score uses it): two identical Chinese instructions have no tokens and score 0.
- "unicode": NFKC + casefold, tokens are runs of Unicode letters/digits, and each CJK ideograph / kana is a token of
  its own (those scripts have no spaces); ASCII words are stemmed like rouge_score's when `stem`.

The score: precision = LCS/len(prediction), recall = LCS/len(target), F1 = 2PR/(P+R) (rouge_score's formula, so the
floats are the same); the LCS length is computed bit-parallel (Hyyro 2004) instead of with a full table.

`NoveltyPool` (the Self-Instruct / Ensemble-Instruct novelty check, "reject when ROUGE-L F1 against any pool item >
threshold", checked one candidate at a time, an accepted candidate joining the pool at once): exact scores are
computed only for pool items that can exceed the threshold. Since LCS <= m (the multiset token overlap) <= min(la, lb),
F1 > t needs m > la * t / (2 - t) and m > lb * t / (2 - t). Tokens (as (token, occurrence) pairs) are put in one
global order (rarest first by the pool's document frequencies, rebuilt when the pool doubles); by the
prefix-filtering lemma, a pair that reaches a required overlap shares a token between the candidate's prefix and
the item's indexed prefix; the first shared pair's positions bound the overlap (PPJoin's positional filter).
Survivors are checked against the bounds 2 min(la, lb) / (la + lb) and 2m / (la + lb), then scored exactly: the
accept/reject decision is the brute force's, by construction.
"""
from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Literal

import numpy as np

Tokenizer = Literal["rouge_score", "unicode"]

# ranked last in the prefix order (most frequent English words first); any fixed list is correct, a good one is fast
COMMON_WORDS = ["the", "a", "of", "to", "and", "in", "is", "for", "you", "that", "this", "on", "it", "with", "be",
                "as", "are", "or", "an", "by", "given", "following", "write", "what", "from", "your",
                "can", "sentence", "text", "list", "how", "each", "if", "at", "not", "do", "which",
                "about"]


class _CachedStemmer:
    """NLTK's `PorterStemmer()` in its default mode (NLTK_EXTENSIONS), which is what `rouge_score` builds
    (`rouge_score/tokenizers.py`: `porter.PorterStemmer() if use_stemmer`), with each word's stem memoised: the
    same stems, a dictionary lookup after the first time a word is seen."""

    def __init__(self):
        from nltk.stem import porter

        self._porter = porter.PorterStemmer()
        self._memo: dict[str, str] = {}

    def stem(self, word: str) -> str:
        out = self._memo.get(word)
        if out is None:
            if len(self._memo) >= 1_000_000:  # bounded: a huge vocabulary starts over
                self._memo.clear()
            out = self._memo[word] = self._porter.stem(word)
        return out


@lru_cache(maxsize=1)
def _stemmer() -> _CachedStemmer:
    return _CachedStemmer()


_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_UNICODE_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+")
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def tokenize(text: str, stem: bool = False, tokenizer: Tokenizer = "rouge_score") -> list[str]:
    if tokenizer == "rouge_score":
        if not stem:  # rouge_score's tokenize without a stemmer keeps exactly the [a-z0-9] runs of text.lower()
            return _ASCII_WORD.findall(text.lower())
        from rouge_score import tokenize as rs

        return rs.tokenize(text, _stemmer() if stem else None)
    if tokenizer != "unicode":
        raise ValueError(f"unknown tokenizer {tokenizer!r} (rouge_score, unicode)")
    tokens = _UNICODE_TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    if stem:
        st = _stemmer()
        tokens = [st.stem(t) if len(t) > 3 and _ASCII_WORD.fullmatch(t) else t for t in tokens]
    return tokens


def _match_masks(a: Sequence) -> dict:
    """For each token of `a`, the bit set of its positions."""
    masks: dict = {}
    for i, t in enumerate(a):
        masks[t] = masks.get(t, 0) | (1 << i)
    return masks


def _lcs_from_masks(masks: dict, len_a: int, b: Sequence) -> int:
    full = (1 << len_a) - 1
    v = full
    get = masks.get
    for t in b:
        u = v & get(t, 0)
        v = ((v + u) | (v - u)) & full
    return len_a - v.bit_count()


def lcs_length(a: Sequence, b: Sequence) -> int:
    """Length of the longest common subsequence (bit-parallel over `a`)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    return _lcs_from_masks(_match_masks(a), len(a), b)


def f1_from_lcs(lcs: int, len_prediction: int, len_target: int) -> float:
    if not len_prediction or not len_target:
        return 0.0
    p, r = lcs / len_prediction, lcs / len_target
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_l(prediction: Sequence[str], target: Sequence[str]) -> float:
    """ROUGE-L F1 of two token lists (rouge_score's `rougeL` fmeasure)."""
    return f1_from_lcs(lcs_length(prediction, target), len(prediction), len(target))


def rouge_l_text(prediction: str, target: str, stem: bool = False, tokenizer: Tokenizer = "rouge_score") -> float:
    return rouge_l(tokenize(prediction, stem, tokenizer), tokenize(target, stem, tokenizer))


def rouge_l_pairs(texts: Sequence[str], I: Sequence[int], J: Sequence[int], stem: bool = False,
                  tokenizer: Tokenizer = "rouge_score") -> np.ndarray:
    """ROUGE-L F1 of (target texts[I], prediction texts[J]) for each pair, as rouge_score's
    `RougeScorer(["rougeL"]).score(texts[i], texts[j]).fmeasure`. Each text is tokenised once and its position
    masks built once, whatever the number of pairs it is in."""
    I, J = np.asarray(I, dtype=np.int64), np.asarray(J, dtype=np.int64)
    out = np.zeros(len(I), dtype=np.float64)
    if len(I) == 0:
        return out
    toks = [tokenize(t, stem, tokenizer) for t in texts]
    masks: dict[int, dict] = {}
    for p, (i, j) in enumerate(zip(I.tolist(), J.tolist())):
        li, lj = len(toks[i]), len(toks[j])
        if not li or not lj:
            continue  # rouge_score: 0 when either side has no tokens
        a, b = (i, j) if li >= lj else (j, i)
        m = masks.get(a)
        if m is None:
            m = masks[a] = _match_masks(toks[a])
        out[p] = f1_from_lcs(_lcs_from_masks(m, len(toks[a]), toks[b]), lj, li)
    return out


def min_overlap(length: int, threshold: float) -> int:
    """The smallest token overlap m with which a text of `length` tokens can have F1 > threshold with anything
    (kept on the low side of float error: a longer prefix is always safe)."""
    return math.floor(length * threshold / (2 - threshold) - 1e-9) + 1


class NoveltyPool:
    """Texts against which a candidate is novel when no item scores ROUGE-L F1 > `threshold` with it.

    `method="index"`: the prefix-filtered index (see the module doc); `"brute"`: every item scored (the reference's
    way, for tests and benchmarks). Both give the same decisions. `check` returns (novel, best score among the items
    scored exactly, that item's key, items scored exactly).

    The global token order is rare-first by document frequency in the pool (`common_words` last, as a prior while
    the pool is small). The order is fixed between rebuilds; the index is rebuilt with the pool's current
    frequencies whenever the pool has doubled since the last build (amortised O(1) per added item), and every item
    and every query always use the same order, which is all the prefix lemma needs."""

    def __init__(self, threshold: float = 0.7, stem: bool = False, tokenizer: Tokenizer = "rouge_score",
                 method: Literal["index", "brute"] = "index", common_words: Iterable[str] = COMMON_WORDS):
        if not 0 < threshold < 1:
            raise ValueError("threshold must be in (0, 1)")
        self.threshold, self.stem, self.tokenizer, self.method = threshold, stem, tokenizer, method
        self._common = list(dict.fromkeys(common_words))
        self.keys: list[str] = []
        self.tokens: list[list[str]] = []
        self.counts: list[Counter] = []
        self.df: Counter = Counter()
        self.scored = 0  # exact ROUGE-L computations so far
        self.rebuilds = 0
        self._build_order()

    def __len__(self) -> int:
        return len(self.keys)

    def _build_order(self) -> None:
        big = len(self.keys) + 1
        rank = {t: n for t, n in self.df.items()}
        for i, w in enumerate(reversed(self._common)):  # the prior: listed words after every pool token
            rank[w] = rank.get(w, 0) + big * (i + 1)
        self._rank = rank
        self._built_at = len(self.keys)
        self.postings: dict[tuple[str, int], list[tuple[int, int]]] = {}  # pair -> (item, position in its order)
        for idx, toks in enumerate(self.tokens):
            self._index(idx, toks)

    def _order(self, toks: Sequence[str]) -> list[tuple[str, int]]:
        """(token, occurrence) pairs in the global order: rarest first, ties by the token itself."""
        seen: Counter = Counter()
        pairs = []
        for t in toks:
            pairs.append((t, seen[t]))
            seen[t] += 1
        rank = self._rank
        return sorted(pairs, key=lambda p: (rank.get(p[0], 0), p[0], p[1]))

    def _prefix(self, toks: Sequence[str]) -> list[tuple[str, int]]:
        if not toks:
            return []
        return self._order(toks)[:max(0, len(toks) - min_overlap(len(toks), self.threshold) + 1)]

    def _index(self, idx: int, toks: Sequence[str]) -> None:
        for j, pair in enumerate(self._prefix(toks)):
            self.postings.setdefault(pair, []).append((idx, j))

    def add(self, key: str, text: str | None = None, tokens: list[str] | None = None) -> None:
        toks = tokens if tokens is not None else tokenize(text or "", self.stem, self.tokenizer)
        idx = len(self.keys)
        self.keys.append(key)
        self.tokens.append(toks)
        self.counts.append(Counter(toks))
        self.df.update(set(toks))
        if self.method != "index":
            return
        if len(self.keys) >= max(32, 2 * self._built_at):
            self.rebuilds += 1
            self._build_order()  # indexes every item, this one included
        else:
            self._index(idx, toks)

    def _candidates(self, toks: list[str]) -> Iterable[int]:
        """Items sharing a prefix pair with `toks`, less those the positional bound rules out: at the first shared
        pair (position i in the query's order, j in the item's), no earlier pair is shared (both lists are in the
        same order), so the overlap is at most 1 + min(la - i - 1, lb - j - 1)."""
        if self.method == "brute":
            return range(len(self.keys))
        la, t = len(toks), self.threshold
        seen: set[int] = set()
        found = []
        for i, pair in enumerate(self._prefix(toks)):
            for idx, j in self.postings.get(pair, ()):
                if idx in seen:
                    continue
                seen.add(idx)
                lb = len(self.tokens[idx])
                if 2 * (1 + min(la - i - 1, lb - j - 1)) / (la + lb) > t - 1e-12:
                    found.append(idx)
        return sorted(found)

    def check(self, text: str | None = None, tokens: list[str] | None = None
              ) -> tuple[bool, float | None, str | None, int]:
        toks = tokens if tokens is not None else tokenize(text or "", self.stem, self.tokenizer)
        best, best_key, scored = None, None, 0
        mine = Counter(toks)
        la, t = len(toks), self.threshold
        for i in self._candidates(toks):
            other = self.tokens[i]
            if self.method == "index":
                lb = len(other)
                if 2 * min(la, lb) / (la + lb) <= t - 1e-12:
                    continue  # lengths too far apart: F1 <= 2 min(la, lb) / (la + lb)
                counts = self.counts[i]
                overlap = sum(min(c, counts.get(w, 0)) for w, c in mine.items())
                if 2 * overlap / (la + lb) <= t - 1e-12:
                    continue  # F1 <= 2m / (la + lb): cannot exceed the threshold
            score = rouge_l(toks, other)
            scored += 1
            if best is None or score > best:
                best, best_key = score, self.keys[i]
        self.scored += scored
        return (best is None or best <= self.threshold), best, best_key, scored
