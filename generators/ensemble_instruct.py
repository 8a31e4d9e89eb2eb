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
`flows/ensemble_instruct.py` registers it.
"""
from __future__ import annotations

import json
import random
import re
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import yaml
from pydantic import Field, model_validator

from corpora.config import StrictModel
from corpora.generated import generated_schema, to_table
from corpora.hashing import short_hash
from corpora.readers import InputError
from generators.backends import BackendConfig
from generators.backends.base import GenerationRequest, SamplingParams
from generators.contract import Generator, GeneratorConfig, GeneratorResult
from generators.task import Task, Template, run_task
from filters.rouge import NoveltyPool, Tokenizer
from generators.voting import AgreeKeep, consensus

TEMPLATE_VERSION = 1
# the rounds' prompts (their ids are in the cache key); the instances' few-shot templates: `templates(demos_file)`
INSTRUCTIONS = Template("ensemble-instruct/instructions", 1)  # `encode_prompt`
ZERO_SHOT = Template("ensemble-instruct/zero-shot", 1)  # instruction + newline + input
DEMOS_PATH = Path(__file__).with_name("ensemble_instruct_demos.yaml")
SAMPLE_SEEDS = Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "instruct_seed_sample.jsonl"
EOS = "|EoS|"
TYPES = ("A", "B")  # A: with input, B: output only
BLACKLIST = ["image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
             "plot", "go to"]


# ---- config --------------------------------------------------------------------------------------------------
class Sampled(SamplingParams):
    temperature: float = Field(0.7, ge=0.0)
    top_k: int = 50
    max_tokens: int = Field(256, ge=1)
    stop: list[str] = Field(default_factory=lambda: [EOS])


class InstanceSampling(Sampled):
    max_tokens: int = Field(512, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n\n", EOS])


class VoteSampling(SamplingParams):
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(256, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n\n", EOS])


class NoveltyConfig(StrictModel):
    threshold: float = Field(0.7, gt=0, lt=1, description="reject an instruction above this ROUGE-L F1")
    # the reference's novelty scorer: rouge_score's RougeScorer(["rougeL"], use_stemmer=False)
    # (ensemble_instruct/gen_instructions.py, line 151)
    tokenizer: Tokenizer = "rouge_score"
    method: Literal["index", "brute"] = "index"  # same decisions; brute scores the whole pool


class InstructionsConfig(StrictModel):
    target_a: int = Field(100, ge=0, description="accepted instructions with input (type A)")
    target_b: int = Field(100, ge=0, description="accepted instructions without input (type B)")
    examples_a: int = Field(24, ge=1)
    examples_b: int = Field(10, ge=1)
    max_machine_examples: int = Field(4, ge=0)
    requests_per_round: int = Field(32, ge=1, description="prompts per type per round")
    max_rounds: int = Field(50, ge=1)
    min_words: int = Field(3, ge=0)  # drop instructions of <= min_words words
    max_words: int = Field(150, ge=1)  # ... and of > max_words
    blacklist: list[str] = Field(default_factory=lambda: list(BLACKLIST))
    novelty: NoveltyConfig = NoveltyConfig()
    sampling: Sampled = Sampled()
    seed: int = 42


class InstancesConfig(StrictModel):
    demos_file: str | None = Field(None, description=(
        "YAML of few-shot demos; None: the bundled ones (ensemble_instruct_demos.yaml); the reference's: "
        "generators/ensemble_instruct_reference_demos.yaml"))
    parse: Literal["ours", "reference"] = Field("ours", description=(
        "ours: the first block, labels case-insensitive, multi-line input/output kept, the type decides the "
        "labels; reference: sample_instances.py's rules (first line = input, next line = output; case-sensitive "
        "substrings; later `instruction:` blocks become instances of their own)"))
    sampling: InstanceSampling = InstanceSampling()


class Voter(StrictModel):
    name: str = Field(min_length=1)
    backend: BackendConfig | None = Field(None, description="None: the round's (generation.rounds.votes / run's)")
    temperature: float | None = Field(None, ge=0.0)  # on top of votes.sampling: distinct configurations of one model
    top_k: int | None = None
    seed: int | None = None


class VotesConfig(StrictModel):
    voters: list[Voter] = Field(default_factory=lambda: [Voter(name="greedy"),
                                                         Voter(name="t0.7-seed1", temperature=0.7, top_k=50, seed=1)],
                                min_length=2)
    sampling: VoteSampling = VoteSampling()


class EnsembleConfig(StrictModel):
    tau: float = Field(0.01, ge=0.0, le=1.0, description="keep a row only if its worst pairwise ROUGE-L F1 > tau")
    stem: bool = True
    tokenizer: Tokenizer = "rouge_score"
    votes_agree_keep: AgreeKeep = Field("vote", description=(
        "when two votes agree exactly (and the generator's output agrees with neither): keep the agreeing vote "
        "(ours) or the generator's output (the reference's ensemble_output.py, line 147)"))
    allow_same_model: bool = Field(True, description=(
        "let two candidates of the vote (the instance generator and the voters) be one model; true in the default "
        "config because only one real LM (SmolLM2-135M) is available offline, so the default ensemble is "
        "distinct sampling configurations of one model (stats: ensemble.kind); false refuses such a config"))


class EnsembleInstructConfig(GeneratorConfig):
    text_field: str = "instruction"  # Self-Instruct seed tasks
    instructions: InstructionsConfig = InstructionsConfig()
    instances: InstancesConfig = InstancesConfig()
    votes: VotesConfig = VotesConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    spacy_model: str = Field("en_core_web_sm", description="for the verb-noun diversity stat (skipped if absent)")

    @model_validator(mode="after")
    def _distinct_voters(self) -> "EnsembleInstructConfig":
        if not self.ensemble.allow_same_model:
            same = same_model_candidates(self)
            if same:
                a, b, model = same[0]
                raise ValueError(f"ensemble: {a} and {b} are the same model ({model}): an ensemble of one model "
                                 "voting with itself; give the voters different backends/models, or set "
                                 "ensemble.allow_same_model: true to allow it")
        return self


def _model_of(backend) -> str:
    """What a backend config generates with, as a name two candidates can be compared by."""
    if backend is None or (backend.kind in ("transformers", "vllm") and not backend.model):
        return "SmolLM2-135M-Instruct (the default model)"
    if backend.kind in ("transformers", "vllm"):
        return str(Path(backend.model).expanduser())
    if backend.kind == "replay":
        return backend.model or f"replay:{Path(backend.path).expanduser()}"
    return backend.model  # openai: the served model's name (wherever it is served)


def same_model_candidates(cfg: "EnsembleInstructConfig") -> list[tuple[str, str, str]]:
    """Pairs of vote candidates (the instance generator, then each voter) that generate with one model."""
    cands = [("the instance generator", _model_of(cfg.generation.for_round("instances").backend))]
    for k, v in enumerate(cfg.votes.voters):
        backend = v.backend if v.backend is not None else cfg.generation.for_round(f"votes#{k}").backend
        cands.append((f"voter {v.name!r}", _model_of(backend)))
    return [(a[0], b[0], a[1]) for i, a in enumerate(cands) for b in cands[i + 1:] if a[1] == b[1]]


# ---- stage 1: instructions -----------------------------------------------------------------------------------
def encode_prompt(instructions: Sequence[str]) -> str:
    prompt = "Come up with a series of tasks:\n"
    for i, ins in enumerate(instructions):
        ins = re.sub(r"\s+", " ", ins).strip().rstrip(":")
        prompt += f"{i + 1}. {ins} {EOS}\n"
    return prompt + f"{len(instructions) + 1}."


def instruction_reason(ins: str, cfg: InstructionsConfig) -> str | None:
    """Why a parsed instruction is dropped (None: kept). The reference's filters."""
    n = len(ins.split())
    if n == 0:
        return "empty"
    if n <= cfg.min_words:
        return "too_short"
    if n > cfg.max_words:
        return "too_long"
    if any(re.search(rf"\b({re.escape(w)})\b", ins, re.IGNORECASE) for w in cfg.blacklist):
        return "blacklisted_word"
    if ins.startswith("Write a program"):
        return "program"
    if ins[0] in string.punctuation:
        return "punctuation_start"
    if not ins[0].isascii():
        return "non_ascii_start"
    return None


def parse_instructions(response: str, cfg: InstructionsConfig) -> list[tuple[str, str | None]]:
    """(instruction, drop reason or None) per piece of a completion; pieces empty after cleaning are skipped."""
    out = []
    for piece in re.split(r"\n\d+\s?\. ", response or ""):
        ins = re.sub(r"\s+", " ", piece.split(EOS, 1)[0]).strip()
        if ins:
            out.append((ins, instruction_reason(ins, cfg)))
    return out


@dataclass
class SeedTask:
    id: str
    instruction: str
    type: str


class SeedError(InputError):
    """Seed tasks that cannot make a run (e.g. none of a type with a target): one line, before any generation."""


def seed_problem(metadata: dict[str, Any]) -> str | None:
    """Why a seed task has no usable type (None: it has one). The type is read from `instances[0].input`."""
    if "instances" not in metadata:
        return "no 'instances' field (a seed task needs instances[0] to tell type A from B)"
    inst = metadata["instances"]
    if not isinstance(inst, list):
        return f"'instances' is {type(inst).__name__}, not a list of objects"
    if not inst:
        return "'instances' is an empty list"
    if not isinstance(inst[0], dict):
        return f"instances[0] is {type(inst[0]).__name__}, not an object with 'input' / 'output'"
    inp = inst[0].get("input")
    if inp is not None and not isinstance(inp, str):
        return f"instances[0].input is {type(inp).__name__}, not a string"
    return None


def seed_tasks(records: Sequence[Any]) -> tuple[list[SeedTask], list[dict]]:
    """(typed seeds, quarantine rows for seeds whose `instances` cannot tell their type: file, row, reason)."""
    out, bad = [], []
    for r in records:
        problem = seed_problem(r.metadata)
        if problem is not None:
            raw = json.dumps({"id": r.id, "instruction": r.text, "instances": r.metadata.get("instances")},
                             ensure_ascii=False, default=str)
            bad.append({"file": r.source, "location": f"id {r.id}", "error": f"seed task: {problem}",
                        "raw": raw[:200]})
            continue
        inst = r.metadata["instances"]
        out.append(SeedTask(r.id, r.text, "A" if (inst[0].get("input") or "") != "" else "B"))
    return out, bad


def check_seed_types(seeds: Sequence[SeedTask], icfg: "InstructionsConfig", where: str = "the seed tasks") -> None:
    """Every type with a target needs seeds of that type (SeedError, one line, otherwise)."""
    targets = {"A": icfg.target_a, "B": icfg.target_b}
    missing = [t for t in TYPES if targets[t] and not any(s.type == t for s in seeds)]
    if missing:
        names = {"A": "A (first instance has an input)", "B": "B (first instance has no input)"}
        keys = " / ".join(f"instructions.target_{t.lower()}" for t in missing)
        raise SeedError(f"{where}: no seed task of type {', '.join(names[t] for t in missing)} among "
                        f"{len(seeds)} usable seed(s); add such seeds or set {keys}: 0")


# ---- stage 2: instances --------------------------------------------------------------------------------------
def demos_path(path: str | None) -> Path:
    """A demos file: the bundled one for None; a relative path that is not under the working directory is looked
    up in the project (so `generators/ensemble_instruct_reference_demos.yaml` works from anywhere)."""
    if path is None:
        return DEMOS_PATH
    p = Path(path).expanduser()
    if not p.is_absolute() and not p.exists():
        for root in (DEMOS_PATH.parents[1], DEMOS_PATH.parent):
            if (root / p).is_file():
                return root / p
    return p


@lru_cache(maxsize=4)
def templates(path: str | None = None) -> dict[str, tuple[str, int]]:
    """{type: (few-shot template ending in 'instruction:', template version)}. Per type, either `header` + `demos`
    (built into the reference's format) or `template`: the whole prompt prefix, verbatim (the reference's own
    templates: ensemble_instruct_reference_demos.yaml)."""
    doc = yaml.safe_load(demos_path(path).read_text(encoding="utf-8"))
    out = {}
    for t, key in (("A", "with_input"), ("B", "without_input")):
        if "template" in doc[key]:
            out[t] = (doc[key]["template"], doc.get("version", 1))
            continue
        blocks = [f"instruction: {d['instruction']}\n" + (f"input: {d['input']}\n" if t == "A" else "")
                  + f"output: {d['output']}\n{EOS}\n\n" for d in doc[key]["demos"]]
        out[t] = (doc[key]["header"].strip() + "\n\n" + "".join(blocks) + "instruction:", doc.get("version", 1))
    return out


_LABEL = re.compile(r"^\s*(instruction|input|output)\s*:\s?", re.IGNORECASE)


def parse_instance(text: str, kind: str) -> tuple[str | None, str | None, str | None]:
    """(input, output, failure reason) from the first block of an instance completion: it ends at `|EoS|`, a
    blank line, or a line starting a new `instruction:`. A: `input:` (may span lines) then `output:`; B: `output:`
    first. Outputs may span lines."""
    block = (text or "").split(EOS, 1)[0].strip("\n").split("\n\n", 1)[0]
    lines = block.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if re.match(r"^\s*instruction\s*:", line, re.IGNORECASE):
            lines = lines[:i]
            break
    labels = [(_LABEL.match(line).group(1).lower() if _LABEL.match(line) else None) for line in lines]
    if not lines or labels[0] is None:
        return None, None, "no_label"
    if "output" not in labels:
        return None, None, "no_output"
    o = labels.index("output")
    output = "\n".join([_LABEL.sub("", lines[o], count=1)] + lines[o + 1:]).strip()
    if kind == "A":
        if labels[0] != "input":
            return None, None, "no_input"
        inp = "\n".join([_LABEL.sub("", lines[0], count=1)] + lines[1:o]).strip()
        if not inp:
            return None, None, "empty_input"
    else:
        if labels[0] != "output":
            return None, None, "unexpected_input" if labels[0] == "input" else "no_output"
        inp = ""
    if not output:
        return None, None, "empty_output"
    return inp, output, None


def parse_instances_reference(raw: str) -> list[tuple[str | None, str, str]]:
    """The reference's instance parsing (IBM/ensemble-instruct, ensemble_instruct/sample_instances.py, lines 24-96),
    rule for rule: blocks are split on blank lines (and on `^`, which the reference uses as its separator); the
    first block gives (input = its first line, output = its second line) when the first line contains `input:`, or
    (input "", output = its first line) when it contains `output:` only; a later block whose first line contains
    `instruction:` (and more than 5 words) gives an instance of its own (its instruction, then its input/output
    lines). Labels are case-sensitive substrings, removed wherever they occur, and so is `|EoS|`; an output needs a
    word. The completion's type is not consulted (the reference ran the parser on each type's file alone).
    Returns [(instruction or None for the prompt's own, input, output)]. An empty completion gives [] (the
    reference raised IndexError on one)."""
    def clean(line: str, label: str) -> str:
        return line.replace(label, "").strip().replace(EOS, "").strip()

    out: list[tuple[str | None, str, str]] = []
    for idx, block in enumerate((raw or "").strip().replace("\n\n", "^").split("^")):
        lines = block.splitlines()
        if not lines:
            continue
        if "input:" in lines[0]:
            if idx == 0 and len(lines) > 1:
                inp, outp = lines[0].strip(), lines[1].strip()
                if "input:" in inp and "output:" in outp:
                    inp, outp = clean(inp, "input:"), clean(outp, "output:")
                    if outp.split():
                        out.append((None, inp, outp))
            elif idx > 0 and len(lines) > 2:
                ins, inp, outp = lines[0].strip(), lines[1].strip(), lines[2].strip()
                if "instruction:" in ins and "input:" in inp and "output:" in outp and len(ins.split()) > 5:
                    ins, inp, outp = clean(ins, "instruction:"), clean(inp, "input:"), clean(outp, "output:")
                    if outp.split():
                        out.append((ins, inp, outp))
        elif "output:" in lines[0]:
            if idx == 0:
                outp = lines[0].strip()
                if "output:" in outp:
                    outp = clean(outp, "output:")
                    if outp.split():
                        out.append((None, "", outp))
            elif len(lines) > 1:
                ins, outp = lines[0].strip(), lines[1].strip()
                if "instruction:" in ins and "output:" in outp and len(ins.split()) > 5:
                    ins, outp = clean(ins, "instruction:"), clean(outp, "output:")
                    if outp.split():
                        out.append((ins, "", outp))
    return out


# the instances' prompts: one template per type, its variant the demos file's version (`templates`)
INSTANCES = {t: Template(f"ensemble-instruct/instances-{t}", TEMPLATE_VERSION) for t in TYPES}


def instances_task(cfg: "EnsembleInstructConfig") -> Task:
    """The `instances` round: an accepted instruction -> its type's few-shot prompt + the instruction."""
    tpl = templates(cfg.instances.demos_file)

    def ask(task: Task, a: dict) -> GenerationRequest:
        prefix, version = tpl[a["type"]]
        return task.ask("ei-inst-" + _rid(a["id"]), prompt=prefix + " " + a["text"].strip() + "\n",
                        template=INSTANCES[a["type"]], variant=str(version),
                        sampling=_seeded(cfg.instances.sampling, "instances", a["id"]), parent_ids=[a["id"]],
                        meta={"type": a["type"], "instruction": a["text"], "instruction_id": a["id"]})

    return Task("instances", None, cfg.instances.sampling, request=ask)


def instance_rows_of(rec: dict, parse: str) -> list[tuple[dict, str | None]]:
    """(instance row, parse failure or None) per instance of a completion: one (ours), or one per instance the
    reference's rules find (its first keeps the record's id; none: one failed row, "no_instance")."""
    if parse == "reference":
        parsed = [({**rec, "id": rec["id"] if j == 0 else f"{rec['id']}-{j}",
                    "instruction": ins if ins is not None else rec["instruction"]}, inp, output, None)
                  for j, (ins, inp, output) in enumerate(parse_instances_reference(rec["text"]))]
        parsed = parsed or [(rec, None, None, "no_instance")]
    else:
        parsed = [(rec, *parse_instance(rec["text"], rec["type"]))]
    return [({**base, "input": inp, "output": output, "parse_status": reason or "ok"}, reason)
            for base, inp, output, reason in parsed]


# ---- stage 4: ensemble (the decision: `generators.voting.consensus`) ------------------------------------------
def row_text(instruction: str, inp: str, output: str) -> str:
    return "\n\n".join(p for p in (instruction, inp, output) if p)


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


def _by_order(out) -> list[dict]:
    order = {r.id: i for i, r in enumerate(out.requests)}
    return sorted(out.ok, key=lambda r: (order[r["request_id"]], r["id"]))


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
        for rec in _by_order(out):
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
    inst_out = run_task(rounds, instances_task(cfg), accepted).output
    rejected += inst_out.failed
    instance_rows, valid = [], []
    for rec in _by_order(inst_out):
        for row, reason in instance_rows_of(rec, cfg.instances.parse):
            instance_rows.append(row)
            if reason:
                rejected.append({**row, "instance_id": rec["id"], "reason": "instance_unparsed",
                                 "reason_detail": reason})
            else:
                valid.append(row)

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
        for rec in _by_order(out):
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


# ---- stats ---------------------------------------------------------------------------------------------------
def verb_noun_diversity(instructions: Sequence[str], model: str) -> dict[str, Any]:
    """Root verb + its first direct object (Self-Instruct's diversity figure), with spaCy when `model` loads."""
    try:
        import spacy

        nlp = spacy.load(model, disable=["ner"])
    except (ImportError, OSError) as e:
        return {"skipped": f"spaCy model {model!r} not available ({type(e).__name__})"}
    pairs = []
    for doc in nlp.pipe(instructions):
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is not None and root.pos_ == "VERB":
            obj = next((c for c in root.children if c.dep_ == "dobj"), None)
            pairs.append((root.lemma_.lower(), obj.lemma_.lower() if obj is not None else None))
    top: dict[str, int] = {}
    for verb, noun in pairs:
        key = f"{verb} {noun or ''}".strip()
        top[key] = top.get(key, 0) + 1
    return {"instructions": len(instructions), "with_root_verb": len(pairs),
            "distinct_verbs": len({p[0] for p in pairs}),
            "distinct_verb_noun": len({p for p in pairs if p[1]}),
            "top": dict(sorted(top.items(), key=lambda kv: -kv[1])[:20])}


def run_stats(cfg, seeds, skipped, instruction_rows, accepted, instance_rows, valid, rows, rejected, voter_info,
              rounds, ins_outs, novelty_s, pools) -> dict[str, Any]:
    def share(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    per_type = {}
    for t in TYPES:
        irows = [r for r in instruction_rows if r["type"] == t]
        status = {}
        for r in irows:
            status[r["status"]] = status.get(r["status"], 0) + 1
        checked = status.get("accepted", 0) + status.get("not_novel", 0)
        parsed = [r for r in instance_rows if r["type"] == t]
        ok = sum(r["parse_status"] == "ok" for r in parsed)
        per_type[t] = {"seeds": sum(s.type == t for s in seeds), "candidates": len(irows), "status": status,
                       "accepted": sum(a["type"] == t for a in accepted),
                       "novelty_reject_rate": share(status.get("not_novel", 0), checked),
                       "instances": len(parsed), "instances_parsed": ok, "parse_valid_rate": share(ok, len(parsed)),
                       "parse_failures": {k: sum(r["parse_status"] == k for r in parsed)
                                          for k in sorted({r["parse_status"] for r in parsed} - {"ok"})}}
    decided = {}
    considered = [r for r in rows + rejected if r.get("decided_by")]
    for r in considered:
        decided[r["decided_by"]] = decided.get(r["decided_by"], 0) + 1
    reports = rounds.reports
    ins_wall = sum(reports[o.name]["wall_s"] for o in ins_outs)
    throughput = {name: {"tokens_per_s": r["tokens_per_s"], "wall_s": r["wall_s"],
                         "completion_tokens": r["completion_tokens"], "requests": r["requests"]}
                  for name, r in reports.items()}
    gen_model = next((r["model"] for r in instance_rows), None)
    models = {v["model"] for v in voter_info if v["model"]} | ({gen_model} if gen_model else set())
    return {
        "seeds": {"used": len(seeds), "quarantined_bad_instances": skipped},
        "stop_string_in_text": False,  # `|EoS|` is cut by the backends and by the parsers
        "types": per_type,
        "novelty": {"method": cfg.instructions.novelty.method, "tokenizer": cfg.instructions.novelty.tokenizer,
                    "exact_scores": sum(p.scored for p in pools.values()),
                    "pool_sizes": {t: len(p) for t, p in pools.items()}, "seconds": round(novelty_s, 3)},
        "ensemble": {"considered": len(considered), "kept": len(rows),
                     "keep_rate": share(len(rows), len(considered)), "decided_by": decided,
                     "decided_by_share": {k: share(v, len(considered)) for k, v in decided.items()},
                     "kind": "distinct_models" if len(models) > 1 else "distinct_configurations_of_one_model",
                     "voters": voter_info},
        "instructions_per_s": share(len(accepted), ins_wall),
        "throughput": throughput,
        "verb_noun": verb_noun_diversity([a["text"] for a in accepted], cfg.spacy_model),
    }


def _sample_inputs(cfg: EnsembleInstructConfig) -> list[str]:
    return [str(SAMPLE_SEEDS)]


def preflight_seeds(cfg: EnsembleInstructConfig) -> None:
    """Before any generation: the seeds (the inputs, else the bundled sample) have a seed of every type with a
    target (SeedError, one line, otherwise). Records the readers cannot read are the run's quarantine, not here."""
    from corpora.readers import BadRecord, FieldMap, expand_inputs, read_records

    fields = FieldMap(text_field=cfg.text_field, id_field=cfg.id_field)
    paths = cfg.inputs or _sample_inputs(cfg)
    records = [r for p in expand_inputs(paths) for r in read_records(p, fields) if not isinstance(r, BadRecord)]
    seeds, bad = seed_tasks(records[:cfg.max_seeds] if cfg.max_seeds else records)
    where = ", ".join(str(p) for p in paths)
    if bad:
        where += f" ({len(bad)} seed(s) with unusable instances, quarantined at run time)"
    check_seed_types(seeds, cfg.instructions, where)


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
