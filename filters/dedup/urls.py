"""URL normalisation and exact URL deduplication.

Two URLs are the same page when they differ only in scheme/host case, a default port, a trailing slash, the
fragment, percent-encoding of unreserved characters, the order of query parameters, or tracking parameters
(utm_*, fbclid, gclid, ...). Options cover the riskier equivalences (http vs https, a leading "www.").
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import xxhash

from filters.dedup.clusters import Clusters, choose_kept, clusters_from_keys, id_ranks

DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "ws": 80, "wss": 443}
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "_hs", "oly_", "vero_")
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_ke", "mkt_tok", "trk", "trkcampaign", "sc_campaign",
    "sc_channel", "sc_content", "sc_medium", "sc_outcome", "sc_geo", "sc_country", "ref_src", "ref_url", "spm",
    "scid", "s_cid", "cmpid", "campaignid", "adgroupid", "ncid", "rb_clickid", "wickedid", "epik", "ved", "ei",
})
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


@dataclass(frozen=True)
class UrlNormConfig:
    ignore_scheme: bool = False  # treat http:// and https:// as the same page
    strip_www: bool = False  # treat www.example.com and example.com as the same host
    drop_tracking: bool = True
    sort_query: bool = True


def _normalize_percent(part: str) -> str:
    # RFC 3986 6.2.2: hex digits upper case, unreserved characters decoded
    def fix(m: re.Match) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()
    return _PERCENT.sub(fix, part)


def _is_tracking(name: str) -> bool:
    low = name.lower()
    return low in TRACKING_PARAMS or low.startswith(TRACKING_PREFIXES)


def normalise_url(url: str | None, config: UrlNormConfig = UrlNormConfig()) -> str | None:
    """The canonical form of `url`, or None when it is empty or has no scheme and host."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:  # e.g. a port that is not a number
        return None
    if not scheme or not host:
        return None
    if config.strip_www and host.startswith("www."):
        host = host[4:]
    netloc = host
    if parts.username is not None:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{host}"
    if port is not None and DEFAULT_PORTS.get(scheme) != port:
        netloc += f":{port}"
    path = _normalize_percent(parts.path) or "/"
    path = path.rstrip("/") or ""
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if config.drop_tracking:
            pairs = [(k, v) for k, v in pairs if not _is_tracking(k)]
        if config.sort_query:
            pairs = sorted(pairs)
        query = urlencode(pairs)
    if config.ignore_scheme and scheme in ("http", "https"):
        scheme = "http"
    return urlunsplit((scheme, netloc, path, query, ""))


def url_key(url: str | None, config: UrlNormConfig = UrlNormConfig()) -> int | None:
    """64-bit key of the normalised URL (None when the URL is missing or unusable)."""
    norm = normalise_url(url, config)
    return None if norm is None else xxhash.xxh3_64_intdigest(norm.encode("utf-8", "surrogatepass"))


def url_keys(urls: Sequence[str | None], config: UrlNormConfig = UrlNormConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(keys uint64, valid bool) for a batch of URLs."""
    raw = [url_key(u, config) for u in urls]
    valid = np.fromiter((k is not None for k in raw), dtype=bool, count=len(raw))
    keys = np.fromiter((k or 0 for k in raw), dtype=np.uint64, count=len(raw))
    return keys, valid


def url_duplicates(urls: Sequence[str | None], ids: Sequence[str] | None = None, lengths=None, quality=None,
                   config: UrlNormConfig = UrlNormConfig(), keep: str = "highest_quality") -> Clusters:
    """Exact URL duplicate clusters (in memory); documents without a usable URL are never duplicates."""
    keys, valid = url_keys(urls, config)
    n = len(urls)
    roots = clusters_from_keys([keys], valid, n)
    rank = np.arange(n, dtype=np.int64) if ids is None else id_ranks(ids)
    return choose_kept(roots, rank, lengths, quality, policy=keep)
