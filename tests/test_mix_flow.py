"""`flows run mix` for real: Prefect flow runs, Parquet in and out, the SmolLM2 tokenizer. Shares are checked by
counting the tokens of the output texts again, not by trusting the `tokens` column or the plan."""
import collections
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shared_path
from corpora.mix_count import TokenCounter
from corpora.mix_plan import PlanError
from corpora.mix_rules import RuleError
from corpora.mix_sources import MixSource
from flows.config import defaults_yaml
from flows.mix import MixConfig, mix_flow, preflight

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tokenizer():
    from generators.backends.local_models import ModelNotFound, dequantised_smollm2_dir

    try:
        return str(dequantised_smollm2_dir())
    except ModelNotFound as e:
        pytest.skip(f"SmolLM2 tokenizer not available: {e}")


def rows(out, kind="data"):
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def recount(out, tokenizer):
    counter = TokenCounter(tokenizer)
    data = rows(out)
    by = collections.Counter()
    for r, n in zip(data, counter.count([r["text"] for r in data])):
        by[r["source"]] += int(n)
        assert r["tokens"] == n
    return by, data


def check_shares(out, tokenizer, shares, budget):
    by, data = recount(out, tokenizer)
    for name, share in shares.items():
        assert abs(by[name] - share * budget) <= 0.01 * share * budget, (name, by[name], share * budget)
    # epochs: a document's copies are numbered 0..n-1, and no two rows are one copy
    copies = collections.defaultdict(list)
    for r in data:
        copies[(r["source"], r["id"])].append(r["epoch"])
    assert all(sorted(e) == list(range(len(e))) for e in copies.values())
    return by, data, copies


def test_shipped_default_config_matches_the_model():
    assert (ROOT / "configs" / "mix.yaml").read_text() == defaults_yaml(MixConfig)


def test_three_real_sources_shares_within_one_percent(tmp_path, prefect_harness, tokenizer):
    web = shared_path("data", "web")
    budget, shares = 200_000, {"dclm": 0.5, "dolma": 0.3, "redpajama": 0.2}
    cfg = MixConfig(output=str(tmp_path / "out"), budget_tokens=budget, tokenizer={"path": tokenizer}, seed=3,
                    sources=[
                        MixSource(name="dclm", paths=[str(web / "dclm_quality_labelled.jsonl")],
                                  include=["metadata.label == 1"], share=0.5),
                        MixSource(name="dolma", paths=[str(p) for p in sorted(web.glob("dolma_cc_en_head-*.jsonl"))],
                                  share=0.3),
                        MixSource(name="redpajama", share=0.2, paths=[
                            str(p) for p in sorted(web.glob("datajuicer_redpajama-*.jsonl"))])])
    res = mix_flow(cfg)
    out = tmp_path / "out"
    by, data, copies = check_shares(out, tokenizer, shares, budget)
    plan = json.loads((out / "plan.json").read_text())
    assert plan["groups"]["dolma"]["full_epochs"] >= 1 and plan["groups"]["redpajama"]["full_epochs"] >= 1
    assert max(len(e) for (s, _), e in copies.items() if s == "dolma") == plan["groups"]["dolma"]["max_copies"]
    # the rule: every dclm row in the output is labelled 1, every excluded one is not
    labels = {}
    for i, line in enumerate((web / "dclm_quality_labelled.jsonl").read_text().splitlines()):
        labels[i] = json.loads(line)["label"]
    assert all(json.loads(r["metadata"])["label"] == 1 for r in data if r["source"] == "dclm")
    excluded = rows(out, "excluded")
    assert excluded and all(r["source"] == "dclm" and r["rule"] == "metadata.label == 1" for r in excluded)
    assert len(excluded) == sum(1 for v in labels.values() if v != 1)
    # shuffled: the sources are interleaved, not in blocks
    runs = sum(1 for a, b in zip(data, data[1:]) if a["source"] != b["source"])
    assert runs > len(data) / 4
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"] and res["stats"]["sources"]["dclm"]["records_read"] == 499


def test_demo_on_the_bundled_sample_and_rerun(tmp_path, prefect_harness, tokenizer):
    out = tmp_path / "demo"
    mix_flow(MixConfig(output=str(out), tokenizer={"path": tokenizer}))
    shares = {"web": 0.77, "multilingual": 0.20, "instruct": 0.03}
    by, data, copies = check_shares(out, tokenizer, shares, 40_000)
    assert max(len(e) for (s, _), e in copies.items() if s == "instruct") == 4  # 3.44 epochs: 3 or 4 copies
    kinds = {json.loads(l)["id"]: json.loads(l)["metadata"]["kind"]
             for l in (ROOT / "corpora" / "sample_data" / "web_sample.jsonl").read_text().splitlines()}
    langs = {"non_english_fr", "non_english_de", "non_english_es"}
    assert all((kinds[r["id"]] in langs) == (r["source"] == "multilingual") for r in data if r["source"] != "instruct")
    assert not any(kinds[r["id"]] in {"spam", "toxic", "pii_dump", "lorem_ipsum"} for r in data
                   if r["source"] == "web")
    excluded = rows(out, "excluded")
    by_rule = collections.Counter((r["source"], r["rule"]) for r in excluded)
    assert by_rule[("web", "metadata.kind == lorem_ipsum")] == sum(1 for k in kinds.values() if k == "lorem_ipsum")
    assert by_rule[("multilingual", "metadata.kind in [non_english_fr, non_english_de, non_english_es]")] == \
        sum(1 for k in kinds.values() if k not in langs)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    # rerun: the count stage is reused (its done.json untouched), the data identical
    done = sorted((out / "_work" / "mix" / "count").rglob("done.json"))
    stamps = [p.stat().st_mtime_ns for p in done]
    mix_flow(MixConfig(output=str(out), tokenizer={"path": tokenizer}))
    assert [p.stat().st_mtime_ns for p in done] == stamps
    again = json.loads((out / "manifest.json").read_text())
    assert [s["sha256"] for s in again["outputs"]["data"]] == [s["sha256"] for s in manifest["outputs"]["data"]]


def test_unmet_plan_is_reported_before_anything_is_written(tmp_path, prefect_harness, tokenizer):
    out = tmp_path / "unmet"
    cfg = MixConfig(output=str(out), tokenizer={"path": tokenizer}, budget_tokens=1_000_000)
    with pytest.raises(PlanError) as e:
        mix_flow(cfg)
    msg = str(e.value)
    assert msg.startswith("mix plan cannot be met: 'web' needs 770,000 tokens") and "> max_epochs 4" in msg
    assert "'instruct' needs 30,000 tokens" in msg and "on_unmet=shrink lowers the budget to" in msg
    for name in ("data", "excluded", "quarantine", "manifest.json", "stats.json", "plan.json"):
        assert not (out / name).exists(), name
    # shrink: the largest budget every share fits in; the scarcest source sits at its cap
    res = mix_flow(cfg.model_copy(update={"on_unmet": "shrink"}))
    plan = res["plan"]
    assert plan.budget == int(4 * plan.groups["instruct"].available_tokens / 0.03)
    assert plan.groups["instruct"].max_copies == 4 and plan.groups["instruct"].status == "ok"
    check_shares(out, tokenizer, {"web": 0.77, "multilingual": 0.20, "instruct": 0.03}, plan.budget)


def _partitioned(tmp_path, n=240, seed=0):
    """data/lang=xx/part-0.parquet (Hive partitions) + attributes/part-0.parquet (id + scores, same order), and
    a second copy whose attributes are shuffled (the hash-join path)."""
    rng = random.Random(seed)
    words = (ROOT / "corpora" / "sample_data" / "web_sample.jsonl").read_text().split()
    docs = []
    for i in range(n):
        lang = ["de", "fr", "en"][i % 3]
        docs.append({"id": f"d{i:04d}", "text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 120))),
                     "lang": lang, "quality_score": None if i % 17 == 0 else round(rng.random(), 3),
                     "decided_by": rng.choice(["rouge", "vote"])})
    roots = []
    for name, shuffle in (("aligned", False), ("shuffled", True)):
        root = tmp_path / name
        for lang in ("de", "fr", "en"):
            part = [d for d in docs if d["lang"] == lang]
            (root / "data" / f"lang={lang}").mkdir(parents=True)
            pq.write_table(pa.Table.from_pylist([{"id": d["id"], "text": d["text"]} for d in part]),
                           root / "data" / f"lang={lang}" / "part-0.parquet")
        attrs = [{"id": d["id"], "quality_score": d["quality_score"], "decided_by": d["decided_by"]}
                 for lang in ("de", "en", "fr") for d in docs if d["lang"] == lang]  # data's file order: de, en, fr
        if shuffle:
            rng.shuffle(attrs)
        (root / "attributes").mkdir()
        pq.write_table(pa.Table.from_pylist(attrs[:100]), root / "attributes" / "part-00000.parquet")
        pq.write_table(pa.Table.from_pylist(attrs[100:]), root / "attributes" / "part-00001.parquet")
        roots.append(root)
    return docs, roots


def test_rules_over_attributes_and_partitions_by_language(tmp_path, prefect_harness, tokenizer):
    docs, (aligned, shuffled) = _partitioned(tmp_path)
    rules = dict(include=["quality_score >= 0.5", "lang in [de, fr]"], exclude=["decided_by == rouge"])
    results = []
    for root in (aligned, shuffled):
        out = tmp_path / f"out-{root.name}"
        res = mix_flow(MixConfig(output=str(out), tokenizer={"path": tokenizer}, by="lang",
                                 shares={"de": 0.5, "fr": 0.5}, budget_tokens=3000, seed=1,
                                 sources=[MixSource(name="web", paths=[str(root / "data")],
                                                    attributes=[str(root / "attributes")], **rules)]))
        assert res["stats"]["sources"]["web"]["attributes_join"] == ("streamed (aligned ids)" if root == aligned
                                                                    else "in memory (hash join)")
        results.append((out, rows(out), rows(out, "excluded")))
    by_id = {d["id"]: d for d in docs}
    for out, data, excluded in results:
        assert data and all(by_id[r["id"]]["lang"] == r["lang"] for r in data)
        for r in data:  # every row passes every rule; its attributes came with it
            d = by_id[r["id"]]
            assert d["quality_score"] is not None and d["quality_score"] >= 0.5 and d["lang"] in ("de", "fr")
            assert d["decided_by"] != "rouge" and r["quality_score"] == d["quality_score"]
        first = {}
        for d in docs:  # the first rule that fails, as the rules are listed
            if d["quality_score"] is None or d["quality_score"] < 0.5:
                first[d["id"]] = "quality_score >= 0.5"
            elif d["lang"] not in ("de", "fr"):
                first[d["id"]] = "lang in [de, fr]"
            elif d["decided_by"] == "rouge":
                first[d["id"]] = "decided_by == rouge"
        assert {r["id"]: r["rule"] for r in excluded} == first
        lang_tokens = collections.Counter()
        for r in data:
            lang_tokens[r["lang"]] += r["tokens"]
        assert abs(lang_tokens["de"] - 1500) <= 15 and abs(lang_tokens["fr"] - 1500) <= 15
    # the same mixture whichever way the attributes were joined
    assert [(r["id"], r["epoch"]) for r in results[0][1]] == [(r["id"], r["epoch"]) for r in results[1][1]]


def test_deterministic_order_independent_of_buckets_and_resumable(tmp_path, prefect_harness, tokenizer):
    base = dict(tokenizer={"path": tokenizer})
    a = tmp_path / "a"
    mix_flow(MixConfig(output=str(a), **base))
    b = tmp_path / "b"  # many small buckets and buffers: the same rows in the same order
    res = mix_flow(MixConfig(output=str(b), shuffle={"bucket_mb": 0.02, "buffer_mb": 0.01}, batch_docs=37, **base))
    assert res["stats"]["buckets"] > 5
    ra, rb = rows(a), rows(b)
    assert [(r["source"], r["id"], r["epoch"]) for r in ra] == [(r["source"], r["id"], r["epoch"]) for r in rb]
    # an interrupted run (some buckets and one scattered file lost) resumes to the same data
    gather = sorted((b / "_work" / "mix" / "gather").glob("part-*.parquet"))
    for p in gather[::2]:
        p.unlink()
    shutil.rmtree(next((b / "_work" / "mix" / "shuffle" / "web").iterdir()))
    mix_flow(MixConfig(output=str(b), shuffle={"bucket_mb": 0.02, "buffer_mb": 0.01}, batch_docs=37, **base))
    assert [(r["id"], r["epoch"], r["text"]) for r in rows(b)] == [(r["id"], r["epoch"], r["text"]) for r in rb]
    # another seed: another sample and order, the same shares
    c = tmp_path / "c"
    mix_flow(MixConfig(output=str(c), seed=9, **base))
    rc = rows(c)
    assert [(r["id"], r["epoch"]) for r in rc] != [(r["id"], r["epoch"]) for r in ra]
    check_shares(c, tokenizer, {"web": 0.77, "multilingual": 0.20, "instruct": 0.03}, 40_000)


def test_preflight_names_bad_rules_columns_and_sources(tmp_path, tokenizer):
    docs, (aligned, _) = _partitioned(tmp_path)
    src = dict(name="web", paths=[str(aligned / "data")], attributes=[str(aligned / "attributes")], share=1.0)
    with pytest.raises(RuleError, match=r"source 'web' include: rule 'qualty_score >= 0.5': unknown column "
                                        r"'qualty_score' at position 0 \(did you mean 'quality_score'\?\)"):
        preflight(MixConfig(output=str(tmp_path / "o"), sources=[MixSource(**src, include=["qualty_score >= 0.5"])]))
    with pytest.raises(RuleError, match="column 'lang' is string, compared with 3"):
        preflight(MixConfig(output=str(tmp_path / "o"), sources=[MixSource(**src, exclude=["lang == 3"])]))
    with pytest.raises(ValueError, match="two sources are named 'web'"):
        preflight(MixConfig(output=str(tmp_path / "o"), sources=[MixSource(**src), MixSource(**src)]))
    with pytest.raises(ValueError, match="not with --input"):
        preflight(MixConfig(output=str(tmp_path / "o"), inputs=[str(aligned)]))
    with pytest.raises(ValueError, match="output .* is inside the input folder|inside the input folder"):
        preflight(MixConfig(output=str(aligned / "data" / "out"), sources=[MixSource(**src)]))


def test_folder_columns_and_hive_partitions_become_columns(tmp_path):
    from corpora.mix_sources import resolve_source

    for slice_, split in (("1750_1820", "train"), ("1750_1820", "test"), ("1910_1940", "train")):
        d = tmp_path / "slices" / slice_ / split / "lang=en"
        d.mkdir(parents=True)
        pq.write_table(pa.table({"id": [f"{slice_}-{split}"], "text": ["a paragraph"]}), d / "part-00000.parquet")
    src = resolve_source(MixSource(name="books", paths=[str(tmp_path / "slices")], folder_columns=["slice", "split"]))
    assert [dict(f.partitions) for f in src.files] == [
        {"slice": "1750_1820", "split": "test", "lang": "en"}, {"slice": "1750_1820", "split": "train", "lang": "en"},
        {"slice": "1910_1940", "split": "train", "lang": "en"}]
    t = pa.concat_tables([b for f in src.files for b in src.read(f, ["id", "slice", "split", "lang"])])
    assert t.column("slice").to_pylist() == ["1750_1820", "1750_1820", "1910_1940"]


def test_a_row_without_text_is_quarantined_and_a_row_without_id_gets_a_content_id(tmp_path, tokenizer):
    from corpora.hashing import content_id
    from corpora.mix_count import SourceRules, count_file
    from corpora.mix_sources import resolve_source

    f = tmp_path / "in" / "docs.parquet"
    f.parent.mkdir()
    pq.write_table(pa.table({"id": ["a", None, "c"], "text": ["one two", "three", None]}), f)
    src = resolve_source(MixSource(name="s", paths=[str(f)], share=1.0))
    done = count_file(src, src.files[0], SourceRules.of(src), TokenCounter(tokenizer), tmp_path / "c")
    assert (done["records"], done["kept"], done["quarantined"]) == (3, 2, 1)
    q = pq.read_table(tmp_path / "c" / "quarantine.parquet").to_pylist()
    assert q == [{"file": str(f), "location": "row 2", "error": "source 's': text 'text' is null", "raw": "c"}]
    import xxhash

    idx = pq.read_table(tmp_path / "c" / "index.parquet").to_pylist()
    assert [r["row"] for r in idx] == [0, 1]
    assert idx[1]["h"] == xxhash.xxh3_64_intdigest("s\x1f" + content_id("three", "s"))


def test_duplicate_ids_are_renamed_and_empty_files_quarantined(tmp_path, prefect_harness, tokenizer):
    """Issue 24: the one id policy in mix (a kept id seen before, in any file or source, becomes `<id>#n` with
    `metadata.original_id`, counted as `duplicate_ids_renamed`), and an empty or whitespace-only input file (data
    or attributes, JSONL or Parquet) is a quarantine row `empty file: no records` counted as one record read."""
    d = tmp_path / "in"
    (d / "p").mkdir(parents=True)
    (d / "attr").mkdir()
    texts = {"p1": ["alpha river text", "beta mountain text", "gamma desert text"],
             "p2": ["delta glacier text", "epsilon reef text"],
             "j": ["zeta forest text", "eta canyon text", "theta island text"]}
    pq.write_table(pa.table({"id": ["a", "b", "a"], "text": texts["p1"]}), d / "p" / "p1.parquet")
    pq.write_table(pa.table({"id": ["b", "c"], "text": texts["p2"]}), d / "p" / "p2.parquet")
    (d / "p" / "p3.parquet").write_bytes(b"")  # an empty Parquet file
    pq.write_table(pa.table({"id": ["a", "b", "a", "b", "c"], "score": [1, 2, 3, 4, 5]}), d / "attr" / "a1.parquet")
    (d / "attr" / "a0.parquet").write_bytes(b"")  # an empty attribute file
    (d / "j.jsonl").write_text("".join(json.dumps({"id": i, "text": t, "metadata": {"k": n}}) + "\n"
                                       for n, (i, t) in enumerate(zip(["a", "d", "d"], texts["j"]))))
    (d / "e.jsonl").write_text("")
    (d / "w.jsonl").write_text("  \n\n\t \n")
    counter = TokenCounter(tokenizer)
    tok = {k: int(counter.count(v).sum()) for k, v in texts.items()}
    tok_p, tok_j = tok["p1"] + tok["p2"], tok["j"]
    out = tmp_path / "out"
    # shares = each source's tokens, budget = all tokens: exactly one copy of every kept document
    res = mix_flow(MixConfig(output=str(out), tokenizer={"path": tokenizer}, budget_tokens=tok_p + tok_j, sources=[
        MixSource(name="p", paths=[str(d / "p")], attributes=[str(d / "attr")], include=["score >= 1"],
                  share=tok_p),
        MixSource(name="j", paths=[str(d / "j.jsonl"), str(d / "e.jsonl"), str(d / "w.jsonl")], share=tok_j)]))
    data = rows(out)
    got = sorted((r["source"], r["id"], r["epoch"]) for r in data)
    assert got == [("j", "a#3", 0), ("j", "d", 0), ("j", "d#2", 0),
                   ("p", "a", 0), ("p", "a#2", 0), ("p", "b", 0), ("p", "b#2", 0), ("p", "c", 0)]
    by = {r["id"]: r for r in data}
    for renamed, original in (("a#2", "a"), ("b#2", "b"), ("a#3", "a"), ("d#2", "d")):
        assert json.loads(by[renamed]["metadata"])["original_id"] == original, renamed
    assert by["a#2"]["text"] == "gamma desert text" and by["b#2"]["text"] == "delta glacier text"
    assert json.loads(by["a#3"]["metadata"]) == {"k": 0, "original_id": "a"}
    assert by["a"]["metadata"] is None and json.loads(by["d"]["metadata"]) == {"k": 1}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["duplicate_ids_renamed"] == 4 == res["stats"]["duplicate_ids_renamed"]
    assert {n: s["duplicate_ids_renamed"] for n, s in stats["sources"].items()} == {"p": 2, "j": 2}
    assert stats["duplicate_rows"] == 0
    # empty files: one quarantine row each, counted as one record read and one quarantined
    q = sorted((Path(r["file"]).name, r["error"]) for r in rows(out, "quarantine"))
    assert q == [(n, "empty file: no records") for n in ("a0.parquet", "e.jsonl", "p3.parquet", "w.jsonl")]
    src = stats["sources"]
    assert (src["p"]["records_read"], src["p"]["kept"], src["p"]["quarantined"]) == (7, 5, 2)
    assert (src["j"]["records_read"], src["j"]["kept"], src["j"]["quarantined"]) == (5, 3, 2)
    assert stats["invariant"]["holds"] and stats["invariant"]["rows_quarantine"] == 4


def test_our_output_folder_as_attributes(tmp_path):
    """`attributes: [output/dolma]` (a folder holding our manifest) means its published `attributes/`, never
    `_work/`; `output/dolma:attributes` names it explicitly; a kind it lacks is one line."""
    from corpora.manifest import write_manifest
    from corpora.mix_sources import resolve_source
    from corpora.readers import InputError

    out = tmp_path / "dolma"
    for kind, table in (("data", pa.table({"id": ["x", "y"], "text": ["one", "two"]})),
                        ("attributes", pa.table({"id": ["x", "y"], "quality": [0.1, 0.9]}))):
        (out / kind).mkdir(parents=True)
        pq.write_table(table, out / kind / "part-00000.parquet")
    (out / "_work" / "assign").mkdir(parents=True)
    pq.write_table(pa.table({"h": [1, 2]}), out / "_work" / "assign" / "x.parquet")
    write_manifest(out, pipeline="dolma", config={}, config_hash="x", inputs=[], outputs={"data": []},
                   started="now", status="completed")
    for attrs in ([str(out)], [f"{out}:attributes"]):
        src = resolve_source(MixSource(name="web", paths=[str(out)], attributes=attrs, share=1.0), tmp_path / "w")
        assert [f.parent.name for f in src.attribute_files] == ["attributes"] and src.attribute_names == ["quality"]
        assert [f.path.parent.name for f in src.files] == ["data"] and src.attributes_aligned
    with pytest.raises(InputError, match="this output has no 'rejected/' folder for attributes"):
        resolve_source(MixSource(name="web", paths=[str(out)], attributes=[f"{out}:rejected"], share=1.0))
