"""Impossible Distillation (Jung et al., NAACL 2024): paraphrase / summary pairs from a small LM and a critic.

Rounds: `contexts` (continuations of domain prefixes -> sentences; sentence i gives `y_orig` and its left context
`x_l`, the prefix not part of it) -> `candidates` (n continuations of each `x_l`, first full sentence kept) ->
pairs of candidates of the same `x_l` through `filters.pairs.filter_pairs` (length ratio, numbers, ROUGE-L ceiling,
critic forward / reverse, entailment-graph dedup, in the order `<mode>.order`: ours cheap-first with the dedup last,
or the reference's) -> rows (`text` = `y_new`, `stage` 0). Optional round `judge`: the LLM as the critic. The
critic (`filters.nli`): an NLI model path (WANLI in the reference preset), MiniLM cosine (symmetric: its reverse
check reuses the forward score, said in `nli_rev_note`; threshold calibrated on held-out hand labels), or the LLM's
yes/no. Sentences: spaCy's rule sentencizer, or a spaCy model when named and installed (`sentences.spacy_model`).

Optional self-distill (`self_distill.enabled`, stages 1..`self_distill.stages`): a student (any local causal-LM or
seq2seq/T5 folder; default SmolLM2) fine-tuned on the previous stage's pairs (`generators.student`; the reference's
prompt: context + sentence -> paraphrase; the folder under `_work/student/<key>/`, the key = the pairs + the student
+ the train config, so a rerun reuses it), round `distill` (stage k > 1: `distill#k`) samples it on NEW contexts
(the shuffled contexts after those stage 0 used; 10 per context, T=0.7, top_p=0.9; its backend:
`generation.rounds.distill.backend`, else the run's kind pointed at the student folder); each sample (the whole
output) is paired with its context's `y_orig` through the same pair filters and critic (no graph dedup), and per
context the passing sample of lowest ROUGE-L is selected -> `distilled/` (every sample, `selected`, `reason`,
`stage`) and the selected ones join `data/` with their `stage`; they train the next stage's student.

Prefixes: seed records (`--input`, one prefix per record's text: any domain, e.g. `Abstract:`), or news prefixes
drawn from a `news_prefix.json` resource (`prefixes.news_file`), or the bundled sample (news prefixes drawn from a
small resource of our own). Contexts are shuffled with `shuffle_seed` before `max_contexts` takes the first.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import pyarrow as pa
from pydantic import Field

from corpora.config import StrictModel
from corpora.generated import PROVENANCE_NAMES, generated_schema, to_table
from corpora.hashing import short_hash
from filters.dedup.config import MinHashDedup
from filters.pairs import (
    GraphDedupConfig,
    PairFilterConfig,
    distinct_n,
    filter_pairs,
    numbers_in,
    numbers_numerizer,
    self_bleu,
)
from filters.sentences import first_sentence, is_full_sentence, left_contexts, nlp_for, splitter
from generators.backends.base import SamplingParams
from generators.contract import GeneratedDedup, Generator, GeneratorConfig, GeneratorResult
from generators.judge import Judge, yes_no
from generators.student import TrainSettings
from generators.task import Task, Template, run_task

TEMPLATE_VERSION = 1
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "corpora" / "sample_data"
SAMPLE_RESOURCE = SAMPLE_DIR / "impossible_news_resource.json"  # ours: a few media and capitals
SAMPLE_PREFIXES = SAMPLE_DIR / "impossible_prefixes.jsonl"  # news_prefixes(SAMPLE_RESOURCE, 16, seed=0)
# the student's prompt per mode: paraphrase is the reference's stage > 0 input (pipeline/con.py:105-109: the
# context, then the sentence to paraphrase); summary is ours (the reference's summary prompt is not in its code)
STUDENT_PROMPTS = {"paraphrase": "Given context, paraphrase the last sentence.\nContext: {x_l} \nSentence: {x}",
                   "summary": "Given context, shorten the last sentence.\nContext: {x_l} \nSentence: {x}"}
JUDGE = Template("impossible/judge", TEMPLATE_VERSION, "Sentence A: {a}\nSentence B: {b}\nIf sentence A is true, "
                 "must sentence B be true? Answer yes or no.\nAnswer:")
JUDGE_PROMPT = JUDGE.text


class PrefixConfig(StrictModel):
    news_file: str | None = Field(None, description="news_prefix.json ({city_country, media_list}): draw `count` "
                                                    "news prefixes from it; None: prefixes are the input records")
    count: int = Field(1000, ge=1, le=10_000_000)
    seed: int = 0


class SentenceConfig(StrictModel):
    spacy_model: str | None = Field(None, description="a spaCy pipeline (en_core_web_sm: the reference's parser and "
                                    "entities) used when installed, else the rule sentencizer; None: the rules")


class ContextSampling(SamplingParams):  # the reference's y_orig generation
    n: int = Field(100, ge=1)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(150, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


class CandidateSampling(SamplingParams):  # the reference's stage-0 y_con generation
    n: int = Field(100, ge=1)
    temperature: float = Field(0.5, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(100, ge=1)
    no_repeat_ngram_size: int | None = Field(3, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


# MiniLM cosine threshold chosen on the calibration half of the hand labels (bench/impossible_critics.py,
# seeded split; held-out metrics in bench/results/impossible-critics.txt)
MINILM_CALIBRATED = 0.975


class CriticConfig(StrictModel):
    kind: Literal["minilm", "nli", "llm"] = Field("minilm", description="nli needs nli_model (none ships offline)")
    nli_model: str | None = Field(None, description="local HF sequence-classification folder (roberta-large-wanli)")
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(512, ge=8)
    device: str = "auto"
    edge_threshold: float = Field(0.75, ge=0, le=1, description="llm: a graph edge at this score (yes = 1)")
    minilm_threshold: float | None = Field(
        MINILM_CALIBRATED, ge=0, le=1, description="kind=minilm: the forward / reverse thresholds and the graph "
        "edge (a cosine, calibrated on held-out hand labels); None: the mode's nli_fwd / nli_rev and "
        "edge_threshold")


class DistillSampling(SamplingParams):  # the reference's stage > 0 sampling (pipeline/con.py:78-82)
    n: int = Field(10, ge=1)
    temperature: float = Field(0.7, ge=0.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    max_tokens: int = Field(100, ge=1)
    no_repeat_ngram_size: int | None = Field(3, ge=1)
    banned_substrings: list[str] = Field(default_factory=lambda: ["\n"])


class SelfDistillConfig(StrictModel):
    enabled: bool = False
    student: str | None = Field(None, description="local HF folder, causal LM or seq2seq (T5); None: SmolLM2-135M "
                                                  "(dequantised)")
    stages: int = Field(1, ge=1, le=20, description="self-distillation stages 1..k: the stage-k student is the "
                        "stage-(k-1) student fine-tuned on stage k-1's pairs (stage 0: the LM's pairs)")
    contexts: int | None = Field(None, ge=1, description="NEW contexts per stage: the shuffled contexts after "
                                 "the ones stage 0 used (and earlier stages'); None: all that are left, split "
                                 "evenly over the stages")
    train: TrainSettings = TrainSettings()
    sampling: DistillSampling = DistillSampling()


class PairDedup(GeneratedDedup):
    # one-sentence rows: MinHash's 5-gram shingles over y_new alone would drop pairs whose y_orig differ; the
    # entailment graph is the near-dedup within a context, exact dedup of y_new across contexts stays on
    minhash: MinHashDedup = MinHashDedup(enabled=False)


class ImpossibleConfig(GeneratorConfig):
    mode: Literal["paraphrase", "summary"] = "paraphrase"
    prefixes: PrefixConfig = PrefixConfig()
    contexts_sampling: ContextSampling = ContextSampling()
    candidates_sampling: CandidateSampling = CandidateSampling()
    sentences: SentenceConfig = SentenceConfig()
    shuffle_seed: int = 3  # the reference's random.seed(3) (its shuffle never ran)
    max_contexts: int | None = Field(None, ge=1, description="first N shuffled contexts; None: all")
    paraphrase: PairFilterConfig = PairFilterConfig()
    summary: PairFilterConfig = PairFilterConfig(min_len_ratio=None, max_len_ratio=0.75, nli_rev=None)
    graph: GraphDedupConfig = GraphDedupConfig()
    critic: CriticConfig = CriticConfig()
    score_all: bool = Field(False, description="critic scores on every pair (else: on the pairs still alive)")
    self_distill: SelfDistillConfig = SelfDistillConfig()
    dedup: PairDedup = PairDedup()


def string_fields(*names: str) -> list[pa.Field]:
    return [pa.field(n, pa.string()) for n in names]


CONTEXT_FIELDS = string_fields("prefix", "prefix_id", "x_l", "y_orig") + [
    pa.field("sentence_index", pa.int32()), pa.field("selected", pa.bool_())]
CANDIDATE_FIELDS = string_fields("context_id", "x_l", "completion") + [pa.field("candidate_ok", pa.bool_())]
FIELDS = string_fields("context_id", "x_l", "y_orig", "y_new", "mode") + [pa.field(n, pa.float64()) for n in (
    "len_ratio", "nli_fwd", "nli_rev")] + [pa.field("numbers_ok", pa.bool_()), pa.field("rougeL", pa.float64()),
    *string_fields("component"), pa.field("passed", pa.bool_()),
    *string_fields("generator_model", "critic_model", "nli_rev_note"),
    pa.field("stage", pa.int32())]
DISTILLED_FIELDS = FIELDS + string_fields("completion", "reason", "student_model", "student_base") + [
    pa.field("candidate_ok", pa.bool_()), pa.field("selected", pa.bool_())]


def news_prefixes(resource: dict, count: int, seed: int) -> list[dict[str, str]]:
    """The reference's news templates: `({media}) --` p=0.5, `{country} ({media}) --` p=0.25,
    `{CITY}, {country} ({media}) --` p=0.25; a seeded stream."""
    rng, out = random.Random(seed), []
    for k in range(count):
        city, country = rng.choice(resource["city_country"])
        media, u = rng.choice(resource["media_list"]), rng.random()
        text = (f"({media}) --" if u < 0.5 else f"{country} ({media}) --" if u < 0.75
                else f"{city.upper()}, {country} ({media}) --")
        out.append({"id": f"news-{seed}-{k}", "text": text})
    return out


def _seeded(sp: SamplingParams, *key: str) -> SamplingParams:
    return SamplingParams(**{**sp.model_dump(), "seed": int(short_hash(*key, length=8), 16) & 0x7FFFFFFF})


def round_task(name: str, kind: str, sampling: SamplingParams, ask: Callable[[dict], tuple[str, str, dict]],
               parse: Callable[[str], Any] | None = None, accept: Callable | None = None) -> Task:
    """A round of raw-prompt continuations: `ask(record) -> (key, prompt, meta)`; the request's id hashes the key,
    the prompt and the template version and seeds its sampling; its parent is the record."""
    def request(task: Task, rec: dict):
        key, prompt, meta = ask(rec)
        rid = f"id{kind[0]}-" + short_hash(key, prompt, str(TEMPLATE_VERSION), length=20)
        return task.ask(rid, prompt=prompt, sampling=_seeded(task.sampling, rid), parent_ids=[rec["id"]], meta=meta)
    return Task(name, Template(f"impossible/{kind}", TEMPLATE_VERSION), sampling, request=request, parse=parse,
                accept=accept)


def candidate_row(rec: dict, sentence: str) -> tuple[dict, None]:
    """A candidate: its first sentence (a full one or not, `candidate_ok`), the whole completion beside it."""
    return {**rec, "text": sentence, "completion": rec["text"], "candidate_ok": is_full_sentence(sentence)}, None


class JudgeCritic:
    """The LLM as the critic: "if A is true, must B be true?" (`generators.judge.Judge`, rounds `judge#k`); yes = 1.0,
    else (no, unreadable, failed) 0.0."""

    def __init__(self, rounds, edge_threshold: float = 0.5):
        self.edge_threshold = edge_threshold
        self.judge = Judge(rounds, JUDGE, yes_no, SamplingParams(temperature=0.0, max_tokens=3), round="judge",
                           request_id=lambda it: "idj-" + short_hash(it["a"], it["b"], str(TEMPLATE_VERSION), length=20))

    @property
    def model(self) -> str:
        return self.judge.model or "llm-judge"

    @property
    def calls(self) -> int:
        return self.judge.calls

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        verdicts = self.judge.ask([{"a": a, "b": b} for a, b in zip(premises, hypotheses)])
        return np.array([float(v.answer is True) for v in verdicts], dtype=np.float64)

    def entails(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        return self.entailment(premises, hypotheses) >= self.edge_threshold


def build_critic(cfg: CriticConfig, rounds):
    from filters.nli import EmbeddingCritic, NLICritic

    if cfg.kind == "llm":
        return JudgeCritic(rounds, cfg.edge_threshold)
    rounds.hold("critic")  # the generator's engine leaves the GPU before the critic loads
    if cfg.kind == "nli":
        return NLICritic(cfg.nli_model, cfg.batch_size, cfg.max_length, cfg.device)
    edge = cfg.edge_threshold if cfg.minilm_threshold is None else cfg.minilm_threshold
    return EmbeddingCritic(edge_threshold=edge)


def pair_filter(cfg: "ImpossibleConfig") -> PairFilterConfig:
    """The mode's pair filters, with the critic's calibrated thresholds: kind=minilm with a `minilm_threshold`
    sets nli_fwd / nli_rev (those that are on) to it (a cosine is not an NLI probability)."""
    filt = getattr(cfg, cfg.mode)
    t = cfg.critic.minilm_threshold
    if cfg.critic.kind != "minilm" or t is None:
        return filt
    return filt.model_copy(update={k: t for k in ("nli_fwd", "nli_rev") if getattr(filt, k) is not None})


def _hist(values: np.ndarray, bins: Sequence[float]) -> dict[str, Any]:
    counts, edges = np.histogram(values[~np.isnan(values)], bins=bins)
    return {"edges": [round(float(e), 3) for e in edges], "counts": counts.tolist()}


def number_extractor(cfg: "ImpossibleConfig"):
    """text -> number set, by the mode's `number_parser` (numerizer reads entities when the spaCy model is
    installed, the numerized sentence otherwise)."""
    if getattr(cfg, cfg.mode).number_parser != "numerizer":
        return numbers_in
    model = cfg.sentences.spacy_model
    nlp = nlp_for(model) if splitter(model) != "sentencizer" else None
    return lambda text: numbers_numerizer(text, nlp)


def _pair_row(ci: dict, cj: dict, k: int, s, mode: str, critic_model: str) -> dict:
    val = lambda a: None if np.isnan(a[k]) else float(a[k])  # noqa: E731
    return {**{n: cj.get(n) for n in PROVENANCE_NAMES}, "source": cj["source"],
            "id": "pair-" + short_hash(ci["id"], cj["id"], mode, length=20), "text": cj["text"],
            "parent_ids": [ci["id"], cj["id"]], "context_id": cj["context_id"], "x_l": cj["x_l"],
            "y_orig": ci["text"], "y_new": cj["text"], "mode": mode, "len_ratio": float(s.len_ratio[k]),
            "nli_fwd": val(s.nli_fwd), "nli_rev": val(s.nli_rev), "numbers_ok": bool(s.numbers_ok[k]),
            "rougeL": float(s.rougeL[k]), "component": s.component[k], "passed": s.reason[k] is None,
            "generator_model": cj["model"], "critic_model": critic_model, "nli_rev_note": s.rev_note, "stage": 0}


def run(cfg: ImpossibleConfig, records: Sequence[Any], rounds) -> GeneratorResult:
    prefixes = [{"id": r.id, "text": r.text.strip()} for r in records]
    if cfg.prefixes.news_file:
        resource = json.loads(Path(cfg.prefixes.news_file).expanduser().read_text(encoding="utf-8"))
        prefixes += news_prefixes(resource, cfg.prefixes.count, cfg.prefixes.seed)
    prefixes = prefixes[:cfg.max_seeds] if cfg.max_seeds else prefixes
    if not prefixes:
        raise ValueError("no prefixes: give --input prefix records or --set prefixes.news_file=<news_prefix.json>")
    stats: dict[str, Any] = {"mode": cfg.mode, "prefixes": len(prefixes), "shuffle_seed": cfg.shuffle_seed,
                             "sentence_splitter": splitter(cfg.sentences.spacy_model)}
    spacy_model = cfg.sentences.spacy_model
    # 1. contexts
    out = run_task(rounds, round_task("contexts", "context", cfg.contexts_sampling, lambda p: (
        p["id"], p["text"], {"prefix": p["text"], "prefix_id": p["id"]}), lambda t: left_contexts(t, spacy_model)),
        prefixes)
    contexts, seen, no_left = [], set(), 0
    for rec in out.accepted:
        for i, x_l, y in out.parsed[rec["id"]]:
            if i == 0:
                no_left += 1  # a first sentence has no left context
            elif x_l not in seen:
                seen.add(x_l)
                contexts.append({**rec, "id": "ctx-" + short_hash(rec["id"], str(i), length=20), "text": y,
                                 "x_l": x_l, "y_orig": y, "sentence_index": i, "parent_ids": [rec["id"]]})
    contexts.sort(key=lambda c: c["id"])
    random.Random(cfg.shuffle_seed).shuffle(contexts)
    chosen = contexts[:cfg.max_contexts] if cfg.max_contexts else contexts
    for c in contexts:
        c["selected"] = False
    for c in chosen:
        c["selected"] = True
    stats["contexts"] = {"continuations": len(out.accepted), "sentences_without_left_context": no_left,
                         "contexts": len(contexts), "selected": len(chosen)}
    # 2. candidates
    out2 = run_task(rounds, round_task("candidates", "candidate", cfg.candidates_sampling, lambda c: (
        c["id"], c["x_l"], {"context_id": c["id"], "x_l": c["x_l"]}), lambda t: first_sentence(t, spacy_model),
        candidate_row), chosen)
    candidates = out2.accepted
    by_ctx: dict[str, list[dict]] = {}
    for c in candidates:
        if c["candidate_ok"]:
            by_ctx.setdefault(c["context_id"], []).append(c)
    stats["candidates"] = {"completions": len(candidates), "full_sentences": sum(c["candidate_ok"] for c in candidates)}
    # 3. pairs
    filt, extract = pair_filter(cfg), number_extractor(cfg)
    stats["pair_filter"] = {"order": filt.order, "nli_fwd": filt.nli_fwd, "nli_rev": filt.nli_rev,
                            "number_parser": filt.number_parser}
    critic = build_critic(cfg.critic, rounds)
    rejected = [{k: v for k, v in r.items() if k in REJECT_NAMES} for r in out.failed + out2.failed]
    rows, all_scores = [], []
    seconds: dict[str, float] = {}
    entered: dict[str, int] = {}
    for ctx_id, cands in by_ctx.items():
        s = filter_pairs([c["text"] for c in cands], filt, critic, cfg.graph, cfg.mode == "summary", cfg.score_all,
                         extract_numbers=extract)
        all_scores.append(s)
        for k in range(len(s.I)):
            row = _pair_row(cands[s.I[k]], cands[s.J[k]], k, s, cfg.mode, critic.model)
            (rows if s.reason[k] is None else rejected).append(row if s.reason[k] is None
                                                               else {**row, "reason": s.reason[k]})
        for step, sec in s.seconds.items():
            seconds[step] = seconds.get(step, 0.0) + sec
            entered[step] = entered.get(step, 0) + s.entered[step]
    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(s, name) for s in all_scores]) if all_scores else np.zeros(0)

    steps = list(entered)
    stats["pairs"] = {
        "in": sum(len(s.I) for s in all_scores), "out": len(rows), "critic": critic.model,
        "funnel": [{"step": st, "in": entered[st], "out": entered[steps[i + 1]] if i + 1 < len(steps) else len(rows),
                    "seconds": round(seconds[st], 4), "pairs_per_s": round(entered[st] / seconds[st], 1)
                    if seconds[st] else None} for i, st in enumerate(steps)],
        "rougeL_hist": _hist(cat("rougeL"), np.linspace(0, 1, 11)),
        "len_ratio_hist": _hist(cat("len_ratio"), [0, .25, .5, .75, .8, 1, 1.25, 1.5, 2, 3, np.inf]),
        "kept": {"distinct_1": distinct_n([r["y_new"] for r in rows], 1),
                 "distinct_2": distinct_n([r["y_new"] for r in rows], 2),
                 "self_bleu": self_bleu([r["y_new"] for r in rows])},
        }
    stats["pairs"]["rev_note"] = all_scores[0].rev_note if all_scores else None
    distilled, stats["self_distill"] = self_distill(cfg, rows, contexts[len(chosen):], critic, rounds) \
        if cfg.self_distill.enabled else ([], {"enabled": False})
    rows += [{k: v for k, v in d.items() if k in ROW_NAMES} for d in distilled if d["selected"]]
    tables = {"contexts": to_table([{k: c.get(k) for k in CONTEXT_NAMES} for c in contexts],
                                   generated_schema(CONTEXT_FIELDS)),
              "candidates": to_table([{k: c.get(k) for k in CANDIDATE_NAMES} for c in candidates],
                                     generated_schema(CANDIDATE_FIELDS)),
              "distilled": to_table(distilled, generated_schema(DISTILLED_FIELDS))}
    return GeneratorResult(rows, rejected, stats, tables=tables)


# ---- self-distill ------------------------------------------------------------------------------------------------
def student_backend(settings, folder: str):
    """The backend of round `distill`: `generation.rounds.distill.backend` as given (a transformers / vLLM one
    without a model: the student folder); else the run's backend kind (transformers or vLLM, its other settings
    kept) pointed at the student folder; a run on replay / openai: transformers on the folder."""
    from generators.backends import TransformersConfig

    # built with model_validate (every key set): `for_round` applies a round's keys that were set, `kind` included
    def pointed(b):
        return type(b).model_validate({**b.model_dump(), "model": folder})

    over = settings.rounds.get("distill")
    if over is not None and over.backend is not None:
        b = over.backend
        return pointed(b) if b.kind in ("transformers", "vllm") and not b.model else b
    base = settings.backend_config()
    if base.kind in ("transformers", "vllm"):
        return pointed(base)
    return pointed(TransformersConfig())


def _stage_contexts(new: list[dict], stages: int, per_stage: int | None) -> list[list[dict]]:
    """The new contexts of stages 1..k: consecutive slices of the contexts stage 0 did not use."""
    if per_stage is None:
        per_stage = len(new) // stages
    return [new[k * per_stage:(k + 1) * per_stage] for k in range(stages)]


def self_distill(cfg: ImpossibleConfig, pairs: list[dict], new_contexts: list[dict], critic, rounds
                 ) -> tuple[list[dict], dict]:
    """Stages 1..k of self-distillation (the reference's stage > 0, pipeline/filter.py:51-85 and pipeline/con.py):
    the student (stage k: the stage-(k-1) student) is fine-tuned on the previous stage's pairs (context + y_orig ->
    y_new), samples paraphrases of the last sentence of NEW contexts (round `distill`; the whole output, stripped),
    each full-sentence sample is paired with its context's y_orig through the pair filters (no graph dedup), and
    per context the passing sample of lowest ROUGE-L is selected: the stage's pairs (`stage` = k), which join the
    data and train the next stage. Returns (every sample's row, stats)."""
    from generators.backends.local_models import dequantised_smollm2_dir
    from generators.student import fine_tune

    sd = cfg.self_distill
    base = str(Path(sd.student).expanduser()) if sd.student else str(dequantised_smollm2_dir())
    template = STUDENT_PROMPTS[cfg.mode]
    filt, extract = pair_filter(cfg), number_extractor(cfg)
    off = GraphDedupConfig(enabled=False)
    slices = _stage_contexts(new_contexts, sd.stages, sd.contexts)
    rows: list[dict] = []
    stage_stats: list[dict] = []
    train_pairs, student = sorted(pairs, key=lambda r: r["id"]), base
    for stage, ctxs in enumerate(slices, 1):
        if not train_pairs:
            stage_stats.append({"stage": stage, "skipped": f"no pairs from stage {stage - 1} to train on"})
            break
        if not ctxs:
            stage_stats.append({"stage": stage, "skipped": "no new contexts left (stage 0 used them all: set "
                                                           "max_contexts below the contexts found)"})
            break
        examples = [(template.format(x_l=p["x_l"], x=p["y_orig"]), " " + p["y_new"]) for p in train_pairs]
        weights = next((f for f in ("model.safetensors", "pytorch_model.bin") if (Path(student) / f).exists()), "")
        ident = str((Path(student) / weights).stat().st_size) if weights else ""
        key = short_hash(json.dumps(examples), student, ident, sd.train.model_dump_json(), str(stage),
                         str(TEMPLATE_VERSION), length=16)
        # the training step's folder: <work>/student/<key>/ (`rounds.train`; fine_tune reuses a finished one)
        folder, train = rounds.train("student", key, lambda target, base_model=student, pairs=examples: fine_tune(
            base_model, pairs, target, sd.train, log=rounds.log))
        bcfg = student_backend(rounds.settings, str(folder))
        task = round_task("distill", "distill", sd.sampling, lambda c, key=key: (
            c["id"] + key, template.format(x_l=c["x_l"], x=c["y_orig"]), {"context_id": c["id"]}))
        # the round's engine: the student just trained (by round name: `distill` and its loop rounds `distill#k`)
        out = run_task(rounds, task, ctxs, "distill" if stage == 1 else f"distill#{stage}",
                       rounds.settings.with_round("distill", backend=bcfg)).output
        by_ctx = {c["id"]: c for c in ctxs}
        samples: dict[str, list[dict]] = {}
        for rec in out.ok:
            samples.setdefault(rec["context_id"], []).append(rec)
        counts = {"stage": stage, "train_pairs": len(train_pairs), "contexts": len(ctxs), "samples": len(out.ok),
                  "failed_requests": len(out.failed), "full_sentences": 0, "passed": 0, "selected": 0,
                  "contexts_without_survivor": len(ctxs) - len(samples), "reasons": {}}
        mine_all: list[dict] = []
        for cid in sorted(samples):
            ctx, recs = by_ctx[cid], sorted(samples[cid], key=lambda r: r["id"])
            texts = [r["text"].strip() for r in recs]  # the whole output (pipeline/con.py postprocess_generation)
            ok = [k for k, t in enumerate(texts) if is_full_sentence(t)]
            counts["full_sentences"] += len(ok)
            mine = [{**{n: r.get(n) for n in PROVENANCE_NAMES}, "source": r["source"],
                     "id": "dst-" + short_hash(r["id"], length=20), "text": texts[k], "parent_ids": [cid],
                     "context_id": cid, "x_l": ctx["x_l"], "y_orig": ctx["y_orig"], "y_new": texts[k],
                     "mode": cfg.mode, "completion": r["text"], "candidate_ok": k in ok, "stage": stage,
                     "generator_model": r["model"], "critic_model": critic.model, "student_model": str(folder),
                     "student_base": base, "passed": False, "selected": False, "reason": "not_full_sentence"}
                    for k, r in enumerate(recs)]
            if ok:
                s = filter_pairs([ctx["y_orig"]] + [texts[k] for k in ok], filt, critic, off,
                                 pairs=(np.zeros(len(ok)), np.arange(1, len(ok) + 1)), extract_numbers=extract)
                for q, k in enumerate(ok):
                    fwd, rev = (None if np.isnan(a[q]) else float(a[q]) for a in (s.nli_fwd, s.nli_rev))
                    mine[k].update(len_ratio=float(s.len_ratio[q]), numbers_ok=bool(s.numbers_ok[q]),
                                   rougeL=float(s.rougeL[q]), nli_fwd=fwd, nli_rev=rev, nli_rev_note=s.rev_note,
                                   passed=s.reason[q] is None, reason=s.reason[q] or "not_most_diverse")
            alive = [m for m in mine if m["passed"]]
            counts["passed"] += len(alive)
            if alive:
                best = min(alive, key=lambda m: (m["rougeL"], m["id"]))  # the most diverse survivor
                best.update(selected=True, reason=None)
                counts["selected"] += 1
            else:
                counts["contexts_without_survivor"] += 1
            for m in mine:
                if m["reason"]:
                    counts["reasons"][m["reason"]] = counts["reasons"].get(m["reason"], 0) + 1
            mine_all += mine
        chosen = [m for m in mine_all if m["selected"]]
        counts.update(student=str(folder), train=train, backend=bcfg.kind,
                      selected_rougeL_mean=float(np.mean([m["rougeL"] for m in chosen])) if chosen else None,
                      distinct_2=distinct_n([m["y_new"] for m in chosen], 2))
        stage_stats.append(counts)
        rows += mine_all
        train_pairs, student = sorted(chosen, key=lambda r: r["id"]), str(folder)
    done = [st for st in stage_stats if "skipped" not in st]
    stats = {"enabled": True, "student_base": base, "stages": stage_stats, "new_contexts": len(new_contexts),
             "selected": sum(st["selected"] for st in done), "samples": sum(st["samples"] for st in done)}
    return rows, stats


CONTEXT_NAMES = generated_schema(CONTEXT_FIELDS).names
ROW_NAMES = set(generated_schema(FIELDS).names)
REJECT_NAMES = set(generated_schema(FIELDS, rejected=True).names)
CANDIDATE_NAMES = generated_schema(CANDIDATE_FIELDS).names


def _sample_inputs(cfg: ImpossibleConfig) -> list[str]:
    return [] if cfg.prefixes.news_file else [str(SAMPLE_PREFIXES)]


def _preflight(cfg: ImpossibleConfig) -> None:
    if cfg.prefixes.news_file and not Path(cfg.prefixes.news_file).expanduser().is_file():
        raise FileNotFoundError(f"prefixes.news_file: {cfg.prefixes.news_file} does not exist")
    if cfg.critic.kind == "nli" and not (cfg.critic.nli_model and Path(cfg.critic.nli_model).expanduser().exists()):
        raise FileNotFoundError(f"critic.nli_model: {cfg.critic.nli_model!r} is not a local model folder "
                                "(critic.kind=nli needs one; critic.kind=minilm runs offline)")
    sd = cfg.self_distill
    if sd.enabled and sd.student:
        from generators.student import model_kind

        path = Path(sd.student).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"self_distill.student: {sd.student} is not a local HF model folder (no "
                                    "config.json)")
        if model_kind(path) == "seq2seq" and student_backend(cfg.generation, str(path)).kind == "vllm":
            raise ValueError(f"self_distill.student: {sd.student} is a seq2seq (T5) model; the round's vLLM backend "
                             "is not used for it here: set generation.rounds.distill.backend.kind=transformers "
                             "(seq2seq support) or a server (openai) / replay file that serves the student")
    if getattr(cfg, cfg.mode).number_parser == "numerizer":
        import importlib.util

        if importlib.util.find_spec("numerizer") is None:
            raise ModuleNotFoundError(f"{cfg.mode}.number_parser=numerizer needs the numerizer package (pip install "
                                      "numerizer; the reference extra), or set it to rules")


GENERATOR = Generator(
    name="impossible-distillation",
    description="Impossible Distillation: prefix -> contexts -> candidates -> NLI-filtered paraphrase/summary pairs",
    config=ImpossibleConfig, fields=FIELDS, rounds=("contexts", "candidates", "judge", "distill"), run=run,
    kinds=("contexts", "candidates", "distilled"),
    # the bundled sample: 4 prefixes x 3 continuations of 64 tokens, 6 contexts x 8 candidates of 32 tokens (168
    # pairs, ~2,300 tokens): a few minutes with SmolLM2-135M on two CPU cores instead of 100 x 100 per context
    demo={"max_seeds": 4, "contexts_sampling.n": 3, "contexts_sampling.max_tokens": 64, "max_contexts": 6,
          "candidates_sampling.n": 8, "candidates_sampling.max_tokens": 32},
    sample_inputs=_sample_inputs, needs_inputs=False, preflight=_preflight,
)
