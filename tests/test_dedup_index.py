"""Dedup against a prebuilt index: a second corpus loses what the first already holds (exact and near copies),
the first corpus is neither read nor rewritten, and a run's own index is written for the next one."""
import hashlib
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup_data import distinct_docs, gutenberg_words, mutate
from flows.config import load_config
from flows.dedup import DedupFlowConfig, dedup_flow

SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("url", pa.string())])


def rows(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def run(inp, out, **sets):
    sets = {"dedup.paragraph.enabled": "false", **sets}
    cfg = load_config(DedupFlowConfig, inputs=[str(inp)], output=str(out), sets=[f"{k}={v}" for k, v in sets.items()])
    return dedup_flow(cfg)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, prefect_harness):
    rng = random.Random(7)
    texts = distinct_docs(60, seed=7, min_words=150, max_words=250)
    d = tmp_path_factory.mktemp("index")
    first = [{"id": f"a{i:03d}", "text": t, "url": f"https://a.org/{i}"} for i, t in enumerate(texts[:40])]
    second = [{"id": f"b{i:03d}", "text": t, "url": f"https://b.org/{i}"} for i, t in enumerate(texts[40:])]
    second += [{"id": f"c{i:03d}", "text": "  " + texts[i] + "\n", "url": f"https://c.org/{i}"} for i in range(5)]
    near = []
    for i in range(5, 10):
        t = texts[i]
        while t.split() == texts[i].split():
            t = mutate(texts[i], 0.01, rng, gutenberg_words())
        near.append({"id": f"n{i:03d}", "text": t, "url": f"https://n.org/{i}"})
    second += near
    pq.write_table(pa.Table.from_pylist(first, SCHEMA), d / "first.parquet")
    (d / "second").mkdir()
    pq.write_table(pa.Table.from_pylist(second, SCHEMA), d / "second" / "second.parquet")
    out1 = d / "out1"
    run(d / "first.parquet", out1)
    return d, out1


def test_second_corpus_loses_what_the_index_holds(corpora):
    d, out1 = corpora
    assert (out1 / "dedup_index" / "exact" / "sigs").is_dir() and (out1 / "dedup_index" / "minhash" / "sigs").is_dir()
    before = digest(out1)
    out2 = d / "out2"
    result = run(d / "second", out2, **{"dedup.exact.index": str(out1), "dedup.minhash.index": str(out1)})
    assert digest(out1) == before  # the indexed corpus is not rewritten
    rejected = {r["id"]: (r["reason"], r["reason_detail"]) for r in rows(out2, "rejected")}
    assert rejected == {**{f"c{i:03d}": ("exact", f"a{i:03d}") for i in range(5)},
                        **{f"n{i:03d}": ("minhash", f"a{i:03d}") for i in range(5, 10)}}
    assert sorted(r["id"] for r in rows(out2, "data")) == [f"b{i:03d}" for i in range(20)]
    st = result["stats"]["dedup"]
    assert st["exact"]["removed_by_index"] == 5 and st["minhash"]["removed_by_index"] == 5
    assert st["exact"]["index_documents"] == 40
    # without the index, nothing of that is a duplicate within the second corpus
    out3 = d / "out3"
    run(d / "second", out3)
    assert not rows(out3, "rejected")


def test_index_errors_are_one_clear_line(corpora):
    d, out1 = corpora
    with pytest.raises(FileNotFoundError, match="holds no minhash index"):
        run(d / "second", d / "bad", **{"dedup.minhash.index": str(d)})
    with pytest.raises(Exception, match="other minhash settings"):
        run(d / "second", d / "bad2", **{"dedup.minhash.index": str(out1), "dedup.minhash.ngram_size": "3"})
    with pytest.raises(ValueError, match="this run's own index"):
        run(d / "first.parquet", out1, **{"dedup.exact.index": str(out1), "overwrite": "true"})
