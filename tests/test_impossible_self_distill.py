"""Impossible Distillation's self-distill round: the student fine-tuning loop (`generators.student`) on a tiny
causal LM built here (real training, real save/reload), the backend the `distill` round gets, and the flow end to
end (replayed samples after a real fine-tune: the selected survivor is the minimum-ROUGE-L passing one, recomputed
from the rows; a rerun reuses the student folder; without a replay override the round generates with the
fine-tuned folder through the transformers backend)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.test_impossible_distillation import CANDS, X1, build_tiny_nli, read_kind, write_replay

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

A = "The new plan adds 200 buses to the city fleet."
B = "The budget adds 200 new buses to the fleet."
# replayed student samples for each sentence that can be the kept pair's y_orig: a copy (ROUGE-L 1), too short,
# a new number, an unfinished sentence, and two paraphrases that pass (different ROUGE-L)
SAMPLES = {A: [f" {A}", " Buses came.", " The new plan adds 250 buses to the city fleet.", " the plan and",
               " Under the new plan, the city fleet gets 200 more buses.",
               " The city will get 200 extra buses under this scheme."],
           B: [f" {B}", " Buses came.", " The budget adds 250 new buses to the fleet.", " the budget and",
               " Under the budget, the fleet gets 200 more buses.",
               " The fleet will gain 200 buses thanks to the spending plan."]}


def build_tiny_causal(path: Path, texts: list[str], seq2seq: bool = False) -> Path:
    """A random-init 1-layer Llama (or BART) with a word-level tokenizer over `texts`, saved like a hub model."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = sorted(set(re.findall(r"\w+|[^\w\s]", " ".join(texts).lower())))
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>"] + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer, tk.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>",
                                               pad_token="<pad>", unk_token="<unk>")
    torch.manual_seed(0)
    common = dict(vocab_size=len(vocab), pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if seq2seq:
        cfg = transformers.BartConfig(d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                                      decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
                                      max_position_embeddings=128, decoder_start_token_id=1, **common)
        model = transformers.BartForConditionalGeneration(cfg)
    else:
        cfg = transformers.LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                       tie_word_embeddings=True, **common)
        model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


VOCAB = [X1, A, B, "It adds 300 buses. It starts in May.",
         "Paraphrase the sentence. Sentence: Paraphrase: Shorten Shorter:"] + [s for v in SAMPLES.values() for s in v]


# ---- the fine-tuning loop -------------------------------------------------------------------------------------
def test_fine_tune_learns_the_target_masks_the_prompt_is_seeded_and_reuses(tmp_path):
    from generators.student import TrainConfig, causal_example, fine_tune, model_kind

    base = build_tiny_causal(tmp_path / "base", VOCAB)
    tok = transformers.AutoTokenizer.from_pretrained(base)
    ids, labels = causal_example(tok, "Sentence: " + A + "\nParaphrase:", " " + B, 128)
    n_prompt = len(tok("Sentence: " + A + "\nParaphrase:")["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tok.eos_token_id and len(causal_example(tok, A, B, 8)[0]) == 8
    examples = [("Sentence: " + A + "\nParaphrase:", " " + B), ("Sentence: " + B + "\nParaphrase:", " " + A)]
    cfg = TrainConfig(epochs=8, lr=1e-2, batch_size=2)
    one = fine_tune(base, examples, tmp_path / "s1", cfg, log=lambda m: None)
    assert not one["reused"] and one["steps"] == 8 and one["kind"] == "causal"
    assert one["losses"][-1] < 0.5 * one["losses"][0]  # it learns the targets
    two = fine_tune(base, examples, tmp_path / "s2", cfg, log=lambda m: None)
    assert two["losses"] == one["losses"]  # seeded: the same run twice
    again = fine_tune(base, examples, tmp_path / "s1", cfg.model_copy(update={"lr": 1.0}), log=lambda m: None)
    assert again["reused"] and again["losses"] == one["losses"]  # a finished folder is reused as it is
    # the saved folder reloads as a model that gives the target a far higher likelihood than the base does
    x, y = (torch.tensor([v]) for v in causal_example(tok, *examples[0], 128))

    def target_loss(path):
        with torch.no_grad():
            return float(transformers.AutoModelForCausalLM.from_pretrained(path)(input_ids=x, labels=y).loss)

    assert target_loss(tmp_path / "s1") < 0.5 * target_loss(base)
    assert model_kind(tmp_path / "s1") == "causal" and not list(tmp_path.glob(".s1.tmp-*"))
    capped = fine_tune(base, examples, tmp_path / "s3", cfg.model_copy(update={"max_steps": 3}), log=lambda m: None)
    assert capped["steps"] == 3 and len(capped["losses"]) == 3


def test_seq2seq_student_trains_and_is_refused_for_a_causal_backend(tmp_path):
    from flows.config import load_config
    from generators.impossible_distillation import ImpossibleConfig, _preflight
    from generators.student import TrainConfig, fine_tune, model_kind

    base = build_tiny_causal(tmp_path / "bart", VOCAB, seq2seq=True)
    got = fine_tune(base, [("Sentence: " + A, " " + B)], tmp_path / "s", TrainConfig(max_steps=2), log=lambda m: None)
    assert got["kind"] == "seq2seq" == model_kind(tmp_path / "s") and len(got["losses"]) == 2
    cfg = load_config(ImpossibleConfig, sets=["self_distill.enabled=true", f"self_distill.student={base}"])
    with pytest.raises(ValueError, match="seq2seq"):
        _preflight(cfg)
    missing = load_config(ImpossibleConfig, sets=["self_distill.enabled=true", f"self_distill.student={tmp_path}/x"])
    with pytest.raises(FileNotFoundError, match="self_distill.student"):
        _preflight(missing)


def test_distill_round_backend():
    from generators.backends import ReplayConfig, TransformersConfig, VLLMConfig
    from generators.impossible_distillation import student_backend
    from generators.settings import GenerationSettings, RoundSettings

    s = GenerationSettings(backend=VLLMConfig(enforce_eager=True))
    assert student_backend(s, "/w/st") == VLLMConfig(enforce_eager=True, model="/w/st")  # the run's kind, the folder
    s = GenerationSettings(backend=ReplayConfig(path="r.jsonl"))
    assert student_backend(s, "/w/st") == TransformersConfig(model="/w/st")
    s = GenerationSettings(rounds={"distill": RoundSettings(backend=TransformersConfig(batch_size=4))})
    assert student_backend(s, "/w/st") == TransformersConfig(batch_size=4, model="/w/st")
    s = GenerationSettings(rounds={"distill": RoundSettings(backend=ReplayConfig(path="d.jsonl"))})
    assert student_backend(s, "/w/st") == ReplayConfig(path="d.jsonl")  # given: used as it is


# ---- the flow -------------------------------------------------------------------------------------------------
def _run(tmp_path: Path, out: str, extra: list[str]):
    from flows.config import load_config
    from flows.impossible_distillation import ImpossibleConfig, impossible_distillation_flow

    replay, prefixes = write_replay(tmp_path)
    nli = build_tiny_nli(tmp_path / "nli", {0: "contradiction", 1: "entailment", 2: "neutral"},
                         CANDS[X1] + [X1] + [s for v in SAMPLES.values() for s in v], entail_bias=12.0)
    student = tmp_path / "student-base"
    if not student.exists():
        build_tiny_causal(student, VOCAB)
    sets = ["generation.backend.kind=replay", f"generation.backend.path={replay}", "contexts_sampling.n=1",
            "candidates_sampling.n=4", "critic.kind=nli", f"critic.nli_model={nli}", "self_distill.enabled=true",
            f"self_distill.student={student}", "self_distill.train.max_steps=2"] + extra
    cfg = load_config(ImpossibleConfig, inputs=[str(prefixes)], output=str(tmp_path / out), sets=sets)
    return impossible_distillation_flow(cfg), tmp_path / out


def test_self_distill_flow_selects_the_most_diverse_survivor_and_reuses_the_student(tmp_path, prefect_harness):
    from filters.pairs import rouge_l
    from generators.impossible_distillation import STUDENT_PROMPTS

    dreplay = tmp_path / "distill.jsonl"
    dreplay.write_text("".join(json.dumps({"prompt": STUDENT_PROMPTS["paraphrase"].format(x=y), "text": t,
                                           "model": "replay-student", "completion_index": k}) + "\n"
                               for y, ts in SAMPLES.items() for k, t in enumerate(ts)))
    over = ["generation.rounds.distill.backend.kind=replay", f"generation.rounds.distill.backend.path={dreplay}",
            "self_distill.sampling.n=6"]
    result, out = _run(tmp_path, "out", over)
    sd = result["stats"]["impossible-distillation"]["self_distill"]
    pairs, rows = read_kind(out, "data"), read_kind(out, "distilled")
    assert len(pairs) == 1 and sd["pairs"] == 1 and sd["backend"] == "replay"
    pair = pairs[0]
    assert len(rows) == 6 and all(r["parent_ids"] == [pair["id"]] and r["y_orig"] == pair["y_orig"] for r in rows)
    reasons = sorted(str(r["reason"]) for r in rows)
    assert reasons == ["None", "length_ratio", "not_full_sentence", "not_most_diverse", "numbers", "rougeL"]
    passed = [r for r in rows if r["passed"]]
    assert len(passed) == 2 and len({r["rougeL"] for r in passed}) == 2
    recomputed = rouge_l([pair["y_orig"]] + [r["y_new"] for r in passed], [0] * 2, [1, 2])
    assert [r["rougeL"] for r in passed] == pytest.approx(recomputed.tolist())
    chosen = [r for r in rows if r["selected"]]
    assert len(chosen) == 1 and chosen[0]["rougeL"] == pytest.approx(min(recomputed)) and chosen[0]["passed"]
    assert chosen[0]["nli_fwd"] > 0.99 and chosen[0]["numbers_ok"] and chosen[0]["round"] == "distill"
    assert chosen[0]["generator_model"] == "replay-student" and chosen[0]["critic_model"].endswith("nli")
    folder = Path(chosen[0]["student_model"])
    assert folder.parent == out / "_work" / "student" and (folder / "student.json").is_file()
    assert sd["train"]["steps"] == 2 and not sd["train"]["reused"] and sd["selected"] == 1
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    # rerun: the student folder is reused (not trained again), the samples come from the round's cache
    again, _ = _run(tmp_path, "out", over)
    sd2 = again["stats"]["impossible-distillation"]["self_distill"]
    assert sd2["train"]["reused"] and sd2["student"] == str(folder)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert again["stats"]["generation"]["rounds"]["distill"]["generated"] == 0
    assert sorted(r["id"] for r in read_kind(out, "distilled")) == sorted(r["id"] for r in rows)


def test_self_distill_generates_with_the_fine_tuned_folder(tmp_path, prefect_harness):
    """No override for round `distill`: the transformers backend on the student folder writes the samples."""
    result, out = _run(tmp_path, "out", ["self_distill.sampling.n=2", "self_distill.sampling.max_tokens=6"])
    sd = result["stats"]["impossible-distillation"]["self_distill"]
    rows = read_kind(out, "distilled")
    assert sd["backend"] == "transformers" and len(rows) == 2 == sd["samples"]
    assert {r["model"] for r in rows} == {sd["student"]} and {r["backend"] for r in rows} == {"transformers"}
    assert sum(r["selected"] for r in rows) == sd["selected"] <= 1
    assert json.loads(rows[0]["sampling_params"])["temperature"] == 0.7
