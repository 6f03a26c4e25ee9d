"""The alloc runner: Nomad's task events, client status, restarts, kills and deployment health."""

from dataclasses import replace
from random import Random

import pytest
from client_fakes import RunnerBench, make_job

from orchestrator.client.allocrunner import AllocRunner, client_status_of
from orchestrator.structs import SECOND
from orchestrator.structs.timefmt import go_duration, parse_rfc3339, to_ns

T0 = 1_700_000_000.0


class Bench(RunnerBench):
    """One AllocRunner on a simulated driver, stepped through virtual time."""

    def state(self, task: str = "t"):
        return self.runner.tasks[task].state

    def status(self) -> tuple[str, str]:
        return self.runner.client_status, self.runner.client_description

def test_service_start_event_sequence():
    bench = Bench(make_job())
    assert bench.events() == [("Received", "Task received by client"), ("Task Setup", "Building Task Directory"),
                              ("Started", "Task started by client")]
    assert bench.state().state == "running"
    assert parse_rfc3339(bench.state().started_at) == pytest.approx(T0)
    assert bench.status() == ("running", "Tasks are running")
    assert [e.time for e in bench.state().events] == [round(T0 * 1e9)] * 3


def test_batch_task_completes():
    bench = Bench(make_job(job_type="batch", tasks={"t": {"sim_run_for": "5s"}}))
    bench.advance(10)
    assert bench.events()[-1] == ("Terminated", "Exit Code: 0")
    assert bench.state().state == "dead" and not bench.state().failed
    assert parse_rfc3339(bench.state().finished_at) == pytest.approx(T0 + 5)
    assert bench.status() == ("complete", "All tasks have completed")
    assert bench.runner.terminal()


def test_failed_task_restarts_within_policy_then_fails():
    restart = {"Attempts": 1, "Interval": 3600 * SECOND, "Delay": 10 * SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "20s", "sim_exit_code": "2"}}, restart=restart))
    bench.advance(20)
    kind, message = bench.events()[-1]
    assert bench.events()[-2] == ("Terminated", "Exit Code: 2")
    assert kind == "Restarting" and message.startswith("Task restarting in 1")
    delay = bench.state().events[-1].start_delay / 1e9
    assert 10.0 <= delay < 12.5 and message == f"Task restarting in {go_duration(bench.state().events[-1].start_delay)}"
    assert bench.state().state == "pending" and bench.state().restarts == 1
    assert parse_rfc3339(bench.state().last_restart) == pytest.approx(T0 + 20)
    assert bench.status() == ("pending", "No tasks have started")
    bench.advance(delay)
    assert bench.events()[-1] == ("Started", "Task started by client")
    assert bench.status() == ("running", "Tasks are running")
    bench.advance(20)
    assert bench.events()[-2:] == [
        ("Terminated", "Exit Code: 2"),
        ("Not Restarting", 'Exceeded allowed attempts 1 in interval 1h0m0s and mode is "fail"')]
    assert bench.state().state == "dead" and bench.state().failed
    assert bench.status() == ("failed", "Failed tasks")
    assert [t for t, _ in bench.events()].count("Task Setup") == 1


def test_delay_mode_restart_message():
    restart = {"Attempts": 0, "Interval": 60 * SECOND, "Delay": SECOND, "Mode": "delay"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "1s"}}, restart=restart))
    bench.advance(1)
    assert bench.events()[-1] == ("Not Restarting", "Policy allows no restarts")
    restart = {"Attempts": 1, "Interval": 60 * SECOND, "Delay": SECOND, "Mode": "delay"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "1s"}}, restart=restart))
    bench.advance(1)  # restart 1 of 1, after 1-1.25 s
    bench.advance(2.5)  # second exit around T0+3.2: wait for the window opened at T0 to end
    kind, message = bench.events()[-1]
    delay = bench.state().events[-1].start_delay / 1e9
    assert kind == "Restarting" and 56.5 < delay < 57.0
    assert message == f"Exceeded allowed attempts, applying a delay - Task restarting in {go_duration(to_ns(delay))}"
    bench.advance(delay)
    assert bench.events()[-1] == ("Started", "Task started by client")


def test_stop_kills_tasks_with_nomad_events():
    bench = Bench(make_job())
    bench.advance(30)
    bench.runner.update(bench.now, replace(bench.alloc, desired_status="stop", alloc_modify_index=5))
    assert bench.events()[-1] == ("Killing", "Sent interrupt. Waiting 5s before force killing")
    killing = bench.state().events[-1]
    assert killing.kill_timeout == 5 * SECOND  # Nomad's KillTimeout, in nanoseconds
    from orchestrator.api.views import task_event_view

    assert task_event_view(killing)["KillTimeout"] == 5_000_000_000
    bench.advance(1)
    assert bench.events()[-3:] == [("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                   ("Terminated", "Exit Code: 0"), ("Killed", "Task successfully killed")]
    assert bench.state().state == "dead" and not bench.state().failed
    assert bench.status() == ("complete", "All tasks have completed")


def test_migrate_transition_stops_too():
    bench = Bench(make_job())
    alloc = replace(bench.alloc, alloc_modify_index=5)
    alloc.desired_transition = replace(alloc.desired_transition, migrate=True)
    bench.runner.update(bench.now, alloc)
    bench.advance(1)
    assert bench.status() == ("complete", "All tasks have completed")


def test_stubborn_task_is_force_killed():
    bench = Bench(make_job(tasks={"t": {"sim_stop_after": "1m"}}))
    bench.runner.kill(bench.now)
    bench.advance(6)
    assert bench.events()[-2:] == [("Terminated", "Exit Code: 137, Signal: 9"), ("Killed", "Task successfully killed")]


def test_a_failed_task_takes_its_siblings_down():
    restart = {"Attempts": 0, "Interval": 60 * SECOND, "Delay": SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"main": {}, "helper": {"sim_run_for": "3s", "sim_exit_code": "1"}},
                           restart=restart))
    bench.advance(5)
    assert bench.events("helper")[-1] == ("Not Restarting", "Policy allows no restarts")
    assert ('Sibling Task Failed', 'Task\'s sibling "helper" failed') in bench.events("main")
    assert bench.events("main")[-1] == ("Killed", "Task successfully killed")
    assert not bench.state("main").failed
    assert bench.status() == ("failed", "Failed tasks")


def test_client_status_rules():
    assert client_status_of(["running", "pending"], False) == ("running", "Tasks are running")
    assert client_status_of(["pending", "pending"], False) == ("pending", "No tasks have started")
    assert client_status_of(["dead", "running"], True) == ("failed", "Failed tasks")
    assert client_status_of(["dead", "dead"], False) == ("complete", "All tasks have completed")


def test_driver_failure_keeps_the_alloc_pending_and_retries():
    restart = {"Attempts": 2, "Interval": 3600 * SECOND, "Delay": 5 * SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"t": {"sim_start_error": "failed to pull image"}}, restart=restart))
    assert bench.events()[2] == ("Driver Failure", "failed to pull image")
    assert bench.events()[3][0] == "Restarting"
    assert bench.status() == ("pending", "No tasks have started")
    bench.advance(60)
    assert bench.state().failed and bench.status() == ("failed", "Failed tasks")


# -- deployment health --------------------------------------------------------------------------------

def test_healthy_after_min_healthy_time():
    bench = Bench(make_job(), deployment_id="dep-1")
    assert bench.runner.next_deadline() == pytest.approx(T0 + 10)  # default min_healthy_time
    bench.advance(9.9)
    assert bench.runner.deployment_status is None
    bench.advance(0.2)
    status = bench.runner.deployment_status
    assert status["Healthy"] is True and parse_rfc3339(status["Timestamp"]) == pytest.approx(T0 + 10)
    assert bench.runner.next_deadline() is None


def test_min_healthy_time_from_the_update_block_and_restarts_reset_it():
    update = {"MinHealthyTime": 30 * SECOND, "HealthyDeadline": 300 * SECOND}
    restart = {"Attempts": 3, "Interval": 3600 * SECOND, "Delay": 5 * SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "20s"}}, update=update, restart=restart),
                  deployment_id="dep-1")
    bench.advance(20 + 6.25)  # exited at 20 (service: restarted), running again by 26.25
    assert bench.runner.deployment_status is None
    started = parse_rfc3339(bench.state().started_at)
    assert bench.runner.health.healthy_at == pytest.approx(started + 30)


def test_unhealthy_when_a_task_fails_first():
    restart = {"Attempts": 0, "Interval": 60 * SECOND, "Delay": SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "3s", "sim_exit_code": "1"}}, restart=restart),
                  deployment_id="dep-1")
    bench.advance(3)
    assert bench.runner.deployment_status["Healthy"] is False
    assert bench.events()[-1] == ("Alloc Unhealthy", "Unhealthy because of failed task")


def test_unhealthy_at_the_healthy_deadline():
    update = {"MinHealthyTime": 30 * SECOND, "HealthyDeadline": 60 * SECOND}
    restart = {"Attempts": 100, "Interval": 3600 * SECOND, "Delay": SECOND, "Mode": "fail"}
    bench = Bench(make_job(tasks={"t": {"sim_run_for": "20s"}}, update=update, restart=restart),
                  deployment_id="dep-1")
    bench.advance(59)
    assert bench.runner.deployment_status is None
    bench.advance(1.5)
    assert bench.runner.deployment_status["Healthy"] is False


def test_no_health_outside_deployments_or_with_manual_checks():
    assert Bench(make_job()).runner.health is None
    bench = Bench(make_job(update={"HealthCheck": "manual"}), deployment_id="dep-1")
    bench.advance(60)
    assert bench.runner.deployment_status is None


def test_dump_and_restore_reattach():
    bench = Bench(make_job(tasks={"t": {}}), deployment_id="dep-1")
    bench.advance(3)
    dumped = bench.runner.dump()
    again = AllocRunner(bench.alloc, bench.driver, Random(9))
    again.restore(bench.now, dumped)
    assert again.tasks["t"].handle == bench.runner.tasks["t"].handle
    assert [e.type for e in again.tasks["t"].state.events] == ["Received", "Task Setup", "Started"]
    assert again.health is not None and again.next_deadline() == pytest.approx(T0 + 10)
