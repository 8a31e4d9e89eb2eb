"""Authors' lives: load a user-supplied authors table (three formats), match a name from a book header or a
metadata CSV to it by normalised, fuzzy name, and turn birth/death into the window a work can plausibly date from.

Formats (picked by content, not by name):
  - the Gutenberg catalogue CSV (`Authors` column: "Austen, Jane, 1775-1817; Crane, Walter, 1845-1915 [Illustrator]")
  - a gutenbergr-style authors CSV (`author, alias, birthdate, deathdate, aliases` with "/"-separated aliases)
  - the Wikidata-linked JSONL of the diachronic paper (`gb_author`, `authorLabel`, `birthDate`, `deathDate`)
The matcher follows the paper's rule (name score >= 90, birth years within 5 when both sides know one) but
scores names structurally: "R. S. Surtees" = "Surtees, Robert Smith", "E. Nesbit" = "Nesbit, E. (Edith)".
"""
from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rapidfuzz import fuzz

from corpora.jsonl import JsonlError, read_jsonl

MATCH_THRESHOLD = 90.0
BIRTH_TOLERANCE = 5
# a work is plausibly written between age ~15 and ~10 years after death (posthumous first editions)
MIN_AGE_AT_WORK = 15
POSTHUMOUS_YEARS = 10
MAX_LIFESPAN = 100

_TITLES = {"sir", "dr", "mrs", "mr", "miss", "ms", "rev", "reverend", "lord", "lady", "baron", "baroness", "dame",
           "jr", "sr", "junior", "senior", "esq", "prof", "professor", "hon", "capt", "captain", "col", "colonel",
           "gen", "general", "saint", "st", "mme", "mlle", "madame", "count", "countess", "duke", "earl", "ii", "iii"}
_SPLIT_ALIASES_RE = re.compile(r"\s*(?:,\s*)?\b(?:aka|a\.k\.a\.|pseud(?:onym)?\.?|i\.e\.|alias|pseudonym of)\b\s*",
                               re.IGNORECASE)
_DATES_RE = re.compile(
    r",?\s*(?:(?:active|fl\.?|floruit)\s*)?(?P<b>\d{1,4})?\??\s*(?P<bbc>BCE|BC|B\.C\.)?\s*-\s*(?P<d>\d{1,4})?\??"
    r"\s*(?P<dbc>BCE|BC|B\.C\.)?\s*$"
)
_ROLE_RE = re.compile(r"\s*\[([^\]]+)\]\s*$")


class AuthorsTableError(ValueError):
    """The authors table cannot be used at all (unknown format, unreadable): names the file and why."""


@dataclass(frozen=True)
class AuthorRecord:
    name: str  # as the table gives it, e.g. "Austen, Jane"
    birth: int | None = None
    death: int | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""  # "file.csv row 12"

    def window(self) -> tuple[int, int] | None:
        return lifetime_window(self.birth, self.death)


@dataclass(frozen=True)
class AuthorMatch:
    record: AuthorRecord
    score: float
    matched_name: str  # which name/alias matched
    alternatives: tuple[AuthorRecord, ...] = ()  # equally good matches with other life dates (ambiguous name)


@dataclass
class TableProblem:
    file: str
    row: str
    reason: str


@dataclass
class AuthorsTable:
    records: list[AuthorRecord]
    problems: list[TableProblem] = field(default_factory=list)
    format: str = ""


# -------------------------------------------------------------------------------------------- names and dates
def lifetime_window(birth: int | None, death: int | None, min_age: int = MIN_AGE_AT_WORK,
                    posthumous: int = POSTHUMOUS_YEARS) -> tuple[int, int] | None:
    """Years a work by this person can plausibly date from: (birth + min_age, death + posthumous). With one end
    unknown the other is extended by a long life; with neither, None."""
    if birth is None and death is None:
        return None
    low = birth + min_age if birth is not None else death - MAX_LIFESPAN + min_age
    high = death + posthumous if death is not None else birth + MAX_LIFESPAN + posthumous
    return low, high


def parse_life_dates(text: str) -> tuple[str, int | None, int | None]:
    """("Austen, Jane", 1775, 1817) from "Austen, Jane, 1775-1817"; handles "1494?-1536", "-1817", "1775-",
    "active 1850-1870", "63 BC-14". Returns the name without dates."""
    m = _DATES_RE.search(text)
    if not m or (m.group("b") is None and m.group("d") is None):
        return text.strip(" ,"), None, None
    b = int(m.group("b")) if m.group("b") else None
    d = int(m.group("d")) if m.group("d") else None
    if b is not None and m.group("bbc"):
        b = -b
    if d is not None and m.group("dbc"):
        d = -d
    return text[: m.start()].strip(" ,"), b, d


def _ascii_lower(s: str) -> str:
    s = unicodedata.normalize("NFKD", s)
    s = "".join(c for c in s if not unicodedata.combining(c))
    return s.lower()


@dataclass(frozen=True)
class NameParts:
    given: tuple[str, ...]
    surname: str  # may hold several tokens: "de la ramee"

    @property
    def full(self) -> str:
        return " ".join((*self.given, self.surname)).strip()


def _tokens(s: str) -> list[str]:
    s = _ascii_lower(s).replace("-", " ")
    return [t for t in re.findall(r"[a-z]+", s) if t not in _TITLES]


def name_variants(name: str) -> list[NameParts]:
    """Every way a name string can be read: "Hornaday, William T. (William Temple)" gives "william t hornaday" and
    "william temple hornaday"; "Louisa de la Ramê, AKA Óuida" gives "louisa de la rame" and "ouida"; "Francis
    Parkman, Jr." gives "francis parkman". Titles and suffixes are dropped, accents folded."""
    out: list[NameParts] = []
    name, _, _ = parse_life_dates(_ROLE_RE.sub("", name or ""))
    for part in _SPLIT_ALIASES_RE.split(name):
        part = part.strip(" ,;")
        if not part:
            continue
        expansions = re.findall(r"\(([^)]*)\)", part)
        base = re.sub(r"\([^)]*\)", " ", part)
        # drop comma-separated suffix parts ("Jr.", "Sir") so "Parkman, Francis, Jr." keeps one comma
        pieces = [p.strip() for p in base.split(",") if p.strip() and _tokens(p)]
        if len(pieces) >= 2:
            surname_tokens, given_tokens = _tokens(pieces[0]), _tokens(" ".join(pieces[1:]))
        elif pieces:
            toks = _tokens(pieces[0])
            # particles belong to the surname: "louisa de la rame" -> surname "de la rame"
            i = len(toks) - 1
            while i > 0 and toks[i - 1] in {"de", "la", "le", "van", "von", "der", "den", "du", "da", "di", "del"}:
                i -= 1
            surname_tokens, given_tokens = toks[i:], toks[:i]
        else:
            continue
        if not surname_tokens:
            continue
        variants = []
        for exp in expansions:
            exp_tokens = _tokens(exp)
            if exp_tokens:
                variants.append(NameParts(tuple(exp_tokens), " ".join(surname_tokens)))
        if not variants:
            # an expansion says what the initials stand for ("E. (Edith)"): then "E." alone must not also
            # match "Edward"; without one the initials are all we know
            variants.append(NameParts(tuple(given_tokens), " ".join(surname_tokens)))
        for v in variants:
            if v not in out:
                out.append(v)
    return out


def normalise_name(name: str) -> str:
    """One canonical string for a name: "Austen, Jane, 1775-1817" -> "jane austen"."""
    variants = name_variants(name)
    return variants[0].full if variants else ""


def _given_compatible(q: tuple[str, ...], c: tuple[str, ...]) -> float:
    """Share of the query's given names the candidate agrees with (an initial agrees with a full name)."""
    if not q:
        return 0.9 if c else 1.0  # "Ouida" vs "Ouida"; "Nesbit" alone vs "Nesbit, Edith": weaker
    hits, used = 0.0, set()
    for t in q:
        for j, u in enumerate(c):
            if j in used:
                continue
            if t == u:
                hits += 1.0
            elif (len(t) == 1 and u.startswith(t)) or (len(u) == 1 and t.startswith(u)):
                hits += 0.9  # an initial agrees, but less than the full name does
            elif len(t) > 3 and len(u) > 3 and fuzz.ratio(t, u) >= 85:
                hits += 0.9  # spelling variant: "Susannah" / "Susanna"
            else:
                continue
            used.add(j)
            break
    return hits / len(q)


def name_score(query: str | NameParts, candidate: str | NameParts) -> float:
    """0..100: how well two names agree, structurally (surname fuzzy, given names/initials compatible) or as
    word bags, whichever is higher."""
    qs = [query] if isinstance(query, NameParts) else name_variants(query)
    cs = [candidate] if isinstance(candidate, NameParts) else name_variants(candidate)
    best = 0.0
    for q in qs:
        for c in cs:
            surname = fuzz.ratio(q.surname, c.surname)
            # a hyphenated double surname read as given + surname ("Ernest Seton Thompson")
            surname = max(surname, fuzz.ratio(q.full.replace(" ", ""), c.full.replace(" ", "")))
            structured = surname * (0.5 + 0.5 * _given_compatible(q.given, c.given))
            bag = fuzz.token_sort_ratio(q.full, c.full)
            best = max(best, structured, bag)
    return best


# ------------------------------------------------------------------------------------------------- the index
class AuthorIndex:
    """Fuzzy name lookup over an authors table, blocked by the first letters of the surname."""

    def __init__(self, records: list[AuthorRecord]):
        self.records = records
        self._blocks: dict[str, list[tuple[NameParts, str, int]]] = defaultdict(list)
        for i, rec in enumerate(records):
            for nm in (rec.name, *rec.aliases):
                for v in name_variants(nm):
                    for key in self._keys(v):
                        self._blocks[key].append((v, nm, i))

    @staticmethod
    def _keys(v: NameParts) -> set[str]:
        toks = v.surname.split()
        keys = {toks[-1][:3]} if toks else set()
        if v.given and not toks[-1:] == [v.given[-1]]:
            keys.add(v.given[-1][:3])  # "Ernest Seton-Thompson" vs "Seton, Ernest Thompson"
        return keys

    def candidates(self, name: str) -> list[tuple[float, AuthorRecord, str]]:
        scored: dict[int, tuple[float, str]] = {}
        for q in name_variants(name):
            for key in self._keys(q):
                for cand, raw, i in self._blocks.get(key, ()):
                    s = name_score(q, cand)
                    if s > scored.get(i, (-1.0, ""))[0]:
                        scored[i] = (s, raw)
        out = [(s, self.records[i], raw) for i, (s, raw) in scored.items()]
        out.sort(key=lambda t: (-t[0], _richness(t[1])))
        return out

    def match(self, name: str | None, birth_hint: int | None = None,
              threshold: float = MATCH_THRESHOLD) -> AuthorMatch | None:
        """Best record for `name` scoring >= threshold; with `birth_hint`, records whose birth year differs by more
        than BIRTH_TOLERANCE are refused. Equal-scoring records with different life dates are returned as
        `alternatives` (the name is ambiguous)."""
        if not name or not name.strip():
            return None
        cands = [c for c in self.candidates(name) if c[0] >= threshold]
        if birth_hint is not None:
            cands = [c for c in cands if c[1].birth is None or abs(c[1].birth - birth_hint) <= BIRTH_TOLERANCE]
        if not cands:
            return None
        top_score, top, raw = cands[0]
        alts = tuple(r for s, r, _ in cands[1:] if s >= top_score - 1e-9
                     and (r.birth, r.death) != (top.birth, top.death))
        return AuthorMatch(record=top, score=round(top_score, 1), matched_name=raw, alternatives=alts)


def _richness(rec: AuthorRecord) -> tuple:
    """Tie-break for equally named people: prefer known dates, then more aliases (a catalogued, prolific author)."""
    return (rec.birth is None, rec.death is None, -len(rec.aliases))


# ------------------------------------------------------------------------------------------------- loading
def _int_or_none(v) -> int | None:
    if v is None:
        return None
    s = str(v).strip()
    if s in ("", "NA", "N/A", "None", "null", "nan"):
        return None
    m = re.match(r"^(-?\d{1,4})", s)
    if not m:
        raise ValueError(f"not a year: {s!r}")
    return int(m.group(1))


def _year_of_iso(v) -> int | None:
    """"1775-12-16T00:00:00Z" (Wikidata; a leading "-" is BCE) -> 1775."""
    if isinstance(v, dict):
        v = v.get("value")
    if v in (None, ""):
        return None
    m = re.match(r"^\s*(-?\d{1,4})", str(v))
    if not m:
        raise ValueError(f"not a date: {v!r}")
    return int(m.group(1))


def parse_catalogue_authors(field_value: str) -> list[AuthorRecord]:
    """The catalogue's `Authors` field: "Stevenson, Robert Louis, 1850-1894; Crane, Walter, 1845-1915 [Illustrator]".
    Contributors with a role in brackets (illustrator, editor, translator) are kept, marked in `source`."""
    out = []
    for part in (field_value or "").split(";"):
        part = part.strip()
        if not part:
            continue
        role = _ROLE_RE.search(part)
        bare = _ROLE_RE.sub("", part)
        name, b, d = parse_life_dates(bare)
        out.append(AuthorRecord(name=name, birth=b, death=d, source=f"role={role.group(1)}" if role else ""))
    return out


def load_authors_table(path: str | Path) -> AuthorsTable:
    """Load any of the three formats. Bad rows are not dropped silently: each becomes a `TableProblem`
    (file, row, reason) in the result. An unusable file raises AuthorsTableError naming it."""
    p = Path(path)
    if not p.exists():
        raise AuthorsTableError(f"{p}: authors table does not exist")
    name = p.name.lower()
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return _load_wikidata_jsonl(p)
    if name.endswith((".csv", ".tsv")):
        return _load_csv(p)
    raise AuthorsTableError(f"{p}: unknown authors table format (expected .csv or .jsonl)")


def _load_csv(p: Path) -> AuthorsTable:
    try:
        fh = open(p, encoding="utf-8", newline="")
    except OSError as e:
        raise AuthorsTableError(f"{p}: cannot read authors table: {e}") from e
    with fh:
        dialect = "excel-tab" if p.name.lower().endswith(".tsv") else "excel"
        reader = csv.DictReader(fh, dialect=dialect)
        cols = {c.strip().lower(): c for c in (reader.fieldnames or [])}
        records: list[AuthorRecord] = []
        problems: list[TableProblem] = []
        if "authors" in cols:  # the Gutenberg catalogue
            fmt = "gutenberg_catalogue"
            seen: set[tuple] = set()
            for i, row in enumerate(reader, start=2):
                try:
                    for rec in parse_catalogue_authors(row.get(cols["authors"]) or ""):
                        key = (normalise_name(rec.name), rec.birth, rec.death)
                        if key not in seen:
                            seen.add(key)
                            records.append(AuthorRecord(rec.name, rec.birth, rec.death, (),
                                                        f"{p.name} row {i}" + (f" {rec.source}" if rec.source else "")))
                except (ValueError, TypeError) as e:
                    problems.append(TableProblem(str(p), f"row {i}", str(e)))
        elif "author" in cols and ("birthdate" in cols or "birth" in cols):
            fmt = "authors_csv"
            bcol = cols.get("birthdate") or cols["birth"]
            dcol = cols.get("deathdate") or cols.get("death")
            for i, row in enumerate(reader, start=2):
                name = (row.get(cols["author"]) or "").strip()
                if not name or name == "NA":
                    problems.append(TableProblem(str(p), f"row {i}", "empty author name"))
                    continue
                try:
                    b = _int_or_none(row.get(bcol))
                    d = _int_or_none(row.get(dcol)) if dcol else None
                except ValueError as e:
                    problems.append(TableProblem(str(p), f"row {i}", str(e)))
                    continue
                aliases = set()
                for col in ("alias", "aliases"):
                    if col in cols:
                        for a in (row.get(cols[col]) or "").split("/"):
                            a = a.strip()
                            if a and a != "NA" and not re.search(r"\d{4}", a):
                                aliases.add(a)
                records.append(AuthorRecord(name, b, d, tuple(sorted(aliases)), f"{p.name} row {i}"))
        else:
            raise AuthorsTableError(
                f"{p}: unknown authors CSV: need an 'Authors' column (Gutenberg catalogue) or 'author' + "
                f"'birthdate'/'deathdate' columns; found {', '.join(reader.fieldnames or [])}")
    return AuthorsTable(records, problems, fmt)


def _load_wikidata_jsonl(p: Path) -> AuthorsTable:
    records: list[AuthorRecord] = []
    problems: list[TableProblem] = []
    try:
        lines = list(read_jsonl(p, objects=False, errors="yield"))
    except OSError as e:
        raise AuthorsTableError(f"{p}: cannot read authors table: {e}") from e
    for i, obj in lines:
        if isinstance(obj, JsonlError):
            problems.append(TableProblem(str(p), f"line {i}", obj.reason))
            continue
        if not isinstance(obj, dict):
            problems.append(TableProblem(str(p), f"line {i}", "not a JSON object"))
            continue
        label = obj.get("authorLabel")
        label = label.get("value") if isinstance(label, dict) else label
        gb = obj.get("gb_author") or ""
        gb_name, gb_b, gb_d = parse_life_dates(gb) if gb else ("", None, None)
        name = gb_name or label or obj.get("author") or obj.get("name")
        if not name or not isinstance(name, str):
            problems.append(TableProblem(str(p), f"line {i}", "no author name (gb_author / authorLabel)"))
            continue
        try:
            b = _year_of_iso(obj.get("birthDate")) if obj.get("birthDate") else gb_b
            d = _year_of_iso(obj.get("deathDate")) if obj.get("deathDate") else gb_d
        except ValueError as e:
            problems.append(TableProblem(str(p), f"line {i}", str(e)))
            continue
        aliases = tuple(a for a in (label,) if isinstance(a, str) and a and a != name)
        records.append(AuthorRecord(name, b, d, aliases, f"{p.name} line {i}"))
    return AuthorsTable(records, problems, "wikidata_jsonl")
