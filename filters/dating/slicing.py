"""Time-sliced corpora from dated works: paragraph units per slice and split, with word budgets, at most N works
per author per slice, the first chapter dropped. Defaults are the diachronic paper's: five slices, 10M train /
1M dev / 5M test words of paragraphs each, at most 20 works per author per slice.

Everything here is deterministic (a seeded hash orders the units), so a rerun gives the same corpus.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

DEFAULT_BUDGETS = {"train": 10_000_000, "dev": 1_000_000, "test": 5_000_000}
DEFAULT_MAX_WORKS_PER_AUTHOR = 20
DEFAULT_MIN_PARAGRAPH_WORDS = 5

_CHAPTER_RE = re.compile(
    r"(?im)^[ \t_*]*(?:chapter|chap\.|book|part|letter|stave|canto)[ \t]+(?:[ivxlcdm]+|\d+|one|two|three|first|"
    r"second|the first|the second)\b[^\n]{0,100}$"
    r"|^[ \t]*(?:[IVXLC]{1,7}|\d{1,3})\.?[ \t]*$"
)
_ILLUSTRATION_RE = re.compile(r"^\s*\[(?:illustration|footnote|sidenote|transcriber)[^\]]*\]?\s*$", re.IGNORECASE | re.DOTALL)


@dataclass
class SliceUnit:
    work_id: str
    index: int  # paragraph number within the work (after the first chapter is dropped)
    text: str
    words: int


@dataclass
class SliceWork:
    """A dated work offered to the slicer."""
    id: str
    author_key: str  # matched author (name + life dates) or the raw author string; "" when unknown
    slice: str | None
    confidence: float
    paragraphs: list[str]


@dataclass
class SliceResult:
    rows: dict[tuple[str, str], list[SliceUnit]]  # (slice, split) -> units
    words: dict[tuple[str, str], int]
    excluded: dict[str, str]  # work id -> why it contributed nothing
    works_used: dict[str, list[str]]  # slice -> work ids
    units_offered: dict[str, int] = field(default_factory=dict)  # slice -> paragraph units before budgets
    units_over_budget: dict[str, int] = field(default_factory=dict)  # slice -> units left out: budgets full

    def stats(self, budgets: dict[str, int]) -> dict:
        out: dict = {"slices": {}, "excluded_works": dict(sorted(self.excluded.items()))}
        slices = sorted({s for s, _ in self.rows} | set(self.works_used))
        for sl in slices:
            out["slices"][sl] = {
                "works": len(self.works_used.get(sl, [])),
                "units_offered": self.units_offered.get(sl, 0),
                "units_over_budget": self.units_over_budget.get(sl, 0),
                "splits": {sp: {"words": self.words.get((sl, sp), 0), "budget": b,
                                "units": len(self.rows.get((sl, sp), []))} for sp, b in budgets.items()},
            }
        return out


# --------------------------------------------------------------------------------------------- paragraphs
def _is_running_text(para: str) -> bool:
    words = re.findall(r"[A-Za-z][a-z'’]*", para)
    return len(words) >= 25 and sum(w[0].islower() for w in words) / len(words) >= 0.5


def chapter_starts(text: str) -> list[int]:
    """Offsets of chapter headings that open real chapters: a heading followed by running text before the next
    heading (headings in a table of contents are followed by more headings)."""
    heads = [m.start() for m in _CHAPTER_RE.finditer(text)]
    real = []
    for i, pos in enumerate(heads):
        nxt = heads[i + 1] if i + 1 < len(heads) else len(text)
        body = text[pos: min(nxt, pos + 4000)]
        if any(_is_running_text(p) for p in re.split(r"\n[ \t]*\n", body)[1:]):
            real.append(pos)
    return real


def drop_first_chapter(text: str, fallback_fraction: float = 0.1) -> tuple[str, str]:
    """The text from the second real chapter on (front matter and chapter one dropped, as the paper does), and
    how it was cut. Without chapter headings the first `fallback_fraction` of the text goes instead."""
    starts = chapter_starts(text)
    if len(starts) >= 2:
        return text[starts[1]:], "dropped front matter and first chapter"
    cut = int(len(text) * fallback_fraction)
    nl = text.find("\n\n", cut)
    cut = nl if nl >= 0 else cut
    return text[cut:], f"no chapters found: dropped the first {fallback_fraction:.0%}"


def paragraph_units(text: str, min_words: int = DEFAULT_MIN_PARAGRAPH_WORDS) -> list[str]:
    """Paragraphs as single lines (hard line wraps joined), without headings, illustration/footnote markers and
    fragments shorter than `min_words` words."""
    out = []
    for para in re.split(r"\n[ \t]*\n", text):
        if _ILLUSTRATION_RE.match(para) or _CHAPTER_RE.fullmatch(para.strip()):
            continue
        line = " ".join(para.split())
        if len(line.split()) < min_words:
            continue
        letters = [c for c in line if c.isalpha()]
        if letters and sum(c.isupper() for c in letters) / len(letters) > 0.8:
            continue  # an all-capitals heading or title line
        out.append(line)
    return out


# ------------------------------------------------------------------------------------------------ budgets
def _stable_order(key: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest(), "big")


def cap_works_per_author(works: list[SliceWork], max_per_author: int) -> tuple[list[SliceWork], dict[str, str]]:
    """At most `max_per_author` works per (slice, author): the most confidently dated first, then by id.
    Works of unknown authors are not capped together (each is its own author)."""
    kept, excluded = [], {}
    groups: dict[tuple[str, str], list[SliceWork]] = {}
    for w in works:
        groups.setdefault((w.slice, w.author_key or f"unknown:{w.id}"), []).append(w)
    for (sl, author), ws in groups.items():
        ws.sort(key=lambda w: (-w.confidence, w.id))
        kept += ws[:max_per_author]
        for w in ws[max_per_author:]:
            excluded[w.id] = f"author cap: more than {max_per_author} works by {author} in {sl}"
    return kept, excluded


def _assign(units: list[SliceUnit], budgets: dict[str, int], seed: int, key) -> tuple[dict[str, list], int]:
    """Fill splits in a seeded order, each unit to the split furthest from its budget (so a small corpus is
    shared in budget proportions and a large one fills every budget exactly); units that fit nowhere are
    counted, not kept."""
    out: dict[str, list] = {s: [] for s in budgets}
    fill = {s: 0 for s in budgets}
    over = 0
    for u in sorted(units, key=lambda u: _stable_order(key(u), seed)):
        open_splits = [s for s, b in budgets.items() if b > 0 and fill[s] + u.words <= b]
        if not open_splits:
            over += 1
            continue
        s = min(open_splits, key=lambda s: (fill[s] / budgets[s], list(budgets).index(s)))
        out[s].append(u)
        fill[s] += u.words
    return out, over


def build_slices(works: list[SliceWork], budgets: dict[str, int] | None = None,
                 max_works_per_author: int = DEFAULT_MAX_WORKS_PER_AUTHOR, split_by: str = "paragraph",
                 seed: int = 0) -> SliceResult:
    """Assign the paragraphs of dated works to (slice, split). `split_by="work"` keeps each work's paragraphs in
    one split (no train/test leakage of a book); "paragraph" (the default) samples paragraphs."""
    budgets = dict(DEFAULT_BUDGETS if budgets is None else budgets)
    if split_by not in ("paragraph", "work"):
        raise ValueError(f"split_by must be 'paragraph' or 'work', got {split_by!r}")
    excluded: dict[str, str] = {}
    candidates = []
    for w in works:
        if w.slice is None:
            excluded[w.id] = "no slice: undated or dated outside every slice"
        elif not w.paragraphs:
            excluded[w.id] = "no paragraphs left after dropping the first chapter"
        else:
            candidates.append(w)
    kept, capped = cap_works_per_author(candidates, max_works_per_author)
    excluded.update(capped)
    rows: dict[tuple[str, str], list[SliceUnit]] = {}
    words: dict[tuple[str, str], int] = {}
    used: dict[str, list[str]] = {}
    offered: dict[str, int] = {}
    over_budget: dict[str, int] = {}
    for sl in sorted({w.slice for w in kept}):
        ws = [w for w in kept if w.slice == sl]
        units = [SliceUnit(w.id, i, p, len(p.split())) for w in ws for i, p in enumerate(w.paragraphs)]
        offered[sl] = len(units)
        if split_by == "work":
            per_work = {w.id: [u for u in units if u.work_id == w.id] for w in ws}
            blocks = [SliceUnit(wid, 0, "", sum(u.words for u in us)) for wid, us in per_work.items()]
            assigned, over = _assign(blocks, budgets, seed, key=lambda u: u.work_id)
            assigned = {s: [u for b in bs for u in per_work[b.work_id]] for s, bs in assigned.items()}
            over = sum(len(per_work[b.work_id]) for b in blocks) - sum(len(v) for v in assigned.values())
        else:
            assigned, over = _assign(units, budgets, seed, key=lambda u: f"{u.work_id}#{u.index}")
        over_budget[sl] = over
        for split, us in assigned.items():
            us.sort(key=lambda u: (u.work_id, u.index))
            rows[(sl, split)] = us
            words[(sl, split)] = sum(u.words for u in us)
        contributing = {u.work_id for us in assigned.values() for u in us}
        used[sl] = sorted(contributing)
        for w in ws:
            if w.id not in contributing:
                excluded[w.id] = "budgets of its slice were already full"
    return SliceResult(rows, words, excluded, used, offered, over_budget)
