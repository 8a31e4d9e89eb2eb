"""Fast text primitives shared by the filters.

`split_words` approximates spaCy's blank-English tokenizer (what datatrove's Gopher/FineWeb filters use) with one
regex: punctuation marks are their own tokens, clitics ('s, n't) split off, URLs and numbers kept whole. It is
~20x faster; bench/curation.py measures how often the decisions agree with datatrove's.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import chain

from datatrove.utils.text import PUNCTUATION_SET, TERMINAL_PUNCTUATION

__all__ = ["split_words", "PUNCTUATION_SET", "TERMINAL_PUNCTUATION", "is_symbol_word", "count_sentences", "has_alpha",
           "is_non_symbol"]

# --- a fast emulation of spaCy's blank-English tokenizer ------------------------------------------------------
# Whitespace chunks; prefixes and suffixes peeled off one at a time; a few infix rules; clitics split. The sets
# below follow spaCy's `lang/punctuation.py` and English exceptions closely enough that Gopher/FineWeb decisions
# agree with datatrove's on >= 99% of web documents (bench/curation.py).
_FULLWIDTH_PUNCT = "！？。，、；："  # CJK sentence punctuation: splits words wherever it stands (_chunk_tokens)
_FULLWIDTH_RE = re.compile(f"([{_FULLWIDTH_PUNCT}])")
_PREFIX_CHARS = set("§%=—–+([{<\"'“”‘’`´‚„»«「」『』（）［］｛｝〈〉《》【】$£€¥฿₽₴₩₹#*&_!?¿¡,:;…」")
_PREFIX_CHARS |= set(_FULLWIDTH_PUNCT)
_SUFFIX_CHARS = set(")]}>\"'“”‘’`´»«」』）］｝〉》】,:;!?…%°—–+*&#([{") | set(_FULLWIDTH_PUNCT)
_QUOTES = set("\"'“”‘’`´‚„»«")
_URL_RE = re.compile(r"^(?:https?://|www\.)\S+$|^[\w.+-]+@[\w-]+\.[\w.-]+$")
_CLITIC_RE = re.compile(r"^(.+?)(n['’]t|['’](?:s|S|re|RE|ve|VE|ll|LL|d|D|m|M))$")
_INFIX_RE = re.compile(
    r"\.{2,}|…"                                   # ellipses
    r"|(?<=[0-9])[+\-*^](?=[0-9-])"                # 3-4, 2^8
    r"|(?<=[a-z'\"’”])\.(?=[A-Z'\"‘“])"            # end.Start
    r"|(?<=[^\W\d_]),(?=[^\W\d_])"                 # word,word
    r"|(?<=[^\W_]|[0-9])(?:--|---|—|–|-|~)(?=[^\W\d_])"  # well-known, 3-D
    r"|(?<=[^\W_])[:<>=/](?=[^\W\d_])"             # a/b, key=value
)
_EXCEPTIONS = {
    "cannot": ["can", "not"], "gonna": ["gon", "na"], "gotta": ["got", "ta"], "wanna": ["wan", "na"],
    "Cannot": ["Can", "not"], "lemme": ["lem", "me"],
}
_ABBREV = {"Mr.", "Mrs.", "Ms.", "Dr.", "St.", "vs.", "Jr.", "Sr.", "Prof.", "Inc.", "Ltd.", "Co.", "Mt.", "Jan.", "Feb.", "Mar.", "Apr.", "Jun.", "Jul.", "Aug.", "Sep.", "Sept.", "Oct.", "Nov.", "Dec.",
           "Gov.", "Gen.", "Rev.", "Sen.", "Rep.", "Ave.", "Corp.", "e.g.", "i.e.", "a.m.", "p.m.", "Ph.D.",
           "Mo.", "Wis.", "Calif.", "Mass.", "Conn.", "Va.", "Ga.", "Fla.", "Ill.", "N.Y.", "U.S.", "U.K.",
           "Adm.", "Capt.", "Col.", "Lt.", "Sgt.", "Bros.", "Md.", "Tenn.", "Ariz.", "Ark.", "Colo.", "Del.",
           "Ind.", "Kan.", "Ky.", "La.", "Mich.", "Minn.", "Miss.", "Neb.", "Nev.", "Okla.", "Ore.", "Pa.", "Wash.",
           "ca.", "cf.", "al.", "approx.", "dept.", "est.", "fig.", "govt."}
_UNITS_RE = re.compile(
    r"^(\d+(?:[.,]\d+)?)(km|m|dm|cm|mm|nm|ha|yd|in|ft|kg|g|mg|lb|oz|mph|kmh|hPa|Pa|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K"
    r"|am|pm|a\.m\.|p\.m\.)$"
)
_EMOTICONS = {":)", ":(", ":-)", ":-(", ";)", ";-)", ":D", ":P", ":p", ":-D", ":/", ":'(", "<3", "=)", "xD", "XD",
              "^_^", "-_-", ":o", ":O", "(:", "):", "._.", ":3", "8)"}


def _is_icon(ch: str) -> bool:
    """spaCy's LIST_ICONS: 'other symbol' characters (©, ®, ■, emoji) split off like punctuation."""
    return ch > "\x7f" and unicodedata.category(ch) == "So"


def _suffix_period_splits(tok: str) -> bool:
    """spaCy splits a final '.' after a digit, a lower-case letter, punctuation or a quote, or two capitals."""
    if len(tok) < 2:
        return False
    prev = tok[-2]
    if prev.isdigit() or prev.islower() or prev in _SUFFIX_CHARS or prev in _QUOTES or prev == ".":
        return True
    return len(tok) >= 3 and tok[-2].isupper() and tok[-3].isupper()


def _is_special(chunk: str) -> bool:
    return (chunk in _ABBREV or chunk in _EMOTICONS or chunk == "''"
            or (len(chunk) == 2 and chunk[1] == "." and chunk[0].isalpha()))  # spaCy keeps "a." .. "z."


def _split_chunk(chunk: str, out: list[str]) -> None:
    if chunk in _EXCEPTIONS:
        out.extend(_EXCEPTIONS[chunk])
        return
    if chunk.isalnum() or _is_special(chunk):
        m = _UNITS_RE.match(chunk) if chunk[0].isdigit() else None
        if m:
            out.extend(m.groups())
        else:
            out.append(chunk)
        return
    suffixes: list[str] = []
    while chunk:
        if _is_special(chunk) or _URL_RE.match(chunk):
            break
        c0 = chunk[0]
        if chunk.startswith("..") and len(chunk) > 2:
            n = len(chunk) - len(chunk.lstrip("."))
            out.append(chunk[:n])
            chunk = chunk[n:]
            continue
        if (c0 in _PREFIX_CHARS or _is_icon(c0)) and len(chunk) > 1 and not (c0 == "+" and chunk[1].isdigit()):
            out.append(c0)
            chunk = chunk[1:]
            continue
        if chunk.endswith("..") and chunk.strip("."):
            n = len(chunk) - len(chunk.rstrip("."))
            suffixes.append(chunk[-n:])
            chunk = chunk[:-n]
            continue
        cl = chunk[-1]
        if len(chunk) > 1 and (cl in _SUFFIX_CHARS or _is_icon(cl) or (cl == "." and _suffix_period_splits(chunk))):
            suffixes.append(cl)
            chunk = chunk[:-1]
            continue
        m = _CLITIC_RE.match(chunk)
        if m:
            head = m.group(1)
            suffixes.append(m.group(2))
            chunk = head
            continue
        break
    if chunk:
        if chunk in _EXCEPTIONS:
            out.extend(_EXCEPTIONS[chunk])
        elif _UNITS_RE.match(chunk):
            out.extend(_UNITS_RE.match(chunk).groups())
        elif _is_special(chunk) or _URL_RE.match(chunk) or chunk.isalnum():
            out.append(chunk)
        else:
            pos = 0
            for m in _INFIX_RE.finditer(chunk):
                if m.start() > pos:
                    out.append(chunk[pos : m.start()])
                out.append(m.group())
                pos = m.end()
            if pos < len(chunk):
                out.append(chunk[pos:])
    out.extend(reversed(suffixes))


@lru_cache(maxsize=1 << 18)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    out: list[str] = []
    if _FULLWIDTH_RE.search(chunk) and len(chunk) > 1:
        # CJK text has no spaces: full-width punctuation splits the chunk and each piece is tokenised alone
        # (spaCy would keep "你好，世界" whole, its English infixes know no full-width marks)
        for piece in _FULLWIDTH_RE.split(chunk):
            if piece:
                _split_chunk(piece, out)
    else:
        _split_chunk(chunk, out)
    return tuple(out)


def split_words(text: str) -> list[str]:
    """Tokens as spaCy's blank English tokenizer would give them (datatrove's `split_into_words`).
    Web text repeats its whitespace chunks (Zipf), so chunk tokenisations are cached."""
    return list(chain.from_iterable(map(_chunk_tokens, text.split())))


@lru_cache(maxsize=1 << 18)
def has_alpha(word: str) -> bool:
    return any(c.isalpha() for c in word)


@lru_cache(maxsize=1 << 18)
def is_non_symbol(word: str) -> bool:
    return any(ch not in PUNCTUATION_SET for ch in word)


def is_symbol_word(word: str) -> bool:
    return all(ch in PUNCTUATION_SET for ch in word)


SENTENCE_PUNCT: frozenset[str] | None = None  # spaCy's sentencizer list, on first use (spaCy imports torch: 2 s)


def sentence_punct() -> frozenset[str]:
    """spaCy's sentencizer list (what datatrove's C4 filter counts with)."""
    global SENTENCE_PUNCT
    if SENTENCE_PUNCT is None:
        try:
            from spacy.pipeline.sentencizer import Sentencizer

            SENTENCE_PUNCT = frozenset(Sentencizer.default_punct_chars)
        except Exception:  # pragma: no cover - spaCy is a dependency; keep a sane fallback
            SENTENCE_PUNCT = frozenset("!.?。！？")
    return SENTENCE_PUNCT


@lru_cache(maxsize=1 << 16)
def is_punct(token: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in token)


def count_sentences(line: str) -> int:
    """Sentences in a line, by spaCy's sentencizer rule on our tokens: a sentence ends at a token from the
    sentence-punctuation list and the next one starts at the first following non-punctuation token."""
    tokens = split_words(line)
    if not tokens:
        return 0
    n, seen_period = 1, False
    punct = SENTENCE_PUNCT or sentence_punct()
    for tok in tokens:
        in_punct = tok in punct
        if seen_period and not in_punct and not is_punct(tok):
            n += 1
            seen_period = False
        elif in_punct:
            seen_period = True
    return n
