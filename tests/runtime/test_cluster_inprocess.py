"""Three real servers in one process over real TCP on 127.0.0.1: election, forwarding, failover, bad frames."""

from __future__ import annotations

import asyncio
import time
from random import Random

import pytest

from orchestrator.agent.handle import RpcError
from orchestrator.jobspec import parse_job
from orchestrator.raft import MemoryStorage
from orchestrator.rpc import methods
from orchestrator.runtime.aio import AioRuntime, LocalCaller, Transport
from orchestrator.runtime.aio.wire import HEADER
from orchestrator.server.config import ServerConfig
from orchestrator.server.messages import ServerJoin
from orchestrator.server.server import Server

pytestmark = pytest.mark.slow

JOB = """
job "%s" {
  datacenters = ["dc1"]
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/sleep" }
    }
  }
}
"""


class Node:
    """One server "process": its transport, runtime, Server agent and the API's LocalCaller."""

    def __init__(self, transport: Transport, runtime: AioRuntime, server: Server, caller: LocalCaller) -> None:
        self.transport, self.runtime, self.server, self.caller = transport, runtime, server, caller
        self.id = server.id
        self.alive = True

    async def kill(self) -> None:
        """As a kill -9: the agent stops, every connection closes, nothing is said to anyone."""
        self.alive = False
        await self.runtime.stop()
        await self.transport.close()


async def _start_cluster(size: int = 3) -> list[Node]:
    loop = asyncio.get_running_loop()
    transports = [Transport("127.0.0.1", 0) for _ in range(size)]
    for transport in transports:
        await transport.start()
    nodes = []
    for i, transport in enumerate(transports):
        runtime = AioRuntime(loop, transport)
        config = ServerConfig(id=transport.local_id, bootstrap_expect=size)
        server = Server(config, MemoryStorage(), Random(f"inprocess/{i}"), runtime.now())
        runtime.add_agent(server)
        nodes.append(Node(transport, runtime, server, LocalCaller(runtime, f"api-{transport.port}")))
    # Discovery: each server tells the others about itself, over the wire, as `server join` would.
    for node in nodes:
        for other in nodes:
            if other is not node:
                node.runtime.send(node.id, other.id, ServerJoin(servers=(node.id,)))
    return nodes


async def _stop_cluster(nodes: list[Node]) -> None:
    for node in nodes:
        if node.alive:
            await node.kill()


async def _wait_for_leader(nodes: list[Node], timeout: float = 10.0) -> Node:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [node for node in nodes if node.alive and node.server.is_leader]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.01)
    raise AssertionError("no leader elected")


async def _register(node: Node, name: str, timeout: float = 10.0) -> dict:
    """Job.Register through `node`'s local caller, retrying what a real API client would retry."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await node.caller.call(node.id, methods.JOB_REGISTER, {"Job": parse_job(JOB % name, "j.hcl")},
                                          timeout=5.0)
        except RpcError as exc:
            if not (exc.no_leader or str(exc).startswith("rpc error")) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _has_job(node: Node, name: str) -> bool:
    return node.server.store.job_by_id("default", name) is not None


async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_three_servers_elect_forward_and_fail_over(record_property):
    async def main() -> None:
        started = time.monotonic()
        nodes = await _start_cluster()
        try:
            leader = await _wait_for_leader(nodes)
            elected = time.monotonic() - started
            print(f"\nleader {leader.id} elected {elected:.2f}s after start")
            record_property("election_seconds", round(elected, 3))
            assert all(node.server.leader_id() == leader.id for node in nodes if node.server.leader_id())

            follower = next(node for node in nodes if node is not leader)
            t0 = time.monotonic()
            reply = await _register(follower, "web")  # the follower forwards to the leader over TCP
            print(f"Job.Register through a follower answered in {1000 * (time.monotonic() - t0):.1f}ms")
            assert reply["EvalID"] and reply["Index"] > 0
            await _until(lambda: all(_has_job(node, "web") for node in nodes))

            killed = time.monotonic()
            await leader.kill()
            survivors = [node for node in nodes if node.alive]
            new_leader = await _wait_for_leader(survivors)
            failover = time.monotonic() - killed
            print(f"new leader {new_leader.id} elected {failover:.2f}s after the old one was killed")
            record_property("failover_seconds", round(failover, 3))
            assert new_leader is not leader

            survivor = next(node for node in survivors if node is not new_leader)
            reply = await _register(survivor, "api")
            assert reply["EvalID"]
            await _until(lambda: all(_has_job(node, "api") for node in survivors))
            for node in survivors:
                assert not node.runtime.runners[node.id].task.done()
        finally:
            await _stop_cluster(nodes)

    asyncio.run(main())


def test_a_malformed_frame_does_not_stop_a_server():
    async def main() -> None:
        nodes = await _start_cluster()
        try:
            leader = await _wait_for_leader(nodes)
            target = next(node for node in nodes if node is not leader)
            for junk in (b"\x00\x00\x00\x05hello", HEADER.pack(2**31), HEADER.pack(2) + b"\x92\xc1",
                         b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
                reader, writer = await asyncio.open_connection("127.0.0.1", target.transport.port)
                writer.write(junk)
                await writer.drain()
                async with asyncio.timeout(2.0):
                    assert await reader.read() == b""  # the bad connection, and only it, was closed
                writer.close()
            assert target.transport.stats.malformed == 4
            assert not target.runtime.runners[target.id].task.done()
            reply = await _register(target, "after-junk")
            assert reply["EvalID"]
            assert (await _wait_for_leader(nodes)) is leader  # nothing else was disturbed
        finally:
            await _stop_cluster(nodes)

    asyncio.run(main())
