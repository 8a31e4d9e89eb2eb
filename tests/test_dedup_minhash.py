import random

import numpy as np
import pyarrow as pa
import pytest

from dedup_data import distinct_docs, gutenberg_words, mutate
from filters.dedup.clusters import UnionFind, bucket_edges, choose_kept, id_ranks
from filters.dedup.minhash import (MinHashConfig, MinHashLSHIndex, band_keys, dedup_table, minhash_signatures,
                                   near_duplicate_clusters)
from filters.dedup.textnorm import (jaccard, ngram_hash_reference, ngram_hashes, normalize_words, shingle_set,
                                    word_hash_reference, word_hashes)


def test_normalisation_known_answers():
    assert normalize_words("Café, NAÏVE -- 1,234.5 apples!") == ["cafe", "naive", "0", "0", "0", "apples"]
    assert normalize_words("e\u0301te\u0301 (2024)") == ["ete", "0"]
    assert normalize_words("漢字テスト") == ["漢", "字", "テ", "ス", "ト"]
    assert normalize_words("emoji😀between") == ["emoji", "between"]
    assert normalize_words("   \n\t ") == []


def test_vectorised_hashes_match_the_reference_definition():
    texts = ["Hello, World! Café 1234 and 3.14", "", "one", "a b c d e f g", "x\u0301y 0099 漢字ab",
             " ".join(gutenberg_words()[:3000])]
    wh = word_hashes(texts, max_chars=500)  # several internal batches
    grams = ngram_hashes(wh, 5)
    for i, t in enumerate(texts):
        words = normalize_words(t)
        assert wh.hashes[wh.offsets[i]:wh.offsets[i + 1]].tolist() == [word_hash_reference(w) for w in words]
        want = ([ngram_hash_reference(words[j:j + 5]) for j in range(len(words) - 4)] if len(words) >= 5
                else [ngram_hash_reference(words)] if words else [])
        assert grams.hashes[grams.offsets[i]:grams.offsets[i + 1]].tolist() == want


def test_signatures_are_deterministic_and_config_dependent():
    docs = distinct_docs(20)
    a = minhash_signatures(docs)
    b = minhash_signatures(list(docs))
    assert np.array_equal(a.values, b.values)
    assert a.values.shape == (20, 112) and a.valid.all()
    c = minhash_signatures(docs, MinHashConfig(seed=2))
    assert not np.array_equal(a.values, c.values)
    empty = minhash_signatures(["", "!!!"])
    assert not empty.valid.any()


def test_minhash_estimates_jaccard_without_bias():
    rng = random.Random(1)
    vocab = gutenberg_words()
    docs = distinct_docs(150, seed=1)
    pairs = [(d, mutate(d, rng.choice([0.01, 0.03, 0.08, 0.15]), rng, vocab)) for d in docs]
    true = np.array([jaccard(shingle_set(a), shingle_set(b)) for a, b in pairs])
    sa = minhash_signatures([a for a, _ in pairs])
    sb = minhash_signatures([b for _, b in pairs])
    est = (sa.values == sb.values).mean(axis=1)
    assert abs(float(np.mean(est - true))) < 0.01  # unbiased
    assert float(np.std(est - true)) < 0.06  # about sqrt(J(1-J)/112)


@pytest.fixture(scope="module")
def mutated_pairs():
    """~600 (original, mutated) pairs of real text with exact Jaccard, spread from 0.2 to 1.0."""
    rng = random.Random(7)
    vocab = gutenberg_words()
    docs = distinct_docs(600, seed=7)
    rates = [0.003, 0.008, 0.012, 0.02, 0.09, 0.14, 0.2]
    mutated = [mutate(d, rates[i % len(rates)], rng, vocab) for i, d in enumerate(docs)]
    true = np.array([jaccard(shingle_set(a), shingle_set(b)) for a, b in zip(docs, mutated)])
    return docs, mutated, true


def test_precision_and_recall_on_mutated_real_text(mutated_pairs):
    docs, mutated, true = mutated_pairs
    texts = docs + mutated
    ids = [f"o{i:04d}" for i in range(len(docs))] + [f"m{i:04d}" for i in range(len(docs))]
    res = near_duplicate_clusters(texts, ids=ids)
    n = len(docs)
    together = res.root[:n] == res.root[n:]
    high, low = true >= 0.8, true < 0.5
    assert high.sum() >= 150 and low.sum() >= 150, (high.sum(), low.sum())
    recall = together[high].mean()
    false_positive_rate = together[low].mean()
    precision = together[high].sum() / max(1, together[high | low].sum())
    print(f"minhash 14x8 on {len(docs)} mutated pairs: recall(J>=0.8)={recall:.3f} "
          f"false-positive rate(J<0.5)={false_positive_rate:.3f} precision={precision:.3f}")
    assert recall >= 0.95
    assert false_positive_rate <= 0.02
    assert precision >= 0.98
    # unrelated originals never end up together
    assert len(set(res.root[:n].tolist())) == n


def test_false_positive_check_sharpens_the_threshold(mutated_pairs):
    docs, mutated, true = mutated_pairs
    texts = docs + mutated
    n = len(docs)
    rates = {}
    for thr in (0.0, 0.7):
        res = near_duplicate_clusters(texts, config=MinHashConfig(verify_threshold=thr))
        together = res.root[:n] == res.root[n:]
        rates[thr] = (together[true >= 0.8].mean(), together[(true >= 0.3) & (true < 0.5)].mean())
    assert rates[0.0][1] > 0.005  # plain LSH lets a few pairs below 0.5 through ...
    assert rates[0.7][1] == 0.0  # ... the check removes them
    assert rates[0.7][0] >= rates[0.0][0] - 0.02  # at almost no cost in recall


def test_verified_edges_regroup_members_that_fail_the_leader():
    from filters.dedup.clusters import candidate_buckets, verified_edges
    sk = np.array([[1, 1, 1, 1], [2, 2, 2, 2], [2, 2, 2, 9], [1, 1, 1, 7], [5, 5, 5, 5]], dtype=np.uint16)
    idx, bucket = candidate_buckets(np.array([7, 7, 7, 7, 3], dtype=np.uint64))
    u, v = verified_edges(idx, bucket, lambda i: sk[i], 0.7)
    assert sorted(zip(u.tolist(), v.tolist())) == [(2, 1), (3, 0)]  # 1 and 2 fail leader 0, then pair up
    u, v = verified_edges(idx, bucket, lambda i: sk[i], 0.7, max_rounds=1)
    assert sorted(zip(u.tolist(), v.tolist())) == [(3, 0)]


def test_lsh_collision_curve_matches_theory(mutated_pairs):
    docs, mutated, true = mutated_pairs
    cfg = MinHashConfig()
    ka, kb = band_keys(minhash_signatures(docs), cfg), band_keys(minhash_signatures(mutated), cfg)
    hit = (ka == kb).any(axis=1)
    for lo, hi in ((0.0, 0.45), (0.85, 1.01)):
        sel = (true >= lo) & (true < hi)
        expected = np.mean([cfg.collision_probability(j) for j in true[sel]])
        assert abs(hit[sel].mean() - expected) < 0.05, (lo, hi, hit[sel].mean(), expected)


def test_keep_policy_is_deterministic():
    base = " ".join(gutenberg_words()[5000:5200])
    texts = [base, base + " appendix words here", base, " ".join(gutenberg_words()[9000:9200])]
    ids = ["c", "b", "a", "z"]
    res = near_duplicate_clusters(texts, ids=ids, quality=[0.1, 0.2, 0.9, 0.0])
    assert res.size.tolist() == [3, 3, 3, 1]
    assert res.keep.tolist() == [False, False, True, True]  # highest quality wins
    assert res.cluster_min[0] == 2  # the cluster is named by its smallest id ("a")
    res = near_duplicate_clusters(texts, ids=ids, quality=[0.5, 0.5, 0.5, 0.0])
    assert res.keep.tolist() == [False, True, False, True]  # tie on quality -> longest
    res = near_duplicate_clusters(texts, ids=ids, quality=[np.nan, np.nan, np.nan, 0.0], keep="smallest_id")
    assert res.keep.tolist() == [False, False, True, True]
    res = near_duplicate_clusters(texts, ids=ids, keep="longest")
    assert res.keep.tolist() == [False, True, False, True]
    # input order does not matter
    perm = [3, 2, 1, 0]
    res2 = near_duplicate_clusters([texts[i] for i in perm], ids=[ids[i] for i in perm], keep="longest")
    assert [ids[i] for i in perm if res2.keep[perm.index(i)]] == [ids[i] for i in range(4) if res.keep[i]][::-1]
    with pytest.raises(ValueError, match="keep policy"):
        near_duplicate_clusters(texts, keep="random")
    # duplicate ids (two files reusing ids) are ranked by input order, with a warning
    with pytest.warns(UserWarning, match="duplicate document id"):
        assert id_ranks(["a", "b", "a"]).tolist() == [0, 2, 1]


def test_union_find_and_bucket_edges():
    u, v = bucket_edges(np.array([5, 7, 5, 9, 7, 5], dtype=np.uint64))
    assert sorted(zip(u.tolist(), v.tolist())) == [(2, 0), (4, 1), (5, 0)]
    uf = UnionFind(8)
    uf.union(np.array([7, 6, 5, 4]), np.array([6, 5, 4, 3]))  # a chain, hooked in one batch
    uf.union(np.array([1]), np.array([0]))
    assert uf.roots().tolist() == [0, 0, 2, 3, 3, 3, 3, 3]
    c = choose_kept(uf.roots(), np.arange(8), lengths=np.arange(8))
    assert c.size.tolist() == [2, 2, 1, 5, 5, 5, 5, 5]
    assert c.kept.tolist() == [1, 1, 2, 7, 7, 7, 7, 7]


def test_dedup_table_adds_columns():
    base = " ".join(gutenberg_words()[100:400])
    table = pa.table({"id": ["x1", "x2", "x3"], "text": [base, base + " end", "something else entirely here"],
                      "quality_score": [0.9, 0.1, None]})
    out = dedup_table(table)
    assert out.column("dup_cluster_id").to_pylist() == ["x1", "x1", "x3"]
    assert out.column("dup_cluster_size").to_pylist() == [2, 2, 1]
    assert out.column("dup_kept_id").to_pylist() == [None, "x1", None]


def test_lsh_index_for_novelty_filtering():
    docs = distinct_docs(40, seed=3)
    rng = random.Random(3)
    index = MinHashLSHIndex()
    index.add(docs[:20], ids=[f"seen{i}" for i in range(20)])
    near = mutate(docs[4], 0.005, rng, gutenberg_words())
    found = index.query([near, docs[30]], min_jaccard=0.5)
    assert found == [["seen4"], []]
    batch = [docs[25], near, docs[26], docs[25]]
    novel = index.novel(batch, ids=["n0", "n1", "n2", "n3"])
    assert novel.tolist() == [True, False, True, False]  # near-dup of an indexed text; repeat inside the batch
    assert index.query([docs[26]]) == [["n2"]]
    assert len(index) == 22
