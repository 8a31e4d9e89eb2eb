import random
import shutil

import numpy as np
import pytest

from dedup_data import distinct_docs, gutenberg_words, mutate
from filters.dedup.intermediate import IntermediateError
from filters.dedup.keys import ExactKeys, MinHashKeys, UrlKeys
from filters.dedup.minhash import near_duplicate_clusters
from filters.dedup.outofcore import (AssignmentReader, SignatureWriter, cluster_duplicates, find_bucket_edges)


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(5)
    docs = distinct_docs(300, seed=5)
    planted = [mutate(docs[rng.randrange(300)], rng.choice([0.005, 0.01, 0.02]), rng, gutenberg_words())
               for _ in range(100)]
    texts = docs + planted
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts = [texts[i] for i in order]
    ids = [f"doc-{i:04d}" for i in order]
    quality = [rng.random() for _ in texts]
    return texts, ids, quality


def run_pipeline(work, texts, ids, quality, shards, bucket_workers, partitions=1, method=None):
    method = method or MinHashKeys()
    bounds = np.linspace(0, len(texts), shards + 1).astype(int)
    for r in range(shards):
        w = SignatureWriter(work, method, r, shards)
        for s in range(bounds[r], bounds[r + 1], 50):
            e = min(bounds[r + 1], s + 50)
            w.add(ids[s:e], texts[s:e], quality=quality[s:e])
        w.close()
    for r in range(bucket_workers):
        find_bucket_edges(work, r, bucket_workers, partitions)
    stats = cluster_duplicates(work)
    out = []
    for r in range(shards):
        reader = AssignmentReader(work, r)
        out.extend(reader.next(ids[i]) for i in range(bounds[r], bounds[r + 1]))
        reader.finish()
    return out, stats


def test_sharded_result_equals_in_memory_for_any_sharding(tmp_path, corpus):
    texts, ids, quality = corpus
    mem = near_duplicate_clusters(texts, ids=ids, quality=quality)
    want = [(None if mem.size[i] == 1 else ids[mem.cluster_min[i]], int(mem.size[i]),
             None if mem.keep[i] else ids[mem.kept[i]]) for i in range(len(texts))]
    assert sum(w[2] is not None for w in want) >= 90  # the planted duplicates are found
    for shards, workers, parts in ((1, 1, 1), (3, 2, 1), (4, 5, 3)):
        got, stats = run_pipeline(tmp_path / f"{shards}-{workers}-{parts}", texts, ids, quality, shards, workers,
                                  parts)
        assert got == want, (shards, workers, parts)
        assert stats["removed"] == sum(w[2] is not None for w in want)


def test_truncated_intermediate_is_an_error_that_names_it(tmp_path, corpus):
    texts, ids, quality = corpus
    work = tmp_path / "w"
    run_pipeline(work, texts, ids, quality, 2, 1)
    sig = work / "sigs" / "00001.parquet"
    data = sig.read_bytes()
    sig.write_bytes(data[: len(data) // 2])
    with pytest.raises(IntermediateError, match=r"sigs/00001.parquet: truncated"):
        find_bucket_edges(work, 0, 1)
    sig.write_bytes(data)
    edge = work / "edges" / "00000.parquet"
    edge.write_bytes(edge.read_bytes()[:-10])
    with pytest.raises(IntermediateError, match=r"edges/00000.parquet: truncated"):
        cluster_duplicates(work)


def test_missing_or_unfinished_intermediates_are_errors(tmp_path, corpus):
    texts, ids, quality = corpus
    work = tmp_path / "w"
    run_pipeline(work, texts, ids, quality, 3, 2)
    (work / "sigs" / "00001.parquet.meta.json").unlink()  # the writer died before validating its file
    with pytest.raises(IntermediateError, match="00001.parquet: no 00001.parquet.meta.json"):
        find_bucket_edges(work, 0, 1)
    shutil.rmtree(work)
    run_pipeline(work, texts, ids, quality, 3, 2)
    (work / "sigs" / "00002.parquet").unlink()
    (work / "sigs" / "00002.parquet.meta.json").unlink()
    with pytest.raises(IntermediateError, match="missing"):
        find_bucket_edges(work, 0, 1)
    shutil.rmtree(work)
    run_pipeline(work, texts, ids, quality, 2, 2)
    (work / "edges" / "00001.parquet").unlink()
    (work / "edges" / "00001.parquet.meta.json").unlink()
    with pytest.raises(IntermediateError, match="expected edge files"):
        cluster_duplicates(work)


def test_input_changed_between_steps_is_detected(tmp_path, corpus):
    texts, ids, quality = corpus
    work = tmp_path / "w"
    run_pipeline(work, texts, ids, quality, 1, 1)
    reader = AssignmentReader(work, 0)
    reader.next(ids[0])
    with pytest.raises(IntermediateError, match="row 1 belongs to another document"):
        reader.next(ids[2])
    reader = AssignmentReader(work, 0)
    for i in ids[:-1]:
        reader.next(i)
    with pytest.raises(IntermediateError, match="but the shard had"):
        reader.finish()


def test_mixing_settings_is_refused(tmp_path, corpus):
    texts, ids, quality = corpus
    work = tmp_path / "w"
    w0 = SignatureWriter(work, MinHashKeys(), 0, 2)
    w0.add(ids[:10], texts[:10])
    w0.close()
    from filters.dedup.minhash import MinHashConfig
    w1 = SignatureWriter(work, MinHashKeys(MinHashConfig(num_bands=14, rows_per_band=8, seed=9)), 1, 2)
    w1.add(ids[10:20], texts[10:20])
    w1.close()
    with pytest.raises(IntermediateError, match="different settings"):
        find_bucket_edges(work, 0, 1)


def test_url_then_exact_with_exclusion(tmp_path):
    texts = ["alpha text", "alpha text", "beta text", "beta text", "gamma"]
    urls = ["https://x.com/a", "https://X.com/a/", "https://x.com/b", "https://x.com/c", None]
    ids = ["1", "2", "3", "4", "5"]
    for name, method in (("url", UrlKeys()), ("exact", ExactKeys())):
        w = SignatureWriter(tmp_path / name, method, 0, 1)
        w.add(ids, texts, urls=urls)
        w.close()
        find_bucket_edges(tmp_path / name)
    cluster_duplicates(tmp_path / "url")
    stats = cluster_duplicates(tmp_path / "exact", exclude=[tmp_path / "url"])
    reader = AssignmentReader(tmp_path / "url", 0)
    assert [reader.next(i)[2] for i in ids] == [None, "1", None, None, None]
    reader = AssignmentReader(tmp_path / "exact", 0)
    got = [reader.next(i) for i in ids]
    assert [g[2] for g in got] == [None, None, None, "3", None]  # doc 2 already removed by url: not counted
    assert got[0][1] == 1 and got[1][1] == 0 and got[2][1] == 2
    assert stats["removed"] == 1
