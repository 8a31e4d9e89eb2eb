"""Ensemble-Instruct (Lee et al., Findings of EMNLP 2023; reference code IBM/ensemble-instruct): instruction data
from a mixture of LMs, as rounds of the generation mechanism. Every row keeps its lineage (joined by id).

1. `instructions#i` (loop rounds until each type's target): type A (the seed's first instance has an input) and B
   (output only). Prompt "Come up with a series of tasks:" + `{i}. {instruction} |EoS|` lines + `{N+1}.`, the
   examples up to 4 accepted machine instructions of the type plus seeds, shuffled. Parsed on `\\n\\d+\\s?\\. `,
   filtered (length, word blacklist, "Write a program", punctuation / non-ASCII start) and checked for novelty
   (ROUGE-L F1 <= 0.7 against the type's seeds and accepted instructions, one at a time: `filters.rouge`).
   The stop string `|EoS|` is never part of an instruction (backends cut at it; the parser cuts any left over).
2. `instances`: a type-specific few-shot template (`ensemble_instruct_demos.yaml`) + instruction; the first block
   is parsed (A: `input:` then `output:`; B: `output:`).
3. `votes#k`, one round per voter (`votes.voters`, each its own backend or sampling): zero-shot answers to
   instruction + newline + input.
4. ensemble (`generators.voting.consensus`, pure): exact match of normalised answers first, else ROUGE-L over all
   pairs.
`flows/ensemble_instruct.py` registers it. Here: the rounds and the novelty loop, the consensus step, the output
schemas. The parts it is made of, each in its own module: settings `generators.ensemble_config`; prompts and
few-shot templates `generators.ensemble_prompts`; completion parsers `generators.ensemble_parse`; seed tasks and
their check `generators.ensemble_seeds`; run statistics `generators.ensemble_stats`; the vote `generators.voting`.
"""
from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from corpora.generated import generated_schema, to_table
from corpora.hashing import short_hash
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import Generator, GeneratorResult
from generators.ensemble_config import TYPES, EnsembleInstructConfig
from generators.ensemble_parse import instance_rows_of, parse_instructions
from generators.ensemble_prompts import INSTANCES, INSTRUCTIONS, ZERO_SHOT, encode_prompt, templates
from generators.ensemble_seeds import SAMPLE_SEEDS, check_seed_types, preflight_seeds, seed_tasks
from generators.ensemble_stats import run_stats
from generators.task import Task, in_request_order, run_task
from filters.rouge import NoveltyPool
from generators.voting import consensus


# ---- schemas -------------------------------------------------------------------------------------------------
STR, STR_LIST = pa.string(), pa.list_(pa.string())
INSTRUCTION_FIELDS = [pa.field("type", STR), pa.field("status", STR), pa.field("piece", pa.int32()),
                      pa.field("novelty_rougeL", pa.float64()), pa.field("novelty_nearest", STR)]
INSTANCE_FIELDS = [pa.field("type", STR), pa.field("instruction", STR), pa.field("instruction_id", STR),
                   pa.field("input", STR), pa.field("output", STR), pa.field("parse_status", STR)]
VOTE_FIELDS = [pa.field("voter", STR), pa.field("instance_id", STR)]
FIELDS = INSTANCE_FIELDS + VOTE_FIELDS + [ pa.field("generator_model", STR), pa.field("voter_names", STR_LIST),
    pa.field("voter_models", STR_LIST), pa.field("candidates", STR_LIST), pa.field("vote_ids", STR_LIST),
    pa.field("pairwise_rougeL", pa.list_(pa.struct([("a", pa.int32()), ("b", pa.int32()), ("rougeL", pa.float64())]))),
    pa.field("worst_rougeL", pa.float64()), pa.field("decided_by", STR), pa.field("chosen", pa.int32()),
    pa.field("output_model", STR)]


def _rid(*parts: Any) -> str:
    return short_hash(*map(str, parts), length=20)


def _seeded(sp: SamplingParams, *parts: Any) -> SamplingParams:
    return SamplingParams(**{**sp.model_dump(), "seed": int(_rid(*parts)[:8], 16)})


def row_text(instruction: str, inp: str, output: str) -> str:
    return "\n\n".join(p for p in (instruction, inp, output) if p)


# ---- the rounds: instructions (the novelty loop, in `run`), instances, votes; then the ensemble ----------------
def instances_task(cfg: "EnsembleInstructConfig") -> Task:
    """The `instances` round: an accepted instruction -> its type's few-shot prompt + the instruction."""
    tpl = templates(cfg.instances.demos_file)

    def ask(task: Task, a: dict) -> GenerationRequest:
        prefix, version = tpl[a["type"]]
        return task.ask("ei-inst-" + _rid(a["id"]), prompt=prefix + " " + a["text"].strip() + "\n",
                        template=INSTANCES[a["type"]], variant=str(version),
                        sampling=_seeded(cfg.instances.sampling, "instances", a["id"]), parent_ids=[a["id"]],
                        meta={"type": a["type"], "instruction": a["text"], "instruction_id": a["id"]})

    # a completion may hold several instances (the reference's parser): one row each (`instance_rows_of`)
    return Task("instances", None, cfg.instances.sampling, request=ask, ordered=True,
                accept_many=lambda rec, _text: instance_rows_of(rec, cfg.instances.parse))


# ---- the generator -------------------------------------------------------------------------------------------
def run(cfg: EnsembleInstructConfig, records: Sequence[Any], rounds) -> GeneratorResult:
    icfg = cfg.instructions
    seeds, bad_seeds = seed_tasks(records[:cfg.max_seeds] if cfg.max_seeds else records)
    skipped = len(bad_seeds)
    check_seed_types(seeds, icfg)
    by_type = {t: [s for s in seeds if s.type == t] for t in TYPES}
    targets = {"A": icfg.target_a, "B": icfg.target_b}
    n_examples = {"A": icfg.examples_a, "B": icfg.examples_b}
    nov = icfg.novelty
    pools = {t: NoveltyPool(nov.threshold, False, nov.tokenizer, nov.method) for t in TYPES}
    for s in seeds:
        pools[s.type].add(s.id, s.instruction)
    accepted_by_type: dict[str, list[dict]] = {t: [] for t in TYPES}
    instruction_rows: list[dict] = []
    novelty_s = [0.0]

    instructions = Task("instructions", INSTRUCTIONS, icfg.sampling)

    def build(i: int, accepted: list[dict]) -> list[GenerationRequest]:
        reqs = []
        for t in TYPES:
            if len(accepted_by_type[t]) >= targets[t]:
                continue
            for k in range(icfg.requests_per_round):
                rng = random.Random(f"{icfg.seed}:{t}:{i}:{k}")
                machine = rng.sample(accepted_by_type[t], min(icfg.max_machine_examples, len(accepted_by_type[t])))
                human = rng.sample(by_type[t], min(len(by_type[t]), max(0, n_examples[t] - len(machine))))
                examples = [(m["id"], m["text"]) for m in machine] + [(s.id, s.instruction) for s in human]
                rng.shuffle(examples)
                prompt = encode_prompt([e[1] for e in examples])
                reqs.append(instructions.ask(f"ei-ins-{t}-" + _rid(t, i, k, prompt), prompt=prompt,
                                             sampling=_seeded(icfg.sampling, icfg.seed, t, i, k),
                                             parent_ids=[e[0] for e in examples], meta={"type": t}))
        return reqs

    def accept(out, accepted: list[dict]) -> list[dict]:
        new = []
        t0 = time.perf_counter()
        for rec in in_request_order(out):
            t = rec["type"]
            for j, (ins, reason) in enumerate(parse_instructions(rec["text"], icfg)):
                row = {**rec, "id": f"{rec['id']}-{j}", "text": ins, "piece": j, "status": reason or "accepted"}
                if reason is None and len(accepted_by_type[t]) >= targets[t]:
                    row["status"] = "over_target"
                elif reason is None:
                    novel, score, nearest, _ = pools[t].check(ins)
                    row.update(novelty_rougeL=score, novelty_nearest=nearest)
                    if novel:
                        pools[t].add(row["id"], ins)
                        accepted_by_type[t].append(row)
                        new.append(row)
                    else:
                        row["status"] = "not_novel"
                instruction_rows.append(row)
        novelty_s[0] += time.perf_counter() - t0
        return new

    accepted, ins_outs = rounds.until("instructions", build, accept, target=sum(targets.values()),
                                      max_rounds=icfg.max_rounds)
    rejected = [f for o in ins_outs for f in o.failed]

    # instances
    inst = run_task(rounds, instances_task(cfg), accepted)
    instance_rows, valid = inst.rows, inst.accepted
    # a completion that does not parse is one row with the completion's id (`instance_rows_of`)
    rejected += inst.failed + [{**r, "instance_id": r["id"], "reason": "instance_unparsed",
                                "reason_detail": r["reason"]} for r in inst.rejected]

    # votes: one round per voter
    vote_rows, votes, voter_info = [], {}, []
    for k, voter in enumerate(cfg.votes.voters):
        over = {key: val for key, val in (("temperature", voter.temperature), ("top_k", voter.top_k),
                                           ("seed", voter.seed)) if val is not None}
        sp = SamplingParams(**{**cfg.votes.sampling.model_dump(), **over})
        settings = None
        if voter.backend is not None:  # the voter's own backend wins over generation.rounds.votes.backend
            rs = {n: (r.model_copy(update={"backend": None}) if n == "votes" else r)
                  for n, r in cfg.generation.rounds.items()}
            settings = cfg.generation.model_copy(update={"backend": voter.backend, "rounds": rs})
        task = Task(f"votes#{k}", ZERO_SHOT, sp, request=lambda task, v, k=k, voter=voter: task.ask(
            f"ei-vote{k}-" + _rid(v["id"]), prompt=v["instruction"].strip() + "\n" + v["input"].strip(),
            parent_ids=[v["id"]], meta={"voter": voter.name, "instance_id": v["id"]}))
        out = run_task(rounds, task, valid, settings=settings).output
        rejected += out.failed
        for rec in in_request_order(out):
            vote_rows.append(rec)
            votes[(rec["instance_id"], k)] = rec
        voter_info.append({"name": voter.name, "round": f"votes#{k}", "model": out.report.model or None,
                           "backend": out.report.backend or None, "sampling": sp.model_dump()})

    # ensemble
    rows = []
    names = [v.name for v in cfg.votes.voters]
    for inst in valid:
        vs = [votes.get((inst["id"], k)) for k in range(len(names))]
        base = {**inst, "instance_id": inst["id"], "generator_model": inst["model"], "voter_names": names,
                "voter_models": [v["model"] if v else None for v in vs],
                "vote_ids": [v["id"] if v else None for v in vs]}
        if any(v is None for v in vs):
            rejected.append({**base, "id": "ei-" + _rid(inst["id"]), "reason": "vote_missing"})
            continue
        cands = [inst["output"].strip()] + [(v["text"] or "").strip() for v in vs]
        c = consensus(cands, cfg.ensemble.tau, cfg.ensemble.stem, cfg.ensemble.tokenizer, cfg.ensemble.votes_agree_keep)
        row = {**base, "id": "ei-" + _rid(inst["id"]), "parent_ids": [inst["id"]] + [v["id"] for v in vs],
               "candidates": cands, "pairwise_rougeL": c.pairwise, "worst_rougeL": c.worst,
               "decided_by": c.decided_by, "chosen": c.chosen,
               "output_model": None if c.chosen is None else ([inst] + vs)[c.chosen]["model"]}
        if c.kept:
            rows.append({**row, "output": c.output, "text": row_text(inst["instruction"], inst["input"], c.output)})
        else:
            rejected.append({**row, "text": row_text(inst["instruction"], inst["input"], inst["output"]),
                             "reason": "no_consensus",
                             "reason_detail": f"worst_rougeL={c.worst:.4f} <= tau={cfg.ensemble.tau}"})

    stats = run_stats(cfg, seeds, skipped, instruction_rows, accepted, instance_rows, valid, rows, rejected,
                      voter_info, rounds, ins_outs, novelty_s[0], pools)
    tables = {"instructions": to_table(instruction_rows, generated_schema(INSTRUCTION_FIELDS)),
              "instances": to_table(instance_rows, generated_schema(INSTANCE_FIELDS)),
              "votes": to_table(vote_rows, generated_schema(VOTE_FIELDS))}
    return GeneratorResult(rows, rejected, stats, tables=tables, quarantine=bad_seeds)


def _sample_inputs(cfg: EnsembleInstructConfig) -> list[str]:
    return [str(SAMPLE_SEEDS)]



def _preflight(cfg: EnsembleInstructConfig) -> None:
    from generators.settings import preflight_backend

    templates(cfg.instances.demos_file)
    preflight_seeds(cfg)
    for k, v in enumerate(cfg.votes.voters):
        if v.backend is not None:
            preflight_backend(v.backend, f"votes.voters[{k}].backend")


GENERATOR = Generator(
    name="ensemble-instruct",
    description="Ensemble-Instruct: seed tasks -> instructions (novelty) -> instances -> K voters -> consensus",
    config=EnsembleInstructConfig, fields=FIELDS, rounds=("instructions", "instances", "votes"), run=run,
    # the bundled sample (38 tasks of our own): 4 + 4 instructions, short completions: minutes on a laptop CPU
    demo={"instructions.target_a": 4, "instructions.target_b": 4, "instructions.requests_per_round": 4,
          "instructions.max_rounds": 3, "instructions.sampling.max_tokens": 40, "instances.sampling.max_tokens": 64,
          "votes.sampling.max_tokens": 40, "generation.shard_size": 8},
    sample_inputs=_sample_inputs, needs_inputs=False, kinds=("instructions", "instances", "votes"),
    preflight=_preflight,
)
