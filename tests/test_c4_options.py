"""C4 bad words, paragraph filter and sentence mode: hand-written cases, and agreement with datatrove's own
C4BadWordsFilter / C4ParagraphFilter / C4QualityFilter(split_paragraph=False) on real pages."""
import glob
import json
from pathlib import Path

import pytest
from datatrove.data import Document

from filters.c4 import (SHIPPED_BADWORDS, C4BadWordsConfig, C4Config, c4_badwords, c4_paragraphs_ok, c4_quality)
from filters.web_steps import C4BadWordsStep, WebFilters, build_filter_steps

WEB = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "web"
SENTENCES = ("The river that runs through the old town was once the main road for trade. Barges carried grain "
             "and salt to the coast. When the railway arrived, the traffic declined. Today the warehouses hold "
             "studios and a bakery. Visitors walk along the water and read the old signs.")


def _pages() -> list[str]:
    files = sorted(glob.glob(str(WEB / "*.jsonl")))
    if not files:
        pytest.skip(f"no real pages: {WEB}/*.jsonl is not there (../shared not checked out)")
    texts = []
    for f in files:
        for line in open(f, encoding="utf-8"):
            text = json.loads(line).get("text")
            if text:
                texts.append(text)
    return texts


def _keep(r) -> bool:
    return r is True or (isinstance(r, tuple) and r[0])


@pytest.fixture
def dt_c4(monkeypatch):
    """datatrove's c4_filters module, reading word lists from local files instead of downloading them."""
    import datatrove.pipeline.filters.c4_filters as cf

    local = {"en": SHIPPED_BADWORDS["en"]}

    def fake_download(url, **kw):
        lang = "en" if url == cf._EN_BADWORDS_URL else url.rsplit("/", 1)[1]
        return str(local[lang])

    monkeypatch.setattr(cf, "cached_asset_path_or_download", fake_download)
    return cf


def test_badwords_whole_words_phrases_and_languages_without_spaces(tmp_path):
    cfg = C4BadWordsConfig(enabled=True)
    assert c4_badwords(SENTENCES, cfg).keep
    d = c4_badwords("Nothing here but Sex. And more.", cfg)
    assert not d.keep and d.reason == "document_removed_with_badwords"
    assert c4_badwords("The sextant and the Essex shoreline.", cfg).keep  # word boundaries
    assert not c4_badwords("Please do not blow job the cat.", cfg).keep  # a phrase
    zh = tmp_path / "zh"
    zh.write_text("坏词\n性\n")
    zcfg = C4BadWordsConfig(wordlists={"en": None, "zh": str(zh)})
    assert not c4_badwords("这是坏词吗", zcfg, language="zh").keep  # no word boundaries needed
    assert c4_badwords("这是性能测试", zcfg, language="zh").keep  # datatrove's allowlist
    with pytest.raises(ValueError, match="no word list for language 'fr'"):
        c4_badwords(SENTENCES, zcfg, language="fr")
    assert c4_badwords("porn", C4BadWordsConfig(fail_on_missing_language=False), language="fr").keep
    assert not c4_badwords("porn", C4BadWordsConfig(default_language="en")).keep


def test_badwords_keep_fraction_is_reproducible_per_document():
    cfg = C4BadWordsConfig(keep_fraction=0.5, seed=3)
    kept = [c4_badwords("this is porn", cfg, key=str(i)).keep for i in range(400)]
    assert kept == [c4_badwords("this is porn", cfg, key=str(i)).keep for i in range(400)]
    assert 150 < sum(kept) < 250


def test_badwords_step_is_off_by_default_and_reads_language(tmp_path):
    assert not WebFilters().c4_badwords.enabled
    assert "c4_badwords" not in [s.config_name for s in build_filter_steps(WebFilters())]
    with pytest.raises(FileNotFoundError):
        C4BadWordsStep(C4BadWordsConfig(wordlists={"en": str(tmp_path / "missing")}))
    step = C4BadWordsStep(C4BadWordsConfig(enabled=True, fail_on_missing_language=False), drop=True)
    docs = [Document(text="porn here", id="a", metadata={"language": "en"}),
            Document(text="porn here", id="b", metadata={"language": "de"}),
            Document(text=SENTENCES, id="c")]
    assert [d.id for d in step.run(docs)] == ["b", "c"]


def test_paragraph_filter_and_sentence_mode_by_hand():
    long = "x" * 200
    assert c4_paragraphs_ok("\n".join([long, long, long]))
    assert not c4_paragraphs_ok("\n".join([long, long, "short"]))
    assert not c4_paragraphs_ok("\n".join([long, long]))
    assert c4_quality(SENTENCES, C4Config(paragraph_filter=True)).reason == "too_few_paragraphs"
    assert C4Config().split_paragraph and not C4Config().paragraph_filter  # defaults unchanged
    one_line = SENTENCES + " Short one. Enable javascript to see more of the page."
    assert not c4_quality(one_line, C4Config()).keep  # line mode: the one line mentions javascript
    d = c4_quality(one_line, C4Config(split_paragraph=False))
    assert d.keep and d.text == SENTENCES  # sentence mode drops only the bad sentences, joins by spaces


def test_badwords_agree_with_datatrove_on_real_pages(dt_c4):
    pages = _pages()
    theirs = dt_c4.C4BadWordsFilter()
    cfg = C4BadWordsConfig(enabled=True)
    ours_keep = [c4_badwords(t, cfg).keep for t in pages]
    their_keep = [_keep(theirs.filter(Document(text=t, id=str(i)))) for i, t in enumerate(pages)]
    assert ours_keep == their_keep
    assert 0 < their_keep.count(False) < len(pages)  # the comparison has both outcomes


def test_paragraph_filter_agrees_with_datatrove_on_real_pages(dt_c4):
    pages = _pages()
    theirs = dt_c4.C4ParagraphFilter()
    ours_keep = [c4_quality(t, C4Config(paragraph_filter=True)).reason != "too_few_paragraphs" for t in pages]
    their_keep = [_keep(theirs.filter(Document(text=t, id=str(i)))) for i, t in enumerate(pages)]
    assert ours_keep == their_keep
    assert 0 < their_keep.count(False) < len(pages)


def test_sentence_mode_agrees_with_datatrove_on_real_pages(dt_c4):
    pages = _pages()
    theirs = dt_c4.C4QualityFilter(split_paragraph=False)
    cfg = C4Config(split_paragraph=False)
    removed = 0
    for i, t in enumerate(pages):
        ours = c4_quality(t, cfg)
        doc = Document(text=t, id=str(i))
        keep = _keep(theirs.filter(doc))
        assert ours.keep == keep, (i, ours.reason, t[:80])
        if keep:
            assert ours.text == doc.text, i
        removed += not keep
    assert 0 < removed < len(pages)
