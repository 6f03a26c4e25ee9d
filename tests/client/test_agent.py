"""The client agent against a fake server: registration, heartbeats, allocation flow, updates, restore."""

import itertools

from client_fakes import NODE_ID, FakeServers, Loop, make_alloc, make_job

from orchestrator.client.agent import ClientConfig
from orchestrator.client.rpc import CallTracker, ServerList
from orchestrator.rpc.messages import RpcResponse, methods

REGISTER = methods.NODE_REGISTER
HEARTBEAT = methods.NODE_UPDATE_STATUS
WATCH = methods.NODE_GET_CLIENT_ALLOCS
PULL = methods.ALLOC_GET_ALLOCS
UPDATE = methods.NODE_UPDATE_ALLOC


def started(loop: Loop) -> float:
    loop.run_for(1)
    assert loop.agent.registered
    return loop.now


def place(loop: Loop, alloc_id: str = "a1", **job_kwargs):
    job = make_job(**job_kwargs)
    loop.servers.place(make_alloc(alloc_id, job))
    loop.run_for(1)
    return loop.agent.allocations()[alloc_id]


def last_update(loop: Loop, alloc_id: str) -> dict:
    return next(u for _, updates in reversed(loop.servers.client_updates) for u in updates if u["ID"] == alloc_id)


# -- registration and heartbeats ---------------------------------------------------------------------

def test_register_fails_over_to_the_next_server_after_a_timeout():
    loop = Loop(FakeServers(leader="s2"))
    t0 = loop.now
    first = loop.agent.servers.primary
    loop.servers.down = {first}
    loop.run_for(15)
    registers = [(t - t0, dst) for t, dst, _ in loop.sent_of(REGISTER)]
    assert registers[0] == (0.0, first)
    assert registers[1][0] == 10.0 and registers[1][1] != first  # the client's own rpc_timeout
    assert len(registers) == 2 and loop.agent.registered
    assert loop.agent.servers.servers[-1] == first  # the failed server went to the back


def test_register_error_response_moves_on_at_once_then_backs_off():
    servers = FakeServers()
    servers.fail_methods[REGISTER] = "No cluster leader"
    loop = Loop(servers)
    t0 = loop.now
    loop.run_for(120)
    times = [t - t0 for t, _, _ in loop.sent_of(REGISTER)]
    assert times[:3] == [0.0, 0.0, 0.0]  # every server once
    assert len({dst for _, dst, _ in loop.sent_of(REGISTER)[:3]}) == 3
    # Then a round of all three after each backoff: 0.5 s doubling per round up to register_retry (15 s),
    # each plus up to as much again of stagger.
    rounds = [times[i] for i in range(0, len(times), 3)]
    assert all(times[i] == times[i + 1] == times[i + 2] for i in range(0, len(times) - 2, 3))
    gaps = [b - a for a, b in itertools.pairwise(rounds)]
    for n, gap in enumerate(gaps):
        base = min(15.0, 0.5 * 2 ** n)
        assert base <= gap <= 2 * base + 1e-9, (n, gap)
    assert gaps[0] <= 1.0 and max(gaps) >= 15.0  # ready fast when servers come up; never hammered


def test_heartbeat_every_ttl_to_the_leader():
    loop = Loop(FakeServers(leader="s3", ttl=12.0))
    t0 = started(loop)
    loop.run_for(61)
    beats = loop.sent_of(HEARTBEAT)
    assert [round(t - t0 + 1, 6) for t, _, _ in beats] == [12.0, 24.0, 36.0, 48.0, 60.0]
    assert {dst for _, dst, _ in beats} == {"s3"}
    assert beats[0][2].args == {"NodeID": NODE_ID, "Status": "ready"}
    assert loop.agent.heartbeat_ttl == 12.0


def test_failed_heartbeat_is_retried_at_once_on_the_next_server():
    loop = Loop(FakeServers(leader="s1", ttl=30.0))
    t0 = started(loop) - 1
    loop.servers.down = {"s1"}
    loop.run_for(75)
    beats = [(round(t - t0, 6), dst) for t, dst, _ in loop.sent_of(HEARTBEAT)]
    assert beats[0] == (30.0, "s1")
    assert beats[1][0] == 40.0 and beats[1][1] != "s1"  # timed out, retried at once elsewhere
    assert beats[2] == (70.0, beats[1][1])  # the TTL counts from the successful retry


def test_node_not_found_registers_again():
    loop = Loop()
    t0 = started(loop) - 1
    loop.servers.nodes.clear()  # the servers lost the node
    loop.run_for(15)
    registers = [round(t - t0, 6) for t, _, _ in loop.sent_of(REGISTER)]
    assert registers == [0.0, 10.0]
    assert loop.agent.registered and NODE_ID in loop.servers.nodes


def test_leader_and_servers_are_learned_from_responses():
    servers = FakeServers(ids=("s1", "s2"), leader="s2")
    loop = Loop(servers, config=ClientConfig(servers=["s1"]))
    started(loop)
    assert loop.agent.servers.leader == "s2"
    assert sorted(loop.agent.servers.servers) == ["s1", "s2"]


# -- allocations ---------------------------------------------------------------------------------------

def test_allocation_runs_and_stops_through_the_blocking_query():
    loop = Loop()
    started(loop)
    runner = place(loop)
    assert runner.client_status == "running"
    watches = loop.sent_of(WATCH)
    assert [w[2].args["MinQueryIndex"] for w in watches] == [0, 10, 11]
    assert loop.sent_of(PULL)[0][2].args == {"AllocIDs": ["a1"]}
    assert last_update(loop, "a1")["ClientStatus"] == "running"
    assert loop.driver.running_handles()

    loop.servers.set_desired("a1", "stop")
    loop.run_for(1)
    update = last_update(loop, "a1")
    assert update["ClientStatus"] == "complete" and update["ClientDescription"] == "All tasks have completed"
    assert [e["Type"] for e in update["TaskStates"]["t"]["Events"]][-3:] == ["Killing", "Terminated", "Killed"]
    assert not loop.driver.running_handles()

    loop.servers.gc("a1")
    loop.run_for(1)
    assert "a1" not in loop.agent.allocations()
    assert "a1" not in loop.store.allocs


def test_migrating_allocation_is_stopped():
    loop = Loop()
    started(loop)
    place(loop)
    loop.servers.set_desired("a1", "run", migrate=True)
    loop.run_for(1)
    assert last_update(loop, "a1")["ClientStatus"] == "complete"


def test_allocation_the_servers_forget_is_stopped_then_forgotten():
    loop = Loop()
    started(loop)
    place(loop)
    updates = len(loop.servers.client_updates)
    loop.servers.gc("a1")
    loop.run_for(1)
    assert "a1" not in loop.agent.allocations() and not loop.driver.running_handles()
    assert len(loop.servers.client_updates) == updates  # nothing to report about an allocation gone


def test_stopped_allocation_never_started():
    loop = Loop()
    started(loop)
    loop.servers.place(make_alloc("a1", make_job()))
    loop.servers.set_desired("a1", "stop")
    loop.run_for(1)
    assert "a1" not in loop.agent.allocations() and not loop.driver.running_handles()
    pulls = len(loop.sent_of(PULL))
    loop.servers.place(make_alloc("a2", make_job()))
    loop.run_for(1)
    assert loop.sent_of(PULL)[pulls:][0][2].args == {"AllocIDs": ["a2"]}  # a1 is not pulled again


def test_changes_within_the_interval_go_in_one_update():
    loop = Loop()
    started(loop)
    place(loop, "a1")
    place(loop, "a2")
    before = len(loop.sent_of(UPDATE))
    t = loop.now
    loop.servers.set_desired("a1", "stop")
    loop.servers.set_desired("a2", "stop")  # Killing now, Terminated + Killed 100 ms later, for both
    loop.run_for(2)
    sent = loop.sent_of(UPDATE)[before:]
    assert len(sent) == 1
    assert round(sent[0][0] - t, 6) == 0.2
    assert {u["ID"]: u["ClientStatus"] for u in sent[0][2].args["Alloc"]} == {"a1": "complete", "a2": "complete"}


def test_failed_updates_are_kept_and_sent_again_merged():
    loop = Loop()
    started(loop)
    loop.servers.fail_methods[UPDATE] = "rpc error: No cluster leader"
    place(loop)
    loop.servers.set_desired("a1", "stop")
    loop.run_for(2)
    assert loop.servers.client_updates == []
    del loop.servers.fail_methods[UPDATE]
    loop.run_for(20)
    assert len(loop.servers.client_updates) == 1
    (update,) = loop.servers.client_updates[0][1]
    assert update["ClientStatus"] == "complete"
    assert [e["Type"] for e in update["TaskStates"]["t"]["Events"]] == [
        "Received", "Task Setup", "Started", "Killing", "Terminated", "Killed"]


def test_killed_task_is_restarted_per_policy():
    loop = Loop()
    started(loop)
    place(loop)
    (handle,) = loop.driver.running_handles()
    loop.driver.kill(loop.now, handle)
    loop.run_for(1)
    events = last_update(loop, "a1")["TaskStates"]["t"]["Events"]
    assert [(e["Type"], e["DisplayMessage"]) for e in events[-2:-1]] == [("Terminated", "Exit Code: 137, Signal: 9")]
    assert events[-1]["Type"] == "Restarting"
    assert last_update(loop, "a1")["ClientStatus"] == "pending"
    loop.run_for(20)  # the default service delay: 15 s plus up to 25%
    update = last_update(loop, "a1")
    assert update["ClientStatus"] == "running" and update["TaskStates"]["t"]["Restarts"] == 1
    assert len(loop.driver.running_handles()) == 1


def test_deployment_health_is_reported():
    loop = Loop()
    started(loop)
    job = make_job()
    loop.servers.place(make_alloc("a1", job, deployment_id="dep-1"))
    t = loop.now
    loop.run_for(12)
    health = [(round(ts - t, 1), u["DeploymentStatus"]) for ts, updates in loop.servers.client_updates
              for u in updates if u["DeploymentStatus"]]
    assert health[0][0] == 10.2 and health[0][1]["Healthy"] is True


# -- restore -------------------------------------------------------------------------------------------

def test_restart_of_the_agent_reattaches_to_running_tasks():
    loop = Loop()
    started(loop)
    place(loop, "a1")
    place(loop, "a2", job_type="batch", tasks={"t": {"sim_run_for": "30s"}})
    handles = sorted(loop.driver.running_handles())
    loop.run_for(5)
    again = loop.restarted()
    again.run_for(1)
    agent = again.agent
    assert sorted(agent.allocations()) == ["a1", "a2"]
    assert sorted(again.driver.running_handles()) == handles
    assert [e.type for e in agent.task_states("a1")["t"].events] == ["Received", "Task Setup", "Started"]
    assert again.sent_of(WATCH)[0][2].args["MinQueryIndex"] == loop.agent.alloc_index
    assert again.sent_of(PULL) == []
    again.run_for(30)  # the batch task finishes under the new agent
    assert last_update(again, "a2")["ClientStatus"] == "complete"
    again.servers.set_desired("a1", "stop")
    again.run_for(1)
    assert last_update(again, "a1")["ClientStatus"] == "complete" and not again.driver.running_handles()


def test_machine_crash_starts_tasks_again():
    loop = Loop()
    started(loop)
    place(loop)
    again = loop.restarted(crash=True)
    again.run_for(1)
    assert len(again.driver.running_handles()) == 1
    assert [e.type for e in again.agent.task_states("a1")["t"].events][-1] == "Started"


# -- plumbing ------------------------------------------------------------------------------------------

def test_late_responses_are_ignored():
    calls = CallTracker("c1")
    call = calls.send(0.0, "heartbeat", "s1", HEARTBEAT, {}, timeout=10.0)
    assert calls.next_deadline() == 10.0
    assert calls.expired(10.0) == [call]
    assert calls.answer(RpcResponse(id=call.id, result={})) is None
    assert calls.next_deadline() is None
    second = calls.send(11.0, "heartbeat", "s2", HEARTBEAT, {}, timeout=10.0)
    assert second.id == call.id + 1
    assert [r.id for _, r in calls.take_outbox()] == [call.id, second.id]


def test_server_list_prefers_the_leader_for_writes_and_rotates_failures():
    from random import Random

    servers = ServerList(["s1", "s2", "s3"], Random(3))
    primary = servers.primary
    servers.learn(0.0, "s2", None)
    assert servers.target(HEARTBEAT) == "s2" and servers.target(WATCH) == primary
    servers.failed(1.0, "s2", hold=20.0)
    assert servers.leader == "" and servers.servers[-1] == "s2"
    servers.learn(2.0, "s2", None)  # a follower still names the dead leader: not believed for a while
    assert servers.leader == ""
    servers.learn(30.0, "s2", None)
    assert servers.leader == "s2"


def test_idle_client_is_cheap():
    loop = Loop(FakeServers(ttl=10.0))
    started(loop)
    place(loop)
    sent = len(loop.sent)
    loop.run_for(3600)
    methods_sent = [m.method for _, _, m in loop.sent[sent:]]
    assert methods_sent.count(HEARTBEAT) == 360
    assert methods_sent.count(WATCH) <= 13  # one blocking query per max_query_time
    assert len(methods_sent) <= 375
    assert loop.agent.next_deadline() <= loop.now + 10.0
