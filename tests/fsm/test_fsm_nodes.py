"""Node commands: register, deregister, status, drain and eligibility, with what they unblock."""

from dataclasses import replace

import pytest
from builders import make_node
from fsm_helpers import Log, tables_of
from state_builders import make_eval

from orchestrator.fsm import commands as c
from orchestrator.structs import DrainSpec, DrainStrategy, NodeEvent

SECOND = 1_000_000_000
T0 = 1_700_000_000 * SECOND


def _with_node(**fields):
    log = Log()
    node = replace(make_node(1), **fields)
    log.ok(c.node_register(node=node, update_time=T0))
    return log, node


def test_register_a_ready_node_unblocks_its_class():
    log = Log()
    node = make_node(1)
    result = log.ok(c.node_register(node=node, update_time=T0 + 500_000_000, evals=[make_eval("e1", "sys")]))
    stored = log.store.node_by_id(node.id)
    assert stored.status_updated_at == 1_700_000_000  # Nomad keeps node times in seconds
    assert [(e.message, e.subsystem, e.timestamp, e.create_index) for e in stored.events] == [
        ("Node registered", "Cluster", "2023-11-14T22:13:20.5Z", 1)]
    assert set(result.nodes) == {node.id} and set(result.unblock_nodes) == {node.id}
    assert set(result.unblock_classes) == {node.computed_class}
    assert result.response == {"Index": 1, "NodeModifyIndex": 1, "EvalIDs": ["e1"], "EvalCreateIndex": 1}
    assert [e.id for e in result.evals] == ["e1"]


def test_an_initializing_node_unblocks_nothing():
    log = Log()
    result = log.ok(c.node_register(node=replace(make_node(1), status="initializing")))
    assert result.nodes and not result.unblock_classes and not result.unblock_nodes


def test_re_registration_keeps_what_the_servers_decided():
    log, node = _with_node(secret_id="s1")
    log.ok(c.node_drain_update(node_id=node.id, drain_strategy=DrainStrategy(DrainSpec(deadline=-1)),
                               updated_at=T0))
    log.ok(c.node_register(node=replace(node, attributes={**node.attributes, "x": "1"}), update_time=T0))
    stored = log.store.node_by_id(node.id)
    assert stored.drain_strategy is not None and stored.scheduling_eligibility == "ineligible"
    assert stored.attributes["x"] == "1" and [e.message for e in stored.events] == ["Node registered"]


def test_a_registration_with_another_secret_is_refused():
    log, node = _with_node(secret_id="s1")
    before = tables_of(log.store)
    result = log.apply(c.node_register(node=replace(node, secret_id="s2")))
    assert result.error == "node secret ID does not match. Not registering node."
    assert tables_of(log.store) == before and not result.nodes


def test_deregister_is_refused_whole_when_a_node_is_unknown():
    log, node = _with_node()
    log.ok(c.node_register(node=make_node(2)))
    before = tables_of(log.store)
    result = log.apply(c.node_deregister(node_ids=[node.id, "ghost"]))
    assert result.error == "node not found" and tables_of(log.store) == before
    result = log.ok(c.node_deregister(node_ids=[node.id, make_node(2).id]))
    assert log.store.nodes() == [] and set(result.nodes) == {node.id, make_node(2).id}


def test_status_update_to_ready_unblocks_and_down_does_not():
    log, node = _with_node(status="initializing")
    result = log.ok(c.node_status_update(node_id=node.id, status="down", updated_at=T0 + 3 * SECOND,
                                         node_event=NodeEvent(message="Node heartbeat missed", subsystem="Cluster"),
                                         evals=[make_eval("e1", "web")]))
    stored = log.store.node_by_id(node.id)
    assert (stored.status, stored.status_updated_at, stored.modify_index) == ("down", 1_700_000_003, 2)
    assert stored.events[-1].message == "Node heartbeat missed" and stored.events[-1].create_index == 2
    assert stored.events[-1].timestamp == "2023-11-14T22:13:23Z"
    assert set(result.nodes) == {node.id} and not result.unblock_classes
    assert [e.id for e in result.evals] == ["e1"]
    result = log.ok(c.node_status_update(node_id=node.id, status="ready", updated_at=T0))
    assert set(result.unblock_classes) == {node.computed_class} and set(result.unblock_nodes) == {node.id}


@pytest.mark.parametrize("node_id, status, message", [
    ("ghost", "ready", "node not found"),
    (make_node(1).id, "sleeping", "invalid status for node"),
])
def test_status_update_refusals(node_id, status, message):
    log, _ = _with_node()
    before = tables_of(log.store)
    result = log.apply(c.node_status_update(node_id=node_id, status=status, updated_at=T0,
                                            evals=[make_eval("e1")]))
    assert result.error == message and tables_of(log.store) == before


def test_node_events_are_capped_at_ten():
    log, node = _with_node()
    for i in range(12):
        log.ok(c.node_status_update(node_id=node.id, status="ready", updated_at=T0,
                                    node_event=NodeEvent(message=f"m{i}")))
    events = log.store.node_by_id(node.id).events
    assert len(events) == 10 and events[-1].message == "m11" and events[0].message == "m2"


def test_drain_starts_and_cancels_with_times_from_the_command():
    log, node = _with_node()
    result = log.ok(c.node_drain_update(node_id=node.id, drain_strategy=DrainStrategy(DrainSpec(deadline=60 * SECOND)),
                                        updated_at=T0, evals=[make_eval("e1", "web")],
                                        node_event=NodeEvent(message="Node drain strategy set")))
    stored = log.store.node_by_id(node.id)
    assert stored.scheduling_eligibility == "ineligible" and stored.drain
    assert (stored.drain_strategy.started_at, stored.drain_strategy.force_deadline) == (T0, T0 + 60 * SECOND)
    assert stored.events[-1].message == "Node drain strategy set" and not result.unblock_classes
    # The leader's drainer wakes on it: on an idle node nothing else would change to wake it.
    assert set(result.nodes) == {node.id}
    # A new strategy keeps the start of the drain it replaces.
    log.ok(c.node_drain_update(node_id=node.id, drain_strategy=DrainStrategy(DrainSpec(deadline=-1)),
                               updated_at=T0 + 9 * SECOND))
    assert log.store.node_by_id(node.id).drain_strategy.started_at == T0
    result = log.ok(c.node_drain_update(node_id=node.id, drain_strategy=None, mark_eligible=True,
                                        updated_at=T0 + 10 * SECOND))
    stored = log.store.node_by_id(node.id)
    assert stored.drain_strategy is None and stored.scheduling_eligibility == "eligible"
    assert stored.status_updated_at == 1_700_000_010
    assert set(result.unblock_classes) == {node.computed_class} and set(result.unblock_nodes) == {node.id}


def test_drain_of_an_unknown_node_is_refused():
    log, _ = _with_node()
    result = log.apply(c.node_drain_update(node_id="ghost", drain_strategy=None))
    assert result.error == "node not found"


def test_eligibility():
    log, node = _with_node()
    result = log.ok(c.node_eligibility_update(node_id=node.id, eligibility="ineligible", updated_at=T0))
    assert log.store.node_by_id(node.id).scheduling_eligibility == "ineligible" and not result.unblock_classes
    result = log.ok(c.node_eligibility_update(node_id=node.id, eligibility="eligible", evals=[make_eval("e1")]))
    assert set(result.unblock_classes) == {node.computed_class} and [e.id for e in result.evals] == ["e1"]
    result = log.ok(c.node_eligibility_update(node_id=node.id, eligibility="eligible"))
    assert not result.unblock_classes  # already eligible: nothing new to place on


@pytest.mark.parametrize("eligibility, draining, message", [
    ("maybe", False, 'invalid scheduling eligibility "maybe"'),
    ("eligible", True, "can not set node's scheduling eligibility to eligible while it is draining"),
])
def test_eligibility_refusals(eligibility, draining, message):
    log, node = _with_node()
    if draining:
        log.ok(c.node_drain_update(node_id=node.id, drain_strategy=DrainStrategy(DrainSpec(deadline=-1))))
    before = tables_of(log.store)
    result = log.apply(c.node_eligibility_update(node_id=node.id, eligibility=eligibility,
                                                 evals=[make_eval("e1")]))
    assert result.error == message and tables_of(log.store) == before


def test_node_events_may_come_as_maps_or_with_unix_nanosecond_timestamps():
    log, node = _with_node()
    log.ok(c.node_status_update(node_id=node.id, status="down", updated_at=T0,
                                node_event={"Message": "as a map", "Subsystem": "Cluster"}))
    log.ok(c.node_status_update(node_id=node.id, status="ready", updated_at=T0,
                                node_event=NodeEvent(message="ns stamp", timestamp=T0 + SECOND)))
    events = log.store.node_by_id(node.id).events
    assert [(e.message, e.timestamp) for e in events[-2:]] == [("as a map", "2023-11-14T22:13:20Z"),
                                                               ("ns stamp", "2023-11-14T22:13:21Z")]
