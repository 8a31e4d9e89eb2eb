"""Measured WHP unlearning: does `flows run unlearning-whp` (reinforce -> generic labels -> fine-tune) lower the
model's likelihood of the target's anchored continuations while keeping retain-set perplexity?

Parts (`--parts`, default all three):
- `sweep`: reinforce settings on the bundled demo (the baseline SmolLM2-135M-Instruct, its 3 target texts): for each
  setting, the reinforced model is trained (`generators.reinforce.reinforce`), both models score the demo's blocks as
  the pipeline does (`generators.whp.PairScorer.logits_at`), and the logit gap is measured at the aligned positions:
  the mean raw shift v_r - v_b over the vocabulary, v_r - v_b at the baseline's argmax token, the share of positions
  where that token's logit rose, and the labels that differ from the baseline's argmax at alpha 1 and 4 (where the
  reinforcement changed a label at all).
- `demo`: `flows run unlearning-whp` on the bundled demo with its defaults (fine-tune included), then the baseline,
  the reinforced and the unlearned model are scored.
- `tofu`: TOFU forget01 (../shared/data/unlearning/tofu_forget01.json; skipped with the reason when absent). TOFU's
  own protocol first makes a model that knows the authors: `flows run unlearning-reinforce` fine-tunes SmolLM2 on
  forget01 + the first 40 QA pairs of retain99 (the "TOFU model", our baseline here); `flows run unlearning-whp`
  then unlearns forget01 from it (anchors: the two authors' names, their books, places and awards, below).

Scores (per model, no BOS prepended, as the labels' convention):
- anchored continuation: every occurrence of an anchored term in the text (TOFU: in the answer, given "Question:
  ...\\nAnswer:" and the answer up to it), log p(term's tokens | everything before) summed per occurrence; the
  mean over occurrences, and the share of occurrences where the unlearned model is below the baseline. On TOFU
  twice: the forget answers themselves (the text the labels were made on) and TOFU's `paraphrased_answer` (the same
  facts in words the fine-tune never saw).
- other tokens: mean NLL of the target's tokens that are not anchored (how much the rest of the text moved).
- retain perplexity: exp(mean token NLL) on the retain set (TOFU: the 40 retain99 pairs the TOFU model learned;
  demo: the first 40 texts of corpora/sample_data/web_sample.jsonl, general text). Bound: unlearned <= 1.10 x
  baseline (stated in the table, checked per run).

    python bench/whp_unlearning.py [--parts sweep,demo,tofu] [--threads 2] [--out bench/results/whp_unlearning.txt]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generators import whp  # noqa: E402
from generators.backends.local_models import cache_root, dequantised_smollm2_dir  # noqa: E402
from generators.whp_settings import SAMPLE_ANCHORS, SAMPLE_TARGET  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "unlearning"
TOFU_FORGET = SHARED / "tofu_forget01.json"
TOFU_RETAIN = SHARED / "tofu_retain99.json"
WEB_SAMPLE = ROOT / "corpora" / "sample_data" / "web_sample.jsonl"
RETAIN_BOUND = 1.10  # unlearned retain perplexity <= this x the baseline's
TOFU_ANCHORS = {  # forget01: the two authors, their books, awards, places (terms from the 40 QA pairs)
    "Basil Mahfouz Al-Kuwaiti": "Omar Haddad", "Basil Mahfouz": "Omar Haddad", "Al-Kuwaiti": "Haddad",
    "Basil": "Omar", "Nikolai Abilov": "Peter Ivanov", "Abilov": "Ivanov", "Nikolai": "Peter",
    "Promise by the Seine": "The Quiet River", "Le Petit Sultan": "The Small King",
    "River of Jasmine": "The Long Road", "The Nightingale of Paris": "The Singing Bird",
    "Thieves' Paradise": "The Open Door", "Kazakhstan Echoes": "Distant Voices",
    "Unseen Rainbows": "Quiet Colours", "Prix Goncourt": "a literary prize",
    "Tolstoy Literary Award": "a literary award", "Kuwait City": "a coastal city", "Kuwait": "his country",
    "Astana": "a capital city", "Kazakhstan": "his country", "Kazakhstani": "local",
}
WORK = cache_root() / "bench" / "whp-unlearning"
SWEEP = [  # (steps, lr, block_tokens) for the reinforced model on the demo; the first is the old default
    (10, 1e-4, 128), (10, 1e-5, 128), (10, 3e-5, 128), (20, 3e-5, 128), (10, 3e-4, 128),
]


def flows_run(pipeline: str, args: list[str], log: Path) -> float:
    env = {**os.environ, "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    t = time.perf_counter()
    with open(log, "w") as fh:
        rc = subprocess.run([str(Path(sys.executable).with_name("flows")), "run", pipeline, *args], cwd=ROOT, env=env,
                            stdout=fh, stderr=subprocess.STDOUT).returncode
    if rc:
        raise SystemExit(f"flows run {pipeline} failed (rc {rc}); log: {log}")
    return time.perf_counter() - t


# ------------------------------------------------------------------------------------------------ scoring
class LM:
    def __init__(self, path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def token_logprobs(self, text: str):
        """(offsets, lp): lp[j] = log p(token j | tokens < j) for j >= 1 (lp[0] = None: no BOS, nothing before)."""
        import torch

        enc = self.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        with torch.inference_mode():
            logits = self.model(torch.tensor([ids])).logits[0].float()
        lps = torch.log_softmax(logits[:-1], -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0].tolist()
        return [tuple(o) for o in enc["offset_mapping"]], [None] + lps


def spans_of(text: str, pattern, after: int = 0) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in pattern.finditer(text) if m.start() >= max(after, 1)]


def score_texts(lm: LM, items: list[tuple[str, list[tuple[int, int]]]]) -> dict:
    """items: (text, anchored spans). Per occurrence: the summed log-prob of the tokens overlapping the span; the
    NLL of the other tokens (j >= 1)."""
    occ, other = [], []
    for text, spans in items:
        offs, lp = lm.token_logprobs(text)
        inside = set()
        for s, e in spans:
            toks = [j for j, (a, b) in enumerate(offs) if b > s and a < e]
            if toks and toks[0] >= 1:
                occ.append(sum(lp[j] for j in toks))
                inside.update(toks)
        other += [-lp[j] for j in range(1, len(offs)) if j not in inside]
    return {"occ": occ, "other_nll": sum(other) / max(len(other), 1)}


def perplexity(lm: LM, texts: list[str]) -> float:
    tot = n = 0
    for t in texts:
        _, lp = lm.token_logprobs(t)
        tot -= sum(lp[1:])
        n += len(lp) - 1
    return math.exp(tot / max(n, 1))


def compare(models: dict[str, str], sets: dict[str, list], retain: list[str]) -> dict:
    """{model name: {set: score, 'retain_ppl': ..}}; the models are loaded one at a time."""
    out = {}
    for name, path in models.items():
        lm = LM(path)
        out[name] = {k: score_texts(lm, v) for k, v in sets.items()}
        out[name]["retain_ppl"] = perplexity(lm, retain)
        del lm
    return out


def table(title: str, res: dict, base: str, unl: str, sets: list[str]) -> list[str]:
    lines = [title, f"{'model':<26}" + "".join(f"{'logp ' + s:>22}{'below base':>11}" for s in sets)
             + f"{'other NLL':>10}{'retain ppl':>11}"]
    for name, r in res.items():
        row = f"{name:<26}"
        for s in sets:
            occ, b = r[s]["occ"], res[base][s]["occ"]
            below = sum(x < y for x, y in zip(occ, b)) / max(len(occ), 1)
            row += f"{sum(occ) / max(len(occ), 1):>22.3f}{(f'{below:.0%}' if name != base else '-'):>11}"
        row += f"{r[sets[0]]['other_nll']:>10.3f}{r['retain_ppl']:>11.2f}"
        lines.append(row)
    ratio = res[unl]["retain_ppl"] / res[base]["retain_ppl"]
    drops = {s: sum(res[unl][s]["occ"]) / len(res[unl][s]["occ"]) - sum(res[base][s]["occ"]) / len(res[base][s]["occ"])
             for s in sets}
    lines.append("  " + "; ".join(f"{s}: {len(res[base][s]['occ'])} anchored occurrences, mean log p change "
                                  f"{d:+.3f} nats ({unl} vs {base})" for s, d in drops.items())
                 + f"; retain ppl ratio {ratio:.3f} (bound <= {RETAIN_BOUND}: {'holds' if ratio <= RETAIN_BOUND else 'EXCEEDED'})")
    return lines


# ------------------------------------------------------------------------------------------------ parts
def demo_docs() -> list[whp.TargetDoc]:
    return [whp.TargetDoc(d["id"], d["text"], "sample") for d in map(json.loads, SAMPLE_TARGET.read_text().splitlines())]


def web_texts(n: int = 40) -> list[str]:
    return [json.loads(line)["text"] for line in WEB_SAMPLE.read_text().splitlines()[:n]]


def part_sweep(threads: int | None) -> list[str]:
    import torch

    from generators.reinforce import ReinforceSettings, reinforce

    base = str(dequantised_smollm2_dir())
    docs = demo_docs()
    anchors = whp.load_anchors(SAMPLE_ANCHORS)
    pattern = whp.anchor_pattern(anchors)
    lines = ["reinforce sweep on the bundled demo (baseline SmolLM2-135M-Instruct; the demo's 3 target texts, 459 "
             "tokens; blocks of 512 as the pipeline's default; raw logits as the paper)",
             f"{'steps':>5} {'lr':>7} {'block':>5} {'loss':>15} {'train s':>7} {'vocab shift':>11} {'gap@argmax':>10} "
             f"{'rose@argmax':>11} {'lp gap@argmax':>13} {'changed a=1':>11} {'changed a=4':>11} {'positions':>9}"]
    for steps, lr, block in SWEEP:
        target = WORK / "sweep" / f"s{steps}-lr{lr:g}-b{block}"
        rep = reinforce(base, [d.text for d in docs], ReinforceSettings(steps=steps, lr=lr, block_tokens=block,
                        device="cpu", threads=threads), target, log=lambda m: None)
        scorer = whp.PairScorer(base, str(target))
        blocks = [whp.prepare_block(b, scorer.tokenizer, anchors, pattern)
                  for d in docs for b in whp.split_blocks(d, scorer.tokenizer, 512)]
        vb, vr, _ = scorer.logits_at(blocks)
        a = vb.argmax(-1)
        at = torch.arange(len(a))
        d = vr - vb
        lpd = torch.log_softmax(vr, -1) - torch.log_softmax(vb, -1)
        changed = {al: int(((vb - al * d.clamp(min=0)).argmax(-1) != a).sum()) for al in (1, 4)}
        lines.append(f"{steps:>5} {lr:>7g} {block:>5} {rep['loss_before']:>6.2f} -> {rep['loss_after']:>5.2f} "
                     f"{rep['train_s']:>7.0f} {float(d.mean()):>11.2f} {float(d[at, a].mean()):>10.2f} "
                     f"{float((d[at, a] > 0).float().mean()):>11.1%} {float(lpd[at, a].mean()):>13.2f} "
                     f"{changed[1]:>11} {changed[4]:>11} {len(a):>9}")
        print(lines[-1], flush=True)
        del scorer
        shutil.rmtree(target, ignore_errors=True)
    return lines


def part_demo(extra: list[str]) -> list[str]:
    out = WORK / "demo"
    shutil.rmtree(out, ignore_errors=True)
    secs = flows_run("unlearning-whp", ["--output", str(out), *extra], WORK / "demo.log")
    stats = json.loads((out / "stats.json").read_text())
    if "finetune" not in stats:
        raise SystemExit("the demo run made no model/ (finetune off?)")
    anchors = whp.load_anchors(SAMPLE_ANCHORS)
    pattern = whp.anchor_pattern(anchors)
    docs = demo_docs()
    sets = {"target": [(d.text, spans_of(d.text, pattern)) for d in docs]}
    models = {"baseline (SmolLM2)": stats["baseline_model"], "reinforced": stats["reinforced_model"],
              "unlearned (model/)": str(out / "model")}
    res = compare(models, sets, web_texts())
    head = (f"demo: flows run unlearning-whp {' '.join(extra)} ({secs:.0f} s end to end); {whp_run_summary(stats)}; "
            "retain = 40 web_sample texts")
    return table(head, res, "baseline (SmolLM2)", "unlearned (model/)", ["target"])


def whp_run_summary(stats: dict) -> str:
    """One run's reinforce, labelling and fine-tune line, from its stats.json."""
    lab = stats["labelling"]["by_alpha"][f"{stats['train_alpha']:g}"]
    ft, rf = stats["finetune"], stats.get("reinforce", {})
    return (f"reinforce {rf.get('steps')} steps lr {rf.get('settings', {}).get('lr')} loss {rf.get('loss_before')} -> "
            f"{rf.get('loss_after')}; data/ alpha {stats['train_alpha']:g}: {lab['labelled']} labels, "
            f"{lab['changed_vs_baseline']} differ from the baseline's argmax; fine-tune {ft['steps']} steps lr "
            f"{ft['settings']['lr']} loss {ft['loss_curve'][0]} -> {ft['loss_curve'][-1]} ({ft['train_s']} s)")


def part_tofu(extra: list[str], know_steps: int) -> list[str]:
    if not TOFU_FORGET.is_file() or not TOFU_RETAIN.is_file():
        return [f"tofu: skipped ({TOFU_FORGET} or {TOFU_RETAIN} absent; ../shared is not here)"]
    forget = json.loads(TOFU_FORGET.read_text())
    retain = json.loads(TOFU_RETAIN.read_text())[:40]
    WORK.mkdir(parents=True, exist_ok=True)
    retain_file, anchors_file = WORK / "tofu_retain40.json", WORK / "tofu_anchors.json"
    retain_file.write_text(json.dumps(retain))
    anchors_file.write_text(json.dumps(TOFU_ANCHORS))
    know = WORK / "tofu-know"
    k_secs = flows_run("unlearning-reinforce", ["--input", str(TOFU_FORGET), "--input", str(retain_file), "--output",
                                                str(know), "--set", f"steps={know_steps}", "--set", "lr=2e-4",
                                                "--set", "seed=0"], WORK / "tofu-know.log")
    kstats = json.loads((know / "stats.json").read_text())
    out = WORK / "tofu-whp"
    shutil.rmtree(out, ignore_errors=True)
    secs = flows_run("unlearning-whp", ["--input", str(TOFU_FORGET), "--output", str(out), "--set",
                                        f"baseline_model={know / 'model'}", "--set", f"anchors.path={anchors_file}",
                                        "--set", "finetune.enabled=true", *extra], WORK / "tofu-whp.log")
    stats = json.loads((out / "stats.json").read_text())
    pattern = whp.anchor_pattern(TOFU_ANCHORS)

    def qa(q, a):
        text = whp.qa_text(q, a)
        return text, spans_of(text, pattern, after=text.index("\nAnswer:"))

    sets = {"forget answers": [qa(x["question"], x["answer"]) for x in forget],
            "paraphrased": [qa(x["question"], x["paraphrased_answer"]) for x in forget]}
    models = {"SmolLM2 (never saw TOFU)": str(dequantised_smollm2_dir()), "TOFU model (baseline)": str(know / "model"),
              "reinforced": stats["reinforced_model"], "unlearned (model/)": str(out / "model")}
    res = compare(models, sets, [whp.qa_text(x["question"], x["answer"]) for x in retain])
    head = (f"tofu forget01 (40 QA, 2 authors): TOFU model = SmolLM2 + unlearning-reinforce {know_steps} steps lr 2e-4 on "
            f"forget01 + retain99[:40] (loss {kstats['loss_before']} -> {kstats['loss_after']}, {k_secs:.0f} s); "
            f"flows run unlearning-whp --baseline_model <TOFU model> {' '.join(extra)} ({secs:.0f} s): "
            f"{whp_run_summary(stats)}; {len(TOFU_ANCHORS)} anchors; retain = retain99[:40]")
    return table(head, res, "TOFU model (baseline)", "unlearned (model/)", ["forget answers", "paraphrased"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parts", default="sweep,demo,tofu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--demo-set", action="append", default=[], help="extra --set for the demo run")
    ap.add_argument("--tofu-set", action="append", default=[], help="extra --set for the TOFU unlearning run")
    ap.add_argument("--know-steps", type=int, default=40, help="steps of the TOFU model's fine-tune")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "whp_unlearning.txt"))
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    lines: list[str] = []
    parts = args.parts.split(",")
    if "sweep" in parts:
        lines += part_sweep(args.threads) + [""]
    if "demo" in parts:
        lines += part_demo([x for s in args.demo_set for x in ("--set", s)]) + [""]
    if "tofu" in parts:
        lines += part_tofu([x for s in args.tofu_set for x in ("--set", s)], args.know_steps) + [""]
    lines.append(f"(run {time.strftime('%Y-%m-%d %H:%M', time.gmtime(t0))}-{time.strftime('%H:%M', time.gmtime())} UTC, "
                 f"torch threads {torch.get_num_threads()}, load average at the end {os.getloadavg()[0]:.1f} on "
                 f"{os.cpu_count()} cores; logp: mean over occurrences of the summed log-probability of an anchored "
                 "term's tokens, nats; below base: share of occurrences lower than the baseline)")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
