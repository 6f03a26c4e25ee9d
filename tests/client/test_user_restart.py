"""A user-requested restart (`yurt alloc restart`): stopped with the kill signal, started again at once,
counted in Restarts but not against the restart policy."""


from client_fakes import Loop, RunnerBench, make_alloc, make_job

from orchestrator.client.agent import RestartTask

T0 = 1_700_000_000.0


Bench = RunnerBench


def test_restart_stops_and_starts_again_at_once_without_a_policy_attempt():
    bench = Bench(make_job(restart={"Attempts": 1, "Interval": 1800 * 10**9, "Delay": 15 * 10**9, "Mode": "fail"}))
    bench.advance(1)
    (old,) = bench.driver.running_handles()
    assert bench.runner.restart(bench.now, "t") == ["t"]
    assert bench.events()[-1] == ("Restart Signaled", "User requested restart")
    bench.advance(0.1)  # the simulated task exits 100 ms after its kill signal
    assert bench.events()[-3:] == [("Terminated", "Exit Code: 0"), ("Restarting", "Task restarting in 0s"),
                                   ("Started", "Task started by client")]
    runner = bench.runner.tasks["t"]
    assert runner.state.state == "running" and runner.state.restarts == 1 and not runner.state.failed
    assert bench.driver.running_handles() != [old] and len(bench.driver.running_handles()) == 1
    assert runner.tracker.count == 0  # no attempt of the policy used
    # Restarting again and again never exhausts a policy of one attempt.
    for _ in range(3):
        assert bench.runner.restart(bench.now) == ["t"]
        bench.advance(1)
    assert runner.state.state == "running" and runner.state.restarts == 4
    assert bench.runner.client_status == "running"


def test_restart_uses_the_kill_timeout():
    bench = Bench(make_job(tasks={"t": {"sim_stop_after": "1h"}}))
    bench.runner.tasks["t"].kill_timeout = 2.0
    bench.runner.restart(bench.now)
    bench.advance(1.9)
    assert bench.events()[-1][0] == "Restart Signaled"
    bench.advance(0.2)
    assert [e[0] for e in bench.events()[-3:]] == ["Terminated", "Restarting", "Started"]
    assert bench.events()[-3][1] == "Exit Code: 137, Signal: 9"


def test_restart_of_every_running_task_and_of_tasks_not_running():
    bench = Bench(make_job(job_type="batch", tasks={"a": {}, "b": {"sim_run_for": "1s"}}))
    bench.advance(2)  # b completed
    assert bench.runner.tasks["b"].dead
    assert bench.runner.restart(bench.now, "b") == []
    assert bench.runner.restart(bench.now, "nope") == []
    assert bench.runner.restart(bench.now) == ["a"]
    assert bench.runner.restart(bench.now, "a") == []  # already restarting
    bench.advance(1)
    assert bench.runner.tasks["a"].state.restarts == 1 and bench.runner.tasks["b"].state.restarts == 0


def test_stop_during_a_restart_kills_for_good():
    bench = Bench(make_job())
    bench.runner.restart(bench.now)
    bench.runner.kill(bench.now + 0.01)
    bench.advance(1)
    assert [e[0] for e in bench.events()[-4:]] == ["Restart Signaled", "Killing", "Terminated", "Killed"]
    assert bench.runner.tasks["t"].dead and bench.driver.running_handles() == []
    assert bench.runner.client_status == "complete"


def test_client_agent_restart_input_is_reported_to_the_servers():
    loop = Loop()
    loop.run_for(1)
    loop.servers.place(make_alloc("a1", make_job()))
    loop.run_for(1)
    loop.agent.receive(loop.now, "agent", RestartTask("a1"))
    loop.run_for(1)
    assert loop.agent.restart_task(loop.now, "missing") == []
    (update,) = [u for _, updates in loop.servers.client_updates[-1:] for u in updates]
    state = update["TaskStates"]["t"]
    assert [e["Type"] for e in state["Events"]][-4:] == ["Restart Signaled", "Terminated", "Restarting", "Started"]
    assert state["Events"][-4]["Details"]["restart_reason"] == "User requested restart"
    assert state["State"] == "running" and state["Restarts"] == 1 and update["ClientStatus"] == "running"


def test_restart_survives_a_client_restart_while_stopping():
    loop = Loop()
    loop.run_for(1)
    loop.servers.place(make_alloc("a1", make_job(tasks={"t": {"sim_stop_after": "3s"}})))
    loop.run_for(1)
    assert loop.agent.restart_task(loop.now, "a1", "t") == ["t"]
    loop.run_for(0.5)
    again = loop.restarted()
    again.run_for(5)
    state = again.agent.task_states("a1")["t"]
    assert state.state == "running" and state.restarts == 1
    assert len(again.driver.running_handles()) == 1
