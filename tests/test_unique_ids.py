"""Duplicate ids in `flows run dolma`: the first record (file order, then record order) keeps its id, later ones
become `<id>#2`, `<id>#3`, ..., the original in `metadata.original_id`, counted as `duplicate_ids_renamed`."""
import json

import pyarrow.parquet as pq

from corpora.sample import sample_corpus_path
from corpora.staging import unique_id
from flows.config import load_config
from flows.dolma import DolmaConfig, dolma_flow


def test_unique_id_rule():
    taken: set[str] = set()
    assert [unique_id(i, taken) for i in ["a", "b", "a", "a", "a#2", "b"]] == ["a", "b", "a#2", "a#3", "a#2#2",
                                                                                "b#2"]


def _rows(out, kind):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_duplicate_ids_within_and_across_files(tmp_path, prefect_harness):
    texts = [json.loads(x)["text"] for x in sample_corpus_path().read_text().splitlines()
             if json.loads(x)["metadata"]["kind"] == "clean"]
    inp = tmp_path / "in"
    inp.mkdir()
    a = [f"d{i}" for i in range(6)] + ["d3"]           # d3 twice in one file
    b = ["d0", "d1", "d1", "e0"]                          # d0, d1 from a; d1 twice here too
    t = iter(texts)
    want = {}
    for name, ids in (("a.jsonl", a), ("b.jsonl", b)):
        lines = []
        for i in ids:
            tag = f"{name}:{len(lines)}"
            lines.append(json.dumps({"id": i, "text": next(t), "tag": tag}))
            want.setdefault(i, []).append(tag)
        (inp / name).write_text("\n".join(lines) + "\n")
    cfg = load_config(DolmaConfig, inputs=[str(inp)], output=str(tmp_path / "out"),
                      sets=["dedup.minhash.enabled=false", "dedup.paragraph.enabled=false"])
    res = dolma_flow(cfg)
    out = tmp_path / "out"
    got = _rows(out, "data") + _rows(out, "rejected")
    assert len(got) == 11 and len({r["id"] for r in got}) == 11
    by_tag = {json.loads(r["metadata"])["tag"]: r for r in got}
    expect = {"d3": ["d3", "d3#2"], "d0": ["d0", "d0#2"], "d1": ["d1", "d1#2", "d1#3"]}
    for orig, new_ids in expect.items():
        for tag, new in zip(want[orig], new_ids):
            r = by_tag[tag]
            assert r["id"] == new
            meta = json.loads(r["metadata"])
            assert meta.get("original_id") == (orig if new != orig else None)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["duplicate_ids_renamed"] == res["stats"]["duplicate_ids_renamed"] == 4
    assert stats["invariant"]["holds"]
    manifest = json.loads((out / "manifest.json").read_text())
    # a rerun (everything resumed) gives byte-identical shards; a fresh run too
    dolma_flow(cfg)
    assert json.loads((out / "manifest.json").read_text())["outputs"] == manifest["outputs"]
    cfg2 = load_config(DolmaConfig, inputs=[str(inp)], output=str(tmp_path / "fresh"),
                       sets=["dedup.minhash.enabled=false", "dedup.paragraph.enabled=false",
                             "execution.workers=2"])
    dolma_flow(cfg2)
    assert json.loads((tmp_path / "fresh" / "manifest.json").read_text())["outputs"] == manifest["outputs"]
