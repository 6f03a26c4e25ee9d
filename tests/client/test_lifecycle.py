"""Task lifecycle hooks on the client: prestart (init and sidecar), poststart and poststop, on the simulated
driver; Nomad's task coordinator order and its "Main Tasks Dead" stop of the sidecars."""


from client_fakes import RunnerBench, make_alloc

from orchestrator.structs import job_from_api

T0 = 1_700_000_000.0
S = 10**9


def lifecycle_job(tasks: dict[str, tuple[str, bool, dict]], *, job_type: str = "service",
                  restart: dict | None = None, update: dict | None = None):
    """tasks: name -> (hook or "", sidecar, meta)."""
    specs = []
    for name, (hook, sidecar, meta) in tasks.items():
        spec = {"Name": name, "Driver": "simulated", "Meta": meta}
        if hook:
            spec["Lifecycle"] = {"Hook": hook, "Sidecar": sidecar}
        specs.append(spec)
    group = {"Name": "g", "Count": 1, "Tasks": specs,
             "RestartPolicy": restart or {"Attempts": 0, "Interval": 60 * S, "Delay": S, "Mode": "fail"}}
    if update is not None:
        group["Update"] = update
    return job_from_api({"ID": "web", "Type": job_type, "TaskGroups": [group]})


class Bench(RunnerBench):

    def state(self, task: str) -> str:
        return self.runner.tasks[task].state.state

    def types(self, task: str) -> list[str]:
        return [e.type for e in self.runner.tasks[task].state.events]

    def started_at(self, task: str) -> float:
        return self.runner.tasks[task].started_at

def test_init_task_runs_to_completion_before_main_tasks():
    bench = Bench(lifecycle_job({"init": ("prestart", False, {"sim_run_for": "2s"}), "main": ("", False, {})}))
    assert bench.state("init") == "running" and bench.state("main") == "pending"
    assert bench.types("main") == ["Received"]  # waits for its start condition before any setup
    bench.advance(1)
    assert bench.state("main") == "pending"
    bench.advance(1.5)
    assert bench.state("init") == "dead" and not bench.runner.tasks["init"].state.failed
    assert bench.state("main") == "running" and bench.started_at("main") == T0 + 2
    assert bench.runner.client_status == "running"
    bench.advance(60)
    assert bench.types("init")[-1] == "Terminated"  # a successful init task is never restarted
    assert bench.state("main") == "running"


def test_failing_init_task_fails_the_allocation_after_its_restarts():
    job = lifecycle_job({"init": ("prestart", False, {"sim_run_for": "1s", "sim_exit_code": "3"}),
                         "main": ("", False, {})},
                        restart={"Attempts": 1, "Interval": 600 * S, "Delay": 2 * S, "Mode": "fail"})
    bench = Bench(job)
    bench.advance(2)
    assert bench.types("init")[-1] == "Restarting" and bench.state("main") == "pending"
    bench.advance(10)
    assert bench.runner.tasks["init"].state.failed and bench.types("init")[-1] == "Not Restarting"
    assert bench.state("main") == "dead" and bench.types("main") == ["Received", "Sibling Task Failed"]
    assert bench.runner.client_status == "failed"
    assert bench.driver.running_handles() == []


def test_prestart_sidecar_runs_alongside_and_is_stopped_when_main_tasks_are_dead():
    job = lifecycle_job({"proxy": ("prestart", True, {}), "main": ("", False, {"sim_run_for": "5s"}),
                         "after": ("poststart", False, {"sim_run_for": "1s"})}, job_type="batch")
    bench = Bench(job)
    # The sidecar runs at once, so the main task starts with it; the poststart task once main is running.
    assert [bench.state(t) for t in ("proxy", "main", "after")] == ["running", "running", "running"]
    bench.advance(2)
    assert bench.state("after") == "dead" and bench.state("proxy") == "running"
    bench.advance(3.05)  # main exits at 5 s; the sidecar 100 ms after its kill signal
    assert bench.state("main") == "dead"
    assert bench.types("proxy")[-2:] == ["Main Tasks Dead", "Killing"]
    assert bench.runner.tasks["proxy"].state.events[-2].display_message == "Main tasks in the group died"
    bench.advance(1)
    assert bench.state("proxy") == "dead" and bench.types("proxy")[-2:] == ["Terminated", "Killed"]
    assert not bench.runner.tasks["proxy"].state.failed
    assert bench.runner.client_status == "complete" and bench.driver.running_handles() == []


def test_poststart_waits_for_the_main_tasks_to_run():
    job = lifecycle_job({"init": ("prestart", False, {"sim_run_for": "1s"}), "main": ("", False, {}),
                         "after": ("poststart", True, {})})
    bench = Bench(job)
    assert bench.state("after") == "pending"
    bench.advance(1)
    assert bench.state("main") == "running" and bench.state("after") == "running"


def test_poststop_runs_after_the_main_tasks_finish():
    job = lifecycle_job({"main": ("", False, {"sim_run_for": "3s"}),
                         "cleanup": ("poststop", False, {"sim_run_for": "2s"})}, job_type="batch")
    bench = Bench(job)
    assert bench.state("cleanup") == "pending"
    bench.advance(3)
    assert bench.state("main") == "dead" and bench.state("cleanup") == "running"
    assert bench.runner.client_status == "running"
    bench.advance(2)
    assert bench.state("cleanup") == "dead" and bench.runner.client_status == "complete"


def test_poststop_runs_after_the_allocation_is_stopped():
    job = lifecycle_job({"proxy": ("prestart", True, {}), "main": ("", False, {}),
                         "cleanup": ("poststop", False, {"sim_run_for": "1s"})})
    bench = Bench(job)
    bench.advance(1)
    bench.runner.kill(bench.now)
    assert bench.state("cleanup") == "pending"  # not killed: it has yet to run
    bench.advance(0.1)  # main and proxy exit 100 ms after their kill signal
    assert bench.state("main") == "dead" and bench.state("proxy") == "dead"
    assert bench.state("cleanup") == "running"
    bench.advance(1)
    assert bench.runner.terminal() and bench.runner.client_status == "complete"


def test_stop_before_the_main_tasks_started():
    job = lifecycle_job({"init": ("prestart", False, {"sim_run_for": "10s"}), "main": ("", False, {})})
    bench = Bench(job)
    bench.advance(1)
    bench.runner.kill(bench.now)
    bench.advance(1)
    assert bench.state("main") == "dead" and bench.types("main") == ["Received"]
    assert bench.runner.terminal() and bench.driver.running_handles() == []


def test_deployment_health_ignores_completed_init_tasks():
    job = lifecycle_job({"init": ("prestart", False, {"sim_run_for": "1s"}), "main": ("", False, {})},
                        update={"MinHealthyTime": 2 * S, "HealthyDeadline": 60 * S})
    bench = Bench(job, deployment_id="dep-1")
    bench.advance(4)
    assert bench.runner.deployment_status is not None and bench.runner.deployment_status["Healthy"] is True


def test_client_restart_during_prestart_keeps_the_order():
    from client_fakes import Loop

    loop = Loop()
    loop.run_for(1)
    job = lifecycle_job({"init": ("prestart", False, {"sim_run_for": "3s"}), "main": ("", False, {})})
    loop.servers.place(make_alloc("a1", job))
    loop.run_for(1)
    assert loop.agent.task_states("a1")["main"].state == "pending"
    again = loop.restarted()
    again.run_for(1)
    assert again.agent.task_states("a1")["main"].state == "pending"
    again.run_for(2)
    states = again.agent.task_states("a1")
    assert states["init"].state == "dead" and states["main"].state == "running"
    assert len(again.driver.running_handles()) == 1
