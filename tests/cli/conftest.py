"""CLI test fixtures: a fake agent on a free port, UTC local time, a frozen clock and fast monitors."""

from __future__ import annotations

import os
import time

import pytest
from cli_fake_agent import FakeAgent

from orchestrator.cli import format as cli_format
from orchestrator.cli import monitor, node_drain


@pytest.fixture
def agent():
    fake = FakeAgent().start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def utc_and_fast(monkeypatch):
    """Times print as the transcripts (captured in UTC) and monitors poll without sleeping."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    for name in ("YURT_ADDR", "NOMAD_ADDR", "NOMAD_REGION", "NOMAD_NAMESPACE", "NOMAD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(monitor, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(monitor, "DEPLOYMENT_WAIT_SECONDS", 0.01)
    monkeypatch.setattr(node_drain, "POLL_SECONDS", 0.01)
    yield
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


@pytest.fixture
def frozen(monkeypatch):
    """Freeze the clock relative times are measured against: `frozen(unix_seconds)`."""

    def freeze(now: float) -> None:
        monkeypatch.setattr(cli_format, "_now", lambda: now)

    return freeze


@pytest.fixture
def yurt(agent, capsys):
    """Run `yurt <words> -address <fake> <args>` in-process: (exit code, stdout, stderr)."""
    from orchestrator.cli.main import main

    def run(words: str, *args: str, address: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*words.split(), "-address", address or agent.address, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
