"""Combine dating evidence into one answer per work: year, an 80% range, the slice, a confidence, the deciding
evidence and flags (collection, translation, multi-author, revised edition, ...).

The model is a small Bayesian one on a grid of years, written so that no single wrong extractor can decide alone:
  prior      when in the author's life works appear (filters/dating/publication_age.py: the age at the work
             given the lifespan, fitted on weak LLM labels of 1,461 non-benchmark authors by
             bench/fit_publication_age.py; its tails hold late works, posthumous first editions and label
             noise), times the corpus coverage (a public-domain corpus holds few works after the 1920s;
             `prior_coverage=False` drops it), with a 1% flat floor so that no year is ever excluded
  evidence   each piece says P(what the extractor saw | true year y) as a mixture: with probability
             `confidence` the extractor read what it claims (a point +-kernel, an upper bound with a decay back to
             earlier years, a lower bound with a gap distribution, a range), otherwise it is noise spread evenly
             over the grid; the style classifier contributes its calibrated slice probabilities.
The year is the posterior median, the range its 10%..90% quantiles, `confidence` the posterior probability of
the chosen slice, `date_source` the evidence whose removal would move the year most.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from filters.dating.authors import AuthorMatch, lifetime_window
from filters.dating.evidence import Evidence
from filters.dating.periods import DEFAULT_SLICES, Slice, slice_of
from filters.dating.publication_age import publication_year_density

GRID_START, GRID_END = 1450, 2030
PRIOR_FLOOR = 0.01  # share of the author prior spread evenly over the grid: a wrong author match cannot veto
STYLE_FLOOR = 0.1  # mix the classifier with a uniform answer: it is trained on one corpus' notion of style

# order used to name the deciding evidence when several agree
SOURCE_PRIORITY = ("metadata_year", "first_published", "copyright", "published_line", "preface_date",
                   "title_page_year", "title_years", "contents_years", "title_year", "serial_publication",
                   "copyright_earliest", "later_edition", "later_edition_preface", "listed_by_other_work",
                   "dated_letters", "latest_mention",
                   "title_subject_year", "llm", "style", "author_prior")

# kernel of a point's error: P(true - stated = k)
_EXACT_KERNEL = {0: 0.8, -1: 0.08, 1: 0.08, -2: 0.02, 2: 0.02}
# a preface/dedication is signed shortly before publication: the book follows in the same or next year
_PREFACE_KERNEL = {0: 0.55, 1: 0.3, 2: 0.07, -1: 0.05, 3: 0.03}
_POINT_KERNELS = {"preface_date": _PREFACE_KERNEL}


@dataclass
class DatingResult:
    year: int | None
    year_low: int | None
    year_high: int | None
    slice: str | None
    confidence: float | None
    date_source: str | None
    evidence: list[dict[str, Any]]
    flags: list[str]
    reason: str | None = None  # why there is no date, when year is None
    summary: dict[str, Any] = field(default_factory=dict)

    def evidence_json(self) -> str:
        return json.dumps({"evidence": self.evidence, "summary": self.summary}, ensure_ascii=False, sort_keys=True)


def year_grid(start: int = GRID_START, end: int = GRID_END) -> np.ndarray:
    return np.arange(start, end + 1)


# ------------------------------------------------------------------------------------------- likelihoods
def _noise(grid: np.ndarray) -> np.ndarray:
    """A wrong extractor says nothing about the year: its reading is spread evenly over the grid."""
    return np.full(len(grid), 1.0 / len(grid))


def _kernel_vector(grid: np.ndarray, center: int, kernel: dict[int, float]) -> np.ndarray:
    v = np.zeros(len(grid))
    for k, p in kernel.items():
        i = center + k - grid[0]
        if 0 <= i < len(grid):
            v[i] = p
    return v


def _upper_profile(grid: np.ndarray, high: int, exact_share: float, tau: float) -> np.ndarray:
    """P(edition year = high | first edition = y): the edition is the first (share `exact_share`) or a reprint
    `high - y` years later, reprints decaying with scale tau."""
    k = high - grid
    v = np.where(k >= 0, (1 - exact_share) * np.exp(-k / tau) / tau, 0.0)
    v = v + np.where(k == 0, exact_share, 0.0)
    return v


def _lower_profile(grid: np.ndarray, low: int) -> np.ndarray:
    """P(latest dated thing = low | written in y): usually just before, sometimes long before (a history)."""
    k = grid - low
    near = np.exp(-np.clip(k, 0, None) / 6.0) / 6.0
    far = np.full(len(grid), 1.0 / 100)
    return np.where((k >= 0) & (k <= 150), 0.5 * near + 0.5 * far, 0.0)


def evidence_likelihood(ev: Evidence, grid: np.ndarray, slices: tuple[Slice, ...] = DEFAULT_SLICES) -> np.ndarray:
    """P(this evidence | true year) over the grid (up to a constant)."""
    c = ev.confidence
    if ev.role == "point" and ev.year is not None:
        signal = _kernel_vector(grid, ev.year, _POINT_KERNELS.get(ev.kind, _EXACT_KERNEL))
    elif ev.role == "range" and ev.low is not None and ev.high is not None:
        lo, hi = min(ev.low, ev.high), max(ev.low, ev.high)
        signal = np.where((grid >= lo) & (grid <= hi), 1.0 / (hi - lo + 1), 0.0)
    elif ev.role == "upper" and ev.high is not None:
        if ev.detail.get("existed_by"):
            # only "the work existed by `high`" (another work lists it): no year before it is favoured
            signal = np.where(grid <= ev.high, 1.0 / max(1, ev.high - int(grid[0]) + 1), 0.0)
        elif ev.detail.get("likely_exact"):
            signal = _upper_profile(grid, ev.high, exact_share=0.6, tau=10.0)
        else:
            # a later edition: most follow the first within a few years, modern reprints decades later
            signal = (0.5 * _upper_profile(grid, ev.high, exact_share=0.0, tau=5.0)
                      + 0.5 * _upper_profile(grid, ev.high, exact_share=0.0, tau=40.0))
    elif ev.role == "lower" and ev.low is not None:
        signal = _lower_profile(grid, ev.low)
    elif ev.role == "dist" and ev.detail.get("slice_probs"):
        return style_likelihood(ev.detail["slice_probs"], grid, slices)
    else:
        return np.ones(len(grid))
    return c * signal + (1 - c) * _noise(grid)


def style_likelihood(slice_probs: dict[str, float], grid: np.ndarray,
                     slices: tuple[Slice, ...] = DEFAULT_SLICES) -> np.ndarray:
    """The classifier's slice probabilities as a function of the year (balanced training: posterior ~
    likelihood). Style changes gradually, so the value is interpolated between slice midpoints instead of
    jumping at slice borders; beyond the outer midpoints it fades over ~30 years."""
    ordered = sorted(slices)
    probs = np.array([slice_probs.get(s.name, 0.0) for s in ordered])
    if probs.sum() <= 0:
        return np.ones(len(grid))
    probs = (1 - STYLE_FLOOR) * probs / probs.sum() + STYLE_FLOOR / len(ordered)
    mids = np.array([s.midpoint for s in ordered])
    out = np.interp(grid, mids, probs)
    out = np.where(grid < mids[0], probs[0] * np.exp(-(mids[0] - grid) / 30.0), out)
    return np.where(grid > mids[-1], probs[-1] * np.exp(-(grid - mids[-1]) / 30.0), out)


def author_prior(grid: np.ndarray, birth: int | None, death: int | None, coverage: bool = True) -> np.ndarray:
    """Prior over the work's year from the author's life (the fitted age-at-publication model); flat when the
    author is unknown."""
    dens = publication_year_density(grid, birth, death, use_coverage=coverage)
    if dens is None or dens.sum() <= 0:
        return np.ones(len(grid))
    return (1 - PRIOR_FLOOR) * dens / dens.sum() + PRIOR_FLOOR / len(grid)


# ------------------------------------------------------------------------------------------- the posterior
def _posterior(grid, prior, likelihoods) -> np.ndarray:
    logp = np.log(prior)
    for lk in likelihoods:
        logp = logp + np.log(lk + 1e-300)
    logp -= logp.max()
    p = np.exp(logp)
    return p / p.sum()


def _quantile(grid: np.ndarray, post: np.ndarray, q: float) -> int:
    return int(grid[min(np.searchsorted(np.cumsum(post), q), len(grid) - 1)])


def _slice_mass(grid: np.ndarray, post: np.ndarray, sl: Slice | None, slices) -> float:
    if sl is None:
        return 0.0
    mask = np.array([slice_of(int(y), slices) == sl for y in grid])
    return float(post[mask].sum())


def combine_evidence(evidence: list[Evidence], author: AuthorMatch | None = None,
                     slices: tuple[Slice, ...] = DEFAULT_SLICES, grid: np.ndarray | None = None,
                     extra_flags: list[str] | None = None, prior_coverage: bool = True) -> DatingResult:
    """Year, 80% range, slice, confidence, deciding evidence and flags from all evidence about one work.
    `prior_coverage`: weigh the author prior by the public-domain corpus' coverage of later years (see
    filters/dating/publication_age.py); switch off for corpora running past the 1920s."""
    grid = year_grid() if grid is None else grid
    flags = list(extra_flags or [])
    birth = author.record.birth if author else None
    death = author.record.death if author else None
    evidence = _tightest_later_edition(_discount_revision_years(list(evidence)))
    usable = [e for e in evidence if _informative(e)]
    ev_dicts = [e.as_dict() for e in evidence]
    if author:
        win = lifetime_window(birth, death)
        ev_dicts.append({"kind": "author_lifetime", "role": "prior", "low": win[0] if win else None,
                         "high": win[1] if win else None, "source": author.record.source,
                         "snippet": author.matched_name, "confidence": round(author.score / 100, 3),
                         "detail": {"birth": birth, "death": death, "name": author.record.name}})
        if author.alternatives:
            flags.append("ambiguous_author")
    if not usable and birth is None and death is None:
        return DatingResult(None, None, None, None, None, None, ev_dicts, sorted(set(flags)),
                            reason="no evidence: no dates in the text or metadata, author not in the authors "
                                   "table, no style model")
    prior = author_prior(grid, birth, death, coverage=prior_coverage)
    lks = [evidence_likelihood(e, grid, slices) for e in usable]
    post = _posterior(grid, prior, lks)
    year = _quantile(grid, post, 0.5)
    low, high = _quantile(grid, post, 0.1), _quantile(grid, post, 0.9)
    sl = slice_of(year, slices)
    conf = _slice_mass(grid, post, sl, slices) if sl else float(post[(grid >= year - 5) & (grid <= year + 5)].sum())
    source = _deciding_source(grid, prior, usable, lks, year)
    flags += _evidence_flags(usable, year, birth, death)
    summary = {"p_within_5": round(float(post[(grid >= year - 5) & (grid <= year + 5)].sum()), 4),
               "p_slice": round(conf, 4), "n_evidence": len(usable)}
    return DatingResult(year, low, high, sl.name if sl else None, round(conf, 4), source, ev_dicts,
                        sorted(set(flags)), None, summary)


def _discount_revision_years(usable: list[Evidence]) -> list[Evidence]:
    """A text that declares itself a later edition (new/revised edition, re-issue, third edition) may carry
    revisions: its latest-mentioned years are explained by the revision whatever the first edition's year, so
    they say nothing about it (kept in the evidence with confidence 0 and the reason)."""
    if not any(e.kind in ("later_edition", "later_edition_preface") for e in usable):
        return usable
    return [dataclasses.replace(e, confidence=0.0, detail={**e.detail, "ignored": "text of a later edition: "
                                                           "the latest years may come from the revision"})
            if e.role == "lower" else e for e in usable]


def _tightest_later_edition(evidence: list[Evidence]) -> list[Evidence]:
    """Several later-edition dates ("new edition 1915", "re-issued 1920") all say "the first edition is older
    than this": together they say only what the earliest says, and multiplying them would count one fact
    several times. The others stay in the evidence with confidence 0 and the reason."""
    later = [e for e in evidence if e.role == "upper" and e.high is not None
             and not e.detail.get("likely_exact") and not e.detail.get("existed_by")]
    if len(later) < 2:
        return evidence
    keep = min(later, key=lambda e: e.high)
    return [dataclasses.replace(e, confidence=0.0, detail={**e.detail, "ignored": f"implied by the earlier "
                                                           f"later-edition date {keep.high}"})
            if e in later and e is not keep else e for e in evidence]


def _informative(e: Evidence) -> bool:
    if e.confidence <= 0:
        return False
    if e.role == "dist":
        return bool(e.detail.get("slice_probs"))
    return any(v is not None for v in (e.year, e.low, e.high))


def _deciding_source(grid, prior, usable: list[Evidence], lks, year: int) -> str:
    """The evidence whose removal moves the year most; when none moves it (agreeing evidence), the most
    trusted kind among those consistent with the year."""
    if not usable:
        return "author_prior"
    best_kind, best_shift = None, 0
    for i, e in enumerate(usable):
        rest = lks[:i] + lks[i + 1:]
        shift = abs(_quantile(grid, _posterior(grid, prior, rest), 0.5) - year)
        if shift > best_shift:
            best_kind, best_shift = e.kind, shift
    if best_kind is not None and best_shift > 0:
        consistent = [e.kind for e in usable if _consistent(e, year)]
        # several agreeing pieces: name the most trusted of them rather than the first that moved
        if best_kind in consistent:
            return min(consistent, key=_priority)
        return best_kind
    consistent = [e.kind for e in usable if _consistent(e, year)]
    return min(consistent, key=_priority) if consistent else "author_prior"


def _priority(kind: str) -> int:
    return SOURCE_PRIORITY.index(kind) if kind in SOURCE_PRIORITY else len(SOURCE_PRIORITY)


def _consistent(e: Evidence, year: int) -> bool:
    if e.role == "point":
        return abs(e.year - year) <= 1
    if e.role == "range":
        return e.low - 1 <= year <= e.high + 1
    if e.role == "upper":
        return e.high - 1 <= year <= e.high if e.detail.get("likely_exact") else False
    return False


def _evidence_flags(usable: list[Evidence], year: int, birth: int | None, death: int | None) -> list[str]:
    flags = []
    points = [e.year for e in usable if e.role == "point" and e.confidence >= 0.7]
    if points and max(points) - min(points) > 5:
        flags.append("conflicting_evidence")
    for e in usable:
        if e.role == "range" and e.kind in ("title_years", "contents_years") and e.high - e.low >= 3:
            flags.append("collection")
        if e.kind == "copyright_earliest" and e.high - e.low >= 5 and len(e.detail.get("years", ())) >= 3:
            flags.append("collection")
        if e.kind in ("later_edition", "later_edition_preface"):
            flags.append("later_edition_text")
        if e.role == "lower" and e.low is not None and e.low > year + 2 and e.confidence >= 0.6:
            flags.append("text_mentions_later_years")
    prefaces = [e.year for e in usable if e.kind == "preface_date"]
    if len(prefaces) >= 2 and max(prefaces) - min(prefaces) >= 5:
        flags.append("collection")
    if not any(e.role != "dist" for e in usable):
        flags.append("no_text_dates")
    win = lifetime_window(birth, death)
    if win and not (win[0] <= year <= win[1]):
        flags.append("outside_author_lifetime")
    return flags


# ------------------------------------------------------------------------------------------ work-level flags
_COLLECTION_TITLE_RE = re.compile(
    r"\b(?:short stories|stories|tales|sketches|essays|papers|poems|poetical works|complete works|works|writings|"
    r"selections?|anthology|collected|collection|miscellan\w+|and other \w+|letters and \w+|"
    r"(?:volume|vol\.?)\s+[ivx\d]+\b.*\b(?:of|from) the)\b", re.IGNORECASE)
# "translated from the French", "translation by", not "destined to be translated into other languages"
_TRANSLATION_RE = re.compile(r"\btranslated\s+(?:from|by|out of)\b|\btranslation\s+(?:from|by)\b|"
                             r"\b(?:done|rendered)\s+into\s+english\b|\bEnglished\b", re.IGNORECASE)
_MULTI_AUTHOR_RE = re.compile(r"\b(?:various|anonymous|et al\.?|and others)\b|\s(?:and|&)\s|;", re.IGNORECASE)


def work_flags(title: str | None, author: str | None, translator: str | None = None, editor: str | None = None,
               text_head: str = "") -> list[str]:
    """Flags read from title, author field, header and the first pages: likely collection/anthology, translation,
    multi-author work."""
    flags = []
    if title and _COLLECTION_TITLE_RE.search(title):
        flags.append("collection")
    if translator or _TRANSLATION_RE.search((text_head or "")[:5000]) or (title and _TRANSLATION_RE.search(title)):
        flags.append("translation")
    if author and _MULTI_AUTHOR_RE.search(author) and not re.search(r"\baka\b", author, re.IGNORECASE):
        flags.append("multi_author")
    if editor and not author:
        flags.append("multi_author")
    if author and re.search(r"\b(?:various|anonymous)\b", author, re.IGNORECASE):
        flags.append("collection")
    return flags
