"""The console of `flows run` as a user sees it (a real subprocess, stderr not a terminal)."""
import logging
import os
import subprocess
import sys

from flows.reporting import _ConsoleGate


def _cli(*args, env=None):
    e = dict(os.environ, **(env or {}))
    e.pop("COLUMNS", None)
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=300,
                          env=e)


def test_default_run_is_quiet_and_tables_are_not_squeezed(tmp_path):
    r = _cli("run", "dolma", "--output", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert len(out.splitlines()) < 60, out  # was 537 lines (Prefect + datatrove logs)
    assert "Task run" not in out and "PIPELINE" not in out and "Stats:" not in out
    header = next(ln for ln in out.splitlines() if "docs in" in ln and "stage" in ln and "chars removed" in ln)
    assert "gopher_repetition" in out and "gopher_repeti…" not in out, header


def test_verbose_shows_prefect_logs(tmp_path):
    r = _cli("run", "dolma", "-v", "--output", str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Beginning flow run" in r.stderr and "Finished in state Completed" in r.stderr


def test_user_error_inside_a_flow_is_one_line_without_traceback(tmp_path):
    cfg = tmp_path / "mix.yaml"
    cfg.write_text('sources:\n- name: web\n  paths: [sample:web_sample.jsonl]\n  exclude: ["metadata.kind != zzz"]\n'
                   '  share: 1.0\n')
    r = _cli("run", "mix", "--config", str(cfg), "--output", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [ln for ln in lines if ln.startswith("error: ")] and len(lines) == 1, r.stderr
    assert "no tokens after its rules" in lines[0]


def _record(level, exc=None):
    exc_info = (type(exc), exc, None) if exc else None
    return logging.LogRecord("prefect.flow_runs", level, __file__, 1, "Encountered exception", None, exc_info)


def test_gate_keeps_a_bugs_traceback_and_drops_a_user_errors():
    gate = _ConsoleGate()
    assert not gate.filter(_record(logging.INFO))
    assert gate.filter(_record(logging.WARNING))
    assert not gate.filter(_record(logging.ERROR, ValueError("bad input")))
    assert not gate.filter(_record(logging.ERROR, FileNotFoundError("x")))
    assert gate.filter(_record(logging.ERROR, TypeError("a bug")))
    gate.verbose = True
    assert gate.filter(_record(logging.INFO)) and gate.filter(_record(logging.ERROR, ValueError("x")))
