"""sphinx: language-bound task rules, english-only samples, the per-language draw, the row checks (real lid.176),
together mode, and LANGIT neighbours."""
from __future__ import annotations

import numpy as np
import pytest

from corpora.records import Record
from generators.sphinx import assemble, request_id, requests_for, split_together
from generators.sphinx_config import SphinxConfig
from generators.sphinx_nshot import add_neighbours, nearest
from generators.sphinx_sources import draw, english_source, prepare
from generators.sphinx_checks import ChecksConfig, CheckedField, check_row
from generators.sphinx_rules import RulesConfig, classify


def source(instruction: str, inp: str, output: str, rid: str = "t1", cfg: RulesConfig | None = None):
    s = english_source(Record(id=rid, text=instruction, source="test.jsonl",
                              metadata={"instances": [{"input": inp, "output": output}]}))
    prepare(s, cfg or RulesConfig())
    return s


@pytest.mark.parametrize("instruction,inp,output,label", [
    ("Find an anagram of the word.", "listen", "silent", "skip:anagram"),
    ("Is this word a palindrome?", "level", "Yes.", "skip:anagram"),
    ("Write a haiku about autumn leaves.", "", "Red leaves drift...", "skip:rhyme"),
    ("Give me a word that rhymes with cat.", "", "Hat.", "skip:rhyme"),
    ("How many words are in the sentence?", "I like tea.", "3", "skip:counting"),
    ("List three animals whose names start with the letter B.", "", "Bear, bee, bison.", "skip:counting"),
    ("Translate the sentence into German.", "Good morning.", "Guten Morgen.", "wrapper_only:translate_this"),
    ("Fix the spelling mistakes.", "I recieved it.", "I received it.", "wrapper_only:grammar"),
    ("Answer the question.", "Capital of Peru?\nA) Lima\nB) Quito", "A", "labels:multiple_choice"),
    ("Write a cover letter for a job as a baker.", "", "Dear Sir or Madam, I would love to bake for you.", "translate"),
    ("Write a Python function that adds two numbers.", "", "```python\ndef add(a, b):\n    return a + b\n```",
     "english_only"),
    ("Solve for x.", "3x - 4 = 11", "3x = 15\nx = 5", "english_only"),
])
def test_rules(instruction, inp, output, label):
    assert source(instruction, inp, output).rule.label == label


# the task, not a keyword: what each language-bound rule must catch, and what only mentions its word
TRUE_TASKS = [
    ("Translate the following English text to French:", "translate_this"),
    ("How do you say 'thank you' in Japanese?", "translate_this"),
    ("What is the Spanish word for apple?", "translate_this"),
    ("Translate this paragraph.", "translate_this"),
    ("What does 'carpe diem' mean in English?", "translate_this"),
    ("Write a short story in French about a cat.", "translate_this"),
    ("Give the German translation of the phrase.", "translate_this"),
    ("Correct the grammar of the sentence.", "grammar"),
    ("Proofread the email below.", "grammar"),
    ("Is this sentence grammatically correct?", "grammar"),
    ("Are there any spelling errors in the text?", "grammar"),
    ("Find the mistakes in the following sentence.", "grammar"),
    ("Read the text. Then correct its punctuation.", "grammar"),
    ("Tell me if the sentence is grammatical. If it is, output yes. Otherwise, correct the grammar errors.", "grammar"),
    ("How do you spell necessary?", "grammar"),
    ("Make a pun about cheese.", "rhyme"),
    ("Come up with a tongue twister about snakes.", "rhyme"),
    ("Count the vowels in the word.", "counting"),
    ("Name five 3-letter words.", "counting"),
    ("Unscramble the letters to form a word.", "anagram"),
    ("Spell the word 'cat' backwards.", "anagram"),
]
NEAR_MISSES = [
    "Describe the process of translation in protein synthesis.",
    "Explain the basic grammar rules of Spanish.",
    "What is the role of mRNA translation in cells?",
    "Explain how machine translation works.",
    "Translate your passion into a career plan.",
    "Translate 5 km to miles.",
    "Explain how to translate a business plan into action.",
    "Why do people make spelling mistakes?",
    "Explain why learning grammar helps children read.",
    "Find the errors in this code.",
    "Who invented the spelling bee?",
    "What is a haiku?",
    "Describe the history of the limerick.",
    "Describe the rhyme scheme of a Shakespearean sonnet.",
    "Explain palindromic sequences in DNA.",
    "Is 12321 a palindrome number?",
    "How many times did Brazil win the World Cup?",
    "How many words does the average person know?",
    "How many countries are in Europe?",
    "Explain plan B to your team.",
    "Give three tips for learning French vocabulary.",
    "Summarize the article about language learning apps.",
]


@pytest.mark.parametrize("instruction,task", TRUE_TASKS)
def test_language_bound_tasks_are_caught(instruction, task):
    from generators.sphinx_rules import language_bound_task

    assert language_bound_task(instruction, "") == task


@pytest.mark.parametrize("instruction", NEAR_MISSES)
def test_a_keyword_alone_is_no_language_bound_task(instruction):
    s = source(instruction, "", "A plain answer in English that a translator would translate, word by word.")
    assert s.rule.label == "translate" and set(s.masked) == {"instruction", "response"}


def test_english_rows_and_untranslated_short_fields(lid):
    from generators.sphinx import english_row

    s = source("Write a Python function that adds two numbers.", "", "```python\ndef add(a, b):\n    return a + b\n```",
               rid="c9")
    row = english_row(s)
    assert (row["lang"], row["rule"], row["status"], row["instruction"], row["parent_ids"]) == (
        "en", "english_only", "pass", s.instruction, ["c9"])
    assert row["instruction_en"] == row["instruction"] and row["response_en"] == row["response"]
    # a wrapper_only instruction too short for LID that came back in English fails; a translated one passes
    w = source("Translate into German.", "Good night.", "Gute Nacht.", rid="w1")
    assert w.rule.label == "wrapper_only:translate_this" and set(w.masked) == {"instruction"}
    cfg = SphinxConfig(targets=["de"])
    rec = {"finish_reason": "stop", "model": "m", "backend": "replay", "completion_tokens": 3}
    row, why = assemble(w, "de", {"instruction": {**rec, "text": "Translate into German.\n\n⟦1⟧"}}, {}, cfg, lid)
    assert why == "translation_check" and row["reason"] == "untranslated_instruction"
    row, why = assemble(w, "de", {"instruction": {**rec, "text": "Übersetze ins Deutsche.\n\n⟦1⟧"}}, {}, cfg, lid)
    assert why is None and row["status"] == "pass", row["reason"]


def test_rule_actions_are_config_and_wrapper_only_keeps_payload_and_answer():
    cfg = RulesConfig(actions={"rhyme": "translate", "grammar": "skip"})
    assert classify("Write a limerick about a cat.", "", "There once was a cat...", cfg).label == "translate"
    assert classify("Correct the grammar.", "He go home.", "He goes home.", cfg).label == "skip:grammar"
    s = source("Translate the sentence into French.", "The train leaves at noon.", "Le train part à midi.")
    assert s.masked == {"instruction": "Translate the sentence into French.\n\n⟦1⟧"}  # the response is not sent
    s = source('Translate "good night, my friend" into Spanish.', "", "Buenas noches, amigo mío.")
    assert s.masked["instruction"] == "Translate ⟦1⟧ into Spanish." and s.spans["instruction"][0].kind == "payload"
    s = source("Which is a fruit?", "(a) Apple\n(b) Brick", "(a)")
    assert s.rule.label == "labels:multiple_choice" and "response" not in s.masked  # a label-only answer is kept
    assert s.masked["instruction"] == "Which is a fruit?\n\n⟦1⟧ Apple\n⟦2⟧ Brick"
    s = source("Pick one. Options:", "1. Red\n2. Blue", "2. Blue is calm.")
    assert s.masked["response"] == "⟦3⟧ Blue is calm."


def test_sources_of_both_shapes_and_unusable_ones():
    seed = english_source(Record(id="s", text="Name a color.", source="seeds.jsonl",
                                 metadata={"instances": [{"input": "", "output": "Blue."}]}))
    ei = english_source(Record(id="ei-1", text="Add the numbers.", source="data.parquet",
                               metadata={"input": "2 and 3", "output": "5", "type": "A"}))
    empty = english_source(Record(id="e", text="Say something.", source="x.jsonl", metadata={}))
    assert (seed.instruction, seed.response, seed.problem) == ("Name a color.", "Blue.", None)
    assert (ei.instruction, ei.input_start, ei.response) == ("Add the numbers.\n\n2 and 3", 18, "5")
    assert empty.problem == "no_response"


def test_draw_is_seeded_per_language_and_sized_by_tier():
    cfg = SphinxConfig(targets=["de", "tr", "sw"], selection={"tier_counts": {"high": 30, "mid": 20, "low": 10}})
    pool = [source(f"Describe animal number {i}.", "", f"It is animal {i}.", rid=f"s{i:02d}") for i in range(40)]
    d = draw(pool, cfg.target_codes(), cfg)
    assert {k: len(v) for k, v in d.items()} == {"de": 30, "tr": 20, "sw": 10}
    assert len({tuple(s.id for s in v) for v in d.values()}) == 3
    assert {k: [s.id for s in v] for k, v in draw(pool[::-1], cfg.target_codes(), cfg).items()} == {
        k: [s.id for s in v] for k, v in d.items()}  # input order does not matter
    other = SphinxConfig(**{**cfg.model_dump(), "selection": {**cfg.selection.model_dump(), "seed": 1}})
    assert [s.id for s in draw(pool, ["de"], other)["de"]] != [s.id for s in d["de"]]
    with pytest.raises(ValueError, match="'xx' is not in the language table"):
        SphinxConfig(targets=["xx"])


def test_unknown_target_is_one_line_at_targets_with_a_did_you_mean():
    from flows.config import ConfigError, load_config

    for given, hint in [("german", "did you mean 'de' (German)?"), ("Swahli", "did you mean 'sw' (Swahili)?"),
                        ("dee", "did you mean 'de' (German)?")]:
        with pytest.raises(ConfigError) as e:
            load_config(SphinxConfig, sets=[f"targets=[fr,{given}]"])
        msg = str(e.value)
        assert msg.startswith("config key 'targets': ") and hint in msg and "\n" not in msg, msg
        assert "languages" not in msg.split("(got")[1]  # the value given, never the whole config
    with pytest.raises(ConfigError, match="'en' is the source language"):
        load_config(SphinxConfig, sets=["targets=[en]"])


def test_checks_on_real_language_id(lid):
    cfg = ChecksConfig()
    en_i, en_r = "Give one reason why people should drink water.", "Water keeps the body cool and awake."
    ok = check_row([CheckedField("instruction", en_i, "Nenne einen Grund, warum Menschen Wasser trinken sollten.",
                                 "stop"),
                    CheckedField("response", en_r, "Wasser hält den Körper kühl und wach.", "stop")],
                   "de", True, [], cfg, lid)
    assert ok.failures == [] and ok.lid == {"instruction": "de", "response": "de"} and ok.lid_score > 0.5
    bad = check_row([CheckedField("instruction", en_i, en_i, "stop"), CheckedField("response", en_r, "Ja.", "length")],
                    "de", False, ["⟦1⟧:missing"], cfg, lid)
    assert bad.lid == {"instruction": "en", "response": None}  # "Ja." is too short to judge
    assert [f.split("=")[0] for f in bad.failures] == ["lid_instruction", "finish_response", "spans"]
    long = check_row([CheckedField("instruction", en_i, " ".join(["Nenne einen Grund, warum man Wasser trinkt."] * 3))],
                     "de", True, [], cfg, lid)
    assert [f.split("=")[0] for f in long.failures] == ["len_ratio"] and long.len_ratio > 2.2
    refusal = check_row([CheckedField("response", "Sorry, the shop is closed.", "Lo siento, la tienda está cerrada.")],
                        "es", True, [], cfg, lid)
    assert "refusal_response" not in refusal.failures  # the English said sorry too
    refusal = check_row([CheckedField("response", "The shop is closed today.", "Lo siento, no puedo traducir esto.")],
                        "es", True, [], cfg, lid)
    assert "refusal_response" in refusal.failures
    sky = "Explain why the sky is blue in one sentence."
    dense = check_row([CheckedField("instruction", sky, "用一句话解释天空为什么是蓝色的。")],
                      "zh", True, [], cfg, lid, (0.15, 1.3))
    assert not any(f.startswith("len_ratio") for f in dense.failures)


def test_together_mode_one_request_and_its_parse(lid):
    cfg = SphinxConfig(targets=["de"], translation={"mode": "together"})
    s = source("Explain what the command does.", "`ls -la`", "It lists every file, hidden ones too.", rid="c1")
    (req,) = requests_for(s, "de", cfg)
    assert req.id == request_id("de", "c1", "both") and "### Instruction\nExplain" in req.messages[-1]["content"]
    assert split_together("### Instruction\nA b\n### Response\nC d\ne") == ("A b", "C d\ne")
    assert split_together("no headings") is None
    rec = {"text": "### Instruction\nErkläre, was der folgende Befehl macht.\n\n⟦1⟧\n### Response\nEr listet jede "
                   "Datei auf, auch die versteckten.", "finish_reason": "stop", "model": "m", "backend": "replay",
           "completion_tokens": 20}
    row, why = assemble(s, "de", {"both": rec}, {}, cfg, lid)
    assert why is None and row["status"] == "pass", row["reason"]
    assert row["instruction"].endswith("`ls -la`") and row["response"].startswith("Er listet")
    row, _ = assemble(s, "de", {"both": {**rec, "text": "Erkläre den Befehl."}}, {}, cfg, lid)
    assert row["status"] == "fail" and row["reason"].startswith("together_unparsed")


def test_neighbours_never_self_or_own_source():
    vecs = np.array([[1, 0], [0.99, 0.14], [0.9, 0.43], [0, 1]], dtype=float)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    assert nearest(vecs, vecs, [{0}, {1}, {2}, {3}], 2) == [[1, 2], [0, 2], [1, 0], [2, 1]]
    assert nearest(vecs, vecs, [{0, 1}, set(), set(), set()], 1)[0] == [2]
    rows = [{"id": f"de-{i}", "lang": "de", "src_id": s, "instruction_en": ins, "instruction": f"I{i}",
             "response": f"R{i}", "status": st, "nshot_ids": []}
            for i, (s, ins, st) in enumerate([("a", "cats", "pass"), ("b", "cats", "pass"), ("c", "cats and dogs", "pass"),
                                              ("d", "dogs", "fail"), ("e", "fish", "pass")])]
    rows.append({**rows[0], "id": "fr-0", "lang": "fr"})  # another language never lends neighbours

    def encoder(texts):  # bag of words, normalised: enough to order these rows
        vocab = ["cats", "dogs", "fish", "and"]
        v = np.array([[t.split().count(w) for w in vocab] for t in texts], dtype=float) + 1e-6
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    add_neighbours(rows, SphinxConfig().nshot.model_copy(update={"n": 2}), encoder)
    by = {r["id"]: r for r in rows}
    # de-0 and de-1 share their English instruction: never each other's neighbour; de-3 failed: never a neighbour
    assert by["de-0"]["nshot_ids"] == ["de-2", "de-4"] and by["de-1"]["nshot_ids"] == ["de-2", "de-4"]
    assert by["de-3"]["nshot_ids"] == ["de-2", "de-0"] and by["fr-0"]["nshot_ids"] == []
    assert by["de-0"]["messages"][0] == {"role": "user", "content": "I2"} and len(by["de-0"]["messages"]) == 6


def test_shipped_default_config_matches_the_model():
    from pathlib import Path

    import yaml

    from flows.config import defaults_yaml

    shipped = Path(__file__).resolve().parents[1] / "configs" / "sphinx.yaml"
    assert yaml.safe_load(shipped.read_text(encoding="utf-8")) == yaml.safe_load(defaults_yaml(SphinxConfig))


def test_failed_generation_and_keep_failed_false_go_to_rejected(lid):
    s = source("Give one reason to sleep well.", "", "Sleep helps the body repair itself.", rid="g1")
    cfg = SphinxConfig(targets=["de"])
    failed = {"instruction": {"error": "replay: 0 of 1 completion(s)", "model": "m", "backend": "replay"}}
    ok = {"response": {"text": "Schlaf hilft dem Körper, sich zu erholen.", "finish_reason": "stop", "model": "m",
                       "backend": "replay", "completion_tokens": 9}}
    row, why = assemble(s, "de", ok, failed, cfg, lid)
    assert why == "generation_failed" and "instruction: replay: 0 of 1" in row["error"]
    english = {p: {"text": getattr(s, p), "finish_reason": "stop", "model": "m", "backend": "replay",
                   "completion_tokens": 5} for p in ("instruction", "response")}
    row, why = assemble(s, "de", english, {}, cfg, lid)  # the default: rejected/, the reasons as they are
    assert why == "translation_check" and row["status"] == "fail" and row["reason"].startswith("lid_instruction=en")
    kept = SphinxConfig(targets=["de"], keep_failed=True)
    row, why = assemble(s, "de", english, {}, kept, lid)
    assert why is None and row["status"] == "fail" and row["reason"].startswith("lid_instruction=en")


def test_blocked_nearest_equals_brute_force_with_ties():
    rng = np.random.default_rng(0)
    q = np.round(rng.normal(size=(600, 8)), 1)  # rounded: many exact ties
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[300:] = q[:300]  # duplicated vectors: ties everywhere
    excl = [{i, (i + 300) % 600} for i in range(600)]

    def brute(i):
        row = q[i] @ q.T
        return [int(j) for j in np.lexsort((np.arange(600), -row)) if int(j) not in excl[i]][:4]

    assert nearest(q, q, excl, 4, block=64) == [brute(i) for i in range(600)]


def test_ensemble_instruct_output_is_a_source(tmp_path):
    """Rows in the schema ensemble-instruct publishes (data/part-*.parquet), read by the flow's reader."""
    import pyarrow.parquet as pq

    from corpora.generated import generated_schema, to_table
    from corpora.readers import FieldMap, read_records
    from generators.ensemble_instruct import FIELDS

    rows = [{"id": "ei-1", "text": "Add the numbers.\n\n2 and 3\n\n5", "source": "ensemble-instruct",
             "instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "type": "A"},
            {"id": "ei-2", "text": "Name a warm colour.\n\nRed.", "source": "ensemble-instruct",
             "instruction": "Name a warm colour.", "input": "", "output": "Red.", "type": "B"}]
    path = tmp_path / "part-00000.parquet"
    pq.write_table(to_table(rows, generated_schema(FIELDS)), path)
    srcs = [english_source(r) for r in read_records(path, FieldMap(text_field="instruction"))]
    assert [(s.id, s.instruction, s.response, s.problem) for s in srcs] == [
        ("ei-1", "Add the numbers.\n\n2 and 3", "5", None), ("ei-2", "Name a warm colour.", "Red.", None)]
