"""The `flows` command: list, show and run pipelines."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional


def _prefect_env() -> None:
    """Make the ephemeral Prefect API work on a fresh machine: an existing PREFECT_HOME, a start-up timeout
    long enough for a cold start, no telemetry. Must run before prefect is imported."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str(Path.home() / ".prefect")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


_prefect_env()

import typer  # noqa: E402

from flows.config import ConfigError, defaults_yaml, effective_yaml, load_config  # noqa: E402
from flows.registry import PIPELINES, UnknownPipeline, get_pipeline  # noqa: E402

app = typer.Typer(help="Prefect flows for LLM training data. `flows run dolma` curates the bundled sample.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _one_line(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


_VERBOSE = False  # `flows run -v`: a user error's traceback before its one line


def _fail(msg: str) -> None:
    if _VERBOSE and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


@app.command("list")
def list_pipelines() -> None:
    """List the pipelines with a one-line description."""
    for name in sorted(PIPELINES):
        try:
            desc = get_pipeline(name).description
        except Exception as e:  # a pipeline whose optional dependencies are missing still gets listed
            desc = f"(unavailable: {e})"
        typer.echo(f"{name:24s} {desc}")


@app.command("show")
def show(pipeline: str = typer.Argument(..., help="pipeline name (see `flows list`)"),
         config: Optional[Path] = typer.Option(None, "--config", help="YAML config to merge over the defaults"),
         set_: List[str] = typer.Option([], "--set", help="override a key: dotted.key=value")) -> None:
    """Print the effective config of a pipeline as YAML (defaults, or with --config/--set applied)."""
    try:
        p = get_pipeline(pipeline)
        if config is None and not set_:
            typer.echo(defaults_yaml(p.config_model), nl=False)
        else:
            typer.echo(effective_yaml(load_config(p.config_model, config_file=str(config) if config else None,
                                                  sets=set_)), nl=False)
    except (UnknownPipeline, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))  # args[0]: a KeyError's str() adds quotes


def _extra_sets(args: list[str]) -> list[str]:
    """`--corpus DIR --ids FILE` after the pipeline name is shorthand for `--set corpus=DIR --set ids=FILE`
    (`--key=value` works too; dashes in a key become underscores). Anything else is an error."""
    sets, i = [], 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ConfigError(f"unexpected argument '{arg}' (options are --key value or --set key=value)")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"option '{arg}' needs a value")
            value, i = args[i + 1], i + 1
        sets.append(f"{key.replace('-', '_')}={value}")
        i += 1
    return sets


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(ctx: typer.Context,
        pipeline: str = typer.Argument(..., help="pipeline name (see `flows list`)"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML config file"),
        input_: List[str] = typer.Option([], "--input", help="input file or folder (repeatable); default: sample"),
        output: Optional[str] = typer.Option(None, "--output", help="output folder; default ./output/<pipeline>"),
        set_: List[str] = typer.Option([], "--set", help="override a config key: dotted.key=value (repeatable)"),
        deployment: bool = typer.Option(False, "--deployment", help="trigger the registered deployment (flows "
                                        "deploy) on the server instead of running here, and follow its state"),
        verbose: bool = typer.Option(False, "-v", "--verbose", help="show Prefect's and datatrove's log lines "
                                     "(default: progress, summary tables, warnings) and a user error's traceback"),
        ) -> None:
    """Run a pipeline as a Prefect flow (in-process, ephemeral API: no server needed)."""
    global _VERBOSE
    _VERBOSE = verbose
    from flows.reporting import configure_console

    configure_console(verbose)
    if deployment:
        from flows.server_cli import run_deployment_cli

        try:
            sets = list(set_) + _extra_sets(list(ctx.args))
        except ConfigError as e:
            _fail(str(e))
        return run_deployment_cli(pipeline, config, input_, output, sets)
    try:
        p = get_pipeline(pipeline)
        cfg = load_config(p.config_model, config_file=str(config) if config else None, inputs=input_,
                          output=output or f"output/{pipeline}", sets=list(set_) + _extra_sets(list(ctx.args)))
    except (UnknownPipeline, ConfigError) as e:
        _fail(str(e.args[0]) if e.args else str(e))  # args[0]: a KeyError's str() adds quotes
        return
    from corpora.plan import check_output
    from flows.reporting import USER_ERRORS  # InputError, ConfigError, PlanError, ... FileNotFoundError, ...

    try:
        check_output(cfg.output, list(getattr(cfg, "inputs", []) or []))
        if p.preflight is not None:
            p.preflight(cfg)
    except USER_ERRORS as e:
        _fail(_one_line(e))
        return
    try:
        result = _flow_for(p, cfg)(cfg)
    except USER_ERRORS as e:  # raised inside the flow: Prefect's console shows no traceback for it (quiet)
        _fail(_one_line(e))
        return
    out = (result or {}).get("output")
    if out:
        typer.echo(f"output: {out}")


def _flow_for(p, cfg):
    """The pipeline's flow, on prefect-ray's RayTaskRunner when its generation shards are tasks on Ray. Only
    against a real server (PREFECT_API_URL): on the ephemeral API every Ray worker would start its own server."""
    from flows.deployments import task_runner_for

    runner = task_runner_for(cfg)
    if runner is None:
        return p.flow
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo("note: generation shards on Ray need a Prefect server (flows server start; export "
                   "PREFECT_API_URL=...): running them as local tasks", err=True)
        return p.flow
    return p.flow.with_options(task_runner=runner)


# Sub-commands that live in their own modules (server/deploy, report/inspect): each has `register(app)`.
_COMMAND_MODULES = ("flows.server_cli", "flows.report_cli")


def _register_commands() -> None:
    import importlib

    for module in _COMMAND_MODULES:
        try:
            importlib.import_module(module).register(app)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise


_register_commands()


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
