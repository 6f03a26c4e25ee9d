"""After an election the new leader's heartbeat bound covers every TTL the old leader handed out."""

from __future__ import annotations

from orchestrator.rpc import methods
from orchestrator.structs import encode
from tests.scheduler.builders import make_node
from tests.server.loop import Loop


def test_a_new_leader_never_arms_a_live_node_before_its_ttl_plus_grace_with_many_nodes_down():
    # 2 heartbeats/s: 40 nodes scale the base TTL to 20 s, so a TTL may reach 40 s.
    loop = Loop(3, max_heartbeats_per_second=2.0)
    old = loop.elect()
    nodes = [make_node(i) for i in range(40)]
    for node in nodes:
        assert not loop.call(old.id, methods.NODE_REGISTER, {"Node": encode(node)}).error
    for node in nodes[10:]:  # 30 go down; their records stay
        assert not loop.call(old.id, methods.NODE_UPDATE_STATUS, {"NodeID": node.id, "Status": "down"}).error
    longest = 0.0
    for node in nodes[:10]:
        reply = loop.call(old.id, methods.NODE_UPDATE_STATUS, {"NodeID": node.id, "Status": "ready"})
        longest = max(longest, reply.result["HeartbeatTTL"])
    assert longest > 30.0
    beat_at = loop.now  # no later than any of those heartbeats
    loop.crash(old.id)
    new = loop.elect()
    grace = new.config.heartbeat_grace
    for node in nodes[:10]:
        deadline = new.leader.heartbeats.deadline(node.id)
        assert deadline is not None and deadline >= beat_at + longest + grace, node.id
