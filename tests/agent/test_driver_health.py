"""Drivers are fingerprinted again periodically: a driver turning unhealthy (an engine stopped) or healthy
again re-registers the node with what changed, and a check that changes nothing sends nothing."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from orchestrator.agent.agent import Agent
from orchestrator.client import NodeChanged
from orchestrator.client.fingerprint import with_drivers
from orchestrator.drivers.registry import DriverSet
from orchestrator.structs import DriverInfo, Node


class Engine:
    """A driver whose health follows a switch, as docker's follows its engine."""

    name = "docker"

    def __init__(self) -> None:
        self.up = True

    def fingerprint(self) -> DriverInfo:
        if self.up:
            return DriverInfo(attributes={"driver.docker.version": "20.10"}, detected=True, healthy=True,
                              health_description="Healthy")
        return DriverInfo(detected=True, healthy=False, health_description="engine unreachable")


def _node(drivers: DriverSet) -> Node:
    infos, attributes = drivers.fingerprint()
    return Node(id="n1", name="c1", drivers=infos, attributes={"kernel.name": "linux", **attributes})


def test_with_drivers_ignores_the_time_of_the_check_and_keeps_other_attributes():
    engine = Engine()
    drivers = DriverSet([engine])
    node = _node(drivers)
    assert with_drivers(node, *drivers.fingerprint()) is None  # only update_time differs
    engine.up = False
    changed = with_drivers(node, *drivers.fingerprint())
    assert changed is not None and not changed.drivers["docker"].healthy
    assert changed.attributes["kernel.name"] == "linux" and "driver.docker.version" not in changed.attributes
    assert changed.computed_class == changed.compute_class()


def test_refingerprint_registers_the_node_again_only_when_it_changed():
    engine = Engine()
    drivers = DriverSet([engine])
    sent: list[object] = []
    agent = Agent.__new__(Agent)  # only what _refingerprint reads: its drivers, client and runtime
    agent.name = "a"
    agent.drivers = drivers
    agent.client = SimpleNamespace(id="n1", node=_node(drivers))
    agent.runtime = SimpleNamespace(deliver=lambda src, dst, message: sent.append(message))
    preparer = SimpleNamespace(node=None)

    asyncio.run(agent._refingerprint(preparer))
    assert sent == []
    engine.up = False
    asyncio.run(agent._refingerprint(preparer))
    (message,) = sent
    assert isinstance(message, NodeChanged) and not message.node.drivers["docker"].healthy
    assert preparer.node is message.node  # tasks prepared from now on see the new node
