"""Sentence-pair filters, vectorised over all pairs of one candidate set (pure functions, numpy).

The pairs of n candidates are index arrays `(I, J)` into the candidate list (`pair_indices`: i < j, one
direction, as the Impossible Distillation reference pairs them). Per-candidate work (lengths, number sets, ROUGE
tokens) is done once per candidate, not once per pair; the pair step is array arithmetic.

- `length_ratios`: len(y_new) / len(y_orig) in characters.
- `numbers_ok`: every number of y_new appears in y_orig (the reference's check, which is one-sided in effect:
  both of its tests iterate over y_new's numbers); `two_sided=True` also asks the converse.
- ROUGE-L F1: `filters.rouge.rouge_l_pairs` with rouge-score's default tokenizer (lowercase, runs of [a-z0-9]; no
  stemming, as the reference's `evaluate` call), each candidate tokenised once.
- `components`: connected components (union-find) of an undirected graph, for the NLI-graph dedup.
- `distinct_n`, `self_bleu`: diversity of the kept sentences, for the run's stats.
"""
from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Literal, Protocol, Sequence

import numpy as np
from pydantic import Field

from corpora.config import StrictModel
from filters.rouge import rouge_l_pairs

_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000, "dozen": 12}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(sorted(list(_TENS) + list(_UNITS) + list(_SCALES), key=len, reverse=True))
                          + r")(?:-(" + "|".join(_UNITS) + r"))?\b", re.I)


def pair_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with i < j, in itertools.combinations order."""
    i, j = np.triu_indices(n, k=1)
    return i.astype(np.int64), j.astype(np.int64)


def length_ratios(texts: Sequence[str], I: np.ndarray, J: np.ndarray) -> np.ndarray:
    """len(texts[J]) / len(texts[I]) (y_new / y_orig, characters)."""
    lens = np.array([len(t) for t in texts], dtype=np.float64)
    return lens[J] / np.maximum(lens[I], 1.0)


def numbers_in(text: str) -> frozenset[str]:
    """Numbers of a sentence, normalised: digits without thousands separators ("1,200" -> "1200", "3.50" ->
    "3.5") and number words as digits ("three" -> "3", "twenty-five" -> "25", "million" -> "1000000")."""
    out = set()
    for m in _NUMBER.finditer(text):
        s = m.group(0).rstrip(",").replace(",", "")
        if "." in s:
            s = s.rstrip("0").rstrip(".")
        out.add(s)
    for m in _WORD_NUMBER.finditer(text):
        w, unit = m.group(1).lower(), m.group(2)
        value = _UNITS.get(w, _TENS.get(w, _SCALES.get(w)))
        out.add(str(value + (_UNITS[unit.lower()] if unit else 0)))
    return frozenset(out)


_ARTICLE = re.compile(r"\b[aA]\b(?!\s+(?:hundred|thousand|million|billion|trillion|dozen|half|quarter|third)\b)")


def numbers_numerizer(text: str, nlp=None) -> frozenset[str]:
    """Numbers of a sentence through `numerizer` (the reference's library). With a spaCy pipeline that has an
    entity recogniser (`nlp`, e.g. en_core_web_sm), the reference's own reading: each numeric entity's text and its
    numerized value (`doc._.numerize()`, pipeline/filter.py `numerize` / `filter_number`) as its value only (a y_new entity passes the
    reference when its text or value is among y_orig's texts and values; numerize is deterministic, so equal texts
    have equal values and comparing values is the same test); without one (no spaCy model offline: a blank
    pipeline has no entities, so the reference's check would pass every pair), the whole sentence is numerized
    (`numerize(text)`: "three" -> "3"; the article "a" is kept out, numerize would read it as 1) and its digits
    read by `numbers_in`."""
    from numerizer import numerize

    if nlp is not None and "ner" in nlp.pipe_names:
        from numerizer import spacy_numerize

        try:
            found = spacy_numerize(nlp(text))
        except ValueError:  # the reference's `except ValueError: out = {}`
            return frozenset()
        return frozenset(str(v) for v in found.values())
    try:  # numerize reads every article "a" as 1 ("a mystery" -> "1 mystery"): keep it but before a scale word
        return numbers_in(numerize(_ARTICLE.sub("\x00", text)))
    except (ValueError, IndexError):  # numerizer's regexes can fail on odd input: fall back to our rules
        return numbers_in(text)


def numbers_ok(texts: Sequence[str], I: np.ndarray, J: np.ndarray, two_sided: bool = False,
               extract=numbers_in) -> np.ndarray:
    """For each pair: every number of texts[J] (y_new) is among those of texts[I] (y_orig) [and vice versa].
    `extract`: text -> number set (`numbers_in`, our rules; or `numbers_numerizer`)."""
    sets = [extract(t) for t in texts]
    vocab = {v: k for k, v in enumerate(sorted(set().union(*sets)))} if sets else {}
    if not vocab:
        return np.ones(len(I), dtype=bool)
    M = np.zeros((len(texts), len(vocab)), dtype=bool)
    for row, s in enumerate(sets):
        M[row, [vocab[v] for v in s]] = True
    ok = ~(M[J] & ~M[I]).any(axis=1)
    if two_sided:
        ok &= ~(M[I] & ~M[J]).any(axis=1)
    return ok


def components(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Component label of each of n nodes (the smallest node of its component), undirected edges."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(x) for x in range(n)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the texts (whitespace tokens, lowercased)."""
    grams = [tuple(t[k:k + n]) for t in (x.lower().split() for x in texts) for k in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _bleu(hyp: list[str], refs: list[list[str]], max_n: int = 4) -> float:
    """Sentence BLEU with add-one smoothing of the n-gram precisions (n >= 2), brevity penalty to the closest
    reference length."""
    if not hyp or not refs:
        return 0.0
    logp = 0.0
    for n in range(1, max_n + 1):
        h = Counter(tuple(hyp[k:k + n]) for k in range(len(hyp) - n + 1))
        best: Counter = Counter()
        for ref in refs:
            for g, c in Counter(tuple(ref[k:k + n]) for k in range(len(ref) - n + 1)).items():
                best[g] = max(best[g], c)
        match, total = sum(min(c, best[g]) for g, c in h.items()), max(sum(h.values()), 0)
        if n > 1:
            match, total = match + 1, total + 1
        if match == 0 or total == 0:
            return 0.0
        logp += math.log(match / total) / max_n
    closest = min((len(r) for r in refs), key=lambda L: (abs(L - len(hyp)), L))
    bp = 1.0 if len(hyp) > closest else math.exp(1 - closest / len(hyp))
    return bp * math.exp(logp)


def self_bleu(texts: Sequence[str], max_texts: int = 500, seed: int = 0) -> float | None:
    """Mean BLEU of each text against all the others (lower = more diverse); a seeded sample of `max_texts`."""
    toks = [t.lower().split() for t in texts]
    if len(toks) < 2:
        return None
    if len(toks) > max_texts:
        idx = np.random.default_rng(seed).choice(len(toks), size=max_texts, replace=False)
        toks = [toks[i] for i in sorted(idx)]
    return float(np.mean([_bleu(h, toks[:k] + toks[k + 1:]) for k, h in enumerate(toks)]))


# ---- the filter cascade over one candidate set -----------------------------------------------------------------
# the order of the tests (a pair's `reason` is the first it failed, in this order)
ORDERS = {
    # ours (the default): the vectorised tests first, the critic only on their survivors, the graph dedup last, so
    # each component keeps a pair that passed every test
    "cheap_first": ("length_ratio", "numbers", "rougeL", "nli_fwd", "nli_rev", "nli_graph"),
    # the reference's `filter_bootstrap` (pipeline/filter.py:87-118): length, NLI, reverse NLI, dedup, numbers,
    # ROUGE-L (a component's representative can then fail numbers / ROUGE-L and the component is lost)
    "reference": ("length_ratio", "nli_fwd", "nli_rev", "nli_graph", "numbers", "rougeL"),
}
STEPS = ORDERS["cheap_first"]
SYMMETRIC_REV = "nli_rev = nli_fwd (symmetric critic: the reverse call is skipped)"


class Critic(Protocol):
    model: str

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray: ...

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray: ...


class PairFilterConfig(StrictModel):
    """Thresholds of one mode; None turns a test off (its score is still computed)."""

    min_len_ratio: float | None = Field(0.8, ge=0, le=100, description="len(y_new) / len(y_orig) in characters, "
                                                                       "at least")
    max_len_ratio: float | None = Field(1.5, ge=0, le=100, description="... at most")
    numbers: Literal["new_in_orig", "both", "off"] = Field(
        "new_in_orig", description="every number of y_new is in y_orig (the reference, in effect); both: and back")
    number_parser: Literal["rules", "numerizer"] = Field(
        "rules", description="rules: our digits + number words; numerizer: the reference's library (when "
                             "installed, else an error)")
    max_rougeL: float | None = Field(0.75, ge=0, le=1, description="a diversity ceiling, not a fidelity floor")
    nli_fwd: float | None = Field(0.75, ge=0, le=1, description="critic(y_orig => y_new) at least")
    nli_rev: float | None = Field(0.75, ge=0, le=1, description="critic(y_new => y_orig) at least")
    order: Literal["cheap_first", "reference"] = Field(
        "cheap_first", description="cheap_first: length, numbers, ROUGE-L, NLI, reverse NLI, graph dedup (ours); "
                                   "reference: length, NLI, reverse NLI, graph dedup, numbers, ROUGE-L")


class GraphDedupConfig(StrictModel):
    """Dedup by entailment graph (the reference's `remove_duplicates`): candidates are nodes, an edge joins two
    that entail (the critic's `entails`); one pair is kept per connected component, first over y_orig nodes,
    then over y_new nodes of the survivors."""

    enabled: bool = True
    edge: Literal["either", "mutual"] = Field("either", description="either: a => b or b => a (the reference)")
    keep: Literal["lowest_nli_rev", "highest_nli_fwd", "lowest_rougeL"] = "lowest_nli_rev"  # reference: lowest rev


@dataclass
class PairScores:
    I: np.ndarray  # y_orig candidate index per pair
    J: np.ndarray  # y_new candidate index per pair
    len_ratio: np.ndarray
    numbers_ok: np.ndarray
    rougeL: np.ndarray
    nli_fwd: np.ndarray  # nan where not computed
    nli_rev: np.ndarray
    reason: list[str | None]  # the first test a pair failed (in the config's order); None: passed
    component: list[str | None]
    seconds: dict[str, float] = field(default_factory=dict)
    entered: dict[str, int] = field(default_factory=dict)  # pairs that reached each step
    rev_note: str | None = None  # SYMMETRIC_REV when the reverse scores are the forward ones (no critic call)

    @property
    def passed(self) -> np.ndarray:
        return np.array([r is None for r in self.reason], dtype=bool)


def _graph_components(nodes: np.ndarray, texts: Sequence[str], critic: Critic, edge: str) -> dict[int, int]:
    """{node: component root} for the candidate indices `nodes`, edges by the critic over all ordered pairs."""
    nodes = np.unique(nodes)
    k = len(nodes)
    if k < 2:
        return {int(n): int(n) for n in nodes}
    a, b = np.where(~np.eye(k, dtype=bool))
    e = np.zeros((k, k), dtype=bool)
    e[a, b] = critic.entails([texts[i] for i in nodes[a]], [texts[i] for i in nodes[b]])
    und = (e | e.T) if edge == "either" else (e & e.T)
    labels = components(k, zip(*np.nonzero(np.triu(und, 1))))
    return {int(nodes[x]): int(nodes[labels[x]]) for x in range(k)}


def filter_pairs(texts: Sequence[str], cfg: PairFilterConfig, critic: Critic, graph: GraphDedupConfig,
                 orient_longer_first: bool = False, score_all: bool = False,
                 pairs: tuple[np.ndarray, np.ndarray] | None = None, extract_numbers=None) -> PairScores:
    """Every pair (i < j) of one candidate set through the tests in `cfg.order` (`ORDERS`): length ratio,
    numbers, ROUGE-L ceiling (vectorised, scored on every pair), NLI forward, NLI reverse (batched, scored on the
    pairs still alive when the step runs, or on all with `score_all`), the entailment-graph dedup (over the pairs
    alive when it runs). A critic with `symmetric = True` (MiniLM cosine) is not called for the reverse direction:
    its reverse scores are the forward ones (`rev_note`). `orient_longer_first`: y_orig is the longer of the two
    (summary pairs). `pairs`: the (I, J) index arrays to score instead of every i < j (e.g. one source sentence
    against its samples). `extract_numbers`: text -> number set (default `numbers_in`, or by `cfg.number_parser`)."""
    I, J = pair_indices(len(texts)) if pairs is None else (np.asarray(pairs[0], dtype=np.int64),
                                                            np.asarray(pairs[1], dtype=np.int64))
    if orient_longer_first and len(I):
        lens = np.array([len(t) for t in texts])
        swap = lens[J] > lens[I]
        I, J = np.where(swap, J, I), np.where(swap, I, J)
    if extract_numbers is None:
        extract_numbers = numbers_numerizer if cfg.number_parser == "numerizer" else numbers_in
    P = len(I)
    reason: list[str | None] = [None] * P
    alive = np.ones(P, dtype=bool)
    seconds: dict[str, float] = {}
    entered: dict[str, int] = {}
    symmetric = bool(getattr(critic, "symmetric", False))

    def fail(step: str, ok: np.ndarray) -> None:
        for k in np.nonzero(alive & ~ok)[0]:
            reason[k] = step
        alive[:] = alive & ok

    # the vectorised scores, on every pair (each timed with its step)
    t = time.perf_counter()
    ratio = length_ratios(texts, I, J)
    t, pre = time.perf_counter(), {"length_ratio": time.perf_counter() - t}
    nums = numbers_ok(texts, I, J, two_sided=cfg.numbers == "both", extract=extract_numbers)
    t, pre["numbers"] = time.perf_counter(), time.perf_counter() - t
    rouge = rouge_l_pairs(texts, I, J)
    pre["rougeL"] = time.perf_counter() - t
    fwd, rev = np.full(P, np.nan), np.full(P, np.nan)
    component: list[str | None] = [None] * P

    def run_length():
        ok = np.ones(P, dtype=bool)
        if cfg.min_len_ratio is not None:
            ok &= ratio >= cfg.min_len_ratio
        if cfg.max_len_ratio is not None:
            ok &= ratio <= cfg.max_len_ratio
        fail("length_ratio", ok)

    def run_numbers():
        if cfg.numbers != "off":
            fail("numbers", nums)

    def run_rouge():
        if cfg.max_rougeL is not None:
            fail("rougeL", rouge <= cfg.max_rougeL)

    def run_nli(step: str):
        out, premise, hypo, threshold = ((fwd, I, J, cfg.nli_fwd) if step == "nli_fwd" else
                                         (rev, J, I, cfg.nli_rev))
        idx = np.arange(P) if score_all else np.nonzero(alive)[0]
        if step == "nli_rev" and symmetric:
            todo = idx[np.isnan(fwd[idx])]
            if len(todo):  # only reached where forward was not scored (never with the shipped orders)
                fwd[todo] = critic.entailment([texts[i] for i in I[todo]], [texts[j] for j in J[todo]])
            out[idx] = fwd[idx]
        elif len(idx):
            out[idx] = critic.entailment([texts[i] for i in premise[idx]], [texts[j] for j in hypo[idx]])
        if threshold is not None:
            fail(step, np.nan_to_num(out, nan=-1.0) >= threshold)

    def run_graph():
        if not (graph.enabled and alive.sum() > 1):
            return
        key = {"lowest_nli_rev": rev, "highest_nli_fwd": -fwd, "lowest_rougeL": rouge}[graph.keep]
        for side, nodes_of in (("o", I), ("n", J)):
            live = np.nonzero(alive)[0]
            roots = _graph_components(nodes_of[live], texts, critic, graph.edge)
            best: dict[int, int] = {}
            for k in live:
                root = roots[int(nodes_of[k])]
                component[k] = (component[k] + "." if component[k] else "") + f"{side}{root}"
                if root not in best or np.nan_to_num(key[k], nan=np.inf) < np.nan_to_num(key[best[root]],
                                                                                         nan=np.inf):
                    best[root] = k
            keep = np.zeros(P, dtype=bool)
            keep[list(best.values())] = True
            fail("nli_graph", keep | ~alive)

    steps = {"length_ratio": run_length, "numbers": run_numbers, "rougeL": run_rouge,
             "nli_fwd": lambda: run_nli("nli_fwd"), "nli_rev": lambda: run_nli("nli_rev"), "nli_graph": run_graph}
    for step in ORDERS[cfg.order]:
        t = time.perf_counter()
        entered[step] = int(alive.sum())
        steps[step]()
        seconds[step] = time.perf_counter() - t + pre.get(step, 0.0)
    return PairScores(I, J, ratio, nums, rouge, fwd, rev, reason, component, seconds, entered,
                      SYMMETRIC_REV if symmetric else None)


def agreement(labels: Sequence[int | bool], predicted: Sequence[int | bool]) -> dict[str, float | int | None]:
    """A binary critic against labels: confusion counts, accuracy, precision, recall, F1 and Cohen's kappa
    (None where undefined: no predicted / no actual positives, or chance agreement 1)."""
    y, p = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    if y.shape != p.shape or not len(y):
        raise ValueError(f"agreement: {len(y)} labels vs {len(p)} predictions (need equal, non-zero)")
    tp, fp = int((y & p).sum()), int((~y & p).sum())
    fn, tn = int((y & ~p).sum()), int((~y & ~p).sum())
    n = len(y)
    acc = (tp + tn) / n
    prec = tp / (tp + fp) if tp + fp else None
    rec = tp / (tp + fn) if tp + fn else None
    f1 = 2 * prec * rec / (prec + rec) if prec and rec else (0.0 if prec is not None and rec is not None else None)
    chance = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / (n * n)
    kappa = (acc - chance) / (1 - chance) if chance < 1 else None
    return {"n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn, "accuracy": acc, "precision": prec, "recall": rec,
            "f1": f1, "kappa": kappa}
