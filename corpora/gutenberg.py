"""Project Gutenberg plain-text files: split the PG header, the book and the PG footer/licence apart, and read the
header's metadata (title, author, language, translator, editor, ebook number).

The header's "Release Date", "Posting Date", "First Posted", "Last Updated" are dates of the *ebook*
(1971 onwards), never of the work: they are exposed in `GutenbergHeader.ebook_dates` so that nothing mistakes them
for composition dates, and the body returned by `strip_boilerplate` contains none of them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

# Fields whose dates describe the ebook, not the work. Never use them as evidence of composition/publication.
EBOOK_DATE_FIELDS = ("release_date", "posting_date", "first_posted", "last_updated")

_START_RE = re.compile(
    r"^\s*\*{3}\s*START OF (?:THIS|THE) PROJECT GUTENBERG E-?(?:BOOK|TEXT)[^\n]*$"
    r"|^\s*\*END\*THE SMALL PRINT[^\n]*$"
    r"|^\s*\*{3}\s*START OF THE PROJECT GUTENBERG[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_END_RE = re.compile(
    r"^\s*\*{3}\s*END OF (?:THIS|THE) PROJECT GUTENBERG[^\n]*$"
    r"|^\s*End of (?:the )?Project Gutenberg(?:'s|’s)?\b[^\n]*$"
    r"|^\s*End of this Project Gutenberg[^\n]*$"
    r"|^\s*\*{3}\s*START: FULL LICENSE[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
# Credits the PG volunteers put at the top of the body: modern, not part of the work.
_CREDIT_RE = re.compile(
    r"^\s*(?:Produced by|E-?text prepared by|This e-?text was (?:prepared|produced) by|Transcribed (?:from|by)"
    r"|Prepared by)\b",
    re.IGNORECASE,
)
_HEADER_FIELD_RE = re.compile(r"^\s*\[?\s*([A-Za-z][A-Za-z \-]{1,30}?)\s*:\s*(.*?)\s*\]?\s*$")
_EBOOK_NO_RE = re.compile(r"\[\s*e-?(?:book|text)\s*#\s*(\d+)\s*\]|e-?(?:book|text)\s*#\s*(\d+)", re.IGNORECASE)

_FIELD_NAMES = {
    "title": "title",
    "author": "author",
    "authors": "author",
    "translator": "translator",
    "translated by": "translator",
    "editor": "editor",
    "edited by": "editor",
    "illustrator": "illustrator",
    "language": "language",
    "release date": "release_date",
    "posting date": "posting_date",
    "first posted": "first_posted",
    "last updated": "last_updated",
    "most recently updated": "last_updated",
    "this file was first posted on": "first_posted",
    "character set encoding": "encoding",
    "original publication": "original_publication",
}


class NotGutenbergError(ValueError):
    """The text carries no recognisable Project Gutenberg start marker."""


@dataclass
class GutenbergHeader:
    ebook_id: str | None = None
    title: str | None = None
    author: str | None = None
    translator: str | None = None
    editor: str | None = None
    illustrator: str | None = None
    language: str | None = None
    # "Original publication" is a header field some recent PG files carry; it describes the printed source
    original_publication: str | None = None
    # Ebook dates: kept for traceability only, NEVER composition dates (see EBOOK_DATE_FIELDS).
    ebook_dates: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "ebook_id": self.ebook_id, "title": self.title, "author": self.author, "translator": self.translator,
            "editor": self.editor, "illustrator": self.illustrator, "language": self.language,
            "original_publication": self.original_publication,
            "ebook_dates_not_composition_dates": dict(self.ebook_dates),
        }


@dataclass
class GutenbergBook:
    id: str
    header: GutenbergHeader
    body: str  # the book only: no PG header, credits, footer or licence
    has_markers: bool  # False: no PG start marker was found and `body` is the whole (normalised) text


def normalise_newlines(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\ufeff")


def split_gutenberg(raw: str) -> tuple[str, str, str]:
    """(header, body, footer) of a raw PG file. Raises NotGutenbergError if no start marker is found."""
    text = normalise_newlines(raw)
    start = _START_RE.search(text)
    if start is None:
        raise NotGutenbergError("no Project Gutenberg start marker ('*** START OF ... PROJECT GUTENBERG ...')")
    header = text[: start.start()]
    rest = text[start.end():]
    end = _END_RE.search(rest)
    body, footer = (rest[: end.start()], rest[end.start():]) if end else (rest, "")
    return header, body, footer


_PG_MENTION_RE = re.compile(r"project\s+gutenberg|gutenberg\.org|pgdp\.net|distributed\s+proofread", re.IGNORECASE)
_TRANSCRIBER_RE = re.compile(r"^[\s|_+=\-]*_?transcriber['’]?s?\s+notes?\b", re.IGNORECASE)
_SEPARATOR_RE = re.compile(r"^[\s*_=\-+]*$")
_PARA_SPLIT_RE = re.compile(r"(\n[ \t]*\n(?:[ \t]*\n)*)")
# a heading-only transcriber's note ("TRANSCRIBER'S NOTES") owns the paragraphs after it up to a wide gap
_NOTE_BLOCK_MAX_PARAS = 12


def _is_modern_paragraph(para: str) -> bool:
    """Paragraphs written by PG volunteers, not by the author: credits, 'HTML version' notes, anything that
    names Project Gutenberg, separator lines."""
    return bool(_CREDIT_RE.match(para) or _PG_MENTION_RE.search(para))


def remove_volunteer_text(body: str) -> str:
    """Drop PG volunteers' paragraphs from a body: leading credits and notes, any paragraph naming Project
    Gutenberg, and transcriber's notes (a heading-only note takes the paragraphs under it, up to the next wide
    gap). These carry modern dates and names that must not become evidence about the work."""
    parts = _PARA_SPLIT_RE.split(body)
    paras, seps = parts[0::2], parts[1::2] + [""]
    keep = [True] * len(paras)
    i = 0
    while i < len(paras):
        para = paras[i]
        if _TRANSCRIBER_RE.match(para):
            keep[i] = False
            heading_only = len(re.sub(r"transcriber['’]?s?\s+notes?", "", para, flags=re.I).strip(" \n:_|+-=.")) == 0
            j = i
            # swallow the note's body: paragraphs until a gap of 3+ blank lines (how PG files separate blocks)
            while heading_only and j + 1 < len(paras) and j - i < _NOTE_BLOCK_MAX_PARAS:
                gap = seps[j].count("\n")
                if gap >= 4 and j > i:
                    break
                j += 1
                keep[j] = False
            i = j + 1
            continue
        if _is_modern_paragraph(para):
            keep[i] = False
        i += 1
    # leading separator-only paragraphs left behind by removed credits
    out = []
    for para, sep, k in zip(paras, seps, keep):
        if k:
            out.append(para + sep)
    text = "".join(out)
    return text


def strip_boilerplate(raw: str) -> str:
    """The book text of a raw PG file without header, credits, footer or licence. A text without PG markers is
    returned unchanged (apart from newline normalisation): plain books are valid input too."""
    try:
        _, body, _ = split_gutenberg(raw)
    except NotGutenbergError:
        return normalise_newlines(raw).strip("\n")
    return remove_volunteer_text(body).strip("\n")


def parse_header(raw: str) -> GutenbergHeader:
    """Metadata from the PG header block (title, author, ...). Multi-line values (indented continuation lines)
    are joined. Missing fields stay None."""
    text = normalise_newlines(raw)
    m = _START_RE.search(text)
    header_text = text[: m.start()] if m else text[:5000]
    out = GutenbergHeader()
    values: dict[str, str] = {}
    current: str | None = None
    for line in header_text.split("\n"):
        fm = _HEADER_FIELD_RE.match(line)
        key = _FIELD_NAMES.get(fm.group(1).strip().lower()) if fm else None
        if key:
            current = key
            values.setdefault(key, fm.group(2).strip())
            continue
        # continuation of a multi-line title/author: an indented, non-empty line right after the field
        if current in ("title", "author") and line.startswith((" ", "\t")) and line.strip():
            values[current] = f"{values[current]} {line.strip()}"
            continue
        current = None
    for key in ("title", "author", "translator", "editor", "illustrator", "language", "original_publication"):
        if values.get(key):
            setattr(out, key, values[key])
    for key in EBOOK_DATE_FIELDS:
        if values.get(key):
            out.ebook_dates[key] = _EBOOK_NO_RE.sub("", values[key]).strip(" [],")
    ids = _EBOOK_NO_RE.search(header_text)
    if ids:
        out.ebook_id = ids.group(1) or ids.group(2)
    if out.title is None:
        # Old files: "The Project Gutenberg EBook of <title>, by <author>" on the first line
        first = re.search(r"Project Gutenberg(?:'s)? E-?(?:Book|text) of (.+?)(?:, by (.+))?$", header_text,
                          re.IGNORECASE | re.MULTILINE)
        if first:
            out.title = first.group(1).strip()
            if first.group(2) and out.author is None:
                out.author = first.group(2).strip()
    return out


def read_gutenberg_text(raw: str, fallback_id: str) -> GutenbergBook:
    """Parse a raw PG text (or a plain book without PG markers) into header + body."""
    try:
        split_gutenberg(raw)
        has_markers = True
    except NotGutenbergError:
        has_markers = False
    header = parse_header(raw) if has_markers else GutenbergHeader()
    return GutenbergBook(id=header.ebook_id or fallback_id, header=header, body=strip_boilerplate(raw),
                         has_markers=has_markers)


def read_gutenberg_file(path: str | Path) -> GutenbergBook:
    """Read one PG file (UTF-8; PG's old Latin-1 files are decoded as cp1252 rather than dropped).
    The id is the ebook number from the header, else the file stem."""
    p = Path(path)
    data = p.read_bytes()
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError:
        raw = data.decode("cp1252", errors="replace")
    return read_gutenberg_text(raw, fallback_id=p.stem)
