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

from tests.test_impossible_distillation import CANDS, X1, build_tiny_nli, read_kind

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


VOCAB = [X1, A, B, "It adds 300 buses. It starts in May.", "Given context, paraphrase the last sentence. Context:",
         "Paraphrase the sentence. Sentence: Paraphrase: Shorten Shorter:"] + [s for v in SAMPLES.values() for s in v]


# ---- the fine-tuning loop -------------------------------------------------------------------------------------
def test_fine_tune_learns_the_target_masks_the_prompt_is_seeded_and_reuses(tmp_path):
    from generators.student import TrainSettings, causal_example, fine_tune, model_kind

    base = build_tiny_causal(tmp_path / "base", VOCAB)
    tok = transformers.AutoTokenizer.from_pretrained(base)
    ids, labels = causal_example(tok, "Sentence: " + A + "\nParaphrase:", " " + B, 128)
    n_prompt = len(tok("Sentence: " + A + "\nParaphrase:")["input_ids"])
    assert labels[:n_prompt] == [-100] * n_prompt and labels[n_prompt:] == ids[n_prompt:]
    assert ids[-1] == tok.eos_token_id and len(causal_example(tok, A, B, 8)[0]) == 8
    examples = [("Sentence: " + A + "\nParaphrase:", " " + B), ("Sentence: " + B + "\nParaphrase:", " " + A)]
    cfg = TrainSettings(epochs=8, lr=1e-2, batch_size=2)
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


def build_tiny_t5(path: Path, texts: list[str]) -> Path:
    """A random-init 1-layer T5 (config-built, no real weights: plumbing only) with a word-level tokenizer."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = sorted(set(re.findall(r"\w+|[^\w\s]", " ".join(texts).lower())))
    vocab = {t: i for i, t in enumerate(["<pad>", "</s>", "<unk>"] + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.normalizer, tk.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>", pad_token="<pad>",
                                               unk_token="<unk>")
    torch.manual_seed(0)
    cfg = transformers.T5Config(vocab_size=len(vocab), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                                pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    transformers.T5ForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_seq2seq_student_trains_and_only_vllm_is_refused(tmp_path):
    from flows.config import load_config
    from generators.impossible_distillation import ImpossibleConfig, _preflight
    from generators.student import TrainSettings, fine_tune, model_kind

    base = build_tiny_causal(tmp_path / "bart", VOCAB, seq2seq=True)
    got = fine_tune(base, [("Sentence: " + A, " " + B)], tmp_path / "s", TrainSettings(max_steps=2), log=lambda m: None)
    assert got["kind"] == "seq2seq" == model_kind(tmp_path / "s") and len(got["losses"]) == 2
    t5 = build_tiny_t5(tmp_path / "t5", VOCAB)
    got = fine_tune(t5, [("Sentence: " + A, " " + B)], tmp_path / "s5", TrainSettings(max_steps=2), log=lambda m: None)
    assert got["kind"] == "seq2seq" and len(got["losses"]) == 2
    ok = load_config(ImpossibleConfig, sets=["self_distill.enabled=true", f"self_distill.student={t5}"])
    _preflight(ok)  # the transformers backend runs seq2seq students
    cfg = load_config(ImpossibleConfig, sets=["self_distill.enabled=true", f"self_distill.student={t5}",
                                              "generation.backend.kind=vllm"])
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
PREFIX = "(Test Wire) --"
C = "Officials said the new line opens in June."
# the continuation's sentences: X1 (no left context), then A, B, C: three contexts (x_l = the sentences before)
CONTINUATION = f" {X1} {A} {B} {C} And then"
SAMPLES[C] = [f" {C}", " It opens.", " Officials said the new line opens in July 2025.", " officials said and",
              " The new line will open in June, officials said.", " In June the new line is due to open, they said."]
VOCAB += SAMPLES[C] + [C, "Given context, paraphrase the last sentence. Context: Sentence: And then"]


def write_contexts_replay(tmp_path: Path) -> tuple[Path, Path]:
    """The LM's replay: the continuation, and the same 4 candidates for every context's x_l (stage 0 uses one)."""
    rows = [{"prompt": PREFIX, "text": CONTINUATION, "model": "replay-lm"}]
    for x_l in (X1, f"{X1} {A}", f"{X1} {A} {B}"):
        rows += [{"prompt": x_l, "text": t, "model": "replay-lm", "completion_index": k}
                 for k, t in enumerate(CANDS[X1])]
    replay = tmp_path / "replay.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prefixes = tmp_path / "prefixes.jsonl"
    prefixes.write_text(json.dumps({"id": "p0", "text": PREFIX}) + "\n")
    return replay, prefixes


def _run(tmp_path: Path, out: str, extra: list[str], student: Path | None = None):
    from flows.config import load_config
    from flows.impossible_distillation import ImpossibleConfig, impossible_distillation_flow

    replay, prefixes = write_contexts_replay(tmp_path)
    nli = build_tiny_nli(tmp_path / "nli", {0: "contradiction", 1: "entailment", 2: "neutral"},
                         CANDS[X1] + [X1, A, B, C] + [s for v in SAMPLES.values() for s in v], entail_bias=12.0)
    if student is None:
        student = tmp_path / "student-base"
        if not student.exists():
            build_tiny_causal(student, VOCAB)
    sets = ["generation.backend.kind=replay", f"generation.backend.path={replay}", "contexts_sampling.n=1",
            "candidates_sampling.n=4", "max_contexts=1", "critic.kind=nli", f"critic.nli_model={nli}",
            "self_distill.enabled=true", f"self_distill.student={student}", "self_distill.train.max_steps=2"] + extra
    cfg = load_config(ImpossibleConfig, inputs=[str(prefixes)], output=str(tmp_path / out), sets=sets)
    return impossible_distillation_flow(cfg), tmp_path / out


def _distill_replay(tmp_path: Path) -> Path:
    from generators.impossible_distillation import STUDENT_PROMPTS

    contexts = {A: X1, B: f"{X1} {A}", C: f"{X1} {A} {B}"}  # y_orig -> its x_l
    dreplay = tmp_path / "distill.jsonl"
    dreplay.write_text("".join(json.dumps({"prompt": STUDENT_PROMPTS["paraphrase"].format(x_l=contexts[y], x=y),
                                           "text": t, "model": "replay-student", "completion_index": k}) + "\n"
                               for y, ts in SAMPLES.items() for k, t in enumerate(ts)))
    return dreplay


def test_self_distill_on_new_contexts_in_stages_joins_the_data(tmp_path, prefect_harness):
    from filters.rouge import rouge_l_pairs

    over = ["generation.rounds.distill.backend.kind=replay",
            f"generation.rounds.distill.backend.path={_distill_replay(tmp_path)}", "self_distill.sampling.n=6",
            "self_distill.stages=2", "self_distill.contexts=1"]
    result, out = _run(tmp_path, "out", over)
    stats = result["stats"]
    assert stats["invariant"]["holds"]
    sd = stats["impossible-distillation"]["self_distill"]
    contexts, data, rows = read_kind(out, "contexts"), read_kind(out, "data"), read_kind(out, "distilled")
    assert len(contexts) == 3 and sum(c["selected"] for c in contexts) == 1
    used0 = next(c for c in contexts if c["selected"])
    stage0 = [r for r in data if r["stage"] == 0]
    assert len(stage0) == 1 and stage0[0]["x_l"] == used0["x_l"]
    # stages 1 and 2 paraphrase the two contexts stage 0 did not use, one each, in the shuffled order
    new = [c for c in contexts if not c["selected"]]
    assert [st["stage"] for st in sd["stages"]] == [1, 2] and sd["new_contexts"] == 2
    by_stage = {k: [r for r in rows if r["stage"] == k] for k in (1, 2)}
    assert {r["context_id"] for r in by_stage[1]} | {r["context_id"] for r in by_stage[2]} == {c["id"] for c in new}
    assert all(len({r["context_id"] for r in by_stage[k]}) == 1 for k in (1, 2))
    assert not {r["y_orig"] for r in rows} & {used0["y_orig"]}  # never its own training pairs' sentences
    for k in (1, 2):
        mine = by_stage[k]
        assert len(mine) == 6
        assert sorted(str(r["reason"]) for r in mine) == ["None", "length_ratio", "not_full_sentence",
                                                          "not_most_diverse", "numbers", "rougeL"]
        passed = [r for r in mine if r["passed"]]
        recomputed = rouge_l_pairs([passed[0]["y_orig"]] + [r["y_new"] for r in passed], [0] * 2, [1, 2])
        assert [r["rougeL"] for r in passed] == pytest.approx(recomputed.tolist())
        chosen = [r for r in mine if r["selected"]]
        assert len(chosen) == 1 and chosen[0]["rougeL"] == pytest.approx(min(recomputed))
        assert chosen[0]["y_new"] == chosen[0]["completion"].strip()  # the whole output, not its first sentence
        # the selected sample joins data/ with its stage
        joined = [r for r in data if r["id"] == chosen[0]["id"]]
        assert len(joined) == 1 and joined[0]["stage"] == k and joined[0]["y_new"] == chosen[0]["y_new"]
        assert joined[0]["round"] == ("distill" if k == 1 else "distill#2")
    assert len(data) == 3
    # stage 2's student is stage 1's, fine-tuned on stage 1's selected pair
    s1, s2 = sd["stages"]
    assert s1["train_pairs"] == 1 and s2["train_pairs"] == 1 and s1["student"] != s2["student"]
    assert s2["train"]["base"] == s1["student"]
    folder = Path(s1["student"])
    assert folder.parent == out / "_work" / "student" and (folder / "student.json").is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    # rerun: the students are reused (not trained again), the samples come from the rounds' cache
    again, _ = _run(tmp_path, "out", over)
    sd2 = again["stats"]["impossible-distillation"]["self_distill"]
    assert all(st["train"]["reused"] for st in sd2["stages"])
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert again["stats"]["generation"]["generated"] == 0
    assert sorted(r["id"] for r in read_kind(out, "data")) == sorted(r["id"] for r in data)


def test_self_distill_without_new_contexts_says_so(tmp_path, prefect_harness):
    result, out = _run(tmp_path, "out", ["max_contexts=3", "self_distill.sampling.n=2"])
    sd = result["stats"]["impossible-distillation"]["self_distill"]
    assert sd["stages"][0]["skipped"].startswith("no new contexts") and sd["selected"] == 0
    assert not read_kind(out, "distilled") and {r["stage"] for r in read_kind(out, "data")} == {0}


def test_self_distill_generates_with_the_fine_tuned_folder(tmp_path, prefect_harness):
    """No override for round `distill`: the transformers backend on the student folder writes the samples."""
    result, out = _run(tmp_path, "out", ["self_distill.sampling.n=2", "self_distill.sampling.max_tokens=6"])
    sd = result["stats"]["impossible-distillation"]["self_distill"]
    st = sd["stages"][0]
    rows = read_kind(out, "distilled")
    assert st["backend"] == "transformers" and len(rows) == 2 * st["contexts"] == st["samples"]
    assert {r["model"] for r in rows} == {st["student"]} and {r["backend"] for r in rows} == {"transformers"}
    assert sum(r["selected"] for r in rows) == st["selected"] <= st["contexts"]
    assert json.loads(rows[0]["sampling_params"])["temperature"] == 0.7


def test_t5_student_plumbing_through_the_seq2seq_backend(tmp_path, prefect_harness):
    """A T5 student (tiny, config-built, random weights: plumbing only, no real T5 exists offline) is fine-tuned
    and generates round `distill` through the transformers backend's seq2seq path."""
    t5 = build_tiny_t5(tmp_path / "t5", VOCAB)
    result, out = _run(tmp_path, "out", ["self_distill.sampling.n=2", "self_distill.sampling.max_tokens=6"],
                       student=t5)
    st = result["stats"]["impossible-distillation"]["self_distill"]["stages"][0]
    rows = read_kind(out, "distilled")
    assert st["train"]["kind"] == "seq2seq" and st["backend"] == "transformers"
    assert len(rows) == 2 * st["contexts"] and {r["model"] for r in rows} == {st["student"]}
