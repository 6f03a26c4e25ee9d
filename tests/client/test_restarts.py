"""The restart tracker follows Nomad's RestartTracker.GetState: windows, jitter, modes, batch success."""

from random import Random

import pytest

from orchestrator.client.restarts import (
    NO_RESTART,
    REASON_DELAY,
    REASON_NO_RESTARTS_ALLOWED,
    REASON_SUCCESS,
    REASON_UNRECOVERABLE_ERROR,
    REASON_WITHIN_POLICY,
    RESTART,
    RestartTracker,
)
from orchestrator.structs import HOUR, MINUTE, SECOND, RestartPolicy
from orchestrator.structs.timefmt import go_duration, parse_rfc3339, rfc3339


def tracker(attempts=2, interval=30 * MINUTE, delay=15 * SECOND, mode="fail", job_type="service", seed=1):
    policy = RestartPolicy(attempts=attempts, interval=interval, delay=delay, mode=mode)
    return RestartTracker(policy, job_type, Random(seed), started_at=0.0)


def test_fail_mode_restarts_within_policy_then_gives_up():
    t = tracker()
    first = t.on_exit(10.0, exit_code=1)
    assert first.decision == RESTART and first.reason == REASON_WITHIN_POLICY
    assert 15.0 <= first.delay < 15.0 * 1.25
    assert t.on_exit(40.0, exit_code=1).decision == RESTART
    third = t.on_exit(70.0, exit_code=1)
    assert third == (NO_RESTART, 0.0, 'Exceeded allowed attempts 2 in interval 30m0s and mode is "fail"')
    assert not t.terminated


def test_attempts_are_counted_per_interval_window():
    t = tracker(attempts=1, interval=60 * SECOND)
    assert t.on_exit(10.0, 1).decision == RESTART
    assert t.on_exit(50.0, 1).decision == NO_RESTART  # second failure inside the window opened at 0
    t = tracker(attempts=1, interval=60 * SECOND)
    assert t.on_exit(10.0, 1).decision == RESTART
    # The window [0, 60] has passed: a new one opens at 61 and the count starts over.
    assert t.on_exit(61.0, 1).decision == RESTART
    assert t.window_start == 61.0 and t.count == 1
    assert t.on_exit(100.0, 1).decision == NO_RESTART


def test_window_opens_at_first_exit_without_a_start_time():
    t = RestartTracker(RestartPolicy(attempts=1, interval=60 * SECOND, delay=SECOND, mode="fail"), "service",
                       Random(1))
    assert t.on_exit(5000.0, 1).decision == RESTART
    assert t.window_start == 5000.0
    assert t.on_exit(5030.0, 1).decision == NO_RESTART


def test_delay_mode_waits_for_the_window_to_end():
    t = tracker(attempts=2, interval=10 * MINUTE, mode="delay")
    t.on_exit(100.0, 1)
    t.on_exit(200.0, 1)
    third = t.on_exit(300.0, 1)
    assert third.decision == RESTART and third.reason == REASON_DELAY
    assert third.delay == pytest.approx(600.0 - 300.0)
    # Restarted when the window closed; failing after that opens a new window within policy.
    fourth = t.on_exit(601.0, 1)
    assert fourth.decision == RESTART and fourth.reason == REASON_WITHIN_POLICY and t.count == 1


def test_jitter_is_up_to_a_quarter_of_the_delay():
    t = tracker(attempts=10**6, interval=HOUR, delay=10 * SECOND, seed=7)
    delays = [t.on_exit(float(i), 1).delay for i in range(2000)]
    assert all(10.0 <= d < 12.5 for d in delays)
    assert min(delays) < 10.1 and max(delays) > 12.4  # the whole range is used
    again = tracker(attempts=10**6, interval=HOUR, delay=10 * SECOND, seed=7)
    assert [again.on_exit(float(i), 1).delay for i in range(20)] == delays[:20]


def test_batch_success_is_not_restarted_but_service_success_is():
    batch = tracker(job_type="batch")
    assert batch.on_exit(5.0, exit_code=0) == (NO_RESTART, 0.0, REASON_SUCCESS)
    assert batch.terminated
    assert tracker(job_type="sysbatch").on_exit(5.0, 0).decision == NO_RESTART
    assert tracker(job_type="batch").on_exit(5.0, 0, signal=15).decision == RESTART  # a signal is no success
    service = tracker(job_type="service")
    assert service.on_exit(5.0, exit_code=0).decision == RESTART


def test_no_attempts_allowed():
    t = tracker(attempts=0)
    assert t.on_exit(1.0, 1) == (NO_RESTART, 0.0, REASON_NO_RESTARTS_ALLOWED)
    assert not t.terminated
    assert tracker(attempts=0).on_exit(1.0, 0).decision == NO_RESTART  # a service exiting 0 fails too
    batch = tracker(attempts=0, job_type="batch")
    assert batch.on_exit(1.0, 0).decision == NO_RESTART and batch.terminated


def test_start_errors():
    assert tracker().on_start_error(1.0, recoverable=True).decision == RESTART
    assert tracker().on_start_error(1.0, recoverable=False) == (NO_RESTART, 0.0, REASON_UNRECOVERABLE_ERROR)


def test_lifecycle_hooks_change_restart_on_success():
    policy = RestartPolicy(attempts=2, interval=HOUR, delay=SECOND, mode="fail")
    assert not RestartTracker(policy, "service", Random(1), lifecycle_hook="prestart").on_success
    assert RestartTracker(policy, "batch", Random(1), lifecycle_hook="prestart", sidecar=True).on_success
    assert not RestartTracker(policy, "service", Random(1), lifecycle_hook="poststop").on_success


def test_dump_and_load_keep_the_window():
    t = tracker(attempts=1)
    t.on_exit(10.0, 1)
    other = tracker(attempts=1)
    other.load(t.dump())
    assert other.on_exit(20.0, 1).decision == NO_RESTART


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (5 * SECOND, "5s"), (90 * SECOND, "1m30s"), (30 * MINUTE, "30m0s"), (24 * HOUR, "24h0m0s"),
    (16_250_000_000, "16.25s"), (1_500_000, "1.5ms"), (2_000, "2µs"), (-SECOND, "-1s"),
])
def test_go_duration_strings(ns, text):
    assert go_duration(ns) == text


def test_rfc3339_round_trip():
    assert rfc3339(1714557600.5) == "2024-05-01T10:00:00.5Z"
    assert rfc3339(1714557600.0) == "2024-05-01T10:00:00Z"
    assert parse_rfc3339(rfc3339(1714557600.25)) == pytest.approx(1714557600.25)
