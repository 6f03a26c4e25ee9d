"""A task's shutdown_delay: Nomad waits that long after "Killing" before sending the kill signal."""


from client_fakes import Loop, RunnerBench, make_alloc, make_job

T0 = 1_700_000_000.0
S = 10**9


def delayed_job(delay_s: float = 5.0, **meta):
    job = make_job(tasks={"t": dict(meta)})
    job.task_groups[0].tasks[0].shutdown_delay = int(delay_s * S)
    return job


class Bench(RunnerBench):

    def events(self) -> list[tuple[str, str]]:
        return [(e.type, e.display_message) for e in self.runner.tasks["t"].state.events]

def test_stop_waits_for_the_shutdown_delay_before_the_kill_signal():
    bench = Bench(delayed_job(5))
    bench.advance(1)
    bench.runner.kill(bench.now)
    assert bench.events()[-2:] == [("Killing", "Sent interrupt. Waiting 5s before force killing"),
                                   ("Waiting for shutdown delay",
                                    "Waiting for shutdown_delay of 5s before killing the task.")]
    assert bench.runner.tasks["t"].state.state == "pending"
    bench.advance(4.9)
    assert len(bench.driver.running_handles()) == 1  # no signal sent yet
    bench.advance(0.2)  # the signal at 5 s; the simulated task exits 100 ms later
    assert bench.runner.tasks["t"].state.state == "dead"
    assert [e[0] for e in bench.events()[-2:]] == ["Terminated", "Killed"]
    assert bench.runner.client_status == "complete"
    assert bench.runner.tasks["t"].state.finished_at is not None


def test_task_exiting_during_its_shutdown_delay_is_dead_at_once():
    bench = Bench(delayed_job(30, sim_run_for="3s"))
    bench.advance(1)
    bench.runner.kill(bench.now)
    bench.advance(2.5)
    assert bench.runner.tasks["t"].state.state == "dead" and bench.runner.next_deadline() is None
    assert [e[0] for e in bench.events()[-2:]] == ["Terminated", "Killed"]


def test_user_restart_skips_the_shutdown_delay():
    bench = Bench(delayed_job(30))
    bench.runner.restart(bench.now)
    bench.advance(0.2)
    state = bench.runner.tasks["t"].state
    assert state.state == "running" and state.restarts == 1


def test_shutdown_delay_through_the_client_agent_and_a_client_restart():
    loop = Loop()
    loop.run_for(1)
    loop.servers.place(make_alloc("a1", delayed_job(10)))
    loop.run_for(1)
    loop.servers.set_desired("a1", "stop")
    loop.run_for(2)
    assert loop.agent.task_states("a1")["t"].events[-1].type == "Waiting for shutdown delay"
    assert len(loop.driver.running_handles()) == 1
    again = loop.restarted()
    again.run_for(7)
    assert len(again.driver.running_handles()) == 1
    again.run_for(2)
    assert again.driver.running_handles() == []
    assert again.agent.task_states("a1")["t"].state == "dead"


def test_group_shutdown_delay_comes_before_any_kill():
    job = delayed_job(1)
    job.task_groups[0].shutdown_delay = 3 * S
    bench = Bench(job)
    bench.advance(1)
    bench.runner.kill(bench.now)
    bench.advance(2.9)
    assert bench.events()[-1][0] == "Started" and bench.runner.client_status == "running"
    bench.advance(0.2)
    assert [e[0] for e in bench.events()[-2:]] == ["Killing", "Waiting for shutdown delay"]
    bench.advance(1.1)  # then the task's own delay, and 100 ms to exit
    assert bench.runner.terminal() and bench.runner.next_deadline() is None
