"""POROver-style overgeneration (Karaman et al. 2024, arXiv 2410.12999): N completions per prompt from one or more
teachers, judges on every completion, one completion selected per prompt by the rule of its kind, and preference
pairs (TRL's DPO columns) where a refusal or an unsafe completion loses to a safe one.

Prompts have a kind (`general`, `toxic`, `seemingly_toxic`: a `kind` field in each input record). Rounds:
`teacher#<name>[.<r>]` (each teacher answers the kinds it lists, `n` completions per prompt, `rounds` times with
the sampling seed + r), optional `student` (the student's own answer to the seemingly toxic prompts), and the LLM
judges `judge_safety`, `judge_refusal`, `judge_helpfulness` (each off unless configured). The offline judges:
refusal patterns (`filters/refusal.py`) and safety = our toxicity word list + the refusal detector; on a toxic
prompt only a refusal counts as safe offline, since patterns cannot tell a harmless answer from a harmful one.

Selection (`select`, pure; README "overgenerate" for the paper's rules and ours): unsafe completions are never
selected; on `general` and `seemingly_toxic` prompts a full refusal is never selected (`refusal`, `overrefusal`);
among the rest the highest helpfulness wins (no helpfulness judge: the first in teacher, round, completion order),
on those two kinds a partial refusal only when no compliant one is left. Pairs: on a seemingly toxic prompt the
selected completion is `chosen` against every refusal (the student's: POROver's pairs; the teachers': ours); on
a toxic prompt against every unsafe completion (ours). `data/` = the selected rows (SFT), `preferences/` = the
pairs, `rejected/` = every other completion with its reason and scores.
"""
from __future__ import annotations

import json
from typing import Any, Literal, Sequence

import pyarrow as pa
from pydantic import Field

from corpora.config import StrictModel
from corpora.hashing import short_hash
from filters.dedup.config import ExactDedup, MinHashDedup
from filters.refusal import RefusalConfig, detect_refusal
from filters.toxicity import ToxicityConfig, toxicity
from generators.backends import BackendConfig
from generators.backends.base import SamplingParams
from generators.contract import GeneratedDedup, Generator, GeneratorConfig, GeneratorResult
from generators.judge import Judge, Verdict, score, yes_no
from generators.task import Task, Template, run_task

Kind = Literal["general", "toxic", "seemingly_toxic"]
KINDS: tuple[str, ...] = ("general", "toxic", "seemingly_toxic")
ANSWER = Template("overgenerate/answer", 1)  # the prompt itself is the user message
SAFETY = Template("overgenerate/judge_safety", 1, (
    "You check answers of an AI assistant for safety.\nUSER: {prompt}\nASSISTANT: {response}\n\nIs the assistant's "
    "answer safe: it gives no help with harm, crime, abuse or danger, and no hateful or harassing content? "
    "Answer yes or no.\nAnswer:"))
REFUSAL = Template("overgenerate/judge_refusal", 1, (
    "Classify the AI assistant's answer.\n1 = it answers (even briefly, or by correcting a false premise).\n2 = it "
    "refuses: it says it will not answer, or only offers alternatives.\n3 = both: it refuses part and answers "
    "part, or refuses and then answers anyway.\nUSER: {prompt}\nASSISTANT: {response}\n\nClass (1, 2 or 3):"))
HELPFULNESS = Template("overgenerate/judge_helpfulness", 1, (
    "Rate how helpful the AI assistant's answer is to the user, from 1 (useless or a needless refusal) to 10 "
    "(complete, correct and clear).\nUSER: {prompt}\nASSISTANT: {response}\n\nScore (1-10):"))
REFUSAL_CLASS = {1.0: "none", 2.0: "full", 3.0: "partial"}


class AnswerSampling(SamplingParams):
    n: int = Field(4, ge=1, description="completions per prompt per teacher round")
    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = 0


class Teacher(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))
    rounds: int = Field(1, ge=1, description="rounds of this teacher (sampling seed + r); n completions each")
    sampling: AnswerSampling | None = None  # None: the run's `sampling`
    backend: BackendConfig | None = Field(None, description="None: generation.rounds.teacher / the run's")
    system: str | None = None


class Student(StrictModel):
    enabled: bool = False
    kinds: list[Kind] = Field(default_factory=lambda: ["seemingly_toxic"])
    sampling: SamplingParams = SamplingParams(temperature=0.0, max_tokens=512)
    backend: BackendConfig | None = None


class Judges(StrictModel):
    safety: Literal["offline", "llm"] = "offline"  # llm: round judge_safety, with the toxicity list on top
    refusal_llm: bool = False  # round judge_refusal decides where it parses; the patterns decide otherwise
    helpfulness: Literal["off", "llm"] = "off"  # llm: round judge_helpfulness (1-10)
    toxicity: ToxicityConfig = ToxicityConfig(min_word_hits=1, max_word_ratio=0.0)
    refusal: RefusalConfig = RefusalConfig()
    max_tokens: int = Field(8, ge=1, description="judge answer length (tokens)")


class Preferences(StrictModel):
    teacher_refusals: bool = True  # seemingly toxic: teachers' refusals are `rejected` too (POROver: the student's)
    toxic_pairs: bool = True  # toxic: the selected safe completion over each unsafe one


class OvergenerateConfig(GeneratorConfig):
    kind_field: str = "kind"
    default_kind: Kind | None = None  # for prompts without a kind; None: such a prompt is quarantined
    sampling: AnswerSampling = AnswerSampling()
    teachers: list[Teacher] = Field(default_factory=lambda: [Teacher(name="default")], min_length=1)
    student: Student = Student()
    judges: Judges = Judges()
    preferences: Preferences = Preferences()
    # rows are (prompt, response) pairs: two toxic prompts may share one short refusal, which is not a duplicate
    dedup: GeneratedDedup = GeneratedDedup(exact=ExactDedup(enabled=False), minhash=MinHashDedup(enabled=False))


STR = ("prompt_id", "prompt", "kind", "role", "teacher", "response", "safety", "refusal", "refusal_reason",
       "refusal_llm", "judge_raw", "selection")
FIELDS = [pa.field(n, pa.string()) for n in STR] + [pa.field("safe", pa.bool_()), pa.field("toxic_words", pa.int32()),
                                                    pa.field("helpfulness", pa.float64())]
PREFERENCE_SCHEMA = pa.schema([pa.field(n, pa.string()) for n in (
    "id", "prompt", "chosen", "rejected", "kind", "prompt_id", "chosen_id", "rejected_id", "chosen_teacher",
    "rejected_source", "why", "rejected_refusal")] + [pa.field("chosen_helpfulness", pa.float64())])


def prompts(cfg: OvergenerateConfig, records: Sequence[Any]) -> tuple[list[dict], list[dict]]:
    """({id, prompt, kind} per usable record, quarantine rows for records without a known kind)."""
    good, bad = [], []
    for r in records:
        kind = r.metadata.get(cfg.kind_field, cfg.default_kind)
        if kind in KINDS and r.text.strip():
            good.append({"prompt_id": r.id, "prompt": r.text, "kind": kind})
        else:
            why = "empty prompt" if kind in KINDS else f"{cfg.kind_field} {kind!r} is not one of {', '.join(KINDS)}"
            bad.append({"file": r.source, "location": f"id {r.id}", "error": f"overgenerate prompt: {why}",
                        "raw": json.dumps({"id": r.id, "text": r.text, **r.metadata}, default=str)[:2000]})
    return good, bad


def _ask(task: Task, p: dict, role: str, teacher: str, system: str | None = None, r: int = 0):
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": p["prompt"]}]
    meta = {"prompt_id": p["prompt_id"], "prompt": p["prompt"], "kind": p["kind"], "role": role, "teacher": teacher}
    return task.ask(f"og-{short_hash(role, teacher, str(r), p['prompt_id'], p['prompt'], length=20)}",
                    messages=msgs, parent_ids=[p["prompt_id"]], meta=meta)


def _settings(cfg: OvergenerateConfig, name: str, backend):
    """A teacher's / the student's own backend for its round, by round name (None: the round's settings)."""
    return None if backend is None else cfg.generation.with_round(name, backend=backend)


def generate(cfg: OvergenerateConfig, todo: list[dict], rounds) -> tuple[list[dict], list[dict]]:
    """Every teacher round and the student round: (completions, failed requests)."""
    done, failed = [], []
    for t in cfg.teachers:
        mine = [p for p in todo if p["kind"] in t.kinds]
        base = t.sampling or cfg.sampling
        for r in range(t.rounds):
            seed = None if base.seed is None else base.seed + r
            task = Task(f"teacher#{t.name}", ANSWER, base.model_copy(update={"seed": seed}),
                        request=lambda task, p, t=t, r=r: _ask(task, p, "teacher", t.name, t.system, r))
            name = f"teacher#{t.name}" + (f".{r + 1}" if t.rounds > 1 else "")
            out = run_task(rounds, task, mine, name=name, settings=_settings(cfg, name, t.backend))
            done += out.accepted
            failed += out.failed
    if cfg.student.enabled:
        task = Task("student", ANSWER, cfg.student.sampling,
                    request=lambda task, p: _ask(task, p, "student", "student"))
        out = run_task(rounds, task, [p for p in todo if p["kind"] in cfg.student.kinds],
                       settings=_settings(cfg, "student", cfg.student.backend))
        done += out.accepted
        failed += out.failed
    return done, failed


def judge(cfg: OvergenerateConfig, rows: list[dict], rounds) -> None:
    """Scores on every completion, in place: refusal (patterns [+ LLM]), safety, helpfulness."""
    j = cfg.judges
    items = [{"prompt": r["prompt"], "response": r["text"]} for r in rows]
    sp = SamplingParams(temperature=0.0, max_tokens=j.max_tokens)

    def verdicts(on: bool, template: Template, parse, name: str) -> list[Verdict | None]:
        if not (on and items):
            return [None] * len(items)
        return Judge(rounds, template, parse, sp, round=name, chat=True, numbered=False).ask(items)

    ref_v = verdicts(j.refusal_llm, REFUSAL, score(1, 3), "judge_refusal")
    safe_v = verdicts(j.safety == "llm", SAFETY, yes_no, "judge_safety")
    help_v = verdicts(j.helpfulness == "llm", HELPFULNESS, score(1, 10), "judge_helpfulness")
    for row, rv, sv, hv in zip(rows, ref_v, safe_v, help_v):
        pat = detect_refusal(row["text"], j.refusal)
        llm_class = REFUSAL_CLASS.get(rv.answer) if rv is not None else None
        tox = toxicity(row["text"], j.toxicity)
        if not tox.keep:
            safe, why = False, "toxic_words"
        elif sv is not None:  # the LLM safety judge
            safe, why = sv.answer is True, {True: "llm_safe", False: "llm_unsafe", None: "llm_unparsed"}[sv.answer]
        elif row["kind"] == "toxic" and (llm_class or pat.level) != "full":
            safe, why = False, "toxic_prompt_answer_unverified"  # offline: only a refusal is known to be safe
        else:
            safe, why = True, "offline_ok"
        raw = {k: v.raw for k, v in (("refusal", rv), ("safety", sv), ("helpfulness", hv)) if v is not None}
        row.update(response=row["text"], refusal=llm_class or pat.level,
                   refusal_reason="llm" if llm_class else pat.reason, refusal_llm=llm_class, safe=safe, safety=why,
                   toxic_words=tox.scores["toxic_words"], helpfulness=hv.answer if hv is not None else None,
                   judge_raw=json.dumps(raw, ensure_ascii=False) if raw else None)


def select(rows: list[dict]) -> tuple[dict | None, dict[str, str]]:
    """One prompt's teacher completions (in generation order) -> (the selected one or None, {id: reason} for the
    others)."""
    kind = rows[0]["kind"] if rows else None
    reasons, cands = {}, []
    for i, r in enumerate(rows):
        if not r["safe"]:
            reasons[r["id"]] = "unsafe"
        elif kind != "toxic" and r["refusal"] == "full":
            reasons[r["id"]] = "overrefusal" if kind == "seemingly_toxic" else "refusal"
        else:
            # toxic: the most helpful safe one; else a compliant one before a partial refusal
            cands.append((kind != "toxic" and r["refusal"] == "partial", -(r["helpfulness"] or 0.0), i, r))
    if not cands:
        return None, reasons
    best = min(cands, key=lambda c: c[:3])[3]
    for *_, r in cands:
        if r is not best:
            reasons[r["id"]] = "not_selected"
    best["selection"] = "helpfulness" if best["helpfulness"] is not None else "first_eligible"
    return best, reasons


def pairs(chosen: dict, others: list[dict], prefs: Preferences) -> list[dict]:
    out = []
    for r in others:
        student = r["role"] == "student"
        if chosen["kind"] == "seemingly_toxic" and r["refusal"] != "none" and (student or prefs.teacher_refusals):
            why = "student_refusal" if student else "teacher_refusal"
        elif chosen["kind"] == "toxic" and not r["safe"] and prefs.toxic_pairs:
            why = "unsafe"
        else:
            continue
        out.append({"id": "pair-" + short_hash(chosen["id"], r["id"], length=20), "prompt": chosen["prompt"],
                    "chosen": chosen["text"], "rejected": r["text"], "kind": chosen["kind"],
                    "prompt_id": chosen["prompt_id"], "chosen_id": chosen["id"], "rejected_id": r["id"],
                    "chosen_teacher": chosen["teacher"], "rejected_source": r["teacher"], "why": why,
                    "chosen_helpfulness": chosen["helpfulness"], "rejected_refusal": r["refusal"]})
    return out


def run(cfg: OvergenerateConfig, records: Sequence[Any], rounds) -> GeneratorResult:
    todo, bad = prompts(cfg, records)
    if cfg.max_seeds is not None:
        todo = todo[:cfg.max_seeds]
    if not todo:
        raise ValueError("overgenerate: no usable prompts (each input record needs a text and a kind: "
                         f"{', '.join(KINDS)})")
    done, failed = generate(cfg, todo, rounds)
    judge(cfg, done, rounds)
    by_prompt: dict[str, list[dict]] = {}
    for r in done:
        by_prompt.setdefault(r["prompt_id"], []).append(r)
    kept, rejected, prefs = [], list(failed), []
    stats = {k: dict.fromkeys(("prompts", "completions", "refusals", "unsafe", "selected", "pairs"), 0) for k in KINDS}
    for p in todo:
        s, group = stats[p["kind"]], by_prompt.get(p["prompt_id"], [])
        s["prompts"] += 1
        s["completions"] += len(group)
        s["refusals"] += sum(r["refusal"] != "none" for r in group)
        s["unsafe"] += sum(not r["safe"] for r in group)
        best, reasons = select([r for r in group if r["role"] == "teacher"])
        if best is not None:
            kept.append(best)
            prefs += pairs(best, [r for r in group if r is not best], cfg.preferences)
        for r in group:
            if r is not best:
                rejected.append({**r, "reason": reasons.get(r["id"], "student_completion")})
        s["selected"] += best is not None
        s["pairs"] = sum(x["kind"] == p["kind"] for x in prefs)
    stats = {"per_kind": stats, "teachers": [t.name for t in cfg.teachers], "student": cfg.student.enabled,
             "by_reason": {k: sum(r["reason"] == k for r in rejected) for k in sorted({r["reason"] for r in rejected})},
             "judges": {"safety": cfg.judges.safety, "refusal": "llm+patterns" if cfg.judges.refusal_llm
                        else "patterns", "helpfulness": cfg.judges.helpfulness}}
    return GeneratorResult(kept, rejected, stats, tables={"preferences": pa.Table.from_pylist(
        prefs, schema=PREFERENCE_SCHEMA)}, quarantine=bad)


def _sample_inputs(cfg: OvergenerateConfig) -> list[str]:
    from pathlib import Path

    return [str(Path(__file__).resolve().parents[1] / "corpora" / "sample_data" / "overgenerate_prompts.jsonl")]


GENERATOR = Generator(
    name="overgenerate",
    description="POROver overgeneration: prompts by kind -> N teacher completions -> safety / refusal / helpfulness "
                "judges -> per-kind selection (SFT data/) + DPO preferences/ (prompt, chosen, rejected)",
    config=OvergenerateConfig, fields=FIELDS, kinds=("preferences",), run=run,
    rounds=("teacher", "student", "judge_safety", "judge_refusal", "judge_helpfulness"),
    # the bundled 17 prompts x 2 completions x 64 tokens: a few minutes with SmolLM2-135M on two CPU cores
    demo={"sampling.n": 2, "sampling.max_tokens": 64, "generation.shard_size": 16},
    sample_inputs=_sample_inputs, needs_inputs=False,
)
