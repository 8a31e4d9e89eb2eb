"""PII masking as Dolma's `pii_regex` tagger + mixer: find emails, phone numbers and IP addresses, replace each
with a placeholder, and remove documents with more than `max_matches` of them (bulk contact lists)."""
from __future__ import annotations

import ipaddress
import re

from corpora.config import StrictModel
from filters.decision import Decision

EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
# North-American and international formats with separators; bare digit runs are not phones (prices, ids, years)
PHONE_RE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]\d{3,4}(?![\w-])"
)
IPV4_RE = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6_RE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}(?![\w:])")


class PIIConfig(StrictModel):
    enabled: bool = True
    mask: bool = True
    max_matches: int = 5  # remove documents with more PII matches than this (Dolma's mixer rule)
    email_placeholder: str = "|||EMAIL_ADDRESS|||"
    phone_placeholder: str = "|||PHONE_NUMBER|||"
    ip_placeholder: str = "|||IP_ADDRESS|||"


def _valid_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def find_pii(text: str) -> dict[str, list[tuple[int, int]]]:
    """Spans per type. Emails first; phones and IPs overlapping an email are not counted twice."""
    spans = {"email": [m.span() for m in EMAIL_RE.finditer(text)]}
    taken = list(spans["email"])

    def free(a: int, b: int) -> bool:
        return all(b <= x or a >= y for x, y in taken)

    ips = [m.span() for m in IPV4_RE.finditer(text) if _valid_ip(m.group())]
    ips += [m.span() for m in IPV6_RE.finditer(text) if _valid_ip(m.group())]
    spans["ip"] = [s for s in ips if free(*s)]
    taken += spans["ip"]
    spans["phone"] = [m.span() for m in PHONE_RE.finditer(text) if free(*m.span())]
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
    spans = find_pii(text)
    scores = {"pii_emails": len(spans["email"]), "pii_phones": len(spans["phone"]), "pii_ips": len(spans["ip"])}
    total = sum(scores.values())
    if total > cfg.max_matches:
        return Decision(False, "too_many_pii", scores)
    if total and cfg.mask:
        return Decision(True, None, scores, mask_pii(text, spans, cfg))
    return Decision(True, None, scores)
