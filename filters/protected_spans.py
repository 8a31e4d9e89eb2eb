"""Span protection for machine translation (pure functions, no model).

`find_spans(text)` finds what a translator must not touch: fenced and inline code, LaTeX/math, HTML/XML tags,
URLs, e-mails, JSON keys, placeholders (`{x}`, `{{name}}`, `%s`, `%(n)d`, `${var}`), file paths and numbers with
units. Patterns run in priority order and a later match overlapping an earlier one is dropped, so nested cases
resolve to the outer span: code inside a markdown list is one fenced block (its indentation inside the span),
`$\\frac{a}{b}$` is one math span (its braces are never placeholders), a URL inside parentheses stops before the
closing parenthesis unless the URL opened it.

`mask` replaces each span by an opaque marker `⟦n⟧` and records the span's sha256; `restore` puts the spans back
into a translation and says, span by span, whether it came back byte-identical (checked by hash): `restored`
(its marker came back once), `verbatim` (no marker, but the translator copied the span itself), `missing`,
`duplicated` (its marker came back more than once). Markers the source never had are reported as unknown.

The shared part for any generator that sends text with spans through an LLM (sphinx's translations today):
`mask_fields` masks several fields of one record with one marker numbering (a marker that comes back in the wrong
field is unknown there), `has_prose` says whether a masked field has anything left for the model, `restore` gives
per span a status, `Restored.problems` the reason text of the spans not back intact (`⟦2⟧:missing`) and
`Restored.records(field)` the rows of a `protected_spans` column (`SPAN_RECORD_TYPE`); `INTACT` are the statuses that
count as back byte-identical.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

import pyarrow as pa

MARKER_OPEN, MARKER_CLOSE = "⟦", "⟧"
MARKER_RE = re.compile(r"⟦\s*(\d+)\s*⟧")  # a translator may pad the marker with spaces
INTACT = ("restored", "verbatim")  # the span statuses that count as back byte-identical

UNITS = (
    "km/h|km²|km2|km|kg|mg|µg|g|mm|cm²|cm2|cm|m²|m2|m³|m|µm|nm|mi|mph|ft|yd|lb|lbs|oz|mL|ml|L|l|kWh|kW|W|MW|V|mV|mAh|"
    "A|mA|Hz|kHz|MHz|GHz|ms|µs|ns|s|sec|min|h|hr|hrs|KB|MB|GB|TB|PB|kB|Kb|Mb|Gb|kbps|Mbps|Gbps|px|pt|em|rem|dpi|"
    "°C|°F|°|K|%|‰|cal|kcal|kJ|J|N|Pa|kPa|bar|atm|dB|mol|ppm|x")
_NUM = r"[-+]?\d+(?:[.,]\d+)*"

# (kind, pattern, group holding the span or 0); order = priority
PATTERNS: list[tuple[str, re.Pattern, int]] = [
    ("code_block", re.compile(r"^([ \t]*)(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\2[ \t]*$|\Z)", re.M | re.S), 0),
    ("math_block", re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\begin\{([A-Za-z*]+)\}.*?\\end\{\1\}", re.S), 0),
    ("inline_code", re.compile(r"(`+)(?!`)(?:(?!\n\s*\n).)+?(?<!`)\1(?!`)", re.S), 0),
    # pandoc's rule: no space after the opening $, none before the closing $, no digit right after it
    ("math", re.compile(r"\\\(.+?\\\)|(?<![\\$\w])\$(?![\s$])(?:[^$\n\\]|\\.)+?(?<![\s\\])\$(?![\d$])"), 0),
    ("tag", re.compile(r"<!--.*?-->|</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",
                       re.S), 0),
    ("url", re.compile(r"\b(?:https?|ftp)://[^\s<>\"'`]+|\bwww\.[A-Za-z0-9-]+\.[^\s<>\"'`]+"), 0),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), 0),
    ("json_key", re.compile(r"(?:(?<=[{,])|(?<=[{,][ \t])|(?<=\n))[ \t]*(\"[^\"\\\n]{1,80}\")\s*:"), 1),
    ("placeholder", re.compile(r"\{\{\s*[\w.]+\s*\}\}|\{[\w.]*(?:![rsa])?(?::[^{}\s]*)?\}|\$\{\w+\}"
                               r"|(?<![\w%])%(?:\(\w+\)|\d+\$)?[-+#0]*\d*(?:\.\d+)?[sdifeEgGxXoc]\b"), 0),
    ("path", re.compile(r"\b[A-Za-z]:\\(?:[^\\\s:*?\"<>|]+\\)*[^\\\s:*?\"<>|]*"
                        r"|(?<![\w/:.~])(?:~|\.{1,2})?/(?:[\w.@+-]+/)+[\w.@+-]*"
                        r"|(?<![\w/.])(?:~|\.{1,2})/[\w.@+-]+"
                        r"|\b(?:[\w.-]+/)*[\w-]+\.(?:py|js|ts|tsx|jsx|json|ya?ml|toml|ini|cfg|conf|txt|csv|tsv|md|"
                        r"html?|css|sh|bash|c|cc|cpp|h|hpp|java|kt|rs|go|rb|php|sql|xml|log|pdf|png|jpe?g|gif|"
                        r"svg|docx?|xlsx?|pptx?|zip|tar|gz|parquet|ipynb)\b"), 0),
    ("number_unit", re.compile(rf"(?<![\w.,])(?:[$€£¥₹]\s?{_NUM}|{_NUM}\s?(?:{UNITS})(?![\w²³]))"), 0),
]
KINDS = tuple(k for k, _, _ in PATTERNS)
CODE_MATH_KINDS = ("code_block", "math_block", "inline_code", "math")
_TRAILING = ".,;:!?'\"»”’"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    text: str


def _trim_url(s: str) -> str:
    """Drop trailing punctuation and closing brackets the URL did not open ("(see http://x.org/a_(b)).")."""
    while s:
        if s[-1] in _TRAILING:
            s = s[:-1]
        elif s[-1] in ")]}" and s.count(s[-1]) > s.count({")": "(", "]": "[", "}": "{"}[s[-1]]):
            s = s[:-1]
        else:
            break
    return s


def find_spans(text: str, kinds: tuple[str, ...] | None = None, extra: list[Span] | None = None) -> list[Span]:
    """Non-overlapping protected spans in text order. `extra` (e.g. a task's payload) wins over every pattern."""
    taken: list[Span] = sorted(extra or [], key=lambda s: s.start)
    for kind, pat, group in PATTERNS:
        if kinds is not None and kind not in kinds:
            continue
        for m in pat.finditer(text):
            start, end = m.span(group)
            if kind in ("url", "path"):  # "(see http://x.org/a_(b))." / "in /etc/passwd."
                end = start + len(_trim_url(m.group(group)))
            if end <= start or any(start < s.end and s.start < end for s in taken):
                continue
            taken.append(Span(start, end, kind, text[start:end]))
    return sorted(taken, key=lambda s: s.start)


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Protected:
    marker: str  # "⟦3⟧"
    index: int
    kind: str
    text: str
    sha256: str


def mask(text: str, spans: list[Span], first_index: int = 1) -> tuple[str, list[Protected]]:
    """(text with each span replaced by its marker, the spans in marker order). Raises ValueError when the text
    already holds a marker character (its markers would be ambiguous)."""
    if MARKER_OPEN in text or MARKER_CLOSE in text:
        raise ValueError("text contains the marker characters ⟦ ⟧")
    out, prot, pos = [], [], 0
    for i, s in enumerate(sorted(spans, key=lambda s: s.start), first_index):
        marker = f"{MARKER_OPEN}{i}{MARKER_CLOSE}"
        out += [text[pos:s.start], marker]
        prot.append(Protected(marker, i, s.kind, s.text, sha256(s.text)))
        pos = s.end
    out.append(text[pos:])
    return "".join(out), prot


def mask_fields(fields: dict[str, tuple[str, list[Span] | None]]) -> dict[str, tuple[str, list[Protected]]]:
    """{field: (masked text, its spans)} for several fields of one record, {field: (text, extra spans)} in, with
    one marker numbering across them (in the order given: the second field's first marker follows the first
    field's last). Raises ValueError as `mask` does."""
    out, first = {}, 1
    for name, (text, extra) in fields.items():
        out[name] = mask(text, find_spans(text, extra=extra), first)
        first += len(out[name][1])
    return out


def has_prose(masked: str) -> bool:
    """A masked text has prose for the model (letters outside its markers); without, it is used as it is."""
    return has_letters(prose(masked))


SPAN_RECORD_TYPE = pa.struct([("field", pa.string()), ("marker", pa.string()), ("kind", pa.string()),
                              ("text", pa.string()), ("sha256", pa.string()), ("status", pa.string())])


def span_record(field_name: str, p: Protected, status: str) -> dict:
    """One row of a `protected_spans` column (`SPAN_RECORD_TYPE`)."""
    return {"field": field_name, "marker": p.marker, "kind": p.kind, "text": p.text, "sha256": p.sha256,
            "status": status}


@dataclass
class Restored:
    text: str
    status: dict[int, str]  # marker index -> restored / verbatim / missing / duplicated
    unknown: list[str]  # markers in the translation that the source did not have
    spans: list[Protected] = field(default_factory=list)  # the source's spans, in marker order

    @property
    def intact(self) -> bool:
        return not self.unknown and all(v in INTACT for v in self.status.values())

    @property
    def problems(self) -> list[str]:
        """Each span not back intact (`⟦2⟧:missing`), in marker order, then each unknown marker (`⟦9⟧:unknown`)."""
        bad = [f"{p.marker}:{self.status[p.index]}" for p in self.spans if self.status[p.index] not in INTACT]
        return bad + [f"{m}:unknown" for m in self.unknown]

    def records(self, field_name: str) -> list[dict]:
        """The spans as rows of a `protected_spans` column, each with its status."""
        return [span_record(field_name, p, self.status[p.index]) for p in self.spans]


def restore(translation: str, spans: list[Protected]) -> Restored:
    """Put the protected spans back into a translation of the masked text; each span checked by hash."""
    by_index = {p.index: p for p in spans}
    counts: dict[int, int] = {}
    for m in MARKER_RE.finditer(translation):
        counts[int(m.group(1))] = counts.get(int(m.group(1)), 0) + 1
    unknown = sorted({m.group(0) for m in MARKER_RE.finditer(translation) if int(m.group(1)) not in by_index})
    pieces, inserted, pos, length = [], [], 0, 0
    for m in MARKER_RE.finditer(translation):
        p = by_index.get(int(m.group(1)))
        if p is None:
            continue
        pieces.append(translation[pos:m.start()])
        length += m.start() - pos
        inserted.append((p.index, length, length + len(p.text)))
        pieces.append(p.text)
        length += len(p.text)
        pos = m.end()
    pieces.append(translation[pos:])
    text = "".join(pieces)
    status = {}
    for p in spans:
        n = counts.get(p.index, 0)
        if n == 1:
            _, a, b = next(x for x in inserted if x[0] == p.index)
            status[p.index] = "restored" if sha256(text[a:b]) == p.sha256 else "altered"
        elif n > 1:
            status[p.index] = "duplicated"
        else:
            status[p.index] = "verbatim" if _verbatim(p.text, translation) else "missing"
    return Restored(text, status, unknown, list(spans))


def _verbatim(span: str, text: str) -> bool:
    """The span itself, not inside a longer token ("https://x.org" in "https://x.org/a" is not it)."""
    return re.search(r"(?<![\w/@.-])" + re.escape(span) + r"(?![\w/@-]|\.\w)", text) is not None


def prose(masked: str) -> str:
    """The translatable prose of a masked text: markers removed, whitespace collapsed (what language ID reads)."""
    return " ".join(MARKER_RE.sub(" ", masked).split())


def has_letters(s: str) -> bool:
    return any(ch.isalpha() for ch in s)


_CODE_LINE = re.compile(r"^\s*(?:def |class |import |from \S+ import|return\b|for .*:$|if .*:$|while .*:$|#include|"
                        r"public |private |function |var |let |const |SELECT |INSERT |\$ |>>> )|[;{}]\s*$")
_OPS = r"+\-*/^=<>≤≥≠±×÷√%"
_MATH_TOKEN = re.compile(rf"^[\d.,(){_OPS}]*\d[\d.,(){_OPS}a-zA-Z]*$|^[a-zA-Z]$|^[+\-*/^=<>×÷]$")


def code_math_share(text: str, formulas: bool = True) -> float:
    """Share of non-space characters that are code or math: code/math spans, code-looking lines outside them, and
    (`formulas`) formula tokens (`2x+3=11`, `x`, `=`) in lines that are mostly formula."""
    spans = find_spans(text, kinds=CODE_MATH_KINDS)
    total = sum(not c.isspace() for c in text)
    if not total:
        return 0.0
    covered = sum(sum(not c.isspace() for c in s.text) for s in spans)
    rest = text
    for s in reversed(spans):
        rest = rest[:s.start] + "\n" + rest[s.end:]
    for line in rest.split("\n"):
        toks = line.split()
        if not toks:
            continue
        if _CODE_LINE.search(line):
            covered += sum(len(t) for t in toks)
            continue
        if not formulas:
            continue
        math = [t for t in toks if _MATH_TOKEN.match(t)]
        if len(math) * 2 >= len(toks) and any(c.isdigit() or c in "=+-*/^" for t in math for c in t):
            covered += sum(len(t) for t in math)
    return min(1.0, covered / total)
