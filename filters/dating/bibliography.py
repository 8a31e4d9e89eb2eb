"""Evidence from the author's other works in the same corpus: a book's "Author of ..." line or its "By the same
author" list names earlier works, so every listed work existed by the time the listing book was printed.

The bibliographer's rule, used in one direction only:
  - a work *listed* by another dated work of the same author gets an upper bound at that work's date (its 90%
    quantile, so the listing work's own uncertainty is carried over);
  - the *listing* work learns nothing about its first edition: our copy may be a later printing whose title page
    names books written after the first edition ("Kilmeny of the Orchard", 1910, reprinted naming 1921 books).
A list can be a later printing's too (then the bound is too early) or name a book "in preparation"; the evidence
therefore carries a confidence below one and items after an "in preparation" cue are dropped.

Pure functions: `listed_titles(text)` for one book, `listing_evidence(rows)` over the dated rows of a corpus.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from filters.dating.authors import name_score
from filters.dating.evidence import Evidence

LISTED_CONFIDENCE = 0.7  # the list in our copy was already in the listing work's first edition (most title pages)
FRONT_CHARS, BACK_CHARS = 10_000, 15_000  # where title pages and publishers' lists sit
MAX_BLOCK_CHARS = 1500
SAME_AUTHOR_SCORE = 90.0

# a cue on a title page ("Author of _X_, _Y_") or heading a list ("BY THE SAME AUTHOR", "Other books by")
# "Author of" starting a title-page line and followed by a quoted, italic or capitalised title, not prose
# ("author of this work is no amateur")
_INLINE_CUE_RE = re.compile(r"(?im)^[ \t_*|]*(?:author|authoress|writer)\s+of\s+(?=(?:the\s+)?[\"“_]|(?-i:[A-Z]))")
_HEADING_CUE_RE = re.compile(r"(?im)^[ \t_*|+]*(?:by\s+the\s+same\s+(?:author|writer)|(?:other\s+)?(?:books|works|"
                             r"stories|novels)\s+by\b|also\s+by\b|uniform\s+with\s+this)[^\n]{0,60}$")
_NOT_YET_RE = re.compile(r"\b(?:in\s+preparation|in\s+press|forthcoming|ready\s+shortly|nearly\s+ready|"
                         r"to\s+be\s+published)\b", re.IGNORECASE)
_BOX_RE = re.compile(r"[|+]|[-=_*]{3,}")
_SPLIT_RE = re.compile(r"[\n,;“”\"_]|\s{3,}|\.\s")
_FILLER_RE = re.compile(r"^(?:and|&)\s+|\b(?:etc|etcetera|&c)\b\.?$", re.IGNORECASE)
_ARTICLE_RE = re.compile(r"^(?:the|a|an)\s+")


def normalise_title(title: str) -> str:
    """Lower case ASCII words only, apostrophes dropped, no leading article: "Anne’s House of Dreams" ->
    "annes house of dreams"."""
    t = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    t = re.sub(r"['’`]", "", t)
    t = re.sub(r"[^a-z]+", " ", t).strip()
    return _ARTICLE_RE.sub("", t)


def main_title(title: str) -> str:
    """The title without its subtitle ("Two Little Savages: Being the Adventures..." -> "Two Little Savages")."""
    return re.split(r"\s*(?:[:;\n]|,\s+or\b|\s+or,|\s+being\s)", title, maxsplit=1, flags=re.IGNORECASE)[0]


def _block_after(text: str, start: int, inline: bool) -> str:
    """The list that follows a cue: an inline cue's list ends at the first blank line; a heading's list may be a
    box or spaced out, so leading blank lines are skipped and it ends at two blank lines in a row."""
    lines = text[start:start + MAX_BLOCK_CHARS].split("\n")
    out: list[str] = []
    empty_run = 0
    for i, line in enumerate(lines):
        clean = _BOX_RE.sub(" ", line).strip()
        if not clean:
            if inline and i > 0:
                break
            if out:
                empty_run += 1
                if empty_run >= 2:
                    break
            continue
        empty_run = 0
        if _NOT_YET_RE.search(clean):
            break
        out.append(clean)
    return "\n".join(out)


def _items(block: str, inline: bool) -> list[str]:
    """Titles in a list block: an inline list runs on across lines ("Anne of the / Island"), a heading's list has
    one title per line."""
    if inline:
        block = re.sub(r"\s*\n\s*", " ", block)
    items = []
    for part in _SPLIT_RE.split(block):
        part = _FILLER_RE.sub("", part.strip(" .:!?()[]'’")).strip()
        norm = normalise_title(part)
        if len(norm) >= 4 and re.search(r"[a-z]{3}", norm):
            items.append(norm)
    return items


def listed_titles(text: str) -> list[str]:
    """Normalised titles a book lists as its author's other works, from its first and last pages."""
    zones = [(0, min(len(text), FRONT_CHARS))]
    if len(text) > FRONT_CHARS:
        zones.append((max(FRONT_CHARS, len(text) - BACK_CHARS), len(text)))
    found: list[str] = []
    for a, b in zones:
        zone = text[a:b]
        for m in _INLINE_CUE_RE.finditer(zone):
            found += _items(_block_after(zone, m.end(), inline=True), inline=True)
        for m in _HEADING_CUE_RE.finditer(zone):
            found += _items(_block_after(zone, m.end(), inline=False), inline=False)
    return list(dict.fromkeys(found))


def title_listed(title: str | None, listed: list[str]) -> str | None:
    """The listed item naming this title, if any: equal after normalisation, or one the other's prefix when the
    shorter has three words or more ("The Book of Woodcraft" / "The Book of Woodcraft and Indian Lore")."""
    if not title:
        return None
    want = normalise_title(main_title(title))
    if len(want) < 4:
        return None
    for item in listed:
        if item == want:
            return item
        short, long_ = sorted((item, want), key=len)
        if len(short.split()) >= 3 and long_.startswith(short + " "):
            return item
    return None


def same_author(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two works rows by the same person: names match (fuzzy), and life dates agree where both are known."""
    if not a.get("author") or not b.get("author"):
        return False
    for key in ("author_birth", "author_death"):
        if a.get(key) is not None and b.get(key) is not None and a[key] != b[key]:
            return False
    return name_score(a["author"], b["author"]) >= SAME_AUTHOR_SCORE


def row_listed_titles(row: dict[str, Any]) -> list[str]:
    """The titles a dated works row recorded as listed in its text (evidence JSON, summary.lists_titles)."""
    try:
        return list(json.loads(row.get("evidence") or "{}").get("summary", {}).get("lists_titles", []))
    except (ValueError, AttributeError):
        return []


def _prefixes(norm: str) -> list[str]:
    words = norm.split()
    return [" ".join(words[:k]) for k in range(3, len(words) + 1)] or [norm]


def listing_evidence(rows: list[dict[str, Any]], confidence: float = LISTED_CONFIDENCE
                     ) -> dict[str, list[Evidence]]:
    """For each work that another dated work of the same author lists: the tightest such upper bound.
    Another copy of the same work (same main title) never counts. Listed items are indexed by their word
    prefixes, so a corpus of many thousand books is one pass, not a comparison of every pair."""
    index: dict[str, list[tuple[dict[str, Any], list[str]]]] = {}
    for r in rows:
        titles = row_listed_titles(r) if r.get("year_high") is not None else []
        for key in {p for item in titles for p in _prefixes(item)} | set(titles):
            index.setdefault(key, []).append((r, titles))
    out: dict[str, list[Evidence]] = {}
    for w in rows:
        if not w.get("title"):
            continue
        w_title = normalise_title(main_title(w["title"]))
        candidates = {id(lister): (lister, titles) for key in {w_title, *_prefixes(w_title)}
                      for lister, titles in index.get(key, [])}
        best: Evidence | None = None
        for lister, titles in candidates.values():
            if lister is w or normalise_title(main_title(lister.get("title") or "")) == w_title:
                continue
            item = title_listed(w["title"], titles)
            if item is None or not same_author(w, lister):
                continue
            if best is None or lister["year_high"] < best.high:
                best = Evidence("listed_by_other_work", "upper", high=int(lister["year_high"]),
                                confidence=confidence, source=f"work {lister['id']} ({lister['source']})",
                                snippet=f"listed as {item!r} by {lister.get('title')!r}, dated {lister['year']} "
                                        f"({lister['year_low']}-{lister['year_high']})",
                                detail={"existed_by": True, "listing_work": lister["id"],
                                        "listing_year": lister["year"]})
        if best is not None:
            out[w["id"]] = [best]
    return out
