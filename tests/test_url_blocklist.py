"""URL blocklist: domain and URL list files, subdomains matched, reason names the entry."""
import pytest
from datatrove.data import Document

from filters.url_blocklist import UrlBlocklistConfig, url_blocklist
from filters.web_steps import UrlBlocklistStep, WebFilters, build_filter_steps


@pytest.fixture
def cfg(tmp_path):
    (tmp_path / "domains.txt").write_text("# blocked sites\nexample.com\n\n*.spam.org  # and its subdomains\n")
    (tmp_path / "urls.txt").write_text("https://www.news.net/story/42/\nhttp://blog.io/post?id=7\n")
    return UrlBlocklistConfig(enabled=True, domains_path=str(tmp_path / "domains.txt"),
                              urls_path=str(tmp_path / "urls.txt"))


def test_domains_match_subdomains_not_lookalikes(cfg):
    assert url_blocklist("https://example.com/page", cfg).reason == "blocked_domain:example.com"
    assert url_blocklist("http://a.b.Example.COM:8080/x?y=1", cfg).reason == "blocked_domain:example.com"
    assert url_blocklist("https://badexample.com/", cfg).keep
    assert url_blocklist("https://example.com.evil.net/", cfg).keep
    assert url_blocklist("https://mail.spam.org", cfg).reason == "blocked_domain:*.spam.org"
    assert url_blocklist("www.example.com/no-scheme", cfg).reason == "blocked_domain:example.com"


def test_urls_match_ignoring_scheme_www_fragment_and_trailing_slash(cfg):
    assert url_blocklist("http://news.net/story/42#top", cfg).reason == "blocked_url:https://www.news.net/story/42/"
    assert url_blocklist("https://news.net/story/43", cfg).keep
    assert url_blocklist("https://blog.io/post?id=7", cfg).reason == "blocked_url:http://blog.io/post?id=7"
    assert url_blocklist("https://blog.io/post?id=8", cfg).keep
    assert url_blocklist(None, cfg).keep and url_blocklist("", cfg).keep


def test_inline_entries_and_bad_paths(tmp_path):
    assert not url_blocklist("https://x.test/", UrlBlocklistConfig(domains=["test"])).keep
    assert url_blocklist("https://x.test/a", UrlBlocklistConfig(urls=["x.test/b"])).keep
    with pytest.raises(FileNotFoundError, match="domains_path"):
        url_blocklist("https://x.test/", UrlBlocklistConfig(domains_path=str(tmp_path / "missing.txt")))


def test_step_off_by_default_needs_entries_and_marks_reason(cfg):
    assert not WebFilters().url_blocklist.enabled
    assert "url_blocklist" not in [s.config_name for s in build_filter_steps(WebFilters())]
    with pytest.raises(ValueError, match="no entries"):
        UrlBlocklistStep(UrlBlocklistConfig(enabled=True))
    steps = build_filter_steps(WebFilters(url_blocklist=cfg, langid={"enabled": False}))
    assert steps[0].config_name == "url_blocklist"
    docs = [Document(text="a", id="1", metadata={"url": "https://sub.example.com/a"}),
            Document(text="b", id="2", metadata={"url": "https://ok.org/"}), Document(text="c", id="3")]
    out = list(steps[0].run(docs))
    assert [d.metadata.get("reason_detail") for d in out] == ["blocked_domain:example.com", None, None]
    assert out[0].metadata["reason"] == "url_blocklist"
