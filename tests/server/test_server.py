"""The server agent end to end over a perfect network: RPC, forwarding, blocking queries, restarts."""

from __future__ import annotations

from orchestrator.fsm.commands import decode_command
from orchestrator.jobspec import parse_job
from orchestrator.rpc import methods
from orchestrator.rpc.messages import RpcRequest
from orchestrator.structs import encode
from tests.scheduler.builders import make_node
from tests.server.loop import Loop

JOB = """
job "web" {
  datacenters = ["dc1"]
  group "g" {
    count = 2
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/sleep" }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""


def _register_node(loop: Loop, sid: str, i: int = 1):
    node = make_node(i)
    return node, loop.call(sid, methods.NODE_REGISTER, {"Node": encode(node)})


def test_a_single_server_bootstraps_elects_itself_and_schedules_a_job():
    loop = Loop(1)
    leader = loop.elect()
    assert leader.id == "s1"
    _, reply = _register_node(loop, "s1")
    assert reply is not None and not reply.error
    assert 10.0 <= reply.result["HeartbeatTTL"] <= 20.0  # min TTL 10 s plus a stagger below it
    reply = loop.call("s1", methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    assert reply is not None and not reply.error, reply
    assert reply.result["EvalID"] and reply.result["JobModifyIndex"] > 0
    loop.advance(0.5)
    allocs = leader.store.allocs_by_job("default", "web")
    assert len(allocs) == 2 and {a.desired_status for a in allocs} == {"run"}
    evaluation = leader.store.eval_by_id(reply.result["EvalID"])
    assert evaluation is not None and evaluation.status == "complete"


def test_writes_on_a_follower_are_forwarded_to_the_leader():
    loop = Loop(3)
    leader = loop.elect()
    follower = next(sid for sid in loop.ids if sid != leader.id)
    _, reply = _register_node(loop, follower)
    assert reply is not None and not reply.error and reply.leader == leader.id
    loop.advance(0.5)
    for server in loop.servers.values():
        assert server.store.node_count() == 1  # replicated everywhere


def test_without_a_leader_writes_fail_with_nomads_message():
    loop = Loop(3)
    reply = loop.call("s1", methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")}, wait=0.0)
    assert reply is not None and reply.error == "No cluster leader"


def test_bad_requests_get_reasons_and_the_server_keeps_going():
    loop = Loop(1)
    loop.elect()
    cases = [
        (methods.JOB_REGISTER, {}, "missing job"),
        (methods.JOB_REGISTER, {"Job": {"ID": "x", "TaskGroups": "nope"}}, "invalid job"),
        (methods.JOB_REGISTER, {"Job": {"ID": "", "Type": "service"}}, ""),
        (methods.NODE_UPDATE_STATUS, {"NodeID": "missing"}, "not found"),
        (methods.NODE_REGISTER, {"Node": {"ID": ""}}, "missing node ID"),
        ("Nope.Method", {}, "can't find method"),
        (methods.JOB_SCALE, {"JobID": "missing", "Group": "g", "Count": 1}, "job not found"),
    ]
    for method, args, reason in cases:
        reply = loop.call("s1", method, args)
        assert reply is not None and reply.error, (method, args)
        assert reason in reply.error
    _, reply = _register_node(loop, "s1")
    assert reply is not None and not reply.error


def test_check_index_refuses_a_stale_registration():
    loop = Loop(1)
    loop.elect()
    job = parse_job(JOB, "web.hcl")
    first = loop.call("s1", methods.JOB_REGISTER, {"Job": job, "EnforceIndex": True, "JobModifyIndex": 0})
    assert first is not None and not first.error
    again = loop.call("s1", methods.JOB_REGISTER, {"Job": job, "EnforceIndex": True, "JobModifyIndex": 0})
    assert again is not None and again.error.startswith("Enforcing job modify index 0")


def test_a_blocking_query_wakes_when_the_nodes_allocations_change():
    loop = Loop(1)
    loop.elect()
    node, _ = _register_node(loop, "s1")
    loop.queue.append(("c1", "s1", _request(9, methods.NODE_GET_CLIENT_ALLOCS,
                                           {"NodeID": node.id, "MinQueryIndex": 0, "MaxQueryTime": 300.0})))
    loop.deliver()
    assert loop.outside["c1"] == []  # parked: nothing placed on the node yet
    loop.call("s1", methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    loop.advance(0.2)
    answers = [m for m in loop.outside["c1"] if m.id == 9]
    assert len(answers) == 1 and len(answers[0].result["Allocs"]) == 2


def test_a_blocking_query_answers_when_its_wait_runs_out():
    loop = Loop(1)
    loop.elect()
    node, _ = _register_node(loop, "s1")
    loop.queue.append(("c1", "s1", _request(5, methods.NODE_GET_CLIENT_ALLOCS,
                                           {"NodeID": node.id, "MinQueryIndex": 0, "MaxQueryTime": 2.0})))
    loop.deliver()
    loop.advance(1.0)
    assert loop.outside["c1"] == []
    loop.advance(1.5)
    assert [m.id for m in loop.outside["c1"]] == [5]


def test_committed_state_survives_kill_9_of_every_server():
    loop = Loop(3)
    loop.elect()
    _register_node(loop, loop.leader().id)
    reply = loop.call(loop.leader().id, methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    assert reply is not None and not reply.error
    loop.advance(0.5)
    for sid in list(loop.servers):
        loop.crash(sid)
    for sid in loop.ids:
        loop.start(sid)
    leader = loop.elect()
    loop.advance(0.5)
    assert leader.store.job_by_id("default", "web") is not None
    assert len(leader.store.allocs_by_job("default", "web")) == 2


def test_a_missed_heartbeat_marks_the_node_down_and_moves_its_work():
    loop = Loop(1)
    loop.elect()
    node, _ = _register_node(loop, "s1", 1)
    other, _ = _register_node(loop, "s1", 2)
    loop.call("s1", methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    loop.advance(5.0)
    for _ in range(8):  # only the second node keeps heartbeating
        loop.call("s1", methods.NODE_UPDATE_STATUS, {"NodeID": other.id, "Status": "ready"})
        loop.advance(5.0)
    store = loop.leader().store
    assert store.node_by_id(node.id).status == "down"
    live = [a for a in store.allocs_by_job("default", "web") if a.desired_status == "run"]
    assert len(live) == 2 and {a.node_id for a in live} == {other.id}


def test_snapshots_wait_for_the_snapshot_interval_however_many_entries_came():
    loop = Loop(1, snapshot_threshold=5, snapshot_interval=60.0)
    loop.elect()
    for i in range(1, 12):
        _register_node(loop, "s1", i)
    server = loop.servers["s1"]
    assert server.storage.snapshot().index == 0  # the threshold is long passed, the interval is not
    loop.advance(121.0)  # past the interval, randomised up to twice it
    _register_node(loop, "s1", 12)
    assert server.storage.snapshot().index > 0


def test_snapshots_compact_the_log_and_a_restart_restores_from_them():
    loop = Loop(1, snapshot_threshold=5, snapshot_interval=0)
    loop.elect()
    for i in range(1, 8):
        _register_node(loop, "s1", i)
    server = loop.servers["s1"]
    assert server.storage.snapshot().index > 0
    loop.crash("s1")
    restarted = loop.start("s1")
    loop.elect()
    loop.advance(0.5)
    assert restarted.store.node_count() == 7


def _request(request_id: int, method: str, args: dict):
    from orchestrator.rpc import RpcRequest
    return RpcRequest(id=request_id, src="c1", method=method, args=args)


def test_a_read_after_an_acknowledged_write_sees_it_on_any_server():
    loop = Loop(3)
    leader = loop.elect()
    follower = next(sid for sid in loop.ids if sid != leader.id)
    reply = loop.call(leader.id, methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    assert reply is not None and not reply.error
    # Straight after the acknowledgement, a consistent read through a follower goes via the leader's
    # read index; a stale one answers from the follower's own state.
    read = loop.call(follower, methods.JOB_GET, {"Namespace": "default", "JobID": "web"})
    assert read is not None and not read.error and read.result["Job"]["ID"] == "web"
    assert read.result["Index"] >= reply.result["Index"]
    missing = loop.call(follower, methods.NODE_GET, {"NodeID": "nope", "AllowStale": True})
    assert missing is not None and missing.result["Node"] is None


def test_a_consistent_read_waits_for_a_leader():
    loop = Loop(3)
    reply = loop.call("s2", methods.JOB_GET, {"JobID": "web"}, wait=0.0)
    assert reply is not None and reply.error == "No cluster leader"


def test_read_index_through_a_follower_covers_every_acknowledged_write():
    loop = Loop(3)
    leader = loop.elect()
    follower = next(sid for sid in loop.ids if sid != leader.id)
    write = loop.call(leader.id, methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")})
    assert write is not None and not write.error
    reply = loop.call(follower, methods.STATUS_READ_INDEX, {})
    assert reply is not None and not reply.error
    assert reply.result["Index"] >= write.result["Index"]


def test_a_server_that_left_is_taken_out_of_the_raft_configuration():
    from orchestrator.server.messages import ServerLeft
    loop = Loop(3)
    leader = loop.elect()
    gone = next(sid for sid in loop.ids if sid != leader.id)
    leader.receive(loop.now, gone, ServerLeft(servers=(gone,)))
    loop.drain(leader.id)
    loop.advance(2.0)
    assert set(leader.raft.voters) == set(loop.ids) - {gone}
    assert loop.call(leader.id, methods.JOB_REGISTER, {"Job": parse_job(JOB, "web.hcl")}).error == ""


def test_when_the_leaders_process_dies_its_peers_elect_without_waiting_for_a_timeout():
    from orchestrator.server.messages import PeerLost
    loop = Loop(3)
    leader = loop.elect()
    loop.advance(1.0)
    loop.crash(leader.id)
    for sid, server in loop.servers.items():
        server.receive(loop.now, leader.id, PeerLost(peer=leader.id))
        loop.drain(sid)
    loop.advance(0.1)  # far less than the 1-2 s election timeout
    assert loop.leader() is not None and loop.leader().id != leader.id


def test_evaluations_scheduled_in_one_pass_finish_in_one_log_entry():
    loop = Loop(1)
    leader = loop.elect()
    _register_node(loop, "s1")
    finished: list[list[str]] = []

    class Observer:
        def on_apply(self, _server_id, entry) -> None:
            cmd = decode_command(entry.data) if entry.data else {}
            evals = [e for e in cmd.get("Evals") or [] if e.get("Status") == "complete"]
            if cmd.get("Type") == "EvalUpdate" and evals:
                finished.append([e["JobID"] for e in evals])

        def on_leader(self, *_args) -> None:
            pass

    leader.observer = Observer()
    for i in range(3):  # three registrations in one Ready (as the agent's runtime feeds what is waiting)
        job = parse_job(JOB.replace('job "web"', f'job "web{i}"'), "web.nomad")
        job["TaskGroups"][0]["Count"] = 0
        leader.receive(loop.now, "op", RpcRequest(id=100 + i, src="op", method=methods.JOB_REGISTER,
                                                  args={"Job": job}))
    loop.drain("s1")
    loop.advance(1.0)
    assert finished == [["web0", "web1", "web2"]]
