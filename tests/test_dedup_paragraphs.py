import math

import numpy as np
import pytest

from dedup_data import distinct_docs, web_texts
from filters.dedup.bloom import BloomFilter, BloomSizing, BloomTooLarge, parse_bytes
from filters.dedup.intermediate import IntermediateError
from filters.dedup.paragraphs import ParagraphDedup, ParagraphDedupConfig, dedup_paragraphs


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
