"""ensemble-instruct's pure parts: the instruction and instance parsers on the reference's tricky shapes, the
consensus rule on hand-made triples, ROUGE-L against rouge_score, and the novelty prefilter against brute force."""
from __future__ import annotations

import random

import pytest

from generators.ensemble_config import InstructionsConfig
from generators.ensemble_parse import parse_instance, parse_instructions
from generators.ensemble_prompts import encode_prompt, templates
from generators.ensemble_seeds import seed_tasks
from filters.rouge import NoveltyPool, lcs_length, rouge_l_text, tokenize
from generators.voting import consensus, normalize_answer


# ---- instructions --------------------------------------------------------------------------------------------
def test_prompt_is_the_references_numbered_list():
    p = encode_prompt(["Sort   the list:", "Name a colour."])
    assert p == "Come up with a series of tasks:\n1. Sort the list |EoS|\n2. Name a colour. |EoS|\n3."


@pytest.mark.parametrize("response, expected", [
    (" Give three uses of a paperclip |EoS|", [("Give three uses of a paperclip", None)]),  # stop kept (reference)
    (" Give three uses of a paperclip", [("Give three uses of a paperclip", None)]),  # stop cut (vLLM)
    (" Name a fruit that is red\n26. Suggest a name for a cat\n27 . Tell a joke about cheese please",
     [("Name a fruit that is red", None), ("Suggest a name for a cat", None),
      ("Tell a joke about cheese please", None)]),
    # text past the stop is dropped
    (" Write a shopping list now |EoS| 26. and more text", [("Write a shopping list now", None)]),
    (" Hi there", [("Hi there", "too_short")]),
    (" " + "word " * 151, [(("word " * 151).strip(), "too_long")]),
    (" Describe the images in this article", [("Describe the images in this article", "blacklisted_word")]),
    (" Please go to the store and buy milk", [("Please go to the store and buy milk", "blacklisted_word")]),
    (" Summarize this profile of the mapmaker", [("Summarize this profile of the mapmaker", None)]),  # \bmap\b
    (" Write a program that sorts numbers", [("Write a program that sorts numbers", "program")]),
    (' "Quote a famous line from Hamlet', [('"Quote a famous line from Hamlet', "punctuation_start")]),
    (" Ñame the largest city in Spain", [("Ñame the largest city in Spain", "non_ascii_start")]),
    ("\n\n", []),
])
def test_instruction_parser(response, expected):
    assert parse_instructions(response, InstructionsConfig()) == expected


# ---- instances -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, kind, expected", [
    ("input: 3, 1, 2\noutput: 1, 2, 3\n", "A", ("3, 1, 2", "1, 2, 3", None)),
    # runs past |EoS| into a new example
    ("input: 3, 1, 2\noutput: 1, 2, 3\n|EoS|\ninstruction: Sort again.\ninput: 9, 8\noutput: 8, 9", "A",
     ("3, 1, 2", "1, 2, 3", None)),
    # runs into a new `instruction:` with no |EoS| and no blank line
    ("input: 3, 1, 2\noutput: 1, 2, 3\ninstruction: Sort again.\ninput: 9, 8", "A", ("3, 1, 2", "1, 2, 3", None)),
    # multi-line input and output
    ("input: Which is a fruit?\n(A) apple\n(B) brick\noutput: A\nbecause apples grow on trees\n\ninput: x", "A",
     ("Which is a fruit?\n(A) apple\n(B) brick", "A\nbecause apples grow on trees", None)),
    ("Input : hello\nOutput: bonjour", "A", ("hello", "bonjour", None)),
    ("hello\noutput: bonjour", "A", (None, None, "no_label")),  # missing input label
    ("input: hello\nbonjour", "A", (None, None, "no_output")),  # missing output label
    ("output: bonjour", "A", (None, None, "no_input")),
    ("input:\noutput: bonjour", "A", (None, None, "empty_input")),
    ("input: hello\noutput:", "A", (None, None, "empty_output")),
    ("input: hello\noutput: |EoS|", "A", (None, None, "empty_output")),
    ("", "A", (None, None, "no_label")),
    ("output: Paris is the capital.\n|EoS|", "B", ("", "Paris is the capital.", None)),
    ("output:\ndef f(x):\n    return x", "B", ("", "def f(x):\n    return x", None)),
    ("input: x\noutput: y", "B", (None, None, "unexpected_input")),
    ("Paris is the capital.", "B", (None, None, "no_label")),
    ("\n\noutput: late", "B", ("", "late", None)),  # leading newlines are not a block end
])
def test_instance_parser(text, kind, expected):
    assert parse_instance(text, kind) == expected


def test_templates_have_the_references_shape():
    tpl = templates()
    a, b = tpl["A"][0], tpl["B"][0]
    assert a.count("|EoS|") == 19 and a.count("\ninput: ") == 19 and a.endswith("\n\ninstruction:")
    assert b.count("|EoS|") == 15 and "input:" not in b and b.endswith("\n\ninstruction:")
    # every demo parses back with our own instance parser (after its instruction line)
    for kind, t in (("A", a), ("B", b)):
        for block in t.split("\n\n")[1:-1]:
            body = block.split("\n", 1)[1]
            assert parse_instance(body, kind)[2] is None, block


def test_seed_types_split_on_the_first_instance_input():
    from conftest import shared_path

    from corpora.readers import FieldMap, read_records

    path = shared_path("data", "instruct", "self_instruct_seed_tasks.jsonl")
    seeds, bad = seed_tasks(list(read_records(path, FieldMap(text_field="instruction"))))
    assert bad == [] and sum(s.type == "A" for s in seeds) == 125 and sum(s.type == "B" for s in seeds) == 50


# ---- consensus -----------------------------------------------------------------------------------------------
def test_normalize_answer():
    assert normalize_answer("  The Answer: 42!\n") == "the answer 42"


@pytest.mark.parametrize("cands, decided, output, chosen", [
    (["Paris.", "paris", "London"], "exact_generator", "Paris.", 0),
    (["Paris.", "London", "PARIS"], "exact_generator", "Paris.", 0),  # generator vs any vote
    (["Rome", "London!", "london"], "exact_votes", "London!", 1),  # the agreeing vote, not the generator's
    (["", "", "x y"], "no_consensus", None, None),  # empty candidates never agree
    (["Rome", "", ""], "no_consensus", None, None),  # two empty votes are no agreement
    (["?!", "...", "Rome"], "no_consensus", None, None),  # empty after normalisation
    (["the cat sat", "the cat ran", "a cat sat"], "rouge", "the cat sat", 0),
    (["a cat sat", "the cat sat down", "the cat sat"], "rouge", "the cat sat", 2),
])
def test_consensus_paths(cands, decided, output, chosen):
    c = consensus(cands)
    assert (c.decided_by, c.output, c.chosen) == (decided, output, chosen)
    assert c.kept == (decided != "no_consensus") and len(c.pairwise) == 3
    assert c.worst == min(p["rougeL"] for p in c.pairwise)


def test_consensus_ties_go_to_the_generator_then_vote_order():
    # every pair shares one word of two: equal sums, so the generator's output wins
    c = consensus(["red apple", "red pear", "green apple pear"][:2] + ["red plum"])
    assert c.decided_by == "rouge" and c.chosen == 0
    # the generator is the odd one out: equal sums for the votes, the first vote wins
    c = consensus(["blue sky above", "green grass here now", "green grass there now"])
    assert c.decided_by == "no_consensus"  # the generator shares nothing with the votes
    c = consensus(["grass", "green grass here", "green grass there"])
    assert c.decided_by == "rouge" and c.chosen == 1


def test_consensus_threshold_tau():
    cands = ["one two three four five six seven eight nine ten", "one b c d e f g h i j", "k l m n one"]
    worst = consensus(cands).worst
    assert 0 < worst
    assert consensus(cands, tau=worst - 1e-9).kept and not consensus(cands, tau=worst).kept  # strictly above tau


def test_consensus_stems_like_the_reference():
    # "running"/"runs" stem to "run": these agree under stemming, and the row is kept on that basis
    assert consensus(["running", "runs", "run"], tau=0.5).decided_by == "rouge"
    assert not consensus(["running", "runs", "run"], tau=0.5, stem=False).kept


# ---- ROUGE-L -------------------------------------------------------------------------------------------------
def test_rouge_l_equals_rouge_score_with_and_without_stemming():
    from rouge_score import rouge_scorer

    words = ["The", "cats", "running", "ran", "runs", "quickly", "jumped", "over", "a", "lazy", "dog's", "fence",
             "42", "x-ray", "naïve"]
    rng = random.Random(0)
    for stem in (False, True):
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
        for _ in range(500):
            a = " ".join(rng.choice(words) for _ in range(rng.randint(0, 14)))
            b = " ".join(rng.choice(words) for _ in range(rng.randint(0, 14)))
            assert rouge_l_text(b, a, stem) == scorer.score(a, b)["rougeL"].fmeasure


def test_lcs_length_against_the_table():
    rng = random.Random(1)
    for _ in range(300):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 70))]
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(len(a)):
            for j in range(len(b)):
                t[i + 1][j + 1] = t[i][j] + 1 if a[i] == b[j] else max(t[i][j + 1], t[i + 1][j])
        assert lcs_length(a, b) == t[-1][-1]


def test_unicode_tokenizer_sees_chinese():
    same = "两个相同的中文指令"
    assert rouge_l_text(same, same) == 0.0  # the reference tokenizer: no tokens
    assert rouge_l_text(same, same, tokenizer="unicode") == 1.0
    assert tokenize("Crème brûlée, 東京!", tokenizer="unicode") == ["crème", "brûlée", "東", "京"]


# ---- novelty: the prefiltered index makes the brute force's decisions ---------------------------------------
def synthetic_instructions(n: int, seed: int = 0) -> list[str]:
    """Instructions from a small grammar: many near duplicates around the 0.7 threshold, some exact copies."""
    rng = random.Random(seed)
    verbs = ["Write", "Describe", "List", "Explain", "Summarize", "Give", "Suggest", "Compare", "Classify", "Name"]
    objs = ["a short poem", "three reasons", "the main idea", "a recipe", "two examples", "the differences",
            "a catchy title", "the steps", "five facts", "a polite reply"]
    tails = ["about the ocean", "for a birthday party", "of the given paragraph", "to a child", "in one sentence",
             "for a job interview", "about climate change", "using simple words", "for the following text",
             "about your hometown", "with a happy ending", "that rhymes"]
    out: list[str] = []
    for _ in range(n):
        r = rng.random()
        if out and r < 0.05:
            out.append(rng.choice(out))
        elif out and r < 0.4:  # mutate an earlier one
            w = rng.choice(out).split()
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(w))
                w[i] = rng.choice(verbs + objs[0].split() + tails[0].split() + ["very", "please", "now"])
            out.append(" ".join(w))
        else:
            out.append(" ".join([rng.choice(verbs), rng.choice(objs), rng.choice(tails)] +
                                ([rng.choice(tails)] if rng.random() < 0.3 else [])))
    return out


@pytest.mark.parametrize("tokenizer", ["rouge_score", "unicode"])
def test_novelty_index_decides_exactly_like_brute_force(tokenizer):
    texts = synthetic_instructions(2400)
    seeds = synthetic_instructions(60, seed=9)
    fast, slow = (NoveltyPool(0.7, tokenizer=tokenizer, method=m) for m in ("index", "brute"))
    for i, s in enumerate(seeds):
        fast.add(f"s{i}", s)
        slow.add(f"s{i}", s)
    decisions = []
    for i, t in enumerate(texts):
        toks = tokenize(t, tokenizer=tokenizer)
        a, b = fast.check(tokens=toks), slow.check(tokens=toks)
        assert a[0] == b[0], (i, t, a, b)
        if not a[0]:
            assert a[1] == b[1]  # a rejection's top score is exact
        decisions.append(a[0])
        if a[0]:
            fast.add(f"m{i}", tokens=toks)
            slow.add(f"m{i}", tokens=toks)
    accepted = sum(decisions)
    assert 200 < accepted < 2300  # both decisions occur often
    assert fast.scored < slow.scored / 5  # and the index scores a fraction of the pool


def test_novelty_boundary_is_strictly_above_threshold():
    pool = NoveltyPool(0.5)
    pool.add("x", "a b c d")
    novel, score, nearest, _ = pool.check("a b x y")  # F1 = 0.5 exactly: not above, so novel
    assert novel and score == 0.5 and nearest == "x"
    assert not pool.check("a b c y")[0]


# ---- seeds: malformed instances quarantined, a missing type one clear line --------------------------------------
def _rec(rid, instances, missing=False):
    from corpora.records import Record

    return Record(id=rid, text=f"Task {rid}.", source="seeds.jsonl", metadata={} if missing else {"instances": instances})


def test_malformed_instances_are_quarantined_with_file_row_and_reason():
    recs = [_rec("ok-a", [{"input": "x", "output": "y"}]), _rec("dog", "dog"), _rec("empty", []),
            _rec("missing", None, missing=True), _rec("str0", ["a"]), _rec("int-input", [{"input": 5}]),
            _rec("ok-b", [{"input": "", "output": "y"}]), _rec("none", None)]
    seeds, bad = seed_tasks(recs)
    assert [(s.id, s.type) for s in seeds] == [("ok-a", "A"), ("ok-b", "B")]
    assert [b["location"] for b in bad] == ["id dog", "id empty", "id missing", "id str0", "id int-input", "id none"]
    assert all(b["file"] == "seeds.jsonl" and b["error"].startswith("seed task: ") and b["raw"] for b in bad)
    reasons = [b["error"] for b in bad]
    assert "is str, not a list" in reasons[0] and "empty list" in reasons[1] and "no 'instances'" in reasons[2]
    assert "instances[0] is str" in reasons[3] and "input is int" in reasons[4] and "NoneType" in reasons[5]
    assert len(seeds) + len(bad) == len(recs)  # nothing lost


def test_no_seed_of_a_type_is_one_clear_line_before_any_generation(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    from generators.ensemble_config import EnsembleInstructConfig
    from generators.ensemble_seeds import SeedError, check_seed_types, preflight_seeds

    with pytest.raises(SeedError, match=r"no seed task of type B \(first instance has no input\)"):
        check_seed_types(seed_tasks([_rec("a", [{"input": "x"}])])[0], InstructionsConfig())
    check_seed_types(seed_tasks([_rec("a", [{"input": "x"}])])[0], InstructionsConfig(target_b=0))  # no target: fine
    f = tmp_path / "only_a.jsonl"
    f.write_text("\n".join(json.dumps({"id": f"s{i}", "instruction": f"Do thing {i}.",
                                       "instances": [{"input": "in", "output": "out"}]}) for i in range(3)) + "\n"
                 + json.dumps({"id": "bad", "instruction": "Broken.", "instances": "dog"}) + "\n")
    with pytest.raises(SeedError, match="1 seed\\(s\\) with unusable instances"):
        preflight_seeds(EnsembleInstructConfig(inputs=[str(f)]))
    # the CLI in its own process (as a user runs it): the one line, no traceback, before any generation
    r = subprocess.run([sys.executable, "-m", "flows.cli", "run", "ensemble-instruct", "--input", str(f),
                        "--output", str(tmp_path / "o")], capture_output=True, text=True, timeout=300,
                       cwd=Path(__file__).resolve().parents[1])
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "no seed task of type B" in out and "Traceback" not in out, out
    assert len([line for line in out.splitlines() if line.strip()]) == 1, out
    assert not (tmp_path / "o" / "_work").exists()


# ---- consensus options, voters, bounds ------------------------------------------------------------------------------
def test_empty_votes_never_agree():
    for cands in (["Rome", "", ""], ["Rome", "...", "!"], ["", "", ""], ["Rome", " ", "\n"]):
        c = consensus(cands)
        assert c.decided_by == "no_consensus" and not c.kept, cands
    # an empty vote does not block two real candidates that agree
    assert consensus(["Rome", "", "rome"]).decided_by == "exact_generator"


def test_votes_agree_keep_the_vote_or_the_generators_output():
    c = consensus(["Rome", "London!", "london"])
    assert (c.decided_by, c.output, c.chosen) == ("exact_votes", "London!", 1)
    c = consensus(["Rome", "London!", "london"], votes_agree_keep="generator")  # ensemble_output.py, line 147
    assert (c.decided_by, c.output, c.chosen) == ("exact_votes", "Rome", 0)


def test_one_model_voting_with_itself_needs_allow_same_model():
    from generators.ensemble_config import EnsembleInstructConfig, same_model_candidates

    default = EnsembleInstructConfig()  # one offline LM: said explicitly, allowed
    assert default.ensemble.allow_same_model is True and len(same_model_candidates(default)) == 3
    with pytest.raises(ValueError, match="the instance generator and voter 'greedy' are the same model"):
        EnsembleInstructConfig(ensemble={"allow_same_model": False})
    t5 = {"kind": "transformers", "model": "/models/flan-t5-xxl"}
    with pytest.raises(ValueError, match="voter 'a' and voter 'b' are the same model \\(/models/flan-t5-xxl\\)"):
        EnsembleInstructConfig(ensemble={"allow_same_model": False}, votes={"voters": [
            {"name": "a", "backend": t5}, {"name": "b", "backend": t5, "temperature": 0.7}]})
    ok = EnsembleInstructConfig(ensemble={"allow_same_model": False}, votes={"voters": [
        {"name": "a", "backend": t5}, {"name": "b", "backend": {"kind": "transformers", "model": "/models/flan-ul2"}}]})
    assert same_model_candidates(ok) == []
    # a voter without its own backend takes its round's (generation.rounds.votes#k), as the run does
    via_rounds = EnsembleInstructConfig(ensemble={"allow_same_model": False}, generation={"rounds": {
        "votes#0": {"backend": t5}, "votes#1": {"backend": {"kind": "openai", "base_url": "http://h/v1",
                                                            "model": "flan-ul2"}}}})
    assert same_model_candidates(via_rounds) == []


@pytest.mark.parametrize("key, value", [("ensemble.tau", 1.5), ("ensemble.tau", -0.1),
                                        ("instructions.novelty.threshold", 1.0),
                                        ("instructions.sampling.top_p", 1.2), ("votes.sampling.temperature", -1),
                                        ("instances.sampling.min_new_tokens", 600)])
def test_probabilities_and_thresholds_are_bounded(key, value):
    from flows.config import ConfigError, load_config
    from generators.ensemble_config import EnsembleInstructConfig

    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        load_config(EnsembleInstructConfig, sets=[f"{key}={value}"])


# ---- ROUGE-L stems as rouge_score does (NLTK's default Porter mode) ---------------------------------------------
def test_rouge_l_equals_rouge_score_on_every_seed_pair():
    import itertools
    import json

    from conftest import shared_path
    from rouge_score import rouge_scorer

    path = shared_path("data", "instruct", "self_instruct_seed_tasks.jsonl")
    seeds = [json.loads(line)["instruction"] for line in path.read_text().splitlines() if line.strip()]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pairs = list(itertools.combinations(seeds, 2))
    assert len(pairs) == 15225
    diff = max(abs(rouge_l_text(b, a, True) - scorer.score(a, b)["rougeL"].fmeasure) for a, b in pairs)
    assert diff < 1e-9
    # the words whose stems differ between NLTK's modes (e.g. "news") stem as rouge_score stems them
    assert tokenize("news generous", stem=True) == scorer._tokenizer.tokenize("news generous")


def test_rouge_l_equals_rouge_score_on_1000_sampled_pairs():
    import json
    from pathlib import Path

    from rouge_score import rouge_scorer

    sample = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "instruct_seed_sample.jsonl"
    words = " ".join(json.loads(line)["instruction"] for line in sample.read_text().splitlines() if line.strip())
    vocab = sorted(set(words.split())) + ["news", "dying", "skies", "generously", "agreed", "feed", "ponies"]
    rng = random.Random(1)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    worst = 0.0
    for _ in range(1000):
        a = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 25)))
        b = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 25)))
        worst = max(worst, abs(rouge_l_text(b, a, True) - scorer.score(a, b)["rougeL"].fmeasure))
    assert worst < 1e-9


def test_reference_templates_are_the_references_verbatim():
    from generators.ensemble_prompts import demos_path

    tpl = templates("generators/ensemble_instruct_reference_demos.yaml")
    a, b = tpl["A"][0], tpl["B"][0]
    assert a.startswith("Generate examples for the following instructions. The instruction requires input and output")
    assert b.startswith("Generate examples for the instructions. The instruction does not require input")
    assert a.count("|EoS|") == 19 and b.count("|EoS|") == 15 and a.endswith("|EoS|\n\ninstruction:")
    assert "Sit-ups \n|EoS|" in b and 'instruction": What is the relation' in a  # irregularities kept
    assert len(a) == 7970 and len(b) == 8484
    assert demos_path("generators/ensemble_instruct_reference_demos.yaml").is_file()
