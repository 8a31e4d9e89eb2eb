import json

import pytest

from dedup_data import shared_file, web_texts
from filters.dedup.decontam import (BenchmarkError, BenchmarkIndex, DecontamConfig, contaminated_by,
                                    hits_per_benchmark)


@pytest.fixture(scope="module")
def index():
    return BenchmarkIndex.build({
        "tofu": {"path": str(shared_file("unlearning", "tofu_forget01.json")), "field": ["question", "answer"]},
        "self_instruct": {"path": str(shared_file("instruct", "self_instruct_seed_tasks.jsonl")),
                          "field": "instruction"},
    })


def test_index_stats_count_short_items(index):
    assert index.stats["tofu"] == {"items": 40, "indexed": 40, "too_short": 0}
    si = index.stats["self_instruct"]
    assert si["items"] == 175 and si["indexed"] + si["too_short"] == 175 and si["too_short"] > 0


def test_planted_benchmark_items_are_found(index):
    tofu = json.loads(shared_file("unlearning", "tofu_forget01.json").read_text())
    seeds = [json.loads(x) for x in shared_file("instruct", "self_instruct_seed_tasks.jsonl").read_text().splitlines()]
    long_seed = next(i for i, s in enumerate(seeds) if len(s["instruction"].split()) >= 25)
    web = web_texts()
    docs = [
        web[0] + "\n" + tofu[3]["question"] + "\n" + tofu[3]["answer"].upper() + "\n" + web[1],  # verbatim (case)
        web[2],  # clean
        web[3] + " " + seeds[long_seed]["instruction"],  # instruction planted
        web[4] + " " + " ".join(tofu[7]["answer"].split()[:13]),  # one shared 13-gram, well under half the item
    ]
    hits = index.match(docs)
    assert [(h.benchmark, h.item) for h in hits[0]] == [("tofu", 3)] and hits[0][0].ratio > 0.95
    assert hits[1] == []
    assert [(h.benchmark, h.item) for h in hits[2]] == [("self_instruct", long_seed)]
    assert hits[3] == []  # candidate by n-gram, rejected by the overlap ratio
    assert contaminated_by(hits[0]) == "tofu" and contaminated_by(hits[1]) is None
    assert hits_per_benchmark(hits) == {"tofu": 1, "self_instruct": 1}


def test_clean_web_text_has_no_hits(index):
    hits = index.match(web_texts()[:200])
    assert sum(bool(h) for h in hits) == 0


def test_bad_benchmark_config_names_file_and_row(tmp_path):
    p = tmp_path / "bench.jsonl"
    p.write_text('{"q": "fine"}\n{"other": 1}\n')
    with pytest.raises(BenchmarkError, match=r"bench.jsonl:2: no field 'q'"):
        BenchmarkIndex.build({"b": {"path": str(p), "field": "q"}})
    with pytest.raises(BenchmarkError, match="does not exist"):
        BenchmarkIndex.build({"b": {"path": str(tmp_path / "missing.jsonl"), "field": "q"}})


def test_threshold_and_ngram_size_are_configurable(index):
    tofu = json.loads(shared_file("unlearning", "tofu_forget01.json").read_text())
    item = tofu[7]["question"] + " " + tofu[7]["answer"]
    half = " ".join(item.split()[: len(item.split()) // 2 + 3])
    doc = web_texts()[5] + " " + half
    assert index.match([doc]) != []  # a bit over half the item: contaminated at 0.5
    strict = BenchmarkIndex.build({"tofu": {"path": str(shared_file("unlearning", "tofu_forget01.json")),
                                            "field": ["question", "answer"]}}, DecontamConfig(threshold=0.9))
    assert strict.match([doc]) == [[]]


# --- query / answer benchmarks (datatrove's NGramsDecont parts, its own test's kinds of documents) ------------

QA = {"ctx": "He is using commercial lawn mowing equipment in the big back yard of the house.",
      "gold": "he walks back and forth as he mows the grass until the whole lawn is short and even."}
FRAME = ("Nothing is so painful to the human mind as a great and sudden change. {} "
         "Beware; for I am fearless, and therefore powerful.")
QA_DOCS = {
    "query": FRAME.format(QA["ctx"]),  # the prompt alone
    "answer": FRAME.format(QA["gold"]),  # the gold alone
    "straddle": FRAME.format("the big back yard of the house. he walks back and forth as"),  # across the seam
    "wrong_completion": FRAME.format(QA["ctx"] + " Then, animated, she does the task."),
    "clean": FRAME.format("A completely different sentence about the weather in spring and summer."),
}


def qa_hits(tmp_path, parts):
    from filters.dedup.decontam import BenchmarkSpec

    f = tmp_path / "qa.jsonl"
    f.write_text(json.dumps(QA) + "\n")
    spec = BenchmarkSpec(path=str(f), query="ctx", answer="gold", parts=tuple(parts))
    idx = BenchmarkIndex.build({"hs": spec}, DecontamConfig(ngram_size=5, threshold=0.5))
    return {name: sorted({h.part for h in hits}) for name, hits in zip(QA_DOCS, idx.match(list(QA_DOCS.values())))}


def test_answer_only_and_query_only_parts(tmp_path):
    assert qa_hits(tmp_path, ["answer"]) == {"query": [], "answer": ["answer"], "straddle": [],
                                             "wrong_completion": [], "clean": []}
    assert qa_hits(tmp_path, ["query"]) == {"query": ["query"], "answer": [], "straddle": [],
                                            "wrong_completion": ["query"], "clean": []}


def test_straddling_ngrams_catch_what_neither_part_alone_does(tmp_path):
    got = qa_hits(tmp_path, ["answer", "straddle"])  # datatrove's default
    assert got["straddle"] == ["straddle"] and got["answer"] == ["answer"]
    assert got["query"] == [] and got["wrong_completion"] == [] and got["clean"] == []
    got = qa_hits(tmp_path, ["query", "answer", "straddle"])
    assert got["wrong_completion"] == ["query"] and got["clean"] == []


def test_query_answer_benchmark_errors(tmp_path):
    from filters.dedup.decontam import BenchmarkSpec, load_items

    f = tmp_path / "qa.jsonl"
    f.write_text(json.dumps(QA) + "\n")
    with pytest.raises(BenchmarkError, match="needs both"):
        load_items(BenchmarkSpec(path=str(f), query="ctx"))
    with pytest.raises(BenchmarkError, match="no field 'answer'"):
        load_items(BenchmarkSpec(path=str(f), query="ctx", answer="answer"))
