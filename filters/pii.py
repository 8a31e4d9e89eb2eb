"""PII masking as Dolma's `pii_regex` tagger + mixer: find emails, phone numbers and IP addresses, replace each
with a placeholder, and remove documents with more than `max_matches` of them (bulk contact lists).

Phones have Dolma's shape: after whitespace (or at the start of the text), a 3-digit area code (parentheses
optional), 3 digits and 4 digits, separated by spaces, dots or dashes. We add an optional "+CC" country code, and
refuse a match that a digit continues and a bare run of ten digits (ids, ISBN-10s, Unix times), which Dolma takes.
Like Dolma's post-filter, a phone or IP with "isbn", "doi" or "#" within `context_window` characters either side is
not PII (we match isbn/doi case-insensitively as words; Dolma looks for the lower-case substrings). Dolma's v1 rule
that drops every phone of a document containing a URL is not taken.
IPs are counted and masked only when public (`ipaddress`'s `is_global`, datatrove's `only_remove_public_ips`):
private, loopback, link-local, reserved and documentation ranges are left alone. No match spans a line break.
"""
from __future__ import annotations

import ipaddress
import re

from pydantic import Field

from corpora.config import StrictModel
from filters.decision import Decision

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"  # a domain label never starts or ends with "-"
EMAIL_RE = re.compile(
    rf"\b[A-Za-z0-9._%+-]+@(?:(?:{_LABEL}\.)+[A-Za-z]{{2,}}\b"  # user@example.com
    rf"|\[{_IPV4}\]|{_IPV4}(?!\w|\.\d))"  # user@[1.2.3.4], user@1.2.3.4
)
PHONE_RE = re.compile(
    r"(?<!\S)"  # Dolma: whitespace before the number (never consumed, so a match never holds a newline)
    r"(?:\+\d{1,3}[ .-]?)?"  # optional country code
    r"\(?\d{3}\)?[ .-]*\d{3}[ .-]?\d{4}"  # Dolma's shape: (555) 123-4567, 555.123.4567, 555 1234567
    r"(?!\d|[.-]\d)"  # not the head of a longer number
)
# not inside a longer dotted number ("1.2.3.4.5", "999.1.1.1"), but found after a word and a dot ("at.8.8.8.8")
IPV4_RE = re.compile(rf"(?<!\w)(?<!\d\.){_IPV4}(?!\w|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])")
_CONTEXT_RE = re.compile(r"\b(?:isbn|doi)\b|#", re.IGNORECASE)


class PIIConfig(StrictModel):
    enabled: bool = True
    mask: bool = True
    max_matches: int = Field(5, ge=0)  # remove documents with more PII matches than this (Dolma's mixer rule)
    context_window: int = Field(100, ge=0)  # phones / IPs with isbn, doi or # this close are not PII (Dolma's window); 0: off
    email_placeholder: str = "|||EMAIL_ADDRESS|||"
    phone_placeholder: str = "|||PHONE_NUMBER|||"
    ip_placeholder: str = "|||IP_ADDRESS|||"


def _public_ip(s: str) -> bool:
    try:
        return ipaddress.ip_address(s).is_global
    except ValueError:
        return False


def _near_identifier(text: str, a: int, b: int, window: int) -> bool:
    """Dolma's post-filter: "isbn", "doi" or "#" within `window` characters of the span [a, b)."""
    return window > 0 and _CONTEXT_RE.search(text, max(0, a - window), min(len(text), b + window)) is not None


def find_pii(text: str, context_window: int = PIIConfig().context_window) -> dict[str, list[tuple[int, int]]]:
    """Spans per type. Emails first; phones and IPs overlapping an email (or, for phones, an IP) are not counted
    twice."""
    spans = {"email": [m.span() for m in EMAIL_RE.finditer(text)]}
    taken = list(spans["email"])

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    ips = [m.span() for m in IPV4_RE.finditer(text) if _public_ip(m.group())]
    if ":" in text:
        ips += [m.span() for m in IPV6_RE.finditer(text) if _public_ip(m.group())]
    spans["ip"] = [s for s in ips if free(*s) and not _near_identifier(text, *s, context_window)]
    taken += spans["ip"]
    spans["phone"] = [m.span() for m in PHONE_RE.finditer(text) if not m.group().isdigit()
                      and free(*m.span()) and not _near_identifier(text, *m.span(), context_window)]
    return spans


def mask_pii(text: str, spans: dict[str, list[tuple[int, int]]], cfg: PIIConfig) -> str:
    holder = {"email": cfg.email_placeholder, "phone": cfg.phone_placeholder, "ip": cfg.ip_placeholder}
    edits = sorted(((a, b, holder[k]) for k, ss in spans.items() for a, b in ss), reverse=True)
    for a, b, h in edits:
        text = text[:a] + h + text[b:]
    return text


def pii(text: str, cfg: PIIConfig) -> Decision:
    if "@" not in text and not any(ch.isdigit() for ch in text) and ":" not in text:
        return Decision(True, None, {"pii_emails": 0, "pii_phones": 0, "pii_ips": 0})
    spans = find_pii(text, cfg.context_window)
    scores = {"pii_emails": len(spans["email"]), "pii_phones": len(spans["phone"]), "pii_ips": len(spans["ip"])}
    found = tuple(sorted((a, b, kind) for kind, ss in spans.items() for a, b in ss))
    total = sum(scores.values())
    if total > cfg.max_matches:
        return Decision(False, "too_many_pii", scores, spans=found)
    if total and cfg.mask:
        return Decision(True, None, scores, mask_pii(text, spans, cfg), spans=found)
    return Decision(True, None, scores, spans=found)
