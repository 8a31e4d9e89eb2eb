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

This module holds the rounds' wiring (`run`); beside it: the config (`impossible_config.py`), the templates and
round tasks (`impossible_tasks.py`), the critic and the mode's pair filters (`impossible_critics.py`), the output
columns and rows (`impossible_schema.py`), the pair round's stats (`impossible_report.py`) and self-distillation
(`impossible_self_distill.py`); their public names stay importable from here.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

from corpora.generated import generated_schema, to_table
from corpora.hashing import short_hash
from filters.pairs import filter_pairs
from filters.sentences import first_sentence, left_contexts, splitter
from generators.contract import Generator, GeneratorResult
from generators.impossible_config import (  # noqa: F401
    MINILM_CALIBRATED, SAMPLE_DIR, SAMPLE_PREFIXES, SAMPLE_RESOURCE, CandidateSampling, ContextSampling,
    CriticConfig, DistillSampling, ImpossibleConfig, PairDedup, PrefixConfig, SelfDistillConfig, SentenceConfig)
from generators.impossible_critics import JudgeCritic, build_critic, number_extractor, pair_filter  # noqa: F401
from generators.impossible_report import pair_stats
from generators.impossible_schema import (  # noqa: F401
    CANDIDATE_FIELDS, CANDIDATE_NAMES, CONTEXT_FIELDS, CONTEXT_NAMES, DISTILLED_FIELDS, FIELDS, REJECT_NAMES,
    ROW_NAMES, candidate_row, pair_row, string_fields)
from generators.impossible_self_distill import self_distill, student_backend
from generators.impossible_tasks import JUDGE, JUDGE_PROMPT, STUDENT_PROMPTS, TEMPLATE_VERSION, round_task  # noqa: F401
from generators.task import run_task


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
    for ctx_id, cands in by_ctx.items():
        s = filter_pairs([c["text"] for c in cands], filt, critic, cfg.graph, cfg.mode == "summary", cfg.score_all,
                         extract_numbers=extract)
        all_scores.append(s)
        for k in range(len(s.I)):
            row = pair_row(cands[s.I[k]], cands[s.J[k]], k, s, cfg.mode, critic.model)
            (rows if s.reason[k] is None else rejected).append(row if s.reason[k] is None
                                                               else {**row, "reason": s.reason[k]})
    stats["pairs"] = pair_stats(all_scores, rows, critic.model)
    distilled, stats["self_distill"] = self_distill(cfg, rows, contexts[len(chosen):], critic, rounds) \
        if cfg.self_distill.enabled else ([], {"enabled": False})
    rows += [{k: v for k, v in d.items() if k in ROW_NAMES} for d in distilled if d["selected"]]
    tables = {"contexts": to_table([{k: c.get(k) for k in CONTEXT_NAMES} for c in contexts],
                                   generated_schema(CONTEXT_FIELDS)),
              "candidates": to_table([{k: c.get(k) for k in CANDIDATE_NAMES} for c in candidates],
                                     generated_schema(CANDIDATE_FIELDS)),
              "distilled": to_table(distilled, generated_schema(DISTILLED_FIELDS))}
    return GeneratorResult(rows, rejected, stats, tables=tables)


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
