import math

import numpy as np
import pytest

from dedup_data import distinct_docs, web_texts
from filters.dedup.bloom import BloomFilter, BloomSizing, BloomTooLarge, parse_bytes
from filters.dedup.intermediate import IntermediateError
from filters.dedup.paragraphs import ParagraphDedup, ParagraphDedupConfig, dedup_paragraphs, dolma_tokens


def test_bloom_sizing_is_explicit():
    s = BloomSizing.for_capacity(1_000_000, 0.01)
    assert s.num_bits == math.ceil(9_585_059 / 64) * 64
    assert s.num_hashes == 7
    assert s.num_bytes == s.num_bits // 8
    assert "1,000,000 items" in s.describe() and "7 hashes" in s.describe()
    assert parse_bytes("2GiB") == 2 ** 31 and parse_bytes("1.5 MB") == 1_500_000 and parse_bytes(10) == 10
    with pytest.raises(ValueError):
        parse_bytes("lots")


def test_bloom_refuses_past_max_memory():
    with pytest.raises(BloomTooLarge, match="exceeds max_memory"):
        BloomFilter.create(1_000_000_000, 1e-6, max_memory="1GB")
    with pytest.raises(BloomTooLarge):
        ParagraphDedup(ParagraphDedupConfig(expected_items=10 ** 9, max_memory="100MB"))
    assert BloomFilter.create(1000, 0.01, max_memory="2KB").sizing.num_bytes == 1200  # 9,600 bits
    with pytest.raises(BloomTooLarge):
        BloomFilter.create(1000, 0.01, max_memory="1KB")

def test_bloom_false_positive_rate_and_determinism(tmp_path):
    rng = np.random.default_rng(0)
    items = rng.integers(0, 2 ** 63, size=20_000, dtype=np.uint64)
    others = rng.integers(0, 2 ** 63, size=50_000, dtype=np.uint64)
    bf = BloomFilter.create(20_000, 0.01, seed=5)
    bf.add(items)
    assert bf.contains(items).all()  # no false negatives
    fpr = bf.contains(others).mean()
    assert 0.004 < fpr < 0.02, fpr
    again = BloomFilter.create(20_000, 0.01, seed=5)
    again.add(items)
    assert np.array_equal(bf.words, again.words)  # fixed seeds: same bits every run
    other_seed = BloomFilter.create(20_000, 0.01, seed=6)
    other_seed.add(items)
    assert not np.array_equal(bf.words, other_seed.words)
    # union of two halves == inserting everything
    a, b = BloomFilter.create(20_000, 0.01, seed=5), BloomFilter.create(20_000, 0.01, seed=5)
    a.add(items[:7000])
    b.add(items[7000:])
    b.save(tmp_path / "b.bin")
    a.union_file(tmp_path / "b.bin")
    assert np.array_equal(a.words, bf.words)
    assert np.array_equal(BloomFilter.load(tmp_path / "b.bin").words, b.words)
    # a truncated filter is an error naming the file
    data = (tmp_path / "b.bin").read_bytes()
    (tmp_path / "b.bin").write_bytes(data[:-8])
    with pytest.raises(IntermediateError, match="b.bin: truncated"):
        BloomFilter.load(tmp_path / "b.bin")


SMALL = ParagraphDedupConfig(expected_items=100_000, false_positive_rate=1e-6, min_doc_chars=20)


def test_paragraph_duplicates_across_documents():
    boiler = "Subscribe to our newsletter for weekly updates!"
    nav = "Home | About | Contact"
    web = web_texts()
    docs = [
        web[0] + "\n" + boiler + "\n" + nav,
        nav + "\n" + web[1] + "\n\n" + boiler,
        boiler + "\n" + nav,  # only duplicated paragraphs: removed
        web[2] + "\n" + web[2].split("\n")[0],  # repeats its own first paragraph
        "short\n" + nav,  # loses nav, 5 chars left < 20: removed
    ]
    res = dedup_paragraphs(docs, SMALL)
    assert res[0].text == docs[0] and res[0].removed_paragraphs == 0
    assert res[1].text == web[1] + "\n"  # the blank line stays
    assert res[1].removed_paragraphs == 2
    assert res[2].removed and res[2].removed_paragraphs == 2
    assert res[3].text == web[2] and res[3].removed_paragraphs == 1
    assert res[4].removed
    # blank lines are never paragraphs; a filter that saw nothing removes nothing
    assert [r.removed_paragraphs for r in dedup_paragraphs(["a\n\n\nb", "c"], SMALL)] == [0, 0]


def test_ngram_overlap_mode():
    docs = distinct_docs(3, seed=11, min_words=60, max_words=80)
    edited = docs[0].split()
    edited[-1] = "CHANGED"  # 1 of ~60 13-grams differs
    cfg = ParagraphDedupConfig(expected_items=100_000, false_positive_rate=1e-6, min_doc_chars=10, ngram_size=13,
                               overlap_threshold=0.8)
    res = dedup_paragraphs([docs[0], docs[1], " ".join(edited) + "\n" + docs[2]], cfg)
    assert res[2].text == docs[2] and res[2].removed_paragraphs == 1
    exact = dedup_paragraphs([docs[0], docs[1], " ".join(edited) + "\n" + docs[2]], SMALL)
    assert exact[2].removed_paragraphs == 0  # whole-paragraph hashes miss the edited copy


def test_sharded_two_step_run_equals_sequential():
    web = web_texts()[:120]
    docs = web + [w.split("\n")[0] + "\n" + web[(i * 7) % 120] for i, w in enumerate(web[:60])]
    shards = [docs[0:70], docs[70:110], docs[110:]]
    sequential = []
    dd = ParagraphDedup(SMALL)
    for shard in shards:
        sequential.extend(dd.process(shard))
    # step 1: one filter per shard; step 2: shard r starts from the union of the filters of shards < r
    built = []
    for shard in shards:
        b = ParagraphDedup(SMALL)
        b.add_texts(shard)
        built.append(b.bloom)
    sharded = []
    for r, shard in enumerate(shards):
        prior = BloomFilter(SMALL.sizing())
        for bloom in built[:r]:
            prior.union_inplace(bloom)
        sharded.extend(ParagraphDedup(SMALL, prior).process(shard))
    assert [(x.text, x.removed_paragraphs) for x in sharded] == [(x.text, x.removed_paragraphs) for x in sequential]
    assert sum(x.removed_paragraphs for x in sequential) >= 60


# --- n-gram mode: Dolma's by_ngram (raw tokens, stride, short paragraphs) and the paragraph options -------------

def _ngram_cfg(**kw) -> ParagraphDedupConfig:
    base = dict(expected_items=100_000, false_positive_rate=1e-6, min_doc_chars=10, ngram_size=5,
                overlap_threshold=0.8)
    return ParagraphDedupConfig(**(base | kw))


def test_dolma_tokens_are_raw_word_segments():
    assert dolma_tokens("You can follow the RSS 2.0 feed, e.g. U.S. can't 3,000 東京タワー") == [
        "You", "can", "follow", "the", "RSS", "2.0", "feed", ",", "e.g", ".", "U.S", ".", "can't", "3,000",
        "東", "京", "タワー"]


def test_ngram_mode_zip_code_list_is_not_a_year_list():
    years = "Archive: " + " ".join(str(y) for y in range(2019, 1989, -1))
    zips = "Delivery areas: " + " ".join(str(z) for z in range(10001, 10031))
    res = dedup_paragraphs([years + "\nfirst page", zips + "\nsecond page"], _ngram_cfg())
    assert res[1].removed_paragraphs == 0 and res[1].text == zips + "\nsecond page"
    again = dedup_paragraphs([years + "\nfirst page", "other text\n" + years], _ngram_cfg())
    assert again[1].removed_paragraphs == 1  # the same list is still a duplicate


def test_ngram_mode_keeps_case_and_digits():
    a = "The Quick Brown Fox Jumps Over The Lazy Dog In 1999"
    res = dedup_paragraphs([a + "\nfirst", a.lower() + "\nsecond", a.replace("1999", "2001") + "\nthird"], _ngram_cfg())
    assert res[1].removed_paragraphs == 0  # other case: other tokens (Dolma hashes raw tokens)
    assert res[2].removed_paragraphs == 1  # 6 of 7 5-grams seen: 0.86 >= 0.8


def test_ngram_stride_and_short_paragraphs():
    seven = "one two three four five six seven"
    counts = {}
    for stride in (1, 2, 3):
        dd = ParagraphDedup(_ngram_cfg(ngram_size=3, stride=stride))
        dd.add_texts([seven])
        counts[stride] = dd.items_added
    assert counts == {1: 5, 2: 3, 3: 2}  # windows start at tokens 0, stride, 2 * stride, ...
    dd = ParagraphDedup(_ngram_cfg())
    dd.add_texts(["two words"])
    assert dd.items_added == 1  # a short paragraph is one n-gram of all its tokens
    short = "Home | About"
    assert dedup_paragraphs([short + "\nlong enough one", short + "\nlong enough two"],
                            _ngram_cfg())[1].removed_paragraphs == 1
    skip = _ngram_cfg(skip_short_paragraphs=True)
    assert [r.removed_paragraphs for r in dedup_paragraphs([short + "\nlong enough one",
                                                            short + "\nlong enough two"], skip)] == [0, 0]


def test_min_words_skip_empty_and_separator():
    nav = "Home | About | Contact"  # 5 tokens
    docs = [nav + "\nfirst document body", nav + "\nsecond document body"]
    assert dedup_paragraphs(docs, ParagraphDedupConfig(**(dict(SMALL.__dict__) | {"min_words": 6})))[1] \
        .removed_paragraphs == 0
    assert dedup_paragraphs(docs, ParagraphDedupConfig(**(dict(SMALL.__dict__) | {"min_words": 5})))[1] \
        .removed_paragraphs == 1
    blank = ["first paragraph here\n\nsecond paragraph here\n\nthird paragraph here"]
    assert dedup_paragraphs(blank, SMALL)[0].removed_paragraphs == 0  # blank lines are never paragraphs
    keep_blank = ParagraphDedupConfig(**(dict(SMALL.__dict__) | {"skip_empty": False, "min_paragraph_chars": 0}))
    res = dedup_paragraphs(blank, keep_blank)[0]
    assert res.removed_paragraphs == 1
    assert res.text == "first paragraph here\n\nsecond paragraph here\nthird paragraph here"
    by_blocks = ParagraphDedupConfig(**(dict(SMALL.__dict__) | {"paragraph_separator": "\n\n"}))
    block = "Subscribe to our newsletter\nfor weekly updates"
    res = dedup_paragraphs(["Story one.\n\n" + block, "Story two, longer.\n\n" + block + "\n\nThe end of it."],
                           by_blocks)
    assert res[1].removed_paragraphs == 1 and res[1].text == "Story two, longer.\n\nThe end of it."


def test_ngram_mode_equals_a_plain_python_reference_of_dolmas_rule():
    """Dolma's loop (tokens, windows every `stride`, short paragraph = one n-gram, seen fraction >= threshold)
    with a Python set instead of the Bloom filter; every paragraph's n-grams are recorded (module docstring)."""
    web = web_texts()[:150]
    docs = web + ["\n".join(w.split("\n")[::2]) + "\nA fresh closing line for this copy." for w in web[:50]]
    for n, stride, thr, skip in [(5, 1, 0.8, False), (8, 3, 0.5, True), (13, 1, 0.8, False)]:
        cfg = _ngram_cfg(ngram_size=n, stride=stride, overlap_threshold=thr, skip_short_paragraphs=skip)
        seen: set = set()
        expected = []
        for doc in docs:
            removed = 0
            for line in doc.split("\n"):
                toks = dolma_tokens(line.strip())
                if not line.strip():
                    continue
                grams = [tuple(toks[i:i + n]) for i in range(0, len(toks) - n + 1, stride)]
                if not grams and not skip:
                    grams = [tuple(toks)]
                hits = sum(g in seen for g in grams)
                removed += bool(grams) and hits / len(grams) >= thr
                seen.update(grams)
            expected.append(removed)
        got = [r.removed_paragraphs for r in dedup_paragraphs(docs, cfg, batch_size=64)]
        assert got == expected, (n, stride, thr, skip)
        assert sum(expected) > 50


def test_ngram_sharded_run_equals_sequential():
    web = web_texts()[:90]
    docs = web + [w.split("\n")[0] + "\n" + web[(i * 7) % 90] for i, w in enumerate(web[:40])]
    cfg = _ngram_cfg(ngram_size=8, stride=2)
    shards = [docs[0:50], docs[50:100], docs[100:]]
    sequential = dedup_paragraphs(docs, cfg)
    built = []
    for shard in shards:
        b = ParagraphDedup(cfg)
        b.add_texts(shard)
        built.append(b.bloom)
    sharded = []
    for r, shard in enumerate(shards):
        prior = BloomFilter(cfg.sizing())
        for bloom in built[:r]:
            prior.union_inplace(bloom)
        sharded.extend(ParagraphDedup(cfg, prior).process(shard))
    assert [(x.text, x.removed_paragraphs) for x in sharded] == [(x.text, x.removed_paragraphs) for x in sequential]
    assert sum(x.removed_paragraphs for x in sequential) >= 40


def test_paragraph_options_are_validated():
    from pydantic import ValidationError

    from filters.dedup.config import ParagraphDedup as ParagraphSection

    with pytest.raises(ValueError, match="stride"):
        ParagraphDedupConfig(ngram_size=5, stride=0)
    with pytest.raises(ValueError, match="paragraph_separator"):
        ParagraphDedupConfig(paragraph_separator="")
    with pytest.raises(ValidationError):
        ParagraphSection(stride=0)
    with pytest.raises(ValidationError):
        ParagraphSection(ngram_size=0)
    opts = ParagraphSection(ngram_size=13, stride=2, skip_short_paragraphs=True, min_words=3, skip_empty=False,
                            paragraph_separator="\n\n").options()
    assert (opts.ngram_size, opts.stride, opts.skip_short_paragraphs, opts.min_words, opts.skip_empty,
            opts.paragraph_separator) == (13, 2, True, 3, False, "\n\n")
    assert opts.fingerprint() != ParagraphSection(ngram_size=13).options().fingerprint()
