"""URL blocklist: remove documents whose URL is on a domain list (subdomains included: a listed `example.com`
blocks `a.b.example.com`, not `badexample.com`) or a URL list (scheme, `www.`, fragment and a trailing slash
ignored). Lists are files, one entry per line, `#` comments; or inline in the config."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from corpora.config import StrictModel
from filters.decision import Decision


class UrlBlocklistConfig(StrictModel):
    enabled: bool = False
    domains_path: str | None = None  # blocked domains, one per line (subdomains blocked too)
    urls_path: str | None = None  # blocked URLs, one per line
    domains: list[str] = []  # inline entries, added to the files'
    urls: list[str] = []


class Blocklist(NamedTuple):
    domains: dict[str, str]  # normalised domain -> entry as listed
    urls: dict[str, str]  # normalised URL -> entry as listed


def _host(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url if "//" in url else "//" + url)
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    return host.rstrip(".")


def normalize_domain(entry: str) -> str:
    entry = entry.strip().lower()
    if entry.startswith("*."):
        entry = entry[2:]
    return _host(entry) if ("/" in entry or ":" in entry) else entry.strip(".")


def normalize_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url if "//" in url else "//" + url)
    host = _host(url)
    if host.startswith("www."):
        host = host[4:]
    path = parts.path.rstrip("/")
    return host + path + (f"?{parts.query}" if parts.query else "")


def _read_entries(path: str | None, what: str) -> list[str]:
    if not path:
        return []
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"filters.url_blocklist.{what}: {p} does not exist")
    return [e for e in (line.split("#", 1)[0].strip() for line in p.read_text(encoding="utf-8").splitlines()) if e]


@lru_cache(maxsize=8)
def _load(domains_path, urls_path, domains: tuple[str, ...], urls: tuple[str, ...]) -> Blocklist:
    d = {normalize_domain(e): e for e in [*_read_entries(domains_path, "domains_path"), *domains]}
    u = {normalize_url(e): e for e in [*_read_entries(urls_path, "urls_path"), *urls]}
    d.pop("", None)
    u.pop("", None)
    return Blocklist(d, u)


def load_blocklist(cfg: UrlBlocklistConfig) -> Blocklist:
    return _load(cfg.domains_path, cfg.urls_path, tuple(cfg.domains), tuple(cfg.urls))


def url_blocklist(url: str | None, cfg: UrlBlocklistConfig, lists: Blocklist | None = None) -> Decision:
    """Keep documents without a URL; the reason names the list entry that matched."""
    if not url:
        return Decision(True)
    lists = lists or load_blocklist(cfg)
    if lists.urls:
        entry = lists.urls.get(normalize_url(url))
        if entry is not None:
            return Decision(False, f"blocked_url:{entry}")
    if lists.domains:
        labels = _host(url).split(".")
        for i in range(len(labels)):
            entry = lists.domains.get(".".join(labels[i:]))
            if entry is not None:
                return Decision(False, f"blocked_domain:{entry}")
    return Decision(True)
