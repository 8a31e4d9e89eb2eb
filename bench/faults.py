"""Fault-injection suite (issue 13): kill -9 at random moments + rerun, and malformed inputs for the readers.

A script, not a test: it prints tables. Two parts:

1. kill -9. For each pipeline an uninterrupted reference run is made and timed; then each trial starts the same
   run (`flows run <pipeline> --output DIR ...`, own process group, own PREFECT_HOME), kills the whole group with
   SIGKILL at a moment drawn uniformly from [0, reference wall time) (seeded, printed per trial), reruns it in the
   same output folder and compares the row set -- (folder, id, sha256 of text) for every row of `data/` and
   `rejected/` Parquet -- with the reference run's.
   Pipelines: dolma (bundled sample), dedup (input: the dolma reference run's data/), textbooks (replay backend;
   the replay file is built from `_work/textbooks/requests.parquet` of a first run with an empty replay file),
   dolma with 2 workers, dolma of another config killed 0-0.5 s into its publishing over a complete older run
   (the moment found by watching the output folder; a killed run must never
   leave a manifest saying `complete` over mixed rows), diachronic (6 shared Gutenberg books), mix and
   unlearning-split (bundled samples), remove (5 ids of the dolma reference output), and the multi-round
   generators ensemble-instruct, impossible-distillation, sphinx (demo size, replay backend on per-round answer
   files recorded once from SmolLM2: bench/data/replay/, made by bench/record_replay.py). Row sets cover
   every published Parquet folder (works/, slices/... too), not only data/ and rejected/.
2. malformed inputs. A hypothesis-driven generator writes >= 1,000 damaged files (JSONL lines of many kinds,
   truncated .gz/.zst, Parquet without the text column, damaged WARC) and feeds each to
   `corpora.readers.read_records`; every file is classified: records, quarantined rows, crash (an exception that
   escapes read_records), unaccounted (input records covered neither by a record nor by a quarantine row, nor by
   a quarantine row that says an unknown number of records after some point were lost).

    .venv/bin/python bench/faults.py            # default: dolma 20 trials, 5 each for dedup/textbooks, 1,200 files
    .venv/bin/python bench/faults.py --quick    # fewer trials, 1,000 files
    .venv/bin/python bench/faults.py --only fuzz|kill
"""
from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ last, not first: a bench script named like a stdlib module (bench/tokenize.py was one) must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))
FLOWS = ROOT / ".venv" / "bin" / "flows"


# ----------------------------------------------------------------------------------------------------------------
# part 1: kill -9


def flow_env(prefect_home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PREFECT_HOME=str(prefect_home), PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def publishing(out: Path) -> bool:
    """The run is swapping its output folders in (the manifest says so, or a `.<kind>.publishing` folder exists)."""
    try:
        if json.loads((out / "manifest.json").read_text()).get("status") == "publishing":
            return True
    except (OSError, ValueError):
        pass
    return out.is_dir() and any(p.name.endswith(".publishing") for p in out.iterdir())


def run_flow(pipeline: str, out: Path, args: list[str], prefect_home: Path, log: Path,
             kill_at: float | None = None, timeout: float = 600,
             kill_when=None) -> tuple[str, float, int | None]:
    """('finished' | 'killed', seconds, returncode). The run is its own process group; a kill takes the whole
    group (the CLI, and the temporary Prefect server it starts). `kill_when` (predicate on nothing, polled every
    10 ms) kills `kill_at` seconds after it first holds, instead of `kill_at` seconds after the start."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    cmd = [str(FLOWS), "run", pipeline, "--output", str(out), *args]
    with open(log, "ab") as fh:
        fh.write(f"\n$ {' '.join(cmd)}  (kill_at={kill_at})\n".encode())
        fh.flush()
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=flow_env(prefect_home),
                                start_new_session=True, cwd=str(ROOT))
        try:
            if kill_when is not None:
                while proc.poll() is None and not kill_when():
                    time.sleep(0.01)
                if proc.poll() is not None:
                    return "finished", time.monotonic() - t0, proc.returncode
            proc.wait(timeout=kill_at if kill_at is not None else timeout)
            return "finished", time.monotonic() - t0, proc.returncode
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            return ("killed" if kill_at is not None else "timeout"), time.monotonic() - t0, None


SKIP_DIRS = {"_work", "dedup_index"}


def row_set(out: Path) -> collections.Counter:
    """Multiset of (folder, id, sha256(text)) over every published Parquet folder (data/, rejected/, and a
    pipeline's own kinds: works/, slices/...; not _work/); a table without a text column hashes its whole row."""
    import pyarrow.parquet as pq

    rows: collections.Counter = collections.Counter()
    for f in sorted(out.rglob("*.parquet")) if out.is_dir() else []:
        rel = f.relative_to(out)
        if rel.parts[0] in SKIP_DIRS or any(p.startswith(".") for p in rel.parts):
            continue
        sub = str(rel.parent)
        t = pq.read_table(f)
        names = t.column_names
        for row in t.to_pylist():
            if "text" in names:
                h = hashlib.sha256((row.get("text") or "").encode("utf-8", "surrogatepass")).hexdigest()
            else:
                # the output folder's own name (e.g. remove's `removed_in` version) is not content
                h = hashlib.sha256(json.dumps(row, sort_keys=True, default=str).replace(out.name, "<out>")
                                   .encode()).hexdigest()
            rows[(sub, str(row.get("id", "")), h)] += 1
    return rows


def first_diff(a: collections.Counter, b: collections.Counter, n: int = 5) -> str:
    only_a = sorted((a - b).elements())[:n]
    only_b = sorted((b - a).elements())[:n]
    fmt = lambda xs: ", ".join(f"{s}/{i}:{h[:8]}" for s, i, h in xs) or "-"
    return f"only in reference: {fmt(only_a)}; only in rerun: {fmt(only_b)}"


class Pipeline:
    def __init__(self, name: str, args: list[str], label: str | None = None, window: tuple[float, float] = (0, 1),
                 prefill: Path | None = None, prefill_rows: collections.Counter | None = None,
                 in_publish: bool = False):
        """`label`: the table's name for this variant; `window`: kill moments drawn from this fraction of the
        reference wall time; `prefill`: an older output (another config) copied into each trial's folder first."""
        self.name, self.args, self.label = name, args, label or name
        self.window, self.prefill, self.prefill_rows = window, prefill, prefill_rows
        self.in_publish = in_publish  # kill 0-0.5 s after publishing starts (the folder swaps), not at random
        self.mixed_complete = 0  # killed runs whose manifest said complete while the rows were of neither run
        self.ref_rows: collections.Counter | None = None
        self.ref_wall = 0.0
        self.ref_out: Path | None = None
        self.stats = collections.Counter()
        self.mismatches: list[str] = []


def reference(p: Pipeline, tmp: Path) -> None:
    out = tmp / f"{p.label}-ref"
    if p.prefill is not None:
        shutil.copytree(p.prefill, out)
    state, wall, rc = run_flow(p.name, out, p.args, tmp / f"{p.label}-ref-ph", tmp / f"{p.label}-ref.log")
    if state != "finished" or rc != 0:
        raise SystemExit(f"{p.label}: reference run failed (rc={rc}); see {tmp / f'{p.label}-ref.log'}")
    p.ref_out, p.ref_wall, p.ref_rows = out, wall, row_set(out)
    print(f"[{p.label}] reference: {wall:.1f}s, {sum(p.ref_rows.values())} rows "
          f"({sum(v for k, v in p.ref_rows.items() if k[0] == 'data')} data)", flush=True)


def manifest_status(out: Path) -> str | None:
    try:
        return json.loads((out / "manifest.json").read_text()).get("status")
    except (OSError, ValueError):
        return None


def trials(p: Pipeline, n: int, rng: random.Random, tmp: Path) -> None:
    for i in range(n):
        kill_at = rng.uniform(0, 0.5) if p.in_publish else rng.uniform(p.window[0] * p.ref_wall,
                                                                       p.window[1] * p.ref_wall)
        out, ph, log = tmp / f"{p.label}-t{i}", tmp / f"{p.label}-t{i}-ph", tmp / f"{p.label}-t{i}.log"
        if p.prefill is not None:
            shutil.copytree(p.prefill, out)
        state, t1, rc = run_flow(p.name, out, p.args, ph, log, kill_at=kill_at,
                                 kill_when=(lambda o=out: publishing(o)) if p.in_publish else None)
        p.stats["trials"] += 1
        killed = state == "killed"
        if not killed and not p.in_publish:  # the reference was slower than runs are now: draw from this run's time
            p.ref_wall = min(p.ref_wall, t1)
        p.stats["killed"] += killed
        if killed and manifest_status(out) == "complete":
            # a reader trusts a complete manifest: its rows must be one whole run's, the old or the new
            now = row_set(out)
            if now != p.ref_rows and now != (p.prefill_rows or p.ref_rows):
                p.mixed_complete += 1
                p.mismatches.append(f"trial {i} (kill at {kill_at:.2f}s): manifest says complete over mixed rows")
        state2, t2, rc2 = run_flow(p.name, out, p.args, ph, log)
        ok = state2 == "finished" and rc2 == 0
        p.stats["rerun_ok"] += ok
        same = False
        if ok:
            rows = row_set(out)
            same = rows == p.ref_rows
            if not same:
                p.mismatches.append(f"trial {i} (kill at {kill_at:.2f}s): {first_diff(p.ref_rows, rows)}")
        p.stats["identical"] += same
        p.stats["mismatch"] += ok and not same
        print(f"[{p.label}] trial {i:2d}: kill at {kill_at:6.2f}s{' into publishing' if p.in_publish else ''} -> {'killed' if killed else 'finished first'}"
              f"{'' if killed else f' (rc={rc})'}; rerun {'ok' if ok else f'FAILED ({state2}, rc={rc2}; {log})'}"
              f" {t2:.1f}s; rows {'identical' if same else ('DIFFER' if ok else '-')}", flush=True)
        if ok and same:
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(ph, ignore_errors=True)


def build_replay(tmp: Path) -> Path:
    """Replay file with a completion for every textbooks request: ids from a first run with an empty file."""
    import pyarrow.parquet as pq

    empty = tmp / "replay-empty.jsonl"
    empty.write_text("")
    out = tmp / "textbooks-prompts"
    args = ["--set", "generation.backend.kind=replay", "--set", f"generation.backend.path={empty}"]
    state, _, rc = run_flow("textbooks", out, args, tmp / "textbooks-prompts-ph", tmp / "textbooks-prompts.log")
    if state != "finished" or rc != 0:
        raise SystemExit(f"textbooks: prompt-listing run failed (rc={rc}); see {tmp / 'textbooks-prompts.log'}")
    reqs = pq.read_table(out / "_work" / "textbooks" / "requests.parquet", columns=["id"]).column("id").to_pylist()
    replay = tmp / "replay.jsonl"
    words = "the of a chapter explains energy cells water light force history market system number".split()
    with open(replay, "w") as fh:
        for k, rid in enumerate(reqs):
            r = random.Random(rid)
            n = 30 if k % 4 == 0 else 260  # a quarter too short: post-processing rejects them
            text = " ".join(r.choice(words) for _ in range(n)) + "."
            fh.write(json.dumps({"request_id": rid, "text": text}) + "\n")
    return replay


def kill_suite(args, rng: random.Random, tmp: Path) -> list[Pipeline]:
    dolma = Pipeline("dolma", [])
    reference(dolma, tmp)
    pipes = [dolma]


    def want(p: Pipeline) -> bool:  # --pipelines: only those (and dolma, whose output the others read)
        return not args.pipelines or p.label in args.pipelines

    dedup = Pipeline("dedup", ["--input", str(dolma.ref_out / "data")])
    pipes.append(dedup)
    want(dedup) and reference(dedup, tmp)
    if want(Pipeline("textbooks", [])):
        replay = build_replay(tmp)
        tb = Pipeline("textbooks", ["--set", "generation.backend.kind=replay",
                                    "--set", f"generation.backend.path={replay}"])
        reference(tb, tmp)
        pipes.append(tb)
    # the same dolma run with two workers (datatrove's local executor, two processes)
    pipes.append(Pipeline("dolma", ["--set", "execution.workers=2"], label="dolma-w2"))
    want(pipes[-1]) and reference(pipes[-1], tmp)
    # a run of another config killed late (filtering done, shards being published) over a complete older run
    pipes.append(Pipeline("dolma", ["--set", "filters.gopher_quality.min_doc_words=80", "--set", "overwrite=true"],
                          label="dolma-over-old", prefill=dolma.ref_out, prefill_rows=dolma.ref_rows,
                          in_publish=True))
    want(pipes[-1]) and reference(pipes[-1], tmp)
    books = diachronic_books(tmp) if want(Pipeline("diachronic", [])) else None
    if books is not None:
        pipes.append(Pipeline("diachronic", ["--input", str(books)]))
        want(pipes[-1]) and reference(pipes[-1], tmp)
    # the newer pipelines on their bundled samples / on the dolma reference output
    pipes.append(Pipeline("mix", []))
    want(pipes[-1]) and reference(pipes[-1], tmp)
    pipes.append(Pipeline("unlearning-split", []))
    want(pipes[-1]) and reference(pipes[-1], tmp)
    ids = tmp / "remove-ids.txt"
    some = sorted(i for (sub, i, _h) in dolma.ref_rows if sub == "data")[:5]
    ids.write_text("\n".join(some) + "\n")
    pipes.append(Pipeline("remove", ["--corpus", str(dolma.ref_out), "--ids", str(ids)]))
    want(pipes[-1]) and reference(pipes[-1], tmp)
    # the multi-round generators on replay answers recorded once from SmolLM2 (bench/record_replay.py)
    for g in ("ensemble-instruct", "impossible-distillation", "sphinx"):
        if want(Pipeline(g, [])):
            from record_replay import REPLAY_DIR
            if not (REPLAY_DIR / g / "rounds.json").is_file():  # not recorded (bench/record_replay.py)
                print(f"[{g}] skipped: no replay answers in {REPLAY_DIR / g}", flush=True)
                continue
            pipes.append(Pipeline(g, generator_replay(g, tmp)))
            reference(pipes[-1], tmp)
    for p in pipes:
        if args.pipelines and p.label not in args.pipelines:
            continue
        trials(p, args.dolma_trials if p.label == "dolma" else args.trials, rng, tmp)
    return [p for p in pipes if not args.pipelines or p.label in args.pipelines]


def generator_replay(generator: str, tmp: Path) -> list[str]:
    """`--set` arguments for a replay run of `generator`'s demo: the per-round answer files in
    bench/data/replay/<generator>/ (SmolLM2's answers; recorded anew into tmp when absent, which needs SmolLM2)."""
    from record_replay import REPLAY_DIR, record, replay_args

    folder = REPLAY_DIR / generator
    if not (folder / "rounds.json").is_file():
        folder = record(generator, tmp / "record", tmp / "replay" / generator)
    return replay_args(folder)


def diachronic_books(tmp: Path, n: int = 6) -> Path | None:
    """The first n Gutenberg books of ../shared (the diachronic pipeline needs real books), or None."""
    src = ROOT.parent / "shared" / "data" / "gutenberg" / "texts"
    if not src.is_dir():
        print("[diachronic] skipped: ../shared/data/gutenberg/texts is absent", flush=True)
        return None
    books = tmp / "books"
    books.mkdir()
    for f in sorted(src.glob("*.txt"))[:n]:
        shutil.copy(f, books / f.name)
    return books


def print_kill_table(pipes: list[Pipeline]) -> None:
    print()
    print("kill -9 + rerun vs uninterrupted run (row sets of every published Parquet folder: id + sha256(text or row))")
    w = max([15] + [len(p.label) for p in pipes])
    hdr = f"{'pipeline':<{w}} {'ref s':>6} {'ref rows':>8} {'trials':>6} {'killed':>6} {'rerun ok':>8} " \
          f"{'identical':>9} {'mismatch':>8} {'mixed+complete':>14}"
    print(hdr)
    print("-" * len(hdr))
    for p in pipes:
        s = p.stats
        print(f"{p.label:<{w}} {p.ref_wall:6.1f} {sum(p.ref_rows.values()):8d} {s['trials']:6d} {s['killed']:6d} "
              f"{s['rerun_ok']:8d} {s['identical']:9d} {s['mismatch']:8d} {p.mixed_complete:14d}")
    print("(dolma-w2: execution.workers=2; dolma-over-old: another config killed 0-0.5 s after its publishing "
          "began, over a complete older run; mixed+complete: a killed run left a manifest saying complete over rows of neither "
          "run)")
    for p in pipes:
        for m in p.mismatches:
            print(f"  MISMATCH {p.label} {m}")


# ----------------------------------------------------------------------------------------------------------------
# part 2: malformed inputs

GOOD = lambda i: {"id": f"d{i}", "text": f"Document number {i}. " * 3}


def _line_kinds():
    from hypothesis import strategies as st

    good = st.integers(0, 10**6).map(lambda i: json.dumps(GOOD(i)).encode())
    scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20))
    bad_json = st.one_of(
        st.binary(min_size=1, max_size=80),
        st.text(max_size=80).map(lambda s: s.encode("utf-8", "surrogatepass")),
        good.map(lambda b: b[: max(1, len(b) // 2)]),  # cut line
        good.map(lambda b: b.replace(b"}", b",}")),
        st.just(b'{"id": "x", "text": "a" "b"}'),
    )
    wrong_types = st.one_of(
        scalar.map(lambda v: json.dumps({"id": "w", "text": v}).encode()),
        st.lists(scalar, max_size=3).map(lambda v: json.dumps(v).encode()),
        scalar.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.text(max_size=5), scalar, max_size=3).map(lambda d: json.dumps(d).encode()),
        scalar.map(lambda v: json.dumps({"id": v, "text": "t", "source": v, "url": v, "created": v,
                                         "metadata": v}).encode()),
    )
    nul = st.one_of(good.map(lambda b: b[:5] + b"\x00" + b[5:]),
                    st.just(b'{"id": "n", "text": "a\\u0000b"}'), st.just(b"\x00\x00\x00"))
    surrogate = st.sampled_from([b'{"id": "s", "text": "\\ud800"}', b'{"id": "s", "text": "ok", "k": "\\udfff"}',
                                 b'{"\\ud83d": 1, "text": "x"}', b'{"text": "\\ud83d\\ude00 fine pair"}',
                                 b'{"text": "x", "m": ["\\udc00"]}', '{"text": "\udcff"}'.encode("utf-8", "surrogatepass")])
    deep = st.integers(50, 30000).flatmap(lambda d: st.sampled_from([
        b'{"text": "x", "n": ' + b"[" * d + b"]" * d + b"}",
        b'{"text": "x", "n": ' + b'{"a":' * d + b"1" + b"}" * d + b"}",
        b"[" * d + b"]" * d,
        b'{"text": "x", "n": ' + b"[" * d + b"}",  # unbalanced
    ]))
    huge = st.integers(1, 8).map(lambda m: json.dumps({"id": "h", "text": "z" * (m << 20)}).encode())
    invalid_utf8 = good.map(lambda b: b[:10] + b"\xff\xfe\xc3" + b[10:])
    return {"good": good, "bad_json": bad_json, "wrong_types": wrong_types, "nul": nul, "surrogate": surrogate,
            "deep": deep, "huge": huge, "invalid_utf8": invalid_utf8}


def jsonl_bytes(lines: list[bytes], bom: bool, crlf: bool, blank_every: int) -> bytes:
    sep = b"\r\n" if crlf else b"\n"
    out = []
    for i, ln in enumerate(lines):
        out.append(ln)
        if blank_every and i % blank_every == 0:
            out.append(b"   ")
    data = sep.join(out) + sep
    return (b"\xef\xbb\xbf" if bom else b"") + data


def count_lines(data: bytes) -> int:
    """Non-empty lines as the reader sees them (split on \\n; a leading BOM removed from line 1)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return sum(1 for ln in data.split(b"\n") if ln.strip())


class Tally:
    def __init__(self):
        self.rows = collections.defaultdict(collections.Counter)
        self.examples: dict[str, list[str]] = collections.defaultdict(list)

    def add(self, kind: str, path: Path, expected: int | None, exact: bool = True):
        """expected: input records in the file (None: not checked). exact: the count is exact (else an upper bound,
        as for a cut stream)."""
        from corpora.readers import LostRecords, lost_count, read_records
        from corpora.records import BadRecord, Record

        t = self.rows[kind]
        t["files"] += 1
        recs = bad = known_lost = 0
        unknown = False
        try:
            for item in read_records(path):
                if isinstance(item, Record):
                    recs += 1
                    item.text.encode("utf-8")  # a record must be writable (lone surrogates would crash later)
                elif isinstance(item, BadRecord):
                    if not item.error:
                        raise AssertionError("quarantine row without a reason")
                    lc = lost_count(item)
                    if item.error.startswith("empty file"):  # a file-level row for a file of no records
                        t["lost_rows"] += 1
                    elif isinstance(item, LostRecords):
                        t["lost_rows"] += 1
                        if lc is None:
                            unknown = True
                        else:
                            known_lost += lc
                    else:
                        bad += 1
                else:
                    raise AssertionError(f"read_records yielded {type(item).__name__}")
        except Exception as e:  # noqa: BLE001 -- the point: nothing may escape
            t["crashes"] += 1
            if len(self.examples[kind]) < 3:
                self.examples[kind].append(f"CRASH {path.name}: {type(e).__name__}: {str(e)[:160]}")
            return
        t["records"] += recs
        t["quarantined"] += bad
        t["q_lost"] += known_lost
        covered = recs + bad + known_lost
        if expected is not None:
            missing = expected - covered
            if missing > 0 and not unknown:
                t["unaccounted"] += missing
                if len(self.examples[kind]) < 3:
                    self.examples[kind].append(f"UNACCOUNTED {path.name}: {expected} input records, {recs} records "
                                               f"+ {bad} quarantined + {known_lost} counted lost")
            elif missing < 0 and exact:
                t["overcount"] += -missing
                if len(self.examples[kind]) < 3:
                    self.examples[kind].append(f"OVERCOUNT {path.name}: {expected} input records, {recs} records "
                                               f"+ {bad} quarantined + {known_lost} counted lost")


def fuzz_suite(args, seed: int, tmp: Path) -> Tally:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    tally = Tally()
    kinds = _line_kinds()
    small = {k: v for k, v in kinds.items() if k != "huge"}
    counter = iter(range(10**9))
    d = tmp / "fuzz"
    d.mkdir(parents=True, exist_ok=True)
    cfg = settings(max_examples=args.fuzz_n, deadline=None, database=None, derandomize=False,
                   suppress_health_check=list(HealthCheck), print_blob=False)

    def fresh(name: str) -> Path:
        return d / f"{next(counter):05d}-{name}"

    # JSONL: a mix of good and bad lines of every kind, BOM / CRLF / blank lines
    mixed = st.lists(st.one_of(*small.values()), min_size=1, max_size=12)

    @cfg
    @given(mixed, st.booleans(), st.booleans(), st.integers(0, 4), st.sampled_from(list(small)))
    def jsonl_case(lines, bom, crlf, blank_every, focus):
        data = jsonl_bytes(lines, bom, crlf, blank_every)
        p = fresh("mixed.jsonl")
        p.write_bytes(data)
        tally.add("jsonl mixed", p, count_lines(data))

    print(f"[fuzz] jsonl mixed ({args.fuzz_n} files)...", flush=True)
    _seeded(jsonl_case, seed)

    # one kind per file (so the table says which kind does what)
    per_kind = max(20, args.fuzz_n // 10)
    for kind, strat in kinds.items():
        n = 3 if kind == "huge" else per_kind

        def make(kind=kind, strat=strat, n=n):
            @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(st.lists(strat, min_size=1, max_size=1 if kind == "huge" else 6), st.booleans(), st.booleans())
            def one_kind(lines, bom, crlf):
                data = jsonl_bytes(lines, bom, crlf, 0)
                p = fresh(f"{kind}.jsonl")
                p.write_bytes(data)
                tally.add(f"jsonl {kind}", p, count_lines(data))
            return one_kind

        print(f"[fuzz] jsonl {kind} ({n} files)...", flush=True)
        _seeded(make(), seed)

    # truncated / corrupted compressed JSONL
    @settings(max_examples=max(200, args.fuzz_n // 3), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(1, 400), st.sampled_from(["gz", "zst", "zst-multiframe", "gz-multimember"]),
           st.floats(0.0, 1.0), st.sampled_from(["cut", "flip", "garbage-tail"]))
    def compressed_case(nrec, codec, frac, damage):
        lines = [json.dumps(GOOD(i)).encode() for i in range(nrec)]
        raw = b"\n".join(lines) + b"\n"
        if codec == "gz":
            comp = gzip.compress(raw)
        elif codec == "gz-multimember":
            half = len(lines) // 2
            comp = gzip.compress(b"\n".join(lines[:half]) + b"\n" if half else b"") + \
                gzip.compress(b"\n".join(lines[half:]) + b"\n")
        elif codec == "zst":
            comp = zstandard.ZstdCompressor().compress(raw)
        else:
            half = len(lines) // 2
            c = zstandard.ZstdCompressor()
            comp = (c.compress(b"\n".join(lines[:half]) + b"\n") if half else b"") + \
                c.compress(b"\n".join(lines[half:]) + b"\n")
        cut = int(len(comp) * frac)
        if damage == "cut":
            data = comp[:max(1, min(cut, len(comp) - 1))]
        elif damage == "flip":
            b = bytearray(comp)
            b[min(cut, len(b) - 1)] ^= 0xFF
            data = bytes(b)
        else:
            data = comp + b"\x00garbage\xff" * (1 + int(frac * 10))
        p = fresh(f"{damage}.jsonl.{codec.split('-')[0]}")
        p.write_bytes(data)
        tally.add(f"{codec.split('-')[0]} {damage}", p, nrec, exact=False)

    print("[fuzz] compressed...", flush=True)
    _seeded(compressed_case, seed)

    # Parquet without the text column / with a non-string text / cut
    @settings(max_examples=max(100, args.fuzz_n // 6), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, 300), st.sampled_from(["no-text", "int-text", "null-text", "cut", "ok"]),
           st.integers(1, 100))
    def parquet_case(nrows, damage, rg):
        ids = [f"p{i}" for i in range(nrows)]
        if damage == "no-text":
            t = pa.table({"id": ids, "body": ["x"] * nrows})
        elif damage == "int-text":
            t = pa.table({"id": ids, "text": list(range(nrows))})
        elif damage == "null-text":
            t = pa.table({"id": ids, "text": [None if i % 3 == 0 else "t" for i in range(nrows)]},
                         schema=pa.schema([("id", pa.string()), ("text", pa.string())]))
        else:
            t = pa.table({"id": ids, "text": [f"text {i}" for i in range(nrows)]})
        buf = io.BytesIO()
        pq.write_table(t, buf, row_group_size=rg)
        data = buf.getvalue()
        exact = True
        if damage == "cut":
            data = data[: max(1, len(data) * rg // 101)]
            exact = False
        p = fresh(f"{damage}.parquet")
        p.write_bytes(data)
        tally.add(f"parquet {damage}", p, nrows, exact=exact)

    print("[fuzz] parquet...", flush=True)
    _seeded(parquet_case, seed)

    # WARC damage
    @settings(max_examples=max(300, args.fuzz_n // 2), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(1, 12), st.sampled_from(["cut", "flip-bytes", "bad-length", "garbage-between", "ok"]),
           st.floats(0.0, 1.0), st.booleans())
    def warc_case(nrec, damage, frac, gz):
        data = make_warc(nrec, gz)
        expected = nrec
        if damage == "cut":
            cut = max(1, int(len(data) * frac))
            # records with at least one byte present (a cut exactly at a record boundary cannot be seen)
            marker = b"\x1f\x8b\x08" if gz else b"WARC/1.0\r\n"
            starts = [i for i in range(len(data)) if data.startswith(marker, i)]
            expected = sum(1 for s0 in starts if s0 < cut)
            data = data[:cut]
        elif damage == "flip-bytes":
            b = bytearray(data)
            r = random.Random(int(frac * 1e6))
            for _ in range(5):
                b[r.randrange(len(b))] = r.randrange(256)
            data = bytes(b)
        elif damage == "bad-length":
            data = data.replace(b"Content-Length: ", b"Content-Length: 9", 1 + int(frac * nrec))
        elif damage == "garbage-between":
            marker = b"WARC/1.0\r\n"
            parts = data.split(marker) if not gz else None
            if parts:
                k = 1 + int(frac * (len(parts) - 2)) if len(parts) > 2 else 1
                parts[k] = b"\x00\xffjunk junk\r\n\r\n" + parts[k]
                data = marker.join(parts)
            else:
                data = data[: len(data) // 2] + b"\x00junk" * 7 + data[len(data) // 2:]
        p = fresh(f"{damage}.warc" + (".gz" if gz else ""))
        p.write_bytes(data)
        # every response either a record or a quarantine row; damage can split one record's bytes into two rows
        tally.add(f"warc{'.gz' if gz else ''} {damage}", p, expected, exact=False)

    print("[fuzz] warc...", flush=True)
    _seeded(warc_case, seed)

    # deterministic WARC edge cases: cuts just after each record boundary; two adjacent corrupt gzip members
    base = make_warc(3, False)
    starts = [i for i in range(len(base)) if base.startswith(b"WARC/1.0\r\n", i)]
    for s0 in starts[1:]:
        for k in range(1, 13):
            p = fresh(f"boundary+{k}.warc")
            p.write_bytes(base[:s0 + k])
            tally.add("warc cut boundary+1..12", p, sum(1 for x in starts if x < s0 + k), exact=False)
    gzbase = make_warc(6, True)
    members = [i for i in range(len(gzbase)) if gzbase.startswith(b"\x1f\x8b\x08", i)] + [len(gzbase)]
    for j in range(len(members) - 2):
        for width in (1, 2):
            b = bytearray(gzbase)
            for m in range(j, j + width):
                mid = (members[m] + members[m + 1]) // 2
                b[mid] ^= 0xFF
            p = fresh(f"members{j}-{j + width - 1}.warc.gz")
            p.write_bytes(bytes(b))
            tally.add(f"warc.gz corrupt member x{width}", p, 6, exact=False)
    # 5 random byte flips per file, seeds 0..299 
    for s0 in range(300):
        b = bytearray(gzbase)
        r = random.Random(s0)
        for _ in range(5):
            b[r.randrange(len(b))] = r.randrange(256)
        p = fresh(f"flip5-seed{s0}.warc.gz")
        p.write_bytes(bytes(b))
        tally.add("warc.gz 5 flips, seeds 0-299", p, 6, exact=False)
    return tally


def _seeded(test, seed: int) -> None:
    from hypothesis import seed as hseed

    hseed(seed)(test)()


def make_warc(n: int, gz: bool) -> bytes:
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    for i in range(n):
        html = (f"<html><head><title>Page {i}</title></head><body><article><h1>Heading {i}</h1>"
                + "".join(f"<p>Paragraph {j} of page {i} says something long enough to be main text, with "
                          f"several words in it and a full stop.</p>" for j in range(4))
                + "</article></body></html>").encode()
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        fixed = {"WARC-Record-ID": f"<urn:uuid:00000000-0000-4000-8000-{i:012d}>",  # deterministic bytes
                 "WARC-Date": "2024-01-01T00:00:00Z"}
        rec = w.create_warc_record(f"http://example.com/{i}", "response", payload=io.BytesIO(html),
                                   http_headers=http, warc_headers_dict=fixed)
        w.write_record(rec)
    return buf.getvalue()


def print_fuzz_table(t: Tally) -> None:
    print()
    print("malformed inputs -> corpora.readers.read_records")
    hdr = f"{'kind':<26} {'files':>5} {'records':>7} {'quarant.':>8} {'lost rows':>9} {'counted lost':>12} " \
          f"{'crashes':>7} {'unaccounted':>11} {'overcount':>9}"
    print(hdr)
    print("-" * len(hdr))
    tot = collections.Counter()
    for kind, c in t.rows.items():
        print(f"{kind:<26} {c['files']:5d} {c['records']:7d} {c['quarantined']:8d} {c['lost_rows']:9d} "
              f"{c['q_lost']:12d} {c['crashes']:7d} {c['unaccounted']:11d} {c['overcount']:9d}")
        tot.update(c)
    print("-" * len(hdr))
    print(f"{'total':<26} {tot['files']:5d} {tot['records']:7d} {tot['quarantined']:8d} {tot['lost_rows']:9d} "
          f"{tot['q_lost']:12d} {tot['crashes']:7d} {tot['unaccounted']:11d} {tot['overcount']:9d}")
    print("(quarant.: per-line/record quarantine rows; lost rows: file-level rows standing for several records (or none: an empty file), "
          "'counted lost' the records they count; a row saying 'unknown number lost after line N' covers the rest "
          "of its file; overcount: more records+rows than input records, exact counts only)")
    for kind, ex in t.examples.items():
        for e in ex:
            print(f"  {kind}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 dolma trials, 2 per other pipeline, 1,000 files")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--dolma-trials", type=int)
    ap.add_argument("--trials", type=int, help="trials per other pipeline")
    ap.add_argument("--fuzz-n", type=int, help="mixed JSONL files (other kinds scale with it)")
    ap.add_argument("--only", choices=["kill", "fuzz"])
    ap.add_argument("--pipelines", nargs="*", help="kill trials only for these labels (references still run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    args.dolma_trials = args.dolma_trials or (5 if args.quick else 20)
    args.trials = args.trials or (2 if args.quick else 5)
    args.fuzz_n = args.fuzz_n or (500 if args.quick else 600)
    tmp = Path(tempfile.mkdtemp(prefix="faults-"))
    print(f"faults: seed={args.seed} dolma_trials={args.dolma_trials} trials={args.trials} fuzz_n={args.fuzz_n} "
          f"tmp={tmp}", flush=True)
    t0 = time.monotonic()
    pipes, tally = [], None
    try:
        if args.only != "fuzz":
            pipes = kill_suite(args, random.Random(args.seed), tmp)
        if args.only != "kill":
            tally = fuzz_suite(args, args.seed, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    if pipes:
        print_kill_table(pipes)
    if tally:
        print_fuzz_table(tally)
    print(f"\n{time.monotonic() - t0:.0f}s")
    bad = sum(p.stats["mismatch"] + p.stats["trials"] - p.stats["rerun_ok"] + p.mixed_complete for p in pipes)
    if tally:
        bad += sum(c["crashes"] + c["unaccounted"] for c in tally.rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
