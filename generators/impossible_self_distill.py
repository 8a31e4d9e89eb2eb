"""Impossible Distillation's self-distillation (stages 1..k; the reference's stage > 0, pipeline/filter.py:51-85
and pipeline/con.py): the student (`generators.student`: the seeded fine-tuning loop; trained through the
mechanism's training step `rounds.train`) samples NEW contexts in round `distill`, and its samples go through the
same pair filters and critic; `student_backend` is that round's engine."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from corpora.generated import PROVENANCE_NAMES
from corpora.hashing import short_hash
from filters.pairs import GraphDedupConfig, distinct_n, filter_pairs
from filters.sentences import is_full_sentence
from generators.impossible_config import ImpossibleConfig
from generators.impossible_critics import number_extractor, pair_filter
from generators.impossible_tasks import STUDENT_PROMPTS, TEMPLATE_VERSION, round_task
from generators.task import run_task


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
