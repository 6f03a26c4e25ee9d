"""Nodes: registration, prefix queries, status, drain and eligibility transitions."""

import pytest
from state_builders import make_node

from orchestrator.state import NODES, NotFoundError, StateError, StateStore
from orchestrator.structs import DrainSpec, DrainStrategy


def test_upsert_read_update_delete():
    store = StateStore()
    stored = store.upsert_node(5, make_node("n1", datacenter="dc1"))
    assert (stored.create_index, stored.modify_index) == (5, 5)
    store.upsert_node(7, make_node("n1", datacenter="dc2"))
    node = store.node_by_id("n1")
    assert (node.datacenter, node.create_index, node.modify_index) == ("dc2", 5, 7)
    assert store.node_count() == 1
    store.delete_node(9, "n1")
    assert store.node_by_id("n1") is None
    assert store.table_index(NODES) == 9
    with pytest.raises(NotFoundError):
        store.delete_node(10, "n1")


def test_prefix_queries_are_sorted_by_id():
    store = StateStore()
    for i, node_id in enumerate(["ab2", "ab1", "cd1"]):
        store.upsert_node(i + 1, make_node(node_id))
    assert [n.id for n in store.nodes()] == ["ab1", "ab2", "cd1"]
    assert [n.id for n in store.nodes("ab")] == ["ab1", "ab2"]
    assert [n.id for n in store.node_by_prefix("cd")] == ["cd1"]
    assert store.nodes("zz") == []


def test_status_update():
    store = StateStore()
    store.upsert_node(1, make_node("n1"))
    store.update_node_status(2, "n1", "down", 1700000000)
    node = store.node_by_id("n1")
    assert (node.status, node.status_updated_at, node.modify_index) == ("down", 1700000000, 2)
    with pytest.raises(NotFoundError):
        store.update_node_status(3, "nope", "down", 0)


def test_drain_makes_ineligible_and_undrain_can_restore_eligibility():
    store = StateStore()
    store.upsert_node(1, make_node("n1"))
    strategy = DrainStrategy(drain_spec=DrainSpec(deadline=60))
    store.update_node_drain(2, "n1", strategy, mark_eligible=False)
    node = store.node_by_id("n1")
    assert node.drain and node.drain_strategy == strategy and node.scheduling_eligibility == "ineligible"

    with pytest.raises(StateError, match="draining"):
        store.update_node_eligibility(3, "n1", "eligible")

    store.update_node_drain(3, "n1", None, mark_eligible=False)
    node = store.node_by_id("n1")
    assert not node.drain and node.drain_strategy is None and node.scheduling_eligibility == "ineligible"

    store.update_node_drain(4, "n1", strategy, mark_eligible=False)
    store.update_node_drain(5, "n1", None, mark_eligible=True)
    assert store.node_by_id("n1").scheduling_eligibility == "eligible"
    assert store.node_by_id("n1").modify_index == 5


def test_eligibility_updates():
    store = StateStore()
    store.upsert_node(1, make_node("n1"))
    store.update_node_eligibility(2, "n1", "ineligible")
    assert store.node_by_id("n1").scheduling_eligibility == "ineligible"
    store.update_node_eligibility(3, "n1", "eligible")
    assert store.node_by_id("n1").eligible()
    with pytest.raises(StateError):
        store.update_node_eligibility(4, "n1", "sometimes")
    assert store.table_index(NODES) == 3  # a refused write changes nothing


def test_reregistering_keeps_the_operators_drain_and_eligibility():
    store = StateStore()
    store.upsert_node(1, make_node("n1"))
    store.update_node_drain(2, "n1", DrainStrategy(), mark_eligible=False)
    store.upsert_node(3, make_node("n1", status="ready"))  # a client restart re-registers
    node = store.node_by_id("n1")
    assert node.drain_strategy is not None and node.scheduling_eligibility == "ineligible"
