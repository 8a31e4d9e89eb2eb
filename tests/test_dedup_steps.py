"""The dedup stages as datatrove steps under LocalPipelineExecutor: url -> exact -> paragraph -> minhash ->
decontam over two input shards; identical output with 1 and 2 workers and across reruns."""
import gzip
import json
import random

import pytest

from dedup_data import distinct_docs, gutenberg_words, mutate, shared_file

pytest.importorskip("datatrove")
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

from filters.dedup.paragraphs import ParagraphDedupConfig  # noqa: E402
from filters.dedup.steps import (DecontamFilter, DedupApply, DedupBuckets, DedupClusters,  # noqa: E402
                                 DedupSignatures, ParagraphBloomBuild, ParagraphDedupFilter)

PARAGRAPHS = ParagraphDedupConfig(expected_items=50_000, false_positive_rate=1e-6, min_doc_chars=40)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    rng = random.Random(21)
    vocab = gutenberg_words()
    base = distinct_docs(160, seed=21, min_words=80, max_words=160)
    tofu = json.loads(shared_file("unlearning", "tofu_forget01.json").read_text())
    boiler = "All rights reserved. Terms of use apply to this page."
    rows = []
    for i, text in enumerate(base):
        rows.append({"id": f"b{i:03d}", "text": text + ("\n" + boiler if i % 4 == 0 else ""),
                     "url": f"https://site{i % 50}.org/p/{i}", "quality_score": rng.random()})
    for j in range(30):  # near duplicates of earlier documents
        src = rows[rng.randrange(160)]
        text = src["text"]
        while text.split() == src["text"].split():  # at least one word edited: a near, not an exact, duplicate
            text = mutate(src["text"], 0.01, rng, vocab)
        rows.append({"id": f"n{j:03d}", "text": text,
                     "url": f"https://mirror.net/{j}", "quality_score": rng.random()})
    for j in range(10):  # exact copies under another URL, and URL duplicates with other text
        rows.append({"id": f"e{j:03d}", "text": rows[j * 3]["text"], "url": f"https://copy.net/{j}"})
        rows.append({"id": f"u{j:03d}", "text": distinct_docs(200, seed=99 + j)[j],
                     "url": rows[j * 5]["url"].upper().replace("/P/", "/p/") + "?utm_source=feed"})
    for j in range(3):  # benchmark leaks
        rows.append({"id": f"t{j:03d}", "text": base[100 + j] + "\n" + tofu[j]["question"] + " " + tofu[j]["answer"],
                     "url": f"https://leak.com/{j}"})
    rng.shuffle(rows)
    folder = tmp_path_factory.mktemp("dedup_in")
    half = len(rows) // 2
    for shard, part in enumerate((rows[:half], rows[half:])):
        with open(folder / f"part{shard}.jsonl", "w") as fh:
            for r in part:
                fh.write(json.dumps(r) + "\n")
    return folder, rows


def run_chain(inputs_dir, root, workers):
    """Removed documents are dropped and collected by exclusion writers (one folder per stage)."""
    def ex(pipeline, tasks, name):
        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks), skip_completed=False,
                              logging_dir=str(root / "logs" / name)).run()

    def read(folder):
        return JsonlReader(str(folder), glob_pattern="*.jsonl*")

    def rejected(name):
        return JsonlWriter(str(root / "rejected" / name), output_filename="${rank}.jsonl.gz")

    url, exact, par, mh = (root / "work" / n for n in ("url", "exact", "paragraph", "minhash"))
    ex([read(inputs_dir), DedupSignatures(url, "url"), DedupSignatures(exact, "exact")], 2, "keys")
    ex([DedupBuckets(url), DedupBuckets(exact)], 2, "buckets")
    ex([DedupClusters(url), DedupClusters(exact, exclude=[url])], 1, "clusters")
    ex([read(inputs_dir), DedupApply([url, exact], drop=True, exclusion_writer=rejected("url-exact")),
        ParagraphBloomBuild(par, PARAGRAPHS)], 2, "bloom")
    ex([read(inputs_dir), DedupApply([url, exact], drop=True),
        ParagraphDedupFilter(par, PARAGRAPHS, drop=True, exclusion_writer=rejected("paragraph")),
        DedupSignatures(mh, "minhash"),
        JsonlWriter(str(root / "stage"), output_filename="${rank}.jsonl.gz")], 2, "paragraph")
    ex([DedupBuckets(mh)], 2, "mh-buckets")
    ex([DedupClusters(mh)], 1, "mh-clusters")
    benchmarks = {"tofu": {"path": str(shared_file("unlearning", "tofu_forget01.json")),
                           "field": ["question", "answer"]}}
    ex([read(root / "stage"), DedupApply(mh, drop=True, exclusion_writer=rejected("minhash")),
        DecontamFilter(benchmarks, drop=True, exclusion_writer=rejected("decontam"), stats_dir=root / "stats"),
        JsonlWriter(str(root / "out"), output_filename="${rank}.jsonl.gz")], 2, "final")


def load(folder):
    out = {}
    for f in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(f, "rt") as fh:
            out[f.name] = [(d["id"], d["text"], d["metadata"].get("dup_cluster_id"),
                            d["metadata"].get("dup_cluster_size"), d["metadata"].get("reason_detail"),
                            d["metadata"].get("reason"))
                           for d in map(json.loads, fh)]
    return out


def results(root):
    return {"out": load(root / "out"),
            **{name: load(root / "rejected" / name)
               for name in ("url-exact", "paragraph", "minhash", "decontam")}}


def test_full_chain_same_with_one_and_two_workers_and_reruns(inputs, tmp_path):
    folder, rows = inputs
    run_chain(folder, tmp_path / "a", workers=1)
    first = results(tmp_path / "a")
    counts = {k: sum(len(v) for v in files.values()) for k, files in first.items()}
    assert sum(counts.values()) == len(rows)  # every row accounted for, none duplicated
    url_exact = [d for files in first["url-exact"].values() for d in files]
    # URL duplicates and exact copies lack a quality score: the scored originals are kept
    assert sorted((d[0][0], d[5]) for d in url_exact) == [("e", "exact")] * 10 + [("u", "url")] * 10
    assert counts["minhash"] >= 25 and counts["decontam"] == 3
    ids_out = {d[0] for files in first["out"].values() for d in files}
    assert not any(i.startswith("t") for i in ids_out)
    # boilerplate paragraph appears only once in the output
    texts = [d[1] for files in first["out"].values() for d in files]
    boiler = "All rights reserved. Terms of use apply to this page."
    assert sum(boiler in t.split("\n") for t in texts) == 1
    # removed near duplicates name the kept member, which is in the output
    for _, _, cid, size, kept, _ in (d for files in first["minhash"].values() for d in files):
        assert kept in ids_out and size >= 2
    run_chain(folder, tmp_path / "b", workers=2)
    assert results(tmp_path / "b") == first
    run_chain(folder, tmp_path / "a", workers=1)  # rerun over the same folders
    assert results(tmp_path / "a") == first
    stats = json.loads((tmp_path / "a" / "stats" / "dedup-decontam-00000.json").read_text())
    assert set(stats["hits_per_benchmark"]) == {"tofu"}
