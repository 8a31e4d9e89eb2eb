"""The `flows` command as a user types it."""
import os
import subprocess
import sys

import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.config import defaults_yaml
from flows.dolma import DolmaConfig

runner = CliRunner()


def test_list_and_show():
    r = runner.invoke(app, ["list"])
    assert r.exit_code == 0 and "dolma" in r.output and "quality-train" in r.output
    r = runner.invoke(app, ["show", "dolma"])
    assert r.exit_code == 0
    shown = yaml.safe_load(r.output)
    assert shown["filters"]["gopher_quality"]["min_doc_words"] == 50
    r = runner.invoke(app, ["show", "dolma", "--set", "filters.c4.enabled=false", "--set", "execution.workers=4"])
    shown = yaml.safe_load(r.output)
    assert shown["filters"]["c4"]["enabled"] is False and shown["execution"]["workers"] == 4


def test_shipped_default_configs_match_the_models():
    from pathlib import Path

    cfg_file = Path(__file__).resolve().parents[1] / "configs" / "dolma.yaml"
    assert yaml.safe_load(cfg_file.read_text()) == yaml.safe_load(defaults_yaml(DolmaConfig))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "flows.cli", *args], capture_output=True, text=True, timeout=120)


def test_bad_config_is_one_line_and_exit_2_as_a_user_sees_it():
    r = _cli("run", "dolma", "--set", "filters.gopher_qualty.min_doc_words=3")
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: unknown config key 'filters.gopher_qualty'; did you mean "
                                "'filters.gopher_quality'?")


def _run_in_process(*args):
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stderr


def test_bad_config_and_input_errors(tmp_path):
    code, err = _run_in_process("run", "dolma", "--set", "filters.langid.threshold=high")
    assert code == 2 and "filters.langid.threshold" in err and "Traceback" not in err
    code, err = _run_in_process("run", "dolmaa")
    assert code == 2 and "did you mean 'dolma'" in err
    code, err = _run_in_process("run", "dolma", "--input", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "missing.jsonl: input does not exist" in err
    bad_yaml = tmp_path / "c.yaml"
    bad_yaml.write_text("filters: [unclosed\n")
    code, err = _run_in_process("run", "dolma", "--config", str(bad_yaml))
    assert code == 2 and "c.yaml: not valid YAML" in err
    code, err = _run_in_process("run", "dolma", "--set", "filters.quality.enabled=true")
    assert code == 2 and "filters.quality.model: required" in err
    code, err = _run_in_process("run", "dolma", "--set", "dedup.paragraph.enabled=maybe")
    assert code == 2 and "dedup.paragraph.enabled" in err


def test_bad_bounds_and_outputs_are_one_line_before_the_run(tmp_path):
    for key in ("shard_rows=0", "shard_mb=-5", "execution.workers=0", "execution.workers=-1"):
        code, err = _run_in_process("run", "dolma", "--output", str(tmp_path / "o"), "--set", key)
        assert code == 2 and key.split("=")[0] in err and "Traceback" not in err, (key, err)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    code, err = _run_in_process("run", "dolma", "--output", str(a_file))
    assert code == 2 and "is a file" in err
    code, err = _run_in_process("run", "dolma", "--output", str(a_file / "sub"))
    assert code == 2 and "is under a file" in err
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text('{"id": "1", "text": "hello"}\n')
    code, err = _run_in_process("run", "dolma", "--input", str(inputs), "--output", str(inputs / "out"))
    assert code == 2 and "inside the input folder" in err
    code, err = _run_in_process("run", "dolma", "--input", str(inputs / "a.jsonl"), "--output", str(inputs))
    assert code == 2 and "inside the output folder" in err
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        code, err = _run_in_process("run", "dolma", "--output", str(ro / "out"))
        assert code == 2 and "not writable" in err


def test_extra_options_are_set_shorthand_and_errors_name_the_key(tmp_path):
    from flows.cli import _extra_sets

    assert _extra_sets(["--corpus", "a/b", "--max-seeds=3"]) == ["corpus=a/b", "max_seeds=3"]
    r = runner.invoke(app, ["run", "dolma", "--output", str(tmp_path / "o"), "--no-such-key", "1"])
    assert r.exit_code == 2 and "unknown config key 'no_such_key'" in r.output
    r = runner.invoke(app, ["run", "dolma", "--output", str(tmp_path / "o"), "--dangling"])
    assert r.exit_code == 2 and "option '--dangling' needs a value" in r.output


def test_every_shipped_config_is_its_pipeline_default():
    from pathlib import Path

    from flows.registry import PIPELINES, get_pipeline

    root = Path(__file__).resolve().parents[1] / "configs"
    for name in PIPELINES:
        f = root / f"{name}.yaml"
        assert f.exists(), f"configs/{name}.yaml is missing"
        assert yaml.safe_load(f.read_text()) == yaml.safe_load(defaults_yaml(get_pipeline(name).config_model)), name


# ---- start-up: the early temporary API (issue 31) -------------------------------------------------------------
def test_early_api_command_is_prefects_own(monkeypatch):
    """_EarlyAPI starts exactly the process Prefect's SubprocessASGIServer would (same argv, same environment):
    if Prefect changes its command, this fails instead of the run drifting from Prefect's temporary server."""
    import prefect.server.api.server as srv

    from flows.cli import _EarlyAPI

    seen = {}

    def popen(args, env=None, **kw):
        seen.update(args=list(args), env=dict(env))
        return None

    monkeypatch.setattr(srv.subprocess, "Popen", popen)
    port = 8765
    try:
        srv.SubprocessASGIServer(port)._run_uvicorn_command()
    finally:
        srv.SubprocessASGIServer._instances.pop(port, None)
    args, env = _EarlyAPI.command(port)
    assert args == seen["args"]
    assert env == seen["env"]


_EARLY_CHILD = r'''
import sys
from flows.cli import _EarlyAPI
e = _EarlyAPI.spawn()
assert e is not None, "not spawned"
if sys.argv[1] == "close":   # an error before the flow: the process is ended, nothing left behind
    e.close()
    print("exit", e.proc.poll(), e.port)
else:                         # attached: Prefect's singleton holds it, get_client uses it, atexit stops it
    e.attach()
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.client.orchestration import get_client
    s = SubprocessASGIServer()
    assert e.attached and s.running and s.server_process is e.proc and s.port == e.port
    with get_client(sync_client=True) as c:
        assert c.api_url.port == e.port and c.api_healthcheck() is None
    print("pid", e.proc.pid, e.port)
'''


def test_early_api_closed_or_handed_to_prefect(tmp_path):
    import socket

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for mode in ("close", "attach"):
        r = subprocess.run([sys.executable, "-c", _EARLY_CHILD, mode], capture_output=True, text=True, timeout=240,
                           env=env, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        assert r.returncode == 0, r.stderr[-2000:]
        word, value, port = r.stdout.split()[-3:]
        if mode == "close":
            assert word == "exit" and value != "None"
        else:  # the child has exited: Prefect's atexit stop ended the server, its port answers no more
            assert not os.path.exists(f"/proc/{value}") or open(f"/proc/{value}/stat").read().split()[2] == "Z"
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0
