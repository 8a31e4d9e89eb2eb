"""Dating evidence read from a book's own text (Project Gutenberg header/footer/licence already removed: the
ebook "Release Date" / "Posting Date" never reach these functions).

Each extractor is a plain function `text -> list[Evidence]`. The traps they are written against:
  - a later edition's preface/advertisement ("Preface to the New Edition, 1910", "Introduction to the Third
    Edition", "This impression 1986", "Re-issued 1920"): read as an *upper* bound, never as the date;
  - "Copyright renewed, 1932", a photograph's copyright inside an illustration caption: not the book's copyright;
  - years inside dialogue ("'In 1950 we shall fly,' said he") and future/planned years ("closed until 1920"):
    not used as the latest-mentioned-year lower bound;
  - the author's life dates in a byline ("By Stephen Leacock, 1869-1944"), a modern editor's foreword, lists of
    the author's other books: not read as the work's date.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from filters.dating.evidence import Evidence

MIN_YEAR, MAX_YEAR = 1450, 2029
YEAR = r"(1[4-9]\d\d|20[0-2]\d)"
_MONTHS = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?"
           r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|Christmas|Easter|Midsummer|Michaelmas)\.?")
_YEAR_RE = re.compile(r"(?<![\d£$#%/])" + YEAR + r"(?!\d|\s*(?:%|lbs?\b|feet\b|ft\b|miles?\b|yards?\b|acres?\b))")
# words that make a date describe a later edition / printing rather than the first one
_EDITION_RE = re.compile(
    r"(?<![A-Za-z])(?:second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\d+(?:st|nd|rd|th)|new|revised|enlarged|"
    r"popular|cheap(?:er)?|illustrated|canadian|american|english|colonial|library|collected|uniform|pocket|"
    r"centenary|memorial|definitive|later)\s+edition\b|(?<![A-Za-z])re-?issued?\b|(?<![A-Za-z])reprint(?:ed|s)?\b|(?<![A-Za-z])impression\b|"
    r"(?<![A-Za-z])this\s+(?:[A-Z]\w+\s+){0,2}edition\b|\bpresent edition\b|\bedition of \d{4}\b|\brenew(?:ed|al)\b|"
    r"\brepublication\b|\bunabridged\b",
    re.IGNORECASE,
)
_LIFESPAN_RE = re.compile(r"(?<!\d)(1[4-9]\d\d)\s*[-–—]\s*(1[4-9]\d\d|20[0-2]\d)(?!\d)")
_SECTION_HEAD_RE = re.compile(
    r"(?im)^[ \t_*]*(?:appendix|chapter|preface|introduction|introductory|advertisement|dedication|note|foreword|"
    r"prefatory|postscript|afterword|book|part|contents|to the reader|letter)\b[^\n]{0,90}$"
)
_OTHER_BOOKS_RE = re.compile(r"(?im)^[ \t_*]*(?:by the same author|books by|works by|also by|other books|"
                             r"uniform with this|new books|recent publications)[^\n]{0,60}$")
_ROMAN_YEAR_RE = re.compile(r"^\s*_?(M{1,2}(?:CM|CD|D?C{0,3})(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3}))\s*[._]*\s*$")

# how many chars at the top of the body may hold the title page and its verso
TITLE_ZONE_MAX_CHARS = 8000
# a paragraph this long means prose has begun: the title page is over
PROSE_PARAGRAPH_WORDS = 60


@dataclass(frozen=True)
class YearMention:
    year: int
    pos: int  # char offset in the text


def roman_to_int(s: str) -> int | None:
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total, prev = 0, 0
    for ch in reversed(s.upper()):
        v = values.get(ch)
        if v is None:
            return None
        total = total - v if v < prev else total + v
        prev = max(prev, v)
    return total or None


def _line_at(text: str, pos: int) -> tuple[int, int, str]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return start, end, text[start:end]


def _snippet(text: str, pos: int, width: int = 60) -> str:
    return " ".join(text[max(0, pos - width): pos + width].split())


def _section_heading(text: str, pos: int, lookback: int = 40000) -> str:
    """The heading block of the section `pos` is in: the last heading line before it plus the short one-line
    paragraphs right under it (where subtitles such as "Introduction to the Third Edition" sit)."""
    window_start = max(0, pos - lookback)
    last = None
    for m in _SECTION_HEAD_RE.finditer(text, window_start, pos):
        last = m
    if last is None:
        return ""
    block = [last.group(0).strip()]
    for para in re.split(r"\n[ \t]*\n", text[last.end(): min(pos, last.end() + 600)])[:4]:
        para = para.strip()
        if not para:
            continue
        if "\n" in para or len(para) > 90:
            break
        block.append(para)
    return "\n".join(block)


def _in_edition_context(text: str, pos: int) -> bool:
    _, _, line = _line_at(text, pos)
    return bool(_EDITION_RE.search(line) or _EDITION_RE.search(_section_heading(text, pos)))


def title_zone_end(text: str) -> int:
    """End of the title page(s): the first prose paragraph, or TITLE_ZONE_MAX_CHARS."""
    pos = 0
    for para in re.split(r"(\n[ \t]*\n)", text[:TITLE_ZONE_MAX_CHARS]):
        if _is_prose(para):
            return pos
        pos += len(para)
    return min(len(text), TITLE_ZONE_MAX_CHARS)


def _is_prose(para: str, min_words: int = PROSE_PARAGRAPH_WORDS) -> bool:
    """Running text, not a title page, a boxed list of titles or a contents table: many words, mostly lower case."""
    words = re.findall(r"[A-Za-z][a-z'’]*|[A-Z]{2,}", para)
    if len(words) < min_words:
        return False
    return sum(w[0].islower() for w in words) / len(words) >= 0.6


def _other_books_spans(text: str, end: int) -> list[tuple[int, int]]:
    """Lists of the author's other books ("By the same author"): their years are other works' dates."""
    spans = []
    for m in _OTHER_BOOKS_RE.finditer(text, 0, end):
        first_item = re.search(r"\S", text[m.end():])
        list_start = m.end() + (first_item.start() if first_item else 0)
        gap = re.search(r"\n[ \t]*\n", text[list_start:])
        stop = list_start + (gap.start() if gap else 2000)
        spans.append((m.start(), min(stop, m.end() + 2000)))
    return spans


def _inside(spans: list[tuple[int, int]], pos: int) -> bool:
    return any(a <= pos < b for a, b in spans)


def _illustration_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\[Illustration[^\]]{0,600}\]", text, re.IGNORECASE)]


# --------------------------------------------------------------------------------------------------- copyright
_COPYRIGHT_RE = re.compile(
    r"(?<![A-Za-z])(?:copyright(?:ed)?|copr\.)\s*(?:©|\(c\))?[^\n\d]{0,40}?(" + YEAR +
    r"(?:\s*[,;]?\s*(?:and|&)?\s*(?:by\s+[^\n,]{1,40},\s*)?" + YEAR + r")*)|©\s*" + YEAR,
    re.IGNORECASE,
)
_ENTERED_RE = re.compile(r"entered,?\s+according\s+to\s+(?:the\s+)?act\s+of\s+congress,?\s+in\s+the\s+year\s+"
                         r"(?:of\s+our\s+lord\s+)?(?:[a-z\- ]+?)?" + YEAR, re.IGNORECASE)


def copyright_years(text: str, search_chars: int = 30000) -> list[Evidence]:
    """Copyright lines and US "Entered according to Act of Congress, in the year ..." notices near the front.
    A list of copyright years means earlier pieces collected: the book is the latest year, the pieces go back to
    the earliest. Renewals and illustration credits are left out (traps)."""
    zone = text[:search_chars]
    illus = _illustration_spans(zone)
    found: list[tuple[int, int, str]] = []  # (year, pos, kind)
    for m in _COPYRIGHT_RE.finditer(zone):
        _, _, line = _line_at(zone, m.start())
        if re.search(r"renew", line, re.IGNORECASE) or _inside(illus, m.start()):
            continue
        years = [int(y) for y in re.findall(YEAR, m.group(0))]
        found.extend((y, m.start(), "copyright") for y in years)
    for m in _ENTERED_RE.finditer(zone):
        found.append((int(m.group(1)), m.start(), "copyright"))
    found = [f for f in found if MIN_YEAR <= f[0] <= MAX_YEAR]
    if not found:
        return []
    years = sorted({y for y, _, _ in found})
    latest_pos = max((p for y, p, _ in found if y == years[-1]))
    out = [Evidence("copyright", "point", year=years[-1], confidence=0.9, source=f"text@{latest_pos}",
                    snippet=_snippet(zone, latest_pos), detail={"years": years})]
    if len(years) > 1:
        out.append(Evidence("copyright_earliest", "range", low=years[0], high=years[-1], confidence=0.8,
                            source=f"text@{found[0][1]}", snippet=_snippet(zone, found[0][1]),
                            detail={"years": years}))
    return out


# ---------------------------------------------------------------------------------------- publication lines
_FIRST_PUB_RE = re.compile(
    r"\b(?:first\s+(?:published|printed|issued|appeared|edition)|(?:published|printed|issued|appeared)\s+first|"
    r"publication\s+(?:in\s+" + YEAR + r"\s+)?of\s+the\s+first\s+edition|original(?:ly)?\s+published|"
    r"(?:re)?publication\s+of\s+the\s+work\s+(?:originally\s+)?published)"
    r"[^\n.;]{0,60}?(?:\n[^\n.;]{0,60}?)?" + YEAR,
    re.IGNORECASE,
)
_FIRST_PUB_REVERSED_RE = re.compile(r"\b(?:in\s+)?" + YEAR + r"\s+(?:of\s+)?the\s+first\s+edition\b", re.IGNORECASE)
_PUBLISHED_LINE_RE = re.compile(r"(?im)^[ \t_*]*published\b[^\n]{0,40}?\b" + YEAR + r"\b[ \t._*]*$")
_LATER_PRINTING_RE = re.compile(r"(?im)^[^\n]{0,20}\b(?:this\s+impression|re-?issued|reprinted|new\s+edition|"
                                r"cheap\s+edition|popular\s+edition)\b[^\n]{0,50}?" + YEAR + r"[^\n]{0,20}$")
_SERIAL_RE = re.compile(r"\b(?:serial(?:ly)?|(?:this|these|the present|the following)\s+(?:story|stories|book|"
                        r"sketches|papers|essays|chapters|work|volume))\b[^.]{0,120}?\b(?:magazine|periodical|"
                        r"weekly|monthly|journal|serial(?:ly)?)\b[^.]{0,80}?\b" + YEAR, re.IGNORECASE)
# a title in italics/quotes just before "first published": the sentence is about another work
_OTHER_WORK_BEFORE_RE = re.compile(r"(?:_[^_\n]{2,80}_|\"[^\"\n]{2,80}\"|“[^”\n]{2,80}”)\s*(?:,\s*)?(?:which\s+)?(?:was\s+)?$")


def _sentence_before(text: str, pos: int) -> str:
    start = max(text.rfind(". ", 0, pos), text.rfind("\n\n", 0, pos), pos - 200)
    return text[start:pos]


def _sentence_after(text: str, pos: int, limit: int = 80) -> str:
    window = text[pos: pos + limit]
    end = re.search(r"[.;!?](?:\s|$)", window)
    return window[: end.start()] if end else window


def publication_statements(text: str, search_chars: int = 60000) -> list[Evidence]:
    """"First published 1907", "since the publication in 1868 of the first edition", "Published October 1905";
    "Re-issued 1920" / "This impression 1986" / "This Dover edition, first published in 2006" are later printings:
    upper bounds. A serial run ("contributed as a serial story to ... magazine, during the year 1867") dates the
    text a little before the book. A statement about another work ("a reprint of _Birds in a Village_ first
    published in 1893") is skipped."""
    zone = text[:search_chars]
    others = _other_books_spans(zone, len(zone))
    out: list[Evidence] = []
    seen: set[int] = set()

    def usable(year: int, pos: int) -> bool:
        return MIN_YEAR <= year <= MAX_YEAR and pos not in seen and not _inside(others, pos)

    for m in list(_FIRST_PUB_RE.finditer(zone)) + list(_FIRST_PUB_REVERSED_RE.finditer(zone)):
        years = [int(y) for y in m.groups() if y]
        year, pos = years[-1], m.start()
        if not usable(year, pos):
            continue
        seen.add(pos)
        before = _sentence_before(zone, pos)
        if _OTHER_WORK_BEFORE_RE.search(before):
            continue
        about_original = re.match(r"(?i)(?:re)?publication|original|in\s|\d", m.group(0)) is not None
        if not about_original and _EDITION_RE.search(before):  # "This Dover edition, first published in 2006"
            out.append(Evidence("later_edition", "upper", high=year, confidence=0.9, source=f"text@{pos}",
                                snippet=_snippet(zone, pos)))
        else:
            out.append(Evidence("first_published", "point", year=year, confidence=0.95, source=f"text@{pos}",
                                snippet=_snippet(zone, pos)))
    for m in _PUBLISHED_LINE_RE.finditer(zone):
        year, pos = int(m.group(1)), m.start()
        if not usable(year, pos):
            continue
        seen.add(pos)
        if _in_edition_context(zone, pos):
            out.append(Evidence("later_edition", "upper", high=year, confidence=0.85, source=f"text@{pos}",
                                snippet=_snippet(zone, pos)))
        else:
            out.append(Evidence("published_line", "point", year=year, confidence=0.85, source=f"text@{pos}",
                                snippet=_snippet(zone, pos)))
    for m in _LATER_PRINTING_RE.finditer(zone[:20000]):
        year, pos = int(m.group(1)), m.start()
        if usable(year, pos):
            seen.add(pos)
            out.append(Evidence("later_edition", "upper", high=year, confidence=0.9, source=f"text@{pos}",
                                snippet=_snippet(zone, pos)))
    for m in _SERIAL_RE.finditer(zone):
        year, pos = int(m.group(1)), m.start()
        if usable(year, pos):
            seen.add(pos)
            out.append(Evidence("serial_publication", "range", low=year, high=year + 2, confidence=0.6,
                                source=f"text@{pos}", snippet=_snippet(zone, pos)))
    return out


# ------------------------------------------------------------------------------------------------ title page
_PUBLISHER_CUE_RE = re.compile(
    r"\b(?:co\.?|company|press|sons|brothers|bros\.?|publishers?|published|printed|printing|ltd\.?|limited|inc\.?|"
    r"office)\b|&", re.IGNORECASE)
_IMPRINT_CUE_RE = re.compile(
    r"\b(?:co\.?|company|press|sons|brothers|bros\.?|publishers?|published|printed|printing|ltd\.?|limited|inc\.?|"
    r"london|new york|boston|edinburgh|philadelphia|chicago|toronto|sydney|paris|oxford|cambridge|glasgow|dublin|"
    r"montreal|melbourne|leipzig|washington|murray|macmillan|scribner\w*|putnam\w*|harper\w*|longmans?|warne|"
    r"dent|methuen|appleton\w*|houghton|lippincott|dutton|stokes|doubleday|heinemann|chatto|bentley|"
    r"blackwood|smith,? elder|office)\b|&",
    re.IGNORECASE,
)


# houses and series that (almost) only reprinted books first published elsewhere: a title page naming one is a
# reprint's, so its year is a later edition's (general book-trade knowledge, not fitted on anything)
_REPRINT_HOUSE_RE = re.compile(
    r"\b(?:grosset\s*(?:&|and)\s*dunlap|a\.\s*l\.\s*burt|hurst\s*(?:&|and)\s*co(?:mpany|\.)?|"
    r"m\.\s*a\.\s*donohue|donohue\s*(?:&|and)\s*co|tauchnitz|collection\s+of\s+british\s+authors|"
    r"everyman'?s\s+library|the\s+world'?s\s+classics|nelson'?s\s+(?:library|sevenpenny|shilling)|"
    r"collins'?\s+clear-?type|tower\s+books|modern\s+library|burt'?s\s+home\s+library)\b", re.IGNORECASE)


def title_page_years(text: str) -> list[Evidence]:
    """A year standing alone on a title-page line ("1913", "_1923_", "1868.", "MDCCCLXVIII") or closing/opening a
    short imprint line ("Frederick Warne & Co., 1902", "1903 by Frederick Warne & Co."). It is the year *this
    edition* was printed: the first edition is that year or earlier (a reprint), so it is an upper bound that is
    most likely exact - unless the title page names a reprint house or series (Grosset & Dunlap, A. L. Burt,
    Tauchnitz, Everyman's Library, ...): then it is a later edition's year. Dated signature lines ("Christmas,
    1901") are left to `dated_lines`."""
    end = title_zone_end(text)
    zone = text[:end]
    others = _other_books_spans(text, end)
    reprint_house = _REPRINT_HOUSE_RE.search(zone)
    out: list[Evidence] = []
    for m in re.finditer(r"(?m)^[^\n]*$", zone):
        line = m.group(0)
        stripped = line.strip(" \t_*.,;:()[]")
        if not stripped or _inside(others, m.start()):
            continue
        if (re.search(r"copyright|©|\bcopr\b|\bborn\b|\bdied\b|first published", line, re.IGNORECASE)
                or _LIFESPAN_RE.search(line) or re.search(_MONTHS + r"\s*\d{0,2}(?:st|nd|rd|th)?,?\s*" + YEAR, line)):
            continue
        year = None
        ym = re.fullmatch(YEAR, stripped)
        if ym:
            year = int(ym.group(1))
        else:
            rm = _ROMAN_YEAR_RE.match(line)
            if rm and len(rm.group(1)) >= 4:
                year = roman_to_int(rm.group(1))
            elif (len(stripped) <= 70 and len(re.findall(r"\d+", line)) == 1 and _IMPRINT_CUE_RE.search(line)
                  and not re.search(r"\S\s{3,}\S", line)):
                im = re.search(r"[,\s]" + YEAR + r"[\s._*]*$", line) or re.match(r"^[\s_*]*" + YEAR + r"\s+by\b", line)
                year = int(im.group(1)) if im else None
        if year is None or not (MIN_YEAR <= year <= MAX_YEAR):
            continue
        kind = "later_edition" if _EDITION_RE.search(line) or reprint_house else "title_page_year"
        detail = {"likely_exact": kind == "title_page_year"}
        if reprint_house:
            detail["reprint_publisher"] = reprint_house.group(0)
        out.append(Evidence(kind, "upper", high=year, confidence=0.8 if kind == "title_page_year" else 0.9,
                            source=f"text@{m.start()}", snippet=_snippet(text, m.start()), detail=detail))
    return out


# ---------------------------------------------------------------------------------- signatures, letters, diaries
_DATE_LINE_RE = re.compile(
    r"(?m)^[ \t_*(\[]*(?P<place>(?:[A-Z][A-Za-z.'’ \-]{1,40}[,.][ \t]*){0,3})"
    r"(?P<day>(?:the[ \t]+)?\d{1,2}(?:st|nd|rd|th)?\.?[ \t]+(?:of[ \t]+)?" + _MONTHS + r",?[ \t]*|"
    + _MONTHS + r"[ \t]*(?:\d{1,2}(?:st|nd|rd|th)?\.?,?)?[ \t]*)?,?[ \t]*" + YEAR + r"[ \t.,_*)\]]*$"
)
_SIGNATURE_SECTIONS = re.compile(r"preface|introduct|advertisement|dedicat|note|foreword|prefatory|to the reader"
                                 r"|postscript|afterword|apology|address", re.IGNORECASE)


def _date_line_year(m: re.Match) -> int:
    return int(m.group(m.lastindex))


def dated_lines(text: str) -> list[Evidence]:
    """Short lines that are nothing but a date, optionally with a place: "New York, April, 1868",
    "_November 1852_", "Boston. January 1,1865.", "McGill University, June, 1912.", "_Christmas, 1901_".
    Under a preface / introduction / dedication / advertisement, or before the first chapter, they sign it (the
    book appears that year or the next); under a later edition's heading ("Advertisement to the Third Edition")
    they are an upper bound; inside chapters they date letters or diary entries, which the text follows (a lower
    bound; the span of dates is kept as detail). Bare years are left to the title-page extractor."""
    tz = title_zone_end(text)
    others = _other_books_spans(text, min(len(text), 60000))
    illus = _illustration_spans(text)
    front_end = max(int(len(text) * 0.05), tz + 3000)
    for ch in re.finditer(r"(?im)^[ \t_*]*chapter\s+(?:i|1|one|the first)\b[^\n]{0,80}$", text):
        # the real first chapter, not its line in a table of contents: running text follows it
        if any(_is_prose(p, 30) for p in re.split(r"\n[ \t]*\n", text[ch.end(): ch.end() + 4000])[:6]):
            front_end = ch.start()
            break
    signatures: list[Evidence] = []
    letters: list[tuple[int, int]] = []
    for m in _DATE_LINE_RE.finditer(text):
        line = m.group(0)
        if len(line.strip()) > 60 or _inside(others, m.start()) or _inside(illus, m.start()):
            continue
        if re.fullmatch(r"[\s_*.,()\[\]]*" + YEAR + r"[\s_*.,()\[\]]*", line):
            continue  # a bare year: title page or chapter heading, not a signature
        if re.search(r"copyright|©|renew", line, re.IGNORECASE):
            continue  # copyright lines are `copyright_years`' business
        if not m.group("day"):
            # "Belleville, 1871" is a signature; "Boston: Roberts Brothers. 1879." is an imprint and
            # "Lucy Maud Montgomery Short Stories, 1904" a title: places are short, imprints name a publisher
            place_parts = [p for p in re.split(r"[,.]", m.group("place")) if p.strip()]
            if any(len(p.split()) > 3 for p in place_parts) or _PUBLISHER_CUE_RE.search(line):
                continue
        year = _date_line_year(m)
        if not (MIN_YEAR <= year <= MAX_YEAR):
            continue
        heading = _section_heading(text, m.start())
        head_line = heading.split("\n", 1)[0] if heading else ""
        if _EDITION_RE.search(heading) or _EDITION_RE.search(line):
            signatures.append(Evidence("later_edition_preface", "upper", high=year, confidence=0.85,
                                       source=f"text@{m.start()}", snippet=_snippet(text, m.start()),
                                       detail={"section": " ".join(heading.split())[:80]}))
        elif m.start() < front_end or _SIGNATURE_SECTIONS.search(head_line):
            signatures.append(Evidence("preface_date", "point", year=year, confidence=0.8,
                                       source=f"text@{m.start()}", snippet=_snippet(text, m.start()),
                                       detail={"section": " ".join(heading.split())[:80]}))
        else:
            letters.append((year, m.start()))
    out = signatures
    if letters:
        years = sorted(y for y, _ in letters)
        pos = max(letters)[1]
        out.append(Evidence("dated_letters", "lower", low=years[-1], confidence=0.7, source=f"text@{pos}",
                            snippet=_snippet(text, pos),
                            detail={"count": len(years), "first": years[0], "last": years[-1]}))
    return out


# ------------------------------------------------------------------------------------ dated tables of contents
def contents_years(text: str, search_chars: int = 40000) -> list[Evidence]:
    """A contents list whose entries end in years ("A Case of Trespass      1897"): a collection of pieces
    published over that span."""
    zone = text[:search_chars]
    hits = [(int(m.group(1)), m.start()) for m in
            re.finditer(r"(?m)^[ \t]*[A-Za-z\"'“‘][^\n\d]{2,80}?\s{2,}" + YEAR + r"[ \t.]*$", zone)]
    if len(hits) < 3:
        return []
    years = sorted(y for y, _ in hits)
    return [Evidence("contents_years", "range", low=years[0], high=years[-1], confidence=0.85,
                     source=f"text@{hits[0][1]}", snippet=_snippet(zone, hits[0][1]),
                     detail={"entries": len(hits)})]


# ----------------------------------------------------------------------------------------------- title years
def title_years(title: str | None) -> list[Evidence]:
    """Years in the title: "Short Stories, 1896 to 1901" (a range), "Short Stories, 1904", "Kerfol 1916" (a
    date), but "The Campaign of 1812" / "Paris in 1789" are the subject: a lower bound only."""
    if not title:
        return []
    rm = re.search(YEAR + r"\s*(?:to|[-–—]|and|&)\s*" + YEAR, title)
    if rm:
        lo, hi = sorted((int(rm.group(1)), int(rm.group(2))))
        return [Evidence("title_years", "range", low=lo, high=hi, confidence=0.8, source="title", snippet=title)]
    out = []
    for m in re.finditer(YEAR, title):
        year = int(m.group(1))
        before = title[: m.start()].rstrip()
        if re.search(r"\b(?:of|in|since|from|after|before|until|year|anno)$", before, re.IGNORECASE):
            out.append(Evidence("title_subject_year", "lower", low=year, confidence=0.7, source="title",
                                snippet=title))
        else:
            out.append(Evidence("title_year", "point", year=year, confidence=0.7, source="title", snippet=title))
    return out


# ------------------------------------------------------------------------------ latest year mentioned (lower)
_FUTURE_RE = re.compile(r"\b(?:until|till|til|before|by|not later than|next|coming|will|shall|should|would|must|"
                        r"may|might|ought|opens?|closes?|expires?|expect\w*|hope\w*|plan\w*|propos\w*|intend\w*|"
                        r"predict\w*|prophes\w*|between|from now|future|year 2\d\d\d)\b", re.IGNORECASE)
# "nearly 2000 sorts", "about 1500 men": quantities, not years
_QUANTITY_BEFORE_RE = re.compile(r"\b(?:about|nearly|some|over|almost|upwards of|more than|less than|fewer than|than|"
                                 r"at least|at most|only|approximately|no fewer than|no less than|one in|1 in|out of|"
                                 r"per|in every|No\.|number)\s*$", re.IGNORECASE)
_QUANTITY_AFTER_RE = re.compile(r"^\s*(?:[a-z]+s\b|b\.?\s?c\.?|B\.?\s?C\.?|[a-z]+\s+(?:of|per)\b)")
_NOT_QUANTITY_WORDS = {"was", "has", "is", "as", "his", "this", "its", "us", "yes", "thus", "always", "perhaps"}


def quoted_spans(text: str) -> list[tuple[int, int]]:
    """Spans of direct speech: “…”, "…" (paired per paragraph) and ‘…’ / '…' used as quotation marks."""
    spans: list[tuple[int, int]] = []
    for m in re.finditer(r"“[^”]{0,3000}”", text):
        spans.append((m.start(), m.end()))
    for para in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text):
        p = para.group(0)
        idx = [i for i, c in enumerate(p) if c == '"']
        for a, b in zip(idx[0::2], idx[1::2]):
            spans.append((para.start() + a, para.start() + b + 1))
    for m in re.finditer(r"(?<![A-Za-z])['‘](?=[A-Z])[^'’\n]{0,300}(?:\n[^'’\n]{0,300}){0,10}[.,!?;:\-—]['’](?![A-Za-z])",
                         text):
        spans.append((m.start(), m.end()))
    spans.sort()
    return spans


def _is_table_line(line: str) -> bool:
    return "|" in line or len(re.findall(r"\d+", line)) >= 4 or re.search(r"\s{4,}\S+\s{4,}", line) is not None


def _looks_like_quantity(text: str, start: int, end: int) -> bool:
    if _QUANTITY_BEFORE_RE.search(text[max(0, start - 30): start]):
        return True
    after = text[end: end + 25]
    m = _QUANTITY_AFTER_RE.match(after)
    return bool(m) and m.group(0).strip().split()[0].lower() not in _NOT_QUANTITY_WORDS


def year_mentions(text: str, start: int = 0) -> list[YearMention]:
    """Years the text itself uses as past dates: outside dialogue, tables, illustration captions, quantities,
    future/plan phrases and edition/reprint lines."""
    quotes = quoted_spans(text)
    qi = 0
    illus = _illustration_spans(text)
    out = []
    for m in _YEAR_RE.finditer(text, start):
        pos = m.start()
        while qi < len(quotes) and quotes[qi][1] <= pos:
            qi += 1
        if qi < len(quotes) and quotes[qi][0] <= pos < quotes[qi][1]:
            continue  # dialogue: a character may speak of any year, future ones included
        if _inside(illus, pos) or _looks_like_quantity(text, pos, m.end()):
            continue
        _, _, line = _line_at(text, pos)
        if _is_table_line(line) or _EDITION_RE.search(line):
            continue
        if _FUTURE_RE.search(_sentence_before(text, pos)[-120:]) or _FUTURE_RE.search(_sentence_after(text, m.end())):
            continue
        year = int(m.group(1))
        if MIN_YEAR <= year <= MAX_YEAR:
            out.append(YearMention(year, pos))
    return out


def latest_mentioned_year(text: str) -> list[Evidence]:
    """The latest year the body mentions as a past date: the text was written after it (a lower bound). Title
    page and front matter are left to the other extractors. A year far beyond every other mention (a modern
    editor's note, a misprint) gets less trust."""
    tz = title_zone_end(text)
    mentions = year_mentions(text, start=tz)
    if not mentions:
        return []
    years = sorted(m.year for m in mentions)
    top = years[-1]
    # support: how many mentions fall within 5 years of the maximum
    support = sum(1 for y in years if y >= top - 5)
    gap = top - years[-2] if len(years) > 1 else 0
    conf = 0.75 if support >= 3 else 0.6 if support == 2 else 0.45
    if gap > 20:
        conf = min(conf, 0.35)
    pos = max((m.pos for m in mentions if m.year == top))
    return [Evidence("latest_mention", "lower", low=top, confidence=conf, source=f"text@{pos}",
                     snippet=_snippet(text, pos), detail={"mentions": len(years), "support": support})]


def text_evidence(text: str, title: str | None = None) -> list[Evidence]:
    """All text extractors on one (boilerplate-free) book text."""
    ev: list[Evidence] = []
    ev += title_years(title)
    ev += copyright_years(text)
    ev += publication_statements(text)
    ev += title_page_years(text)
    ev += dated_lines(text)
    ev += contents_years(text)
    ev += latest_mentioned_year(text)
    return ev
