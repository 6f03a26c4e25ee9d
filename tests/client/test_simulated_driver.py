"""The simulated driver: workloads from meta, seeded distributions, stop, kill and recovery."""

from random import Random
from statistics import mean

import pytest
from client_fakes import make_alloc, make_job

from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.drivers.simulated import KILLED_EXIT_CODE, SimulatedDriver, parse_run_for, workload_for


def start(driver, meta=None, *, job_type="service", now=0.0, alloc_id="a1", group_meta=None):
    job = make_job(job_type=job_type, tasks={"t": meta or {}}, group_meta=group_meta)
    alloc = make_alloc(alloc_id, job)
    return driver.start(now, alloc, job.task_groups[0].tasks[0])


def test_defaults_service_runs_forever_batch_runs_ten_seconds():
    driver = SimulatedDriver(Random(1))
    service = start(driver)
    assert driver.next_deadline() is None
    batch = start(driver, job_type="batch")
    assert driver.next_deadline() == 10.0
    assert driver.poll(9.9) == []
    assert driver.poll(10.0) == [TaskExit(batch, exit_code=0, failed=False)]
    assert driver.poll(11.0) == []  # each exit is reported once
    assert driver.running_handles() == [service]


def test_fixed_run_and_exit_code():
    driver = SimulatedDriver(Random(1))
    handle = start(driver, {"sim_run_for": "30s", "sim_exit_code": "3"})
    assert driver.next_deadline() == 30.0
    assert driver.poll(30.0) == [TaskExit(handle, exit_code=3, failed=True)]


def test_run_for_specs():
    assert parse_run_for("forever") == ("forever", 0.0, 0.0)
    assert parse_run_for("1m30s") == ("fixed", 90.0, 0.0)
    assert parse_run_for("exp:30s") == ("exp", 30.0, 0.0)
    assert parse_run_for("uniform:10s:1m") == ("uniform", 10.0, 60.0)
    with pytest.raises(ValueError):
        parse_run_for("uniform:10s")
    with pytest.raises(ValueError):
        parse_run_for("soon")


def _run_times(seed, spec, n=2000):
    driver = SimulatedDriver(Random(seed))
    times = []
    for i in range(n):
        start(driver, {"sim_run_for": spec}, alloc_id=f"a{i}")
        times.append(driver.next_deadline())
        driver.kill_all(0.0)
        driver.poll(0.0)
    return times


def test_exponential_and_uniform_distributions_from_a_seed():
    exp = _run_times(3, "exp:30s")
    assert mean(exp) == pytest.approx(30.0, rel=0.1)
    assert _run_times(3, "exp:30s", n=50) == exp[:50]  # same seed, same runs
    uni = _run_times(4, "uniform:10s:60s")
    assert all(10.0 <= t <= 60.0 for t in uni)
    assert mean(uni) == pytest.approx(35.0, rel=0.05)


def test_fail_probability():
    driver = SimulatedDriver(Random(5))
    handles = [start(driver, {"sim_run_for": "5s", "sim_fail_probability": "0.3"}, alloc_id=f"a{i}")
               for i in range(1000)]
    exits = driver.poll(5.0)
    assert len(exits) == len(handles)
    failed = [e for e in exits if e.failed]
    assert all(e.exit_code == 1 for e in failed)
    assert 250 < len(failed) < 350


def test_workload_keys_fall_back_to_group_and_job_meta():
    job = make_job(tasks={"t": {"sim_exit_code": "2"}}, group_meta={"sim_run_for": "exp:5s", "sim_exit_code": "9"})
    workload = workload_for(make_alloc("a", job), job.task_groups[0].tasks[0])
    assert (workload.kind, workload.a, workload.exit_code) == ("exp", 5.0, 2)


def test_stop_exits_after_a_short_delay_or_is_force_killed_at_the_timeout():
    driver = SimulatedDriver(Random(1))
    graceful = start(driver, alloc_id="a1")
    stubborn = start(driver, {"sim_stop_after": "1m"}, alloc_id="a2")
    driver.stop(100.0, graceful, kill_timeout=5.0)
    driver.stop(100.0, stubborn, kill_timeout=5.0)
    assert driver.next_deadline() == pytest.approx(100.1)
    assert driver.poll(100.1) == [TaskExit(graceful)]
    assert driver.poll(105.0) == [TaskExit(stubborn, KILLED_EXIT_CODE, 9, failed=True)]
    assert driver.running_handles() == []


def test_stop_does_not_delay_an_earlier_natural_exit():
    driver = SimulatedDriver(Random(1))
    handle = start(driver, {"sim_run_for": "10s", "sim_stop_after": "1m"})
    driver.stop(9.0, handle, kill_timeout=5.0)
    assert driver.poll(10.0) == [TaskExit(handle)]


def test_kill_is_a_kill_minus_nine():
    driver = SimulatedDriver(Random(1))
    a, b = start(driver, alloc_id="a1"), start(driver, alloc_id="a2")
    assert driver.kill(50.0, a)
    assert not driver.kill(50.0, a)
    assert driver.next_deadline() == 50.0
    assert driver.poll(50.0) == [TaskExit(a, exit_code=137, signal=9, failed=True)]
    assert driver.kill_all(60.0) == 1
    assert [e.handle for e in driver.poll(60.0)] == [b]


def test_recover_knows_its_own_tasks_only():
    driver = SimulatedDriver(Random(1))
    handle = start(driver)
    assert driver.recover(10.0, handle)
    assert not SimulatedDriver(Random(1)).recover(10.0, handle)  # the machine's driver state is gone


def test_start_errors():
    driver = SimulatedDriver(Random(1))
    with pytest.raises(DriverError) as err:
        start(driver, {"sim_start_error": "image not found"})
    assert err.value.recoverable and str(err.value) == "image not found"
    with pytest.raises(DriverError) as err:
        start(driver, {"sim_run_for": "whenever"})
    assert not err.value.recoverable
