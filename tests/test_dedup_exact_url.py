import pytest

from dedup_data import web_texts
from filters.dedup.exact import ExactConfig, exact_duplicates, normalise_for_exact
from filters.dedup.urls import UrlNormConfig, normalise_url, url_duplicates


@pytest.mark.parametrize("a,b", [
    ("HTTP://Example.COM/path", "http://example.com/path"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a/", "https://example.com/a"),
    ("https://example.com/", "https://example.com"),
    ("https://example.com/a?utm_source=x&id=3&fbclid=y", "https://example.com/a?id=3"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
    ("https://example.com/a#section", "https://example.com/a"),
    ("https://example.com/%7euser", "https://example.com/~user"),
    ("https://example.com/a%2fb", "https://example.com/a%2Fb"),
])
def test_equivalent_urls_normalise_the_same(a, b):
    assert normalise_url(a) == normalise_url(b)


@pytest.mark.parametrize("a,b", [
    ("https://example.com/a", "http://example.com/a"),  # scheme differs (unless ignore_scheme)
    ("https://example.com:8080/a", "https://example.com/a"),
    ("https://example.com/A", "https://example.com/a"),  # paths are case-sensitive
    ("https://example.com/a?id=3", "https://example.com/a?id=4"),
    ("https://www.example.com/a", "https://example.com/a"),  # unless strip_www
])
def test_different_urls_stay_different(a, b):
    assert normalise_url(a) != normalise_url(b)


def test_url_options_and_bad_urls():
    assert normalise_url("https://www.example.com/a", UrlNormConfig(strip_www=True, ignore_scheme=True)) == \
        normalise_url("http://example.com/a", UrlNormConfig(strip_www=True, ignore_scheme=True))
    for bad in (None, "", "   ", "not a url", "/relative/path", "http://host:notaport/"):
        assert normalise_url(bad) is None


def test_url_duplicates_known_answer():
    urls = ["https://a.com/x?utm_medium=m", "https://A.com/x/", "https://a.com/y", None, "garbage",
            "http://b.org:80/", "http://b.org"]
    res = url_duplicates(urls, ids=[f"d{i}" for i in range(len(urls))], lengths=[10, 50, 5, 5, 5, 1, 1])
    assert res.size.tolist() == [2, 2, 1, 1, 1, 2, 2]
    assert res.keep.tolist() == [False, True, True, True, True, True, False]  # longest, then smallest id
    assert res.kept.tolist()[0] == 1 and res.kept.tolist()[6] == 5


def test_exact_duplicates_on_real_text():
    texts = web_texts()[:30]
    docs = texts + [texts[3], "  " + texts[3].replace("\n", " \n\t") + "  ", texts[5].upper()]
    ids = [f"w{i:03d}" for i in range(len(docs))]
    res = exact_duplicates(docs, ids=ids)
    assert res.size[3] == 3 and res.size[30] == 3 and res.size[31] == 3
    assert res.removed.sum() == 2 + (1 if res.size[5] > 1 else 0)
    assert res.size[32] == 1  # case differs: not an exact duplicate by default
    res_ci = exact_duplicates(docs, ids=ids, config=ExactConfig(lowercase=True))
    assert res_ci.size[32] == 2 and res_ci.size[5] == 2
    # the kept copy is the longest of the identical texts (whitespace counts for length), then smallest id
    assert res.kept[3] == res.kept[30] == res.kept[31] == 31
    assert normalise_for_exact("a\u0301  b\n") == normalise_for_exact("\u00e1 b")
    assert exact_duplicates(["", "  ", "x"]).size.tolist() == [1, 1, 1]  # empty texts are not keyed
