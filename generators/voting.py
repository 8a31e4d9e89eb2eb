"""Voting / consensus among K outputs for one request (pure functions; the one ROUGE-L is `filters.rouge`).

The candidates are K answers to one prompt: `candidates[0]` is the proposer's (Ensemble-Instruct: the instance
generator's output), `candidates[1:]` the votes in voter order. They are compared after `normalize_answer`
(lowercase, no ASCII punctuation, whitespace collapsed: the reference's normalize_answer); an empty normalised
candidate agrees with nothing.

`consensus` decides, in this order (IBM/ensemble-instruct, ensemble_instruct/ensemble_output.py):
1. `exact_generator`: the proposer's answer equals some vote: keep the proposer's.
2. `exact_votes`: two votes are equal: keep the first of them (`agree_keep="vote"`, ours) or the proposer's
   (`"generator"`, as the reference's line 147 does).
3. `rouge`: the candidate with the highest sum of ROUGE-L F1 against the others (ties: the proposer, then vote
   order), kept when the worst pairwise ROUGE-L is > `tau` and it is not empty.
4. otherwise `no_consensus` (not kept).
"""
from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from filters.rouge import Tokenizer, rouge_l, tokenize

AgreeKeep = Literal["vote", "generator"]
PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lowercase, drop ASCII punctuation, collapse whitespace (the reference's normalize_answer)."""
    return " ".join("".join(ch for ch in s.lower() if ch not in PUNCTUATION).split())


def pairwise_rouge_l(texts: Sequence[str], stem: bool = True, tokenizer: Tokenizer = "rouge_score") -> list[dict]:
    """ROUGE-L F1 of every pair `{a, b, rougeL}` (a < b, in (a, b) order; b scored as the prediction of a)."""
    toks = [tokenize(t, stem, tokenizer) for t in texts]
    return [{"a": i, "b": j, "rougeL": rouge_l(toks[j], toks[i])}
            for i in range(len(texts)) for j in range(i + 1, len(texts))]


def most_central(n: int, pairs: Sequence[dict]) -> int:
    """The candidate whose ROUGE-L with the others sums highest (ties: the lowest index)."""
    sums = [sum(p["rougeL"] for p in pairs if i in (p["a"], p["b"])) for i in range(n)]
    return max(range(n), key=lambda i: (sums[i], -i))


@dataclass
class Consensus:
    kept: bool
    output: str | None
    chosen: int | None  # index into the candidates: 0 = the proposer's output, k = vote k
    decided_by: str  # exact_generator / exact_votes / rouge / no_consensus
    pairwise: list[dict]  # {a, b, rougeL} over all pairs of normalised candidates
    worst: float


def consensus(candidates: Sequence[str], tau: float = 0.01, stem: bool = True,
              tokenizer: Tokenizer = "rouge_score", votes_agree_keep: AgreeKeep = "vote") -> Consensus:
    """The decision over K >= 2 candidates (candidates[0]: the proposer's, then the votes); see the module doc."""
    if len(candidates) < 2:
        raise ValueError(f"consensus needs at least 2 candidates, got {len(candidates)}")
    norm = [normalize_answer(c) for c in candidates]
    pairs = pairwise_rouge_l(norm, stem, tokenizer)
    worst = min(p["rougeL"] for p in pairs)
    if norm[0] and any(norm[0] == n for n in norm[1:]):
        return Consensus(True, candidates[0], 0, "exact_generator", pairs, worst)
    for p in pairs:
        if p["a"] > 0 and norm[p["a"]] and norm[p["a"]] == norm[p["b"]]:
            keep = 0 if votes_agree_keep == "generator" else p["a"]
            return Consensus(True, candidates[keep], keep, "exact_votes", pairs, worst)
    best = most_central(len(norm), pairs)
    if worst > tau and norm[best]:
        return Consensus(True, candidates[best], best, "rouge", pairs, worst)
    return Consensus(False, None, None, "no_consensus", pairs, worst)
