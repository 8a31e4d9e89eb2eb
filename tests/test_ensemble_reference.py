"""The Ensemble-Instruct reference preset (configs/ensemble-instruct-reference.yaml) against the reference code
(IBM/ensemble-instruct at commit 17f7be49 / 24036b54): its settings, value by value with file and line, and replays
of the reference's own sample outputs (sample/openei.*) through our parser and consensus.

The sample excerpts below are copied verbatim from the reference repository's sample files (the line numbers are
the files' lines). The whole files replay too when `ENSEMBLE_INSTRUCT_REFERENCE_SAMPLE` names a checkout's
`sample/` folder (skipped otherwise: nothing is downloaded)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import setting

from generators.ensemble_config import EnsembleInstructConfig
from generators.ensemble_parse import parse_instance, parse_instances_reference
from generators.ensemble_prompts import templates
from generators.voting import consensus

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "configs" / "ensemble-instruct-reference.yaml"

# (our key, the reference's value, where the reference sets it). The README's comparison table lists the same rows.
REFERENCE = [
    ("instructions.target_a", 100, "scripts/ensemble_instruct.sh:7"),
    ("instructions.target_b", 100, "scripts/ensemble_instruct.sh:18"),
    ("instructions.examples_a", 24, "scripts/ensemble_instruct.sh:9"),
    ("instructions.examples_b", 10, "scripts/ensemble_instruct.sh:20"),
    ("instructions.requests_per_round", 5, "scripts/ensemble_instruct.sh:11"),
    ("instructions.max_machine_examples", 4, "ensemble_instruct/gen_instructions.py:167"),
    ("instructions.min_words", 3, "ensemble_instruct/gen_instructions.py:46"),
    ("instructions.max_words", 150, "ensemble_instruct/gen_instructions.py:46"),
    ("instructions.blacklist", ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map",
                                "maps", "draw", "plot", "go to"], "ensemble_instruct/gen_instructions.py:49"),
    ("instructions.novelty.threshold", 0.7, "ensemble_instruct/gen_instructions.py:197"),
    ("instructions.novelty.tokenizer", "rouge_score", "ensemble_instruct/gen_instructions.py:151"),
    ("instructions.seed", 42, "ensemble_instruct/gen_instructions.py:18"),
    ("instructions.sampling.temperature", 0.7, "ensemble_instruct/bam_api.py:23"),
    ("instructions.sampling.top_k", 50, "ensemble_instruct/bam_api.py:24"),
    ("instructions.sampling.top_p", 1.0, "ensemble_instruct/bam_api.py:25"),
    ("instructions.sampling.max_tokens", 256, "ensemble_instruct/gen_instructions.py:180"),
    ("instructions.sampling.min_new_tokens", 15, "ensemble_instruct/gen_instructions.py:181"),
    ("instructions.sampling.stop", ["|EoS|"], "ensemble_instruct/gen_instructions.py:182"),
    ("instances.sampling.temperature", 0.7, "ensemble_instruct/bam_api.py:23"),
    ("instances.sampling.top_k", 50, "ensemble_instruct/bam_api.py:24"),
    ("instances.sampling.top_p", 1.0, "ensemble_instruct/bam_api.py:25"),
    ("instances.sampling.max_tokens", 512, "ensemble_instruct/gen_instances.py:128"),
    ("instances.sampling.min_new_tokens", 50, "ensemble_instruct/gen_instances.py:129"),
    ("instances.sampling.stop", ["\n\n", "|EoS|"], "ensemble_instruct/gen_instances.py:130"),
    ("instances.parse", "reference", "ensemble_instruct/sample_instances.py:24-96"),
    ("votes.sampling.temperature", 0.0, "ensemble_instruct/gen_output_zeroshot.py:95 (greedy)"),
    ("votes.sampling.max_tokens", 256, "ensemble_instruct/gen_output_zeroshot.py:96"),
    ("votes.sampling.min_new_tokens", 1, "ensemble_instruct/gen_output_zeroshot.py:97"),
    ("votes.sampling.stop", ["\n\n", "|EoS|"], "ensemble_instruct/gen_output_zeroshot.py:98"),
    ("ensemble.tau", 0.01, "ensemble_instruct/ensemble_output.py:154"),
    ("ensemble.stem", True, "ensemble_instruct/ensemble_output.py:35"),
    ("ensemble.tokenizer", "rouge_score", "ensemble_instruct/ensemble_output.py:35"),
    ("ensemble.votes_agree_keep", "generator", "ensemble_instruct/ensemble_output.py:143-147"),
]
MODELS = {  # who generates what (engines: scripts/ensemble_instruct.sh:13,24,33,42 and :60,:68)
    "generator": "tiiuae/falcon-40b", "voters": ["flan-t5-xxl", "flan-ul2"]}


def preset() -> EnsembleInstructConfig:
    from flows.config import load_config

    return load_config(EnsembleInstructConfig, config_file=str(PRESET))


@pytest.mark.parametrize("key, value, where", REFERENCE, ids=[r[0] for r in REFERENCE])
def test_preset_equals_the_references_setting(key, value, where):
    assert setting(preset(), key) == value, f"{key} should be {value!r} ({where})"


def test_preset_models_demos_and_voters_are_the_references():
    cfg = preset()
    assert cfg.generation.backend.kind == "openai" and cfg.generation.backend.model == MODELS["generator"]
    assert [v.name for v in cfg.votes.voters] == MODELS["voters"]
    assert all(v.backend.kind == "transformers" and v.backend.seq2seq for v in cfg.votes.voters)
    assert cfg.ensemble.allow_same_model is False  # three different models, as the reference
    # the reference's own instance templates (ensemble_instruct/templates/instance_template.py), prompt as in
    # gen_instances.py:118,120: template + " " + instruction + "\n"
    tpl = templates(cfg.instances.demos_file)
    assert tpl["B"][0].startswith("Generate examples for the instructions. The instruction does not require input")
    assert tpl["A"][0].count("|EoS|") == 19 and tpl["B"][0].count("|EoS|") == 15
    # our defaults stay ours
    default = EnsembleInstructConfig()
    assert default.instances.parse == "ours" and default.instances.demos_file is None
    assert default.instructions.sampling.min_new_tokens is None


# ---- instance parsing on the reference's own completions -----------------------------------------------------------
# sample/openei.io_instances.jsonl line N ("raw_instances") -> the rows sample/openei.io_samples.jsonl keeps from it
# (None: the reference keeps nothing). Lines 1, 3-9, 14, 16, 17, 21, 22, 26, 31 of the file.
IO_CASES = [
    (1, "input: I am a f*cking idiot.\noutput: f*cking\n|EoS|\n\ninstruction: Find the shortest path from node 1 to "
        "node 8 that contains only 'v' and 'r' edges.\ninput: \noutput: \n|EoS|", ("I am a f*cking idiot.", "f*cking")),
    (3, "input: A dog . A cat .\noutput: A mouse\n|EoS|\n\ninstruction: Given a sentence, and a word, find the index "
        "of the given word in the sentence.\ninput: This is a random sentence. 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,"
        "17,18,19,20,21,22,23,24,25,26,27,28\noutput: 25\n|EoS|", ("A dog . A cat .", "A mouse")),
    (4, "input: item 1: {1, 2, 3, 4}\nitem 2: {7, 8, 9, 10}\noutput: 2\n|EoS|\n\ninstruction: Find the similar items "
        "for the given item. |EoS|", None),
    (5, "input: I am a girl.\noutput: yes\n\ninstruction: Given a string, return whether it is a palindrome.\ninput: "
        "a man, a plan, a canal: Panama\noutput: yes\n|EoS|", ("I am a girl.", "yes")),
    (6, "template: {A} {B} {C} {D}\ninput: A. The United States Postal Service (USPS) is an independent agency of the "
        "United States federal government responsible for providing postal service in the United States, including its "
        "insular areas and associated states.\noutput: The United States Postal Service (USPS) is an independent agency "
        "of the United States federal government responsible for providing postal service in the United States, "
        "including its insular areas and associated states.\n|EoS|", None),
    (7, "input:\n\noutput: The longest is 3.\n|EoS|\n\ninstruction: What is the next number in the sequence?\ninput: "
        "1, 2, 5, 8, 13, 21, 34, 55, 89, 144, ...\noutput: 23\n|EoS|", None),
    (9, "input: A logo for a company named \"XYZ\". The company provides financial services. |EoS|\noutput: |EoS|\n\n\n"
        "|EoS|\n\ninstruction: Solve the following problem using the given information and show your steps.\ninput:\n"
        "X = 2\nY = 4\nZ = X + Y\noutput: Z = 6\n|EoS|", None),
    (14, "input:\noutput: |EoS|\n|EoS|\n\ninstruction: Write a paragraph that summarizes the paper. |EoS|\ninput:\n"
         "output: |EoS|\n|EoS|\n\n", None),
    (16, "input: \"I think we're going to be OK\" says the co-founder of the popular travel site. \"This is the first "
         "time where things are going to be bad for a while.\" |EoS|\noutput: \"I think we're going to be OK\" says the "
         "co-founder of the popular travel site. \"This is the first time where things are going to be bad for a "
         "while.\"\n|EoS|",
     ("\"I think we're going to be OK\" says the co-founder of the popular travel site. \"This is the first time where "
      "things are going to be bad for a while.\"",
      "\"I think we're going to be OK\" says the co-founder of the popular travel site. \"This is the first time where "
      "things are going to be bad for a while.\"")),
    (17, "input: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\noutput: 10\n|EoS|\n\ninstruction: Return the sum of the given input "
         "numbers. |EoS|", ("[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", "10")),
    (21, "input: I love the game. \noutput: Thanks!\n|EoS|\n\ninstruction: Generate an appropriate response to the "
         "given comment. |EoS|\ninput: I like the game but there's no tutorial.\noutput: We're sorry you didn't find "
         "the tutorial.\n|EoS|", ("I love the game.", "Thanks!")),
    (22, "input: I am the Walrus (Walrus, I am the walrus)\noutput: I am the Eggman (Eggman, I am the Eggman)\nI am the "
         "Walrus (Walrus, I am the walrus)\nKoo koo kachoo\n|EoS|",
     ("I am the Walrus (Walrus, I am the walrus)", "I am the Eggman (Eggman, I am the Eggman)")),
    (26, "input: This is a recipe for a chicken noodle soup..\noutput: Ingredients: 1-2 chicken breast, 1-2 chicken "
         "thighs, 1 carrot, 1-2 tablespoon of soy sauce, 1-2 tablespoon of salt, 1-2 tablespoon of pepper, 2-3 garlic, "
         "1-2 medium potatoes, 1 pack of egg noodles.\nSteps: 1. Boil the chicken in the pot until it is fully cooked."
         "\n2. Remove the chicken from the pot.\n|EoS|",
     ("This is a recipe for a chicken noodle soup..", "Ingredients: 1-2 chicken breast, 1-2 chicken thighs, 1 carrot, "
      "1-2 tablespoon of soy sauce, 1-2 tablespoon of salt, 1-2 tablespoon of pepper, 2-3 garlic, 1-2 medium potatoes, "
      "1 pack of egg noodles.")),
    (31, "input: The name of the place is unknown.\noutput: [unknown, unknown place]\n\ninstruction: Find the entity "
         "name from the given text.\ninput: The name of the place is unknown. The name of the person is unknown.\n"
         "output: unknown\n|EoS|", ("The name of the place is unknown.", "[unknown, unknown place]")),
]


@pytest.mark.parametrize("line, raw, kept", IO_CASES, ids=[f"io_instances:{c[0]}" for c in IO_CASES])
def test_reference_parse_keeps_what_the_reference_kept(line, raw, kept):
    got = parse_instances_reference(raw)
    assert got == ([] if kept is None else [(None, *kept)])


def test_reference_parse_differs_from_ours_where_the_readme_says():
    lyrics, recipe = IO_CASES[11][1], IO_CASES[12][1]
    # ours keeps multi-line outputs; the reference keeps the output's first line
    assert parse_instance(lyrics, "A")[1].endswith("Koo koo kachoo")
    assert parse_instances_reference(lyrics)[0][2] == "I am the Eggman (Eggman, I am the Eggman)"
    assert "Boil the chicken" in parse_instance(recipe, "A")[1]
    # a multi-line input: ours joins it, the reference reads its second line as the output and finds no label
    similar = IO_CASES[2][1]
    assert parse_instance(similar, "A")[:2] == ("item 1: {1, 2, 3, 4}\nitem 2: {7, 8, 9, 10}", "2")
    assert parse_instances_reference(similar) == []


def test_reference_parse_rules_on_made_up_shapes():
    # output-only first block (type B); labels are case-sensitive substrings removed wherever they occur
    assert parse_instances_reference("output: 85°F = 29.44°C \n|EoS|") == [(None, "", "85°F = 29.44°C")]
    assert parse_instances_reference("Output: 42") == []
    # a later block whose instruction line has the `input:` label inside it becomes an instance of its own
    # (only `instruction:` is removed from that line: sample_instances.py, line 52)
    raw = ("input: a\noutput: b\n\ninstruction: Read the input: then say it again please\ninput: x\noutput: y")
    assert parse_instances_reference(raw) == [(None, "a", "b"), ("Read the input: then say it again please", "x", "y")]
    # `^` separates blocks, as the reference's own separator
    assert parse_instances_reference("input: 2^3\noutput: 8") == []
    assert parse_instances_reference("") == []


# ---- consensus on the reference's own votes ------------------------------------------------------------------------
# (line in openei.samples.jsonl / flan-t5-xxl_output / flan-ul2_output, the instance's output, flan-t5-xxl's,
#  flan-ul2's, what sample/openei.ensemble wrote for it: its output, or None when it wrote no row)
VOTE_CASES = [
    (1, "f*cking", "Yes", "Yes", "f*cking"),  # the votes agree: the generator's output (ensemble line 1)
    (3, "A mouse", "A", "a", "A mouse"),  # agree after normalisation (line 3)
    (5, "6 hours and 15 minutes", "8.5 hours", "10 hours", "8.5 hours"),  # ROUGE-L, tie -> flan-t5-xxl (line 5)
    (6, "1. Park Hyatt, 2. Waldorf Astoria, 3. Four Seasons", "(1)", "(1)", "1. Park Hyatt, 2. Waldorf Astoria, "
     "3. Four Seasons"),  # (output shortened here and in the expectation alike; ensemble line 6)
    (10, "10", "10", "10", "10"),  # exact with the generator (line 10)
    (11, "Question: \"What is the capital of Canada?\" Answer: \"Ottawa\"", "What is the capital of the US?",
     "What is the capital of the US in 2020?", "What is the capital of the US?"),  # ROUGE-L (line 11)
    (12, "Dear Professor, I am a PhD candidate in your lab. I would like to discuss my PhD proposal with you. Can we "
         "have a meeting on Monday?", "I am available on Monday, May 1st.", "I will be available all day. Thank you.",
     "I am available on Monday, May 1st."),  # (line 12)
    (14, "Thanks!", "I do too.", "I'm glad you like it.", None),  # nothing shared: no row
    (15, "I am the Eggman (Eggman, I am the Eggman)", "I am the Walrus (Walrus, I am the walrus)",
     "I am the Walrus (Walrus, I am the walrus)", "I am the Eggman (Eggman, I am the Eggman)"),  # (line 14)
    (16, "The subject is \"This\". The verb is \"is\".", "The man is a thief. The thief is stealing.",
     "the king , be king", "The subject is \"This\". The verb is \"is\"."),  # (line 15)
    (17, "Yes, it is.", "Yes", "Yes", "Yes, it is."),  # (line 16)
    (19, "Tesla Model S, Tesla Model X, Tesla Model Y, Tesla Cybertruck, Tesla Roadster, Tesla Solar Roof, Tesla "
         "Powerwall, Tesla Powerpack", "Model S, Tesla Roadster, Tesla Model X", "Tesla Model S",
     "Model S, Tesla Roadster, Tesla Model X"),  # (line 18)
    (22, "Step 5", "1. Preheat the oven to 350 degrees Fahrenheit (180 degrees Celsius).",
     "Preheat the oven to 400 degrees.", None),
    (25, "Write a story.", "Write a story", "Write a story", "Write a story."),  # (line 23)
    (26, "9", "10", "29", None),
    (29, "a trillion-dollar company", "The number of companies that have hit the $1 trillion valuation mark is "
     "increasing, and so too is the number of countries that have a trillion-dollar company.",
     "The number of companies that have hit the $1 trillion valuation mark is increasing",
     "The number of companies that have hit the $1 trillion valuation mark is increasing, and so too is the number of "
     "countries that have a trillion-dollar company."),  # (line 26)
    (31, "{\"Marlon James\", \"Chimamanda Ngozi Adichie\", \"NoViolet Bulawayo\", \"Yaa Gyasi\", \"Tayari Jones\"}",
     "people of color", ",", None),  # "," is empty once normalised
    (33, "This is the title of the article.", "", "The X Factor", None),
    (34, "Sam", "Mike", "Michael", None),
    (37, "This is a random sentence.", "This is a random sentence.", "The sand was blown away by the wind.",
     "This is a random sentence."),  # (line 31)
    (38, "34", "35", "45", None),
    (41, "The patient is in a state of unconsciousness that can be woken up with the right treatment.",
     "The patient is unconscious.", "The patient is unconscious.",
     "The patient is in a state of unconsciousness that can be woken up with the right treatment."),  # (line 32)
]
# The one deliberate difference: both votes empty. The reference counts "" == "" as agreement and writes the
# generator's output (samples line 24 -> ensemble line 22); empty votes never agree here, so no row.
EMPTY_VOTES = (24, "[unknown, unknown place]", "", "", "[unknown, unknown place]")


def _ensemble(cands: list[str]):
    e = preset().ensemble
    return consensus(cands, e.tau, e.stem, e.tokenizer, e.votes_agree_keep)


@pytest.mark.parametrize("line, gen, t5, ul2, wrote", VOTE_CASES, ids=[f"samples:{c[0]}" for c in VOTE_CASES])
def test_consensus_writes_what_the_reference_wrote(line, gen, t5, ul2, wrote):
    c = _ensemble([gen, t5, ul2])
    assert (c.output if c.kept else None) == wrote


def test_two_empty_votes_are_the_one_documented_difference():
    line, gen, t5, ul2, wrote = EMPTY_VOTES
    assert wrote == gen and not _ensemble([gen, t5, ul2]).kept


# ---- the whole sample, when a checkout of the reference is at hand -------------------------------------------------
SAMPLE = os.environ.get("ENSEMBLE_INSTRUCT_REFERENCE_SAMPLE")
needs_sample = pytest.mark.skipif(not SAMPLE or not Path(SAMPLE, "openei.ensemble").is_file(),
                                  reason="set ENSEMBLE_INSTRUCT_REFERENCE_SAMPLE to IBM/ensemble-instruct's sample/ "
                                         "folder to replay the whole sample")


def _jsonl(name: str) -> list[dict]:
    return [json.loads(line) for line in Path(SAMPLE, name).read_text(encoding="utf-8").splitlines() if line.strip()]


@needs_sample
def test_whole_sample_parse_and_consensus_equal_the_references():
    for kind in ("io", "o"):
        ours = [{"instruction": (ins if ins is not None else r["instruction"]).replace("|EoS|", "").strip(),
                 "input": inp, "output": out}
                for r in _jsonl(f"openei.{kind}_instances.jsonl")
                for ins, inp, out in parse_instances_reference(r["raw_instances"])]
        assert ours == _jsonl(f"openei.{kind}_samples.jsonl"), kind
    samples, t5, ul2 = _jsonl("openei.samples.jsonl"), _jsonl("openei.flan-t5-xxl_output.jsonl"), \
        _jsonl("openei.flan-ul2_output.jsonl")
    wrote = _jsonl("openei.ensemble")
    from generators.voting import normalize_answer

    expected, differences = [], 0
    for s, a, b in zip(samples, t5, ul2):
        cands = [s["output"].strip(), a["output"].strip(), b["output"].strip()]
        c, n = _ensemble(cands), [normalize_answer(x) for x in cands]
        row = {"instruction": s["instruction"], "input": s["input"]}
        if c.kept:
            expected.append({**row, "output": c.output})
        elif n[1] == n[2] == "" or (n[0] == "" and "" in n[1:]):  # the reference's "" == "" agreement
            expected.append({**row, "output": s["output"].strip()})
            differences += 1
    assert expected == wrote, f"{differences} row(s) differ by the empty-votes rule alone"


# ---- the preset's keys through a whole generator run (replay answers; no model) -----------------------------------
def test_reference_keys_through_a_run(tmp_path):
    import pyarrow.parquet as pq
    from test_ensemble_instruct_flow import SMALL, answer_instance, build_replay

    from corpora.readers import FieldMap, read_records
    from flows.config import load_config
    from generators.backends import release_backends
    from generators.ensemble_instruct import GENERATOR, SAMPLE_SEEDS
    from generators.rounds import Rounds

    ref = ["instances.parse=reference", "instances.demos_file=generators/ensemble_instruct_reference_demos.yaml",
           "ensemble.votes_agree_keep=generator", "ensemble.allow_same_model=false",
           "instructions.sampling.min_new_tokens=15", "instances.sampling.min_new_tokens=50",
           "votes.sampling.min_new_tokens=1"]
    sets = build_replay(tmp_path, SMALL + ref, str(SAMPLE_SEEDS))
    release_backends()
    cfg = load_config(EnsembleInstructConfig, sets=sets)
    rounds = Rounds(tmp_path / "run", cfg.generation, source="ensemble-instruct", progress=False, log=lambda m: None)
    result = GENERATOR.run(cfg, list(read_records(Path(SAMPLE_SEEDS), FieldMap(text_field="instruction"))), rounds)
    inst = result.tables["instances"].to_pylist()
    # the prompts are the reference's template + " " + instruction + "\n"
    reqs = pq.read_table(tmp_path / "run" / "instances" / "requests.parquet").to_pylist()
    tpl = templates(cfg.instances.demos_file)
    assert reqs and all(r["prompt"].startswith((tpl["A"][0] + " ", tpl["B"][0] + " ")) for r in reqs)
    assert all('"min_new_tokens": 50' in r["sampling_params"] for r in reqs)
    # the replayed type-A answers put a second input line before `output:`: the reference drops them
    for row in inst:
        kept = parse_instances_reference(answer_instance(_prompt_of(reqs, row)))
        assert (row["parse_status"] == "ok") == bool(kept)
    assert {r["parse_status"] for r in inst} == {"ok", "no_instance"}
    assert all(r["type"] == "B" for r in inst if r["parse_status"] == "ok")
    unparsed = [r for r in result.rejected if r["reason"] == "instance_unparsed"]
    assert {r["reason_detail"] for r in unparsed} == {"no_instance"}
    # votes agreeing keep the generator's output in this preset
    agree = [r for r in result.rows if r["decided_by"] == "exact_votes"]
    assert all(r["chosen"] == 0 and r["output"] == r["candidates"][0] for r in agree)


def _prompt_of(reqs: list[dict], row: dict) -> str:
    return next(r["prompt"] for r in reqs if r["id"] == row["request_id"])
