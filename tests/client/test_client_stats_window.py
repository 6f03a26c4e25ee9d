"""Task CPU percentages over a window of at least a second: two requests in a row (the API, then
`yurt alloc status -stats`) report the same load, not 0% for the few milliseconds between them."""

from __future__ import annotations

from orchestrator.api import client_stats


def usage(cpu_seconds: float, *, uptime: float = 1000.0, started: float = 900.0) -> dict:
    return {"user": cpu_seconds, "system": 0.0, "rss": 1 << 20, "swap": 0, "started": started, "uptime": uptime}


def percent(result: dict) -> float:
    return result["CpuStats"]["Percent"]


def test_requests_in_a_row_measure_over_the_window_not_the_milliseconds_between(monkeypatch):
    clock = [5000.0]
    monkeypatch.setattr(client_stats.time, "monotonic", lambda: clock[0])
    samples = client_stats.Samples()
    # First request: the average since the task started (100 s ago, 0.44 s of CPU).
    first = client_stats.task_usage(7, usage(0.44), samples, 2445.0)
    assert round(percent(first), 2) == 0.44
    # 20 s later it has used 0.09 s more: 0.45% over those 20 s.
    clock[0] += 20
    second = client_stats.task_usage(7, usage(0.53), samples, 2445.0)
    assert round(percent(second), 2) == 0.45
    # 5 ms later no CPU tick has passed: still measured from the reading at least a second old.
    clock[0] += 0.005
    third = client_stats.task_usage(7, usage(0.53), samples, 2445.0)
    assert round(percent(third), 2) == 0.45 and third["CpuStats"]["TotalTicks"] > 0
    # A second and more on, the window moves to the reading of 1 s before.
    clock[0] += 1.5
    fourth = client_stats.task_usage(7, usage(0.545), samples, 2445.0)
    assert round(percent(fourth), 2) == 1.0
    assert len(samples.groups[7]) <= 3  # only what the next window may still need is kept


def test_a_group_nobody_asked_about_for_long_is_forgotten(monkeypatch):
    clock = [5000.0]
    monkeypatch.setattr(client_stats.time, "monotonic", lambda: clock[0])
    samples = client_stats.Samples()
    client_stats.task_usage(7, usage(1.0), samples, 1000.0)
    clock[0] += client_stats.SAMPLE_TTL + 1
    client_stats.forget_gone(samples, live={8})
    assert 7 not in samples.groups
