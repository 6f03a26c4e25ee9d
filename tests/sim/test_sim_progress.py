"""The progress bar: silent off a terminal or when disabled; a plain text bar otherwise."""

import io
import json
import sys

import pytest
import simpy

from sim.progress import ProgressBar, run

pytestmark = pytest.mark.sim


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_tty_or_disabled():
    for stream, enabled in ((io.StringIO(), True), (FakeTerminal(), False)):
        with ProgressBar(100, stream=stream, enabled=enabled) as bar:
            bar.update(50)
            bar.update(100)
        assert stream.getvalue() == ""


def test_plain_text_bar_on_a_terminal():
    stream = FakeTerminal()
    with ProgressBar(100, stream=stream, use_rich=False, min_interval=0) as bar:
        bar.update(50)
    text = stream.getvalue()
    assert "50.0%" in text and text.startswith("\r") and text.endswith("\n")


def test_run_in_chunks_reaches_the_end_and_changes_nothing():
    def ticks(progress):
        env = simpy.Environment()
        seen = []

        def clock():
            while True:
                seen.append(env.now)
                yield env.timeout(0.7)

        env.process(clock())
        run(env, 100, progress=progress, stream=FakeTerminal(), chunks=13)
        return env.now, seen

    assert ticks(True) == ticks(False)
    assert ticks(True)[0] == 100


def test_unknown_total_counts_virtual_seconds():
    stream = FakeTerminal()
    with ProgressBar(None, label="leader-failover", stream=stream, use_rich=False, min_interval=0) as bar:
        bar.update(12.4)
    text = stream.getvalue()
    assert "leader-failover 12 s virtual" in text and text.endswith("\n")


def test_scenario_progress_changes_no_outcome():
    from sim.scenarios import run_scenario

    seen: list[float] = []
    watched = run_scenario("task-kill", 3, clients=2, on_progress=seen.append)
    plain = run_scenario("task-kill", 3, clients=2)
    assert watched.trace_hash == plain.trace_hash and watched.ok
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(watched.virtual_seconds)


def test_cluster_run_reports_progress_in_chunks_and_ends_on_time():
    from sim.cluster import SimCluster

    def hashed(watch: bool):
        cluster = SimCluster(servers=3, clients=1, seed=5)
        seen: list[float] = []
        if watch:
            cluster.on_progress = seen.append
        cluster.run(30.0)
        return cluster.now, cluster.trace.hexdigest(), seen

    now, digest, seen = hashed(True)
    assert (now, digest) == hashed(False)[:2]
    assert now == 30.0 and len(seen) == 200 and seen[-1] == 30.0


def test_sim_run_json_stays_the_last_line_on_a_terminal(capsys, monkeypatch):
    from orchestrator.cli import sim as sim_cli

    monkeypatch.setattr("sys.stderr", FakeTerminal())
    assert sim_cli.main(["run", "task-kill", "--seed", "1", "--clients", "2", "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert json.loads(out[-1])["scenario"] == "task-kill"
    assert "s virtual" in sys.stderr.getvalue()
