"""Membership on localhost: join through a seed, failure detection, leave, rejoin, retry_join, garbage."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import msgpack
import pytest

from orchestrator.runtime.aio.membership import (
    ALIVE,
    FAILED,
    LEFT,
    JoinError,
    Member,
    Membership,
    parse_join_address,
    raft_servers,
)

INTERVAL, SUSPECT, FAIL = 0.05, 0.3, 0.6
HOST = "127.0.0.1"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout=10))


def member(name: str, port: int = 0, **tags: str) -> Membership:
    return Membership(
        name, HOST, port, {"role": "nomad", "region": "global", **tags},
        gossip_interval=INTERVAL, suspect_after=SUSPECT, fail_after=FAIL, rng=random.Random(name), join_timeout=0.3,
    )


def status(m: Membership) -> dict[str, str]:
    return {x.name: x.status for x in m.members()}


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> float:
    """Seconds until `check()` holds; fails the test after `timeout`."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not check():
        if loop.time() - began > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return loop.time() - began


async def cluster(*names: str) -> list[Membership]:
    members = [member(n) for n in names]
    for m in members:
        await m.start()
    for k, m in enumerate(members[1:]):
        host = "localhost" if k % 2 else HOST  # names resolve too
        assert await m.join([f"{host}:{members[0].port}"]) == 1
    everyone = {n: ALIVE for n in names}
    await eventually(lambda: all(status(m) == everyone for m in members))
    return members


async def stop_all(members: list[Membership]) -> None:
    for m in members:
        await m.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def test_three_members_join_through_one_seed_and_all_see_three_alive() -> None:
    async def main() -> None:
        members = await cluster("a.global", "b.global", "c.global")
        for m in members:
            seen = {x.name: x for x in m.members()}
            assert seen["c.global"].port == members[2].port and seen["c.global"].tags["role"] == "nomad"
        await stop_all(members)

    run(main())


def test_a_stopped_member_becomes_suspect_then_failed_in_time() -> None:
    async def main() -> None:
        a, b, c = await cluster("a", "b", "c")
        changes: list[list[Member]] = []
        a.on_change(changes.append)
        await c.stop()
        took = await eventually(lambda: status(a)["c"] == FAILED and status(b)["c"] == FAILED, timeout=FAIL + 1)
        assert took <= FAIL + 0.5
        assert any(x.name == "c" and x.suspect for view in changes for x in view)  # suspect came first
        await asyncio.sleep(SUSPECT)
        assert status(a) == status(b) == {"a": ALIVE, "b": ALIVE, "c": FAILED}  # no false alarms meanwhile
        await stop_all([a, b])

    run(main())


def test_a_member_that_leaves_is_left_and_stays_left() -> None:
    async def main() -> None:
        a, b, c = await cluster("a", "b", "c")
        await c.leave()
        assert not c.running
        await eventually(lambda: status(a)["c"] == LEFT and status(b)["c"] == LEFT, timeout=1.0)
        await asyncio.sleep(FAIL + 0.2)  # past fail_after: left is not overwritten by failed
        assert status(a)["c"] == status(b)["c"] == LEFT
        assert not a.force_leave("c")  # only failed members can be forced out
        await stop_all([a, b])

    run(main())


@pytest.mark.parametrize("how", ["stop", "leave"])
def test_a_restarted_member_rejoins_alive(how: str) -> None:
    async def main() -> None:
        a, b, c = await cluster("a", "b", "c")
        gone = FAILED if how == "stop" else LEFT
        await getattr(c, how)()
        await eventually(lambda: status(a)["c"] == gone and status(b)["c"] == gone, timeout=FAIL + 1)
        old = {x.name: x.incarnation for x in a.members()}["c"]
        c2 = member("c", c.port)  # a new process: incarnation starts from 0 again
        await c2.start()
        assert await c2.join([f"{HOST}:{a.port}"]) == 1
        everyone = {"a": ALIVE, "b": ALIVE, "c": ALIVE}
        await eventually(lambda: status(a) == status(b) == status(c2) == everyone, timeout=1.0)
        assert {x.name: x.incarnation for x in b.members()}["c"] > old
        await stop_all([a, b, c2])

    run(main())


def test_force_leave_turns_a_failed_member_left_everywhere() -> None:
    async def main() -> None:
        a, b, c = await cluster("a", "b", "c")
        await c.stop()
        await eventually(lambda: status(a)["c"] == FAILED, timeout=FAIL + 1)
        assert a.force_leave("c") and not a.force_leave("nobody")
        await eventually(lambda: status(b)["c"] == LEFT, timeout=1.0)
        await stop_all([a, b])

    run(main())


GARBAGE: list[bytes] = [
    b"",
    b"\xc1",
    b"\xff" * 100,
    bytes(range(256)),
    msgpack.packb(42),
    msgpack.packb({"v": 99, "t": "sync", "f": "x", "id": 1, "m": []}),
    msgpack.packb({"v": 1, "t": "nonsense", "f": "x", "id": 1, "m": []}),
    msgpack.packb({"v": 1, "t": "sync", "f": 7, "id": 1, "m": []}),
    msgpack.packb({"v": 1, "t": "sync", "f": "x", "id": 1, "m": [["x", HOST, 70000, "alive", 1, {}]]}),
    msgpack.packb({"v": 1, "t": "sync", "f": "x", "id": 1, "m": [["x", HOST, 1, "zombie", 1, {}]]}),
    msgpack.packb({"v": 1, "t": "sync", "f": "x", "id": 1, "m": [["x", HOST, 1, "alive", -1, {}]]}),
    msgpack.packb({"v": 1, "t": "sync", "f": "x", "id": 1, "m": [["x", HOST, 1, "alive", 1, {"k": 1}]]}),
    msgpack.packb({"v": 1, "t": "ack", "f": "x", "id": 1, "m": [["", HOST, 1, "alive", 1, {}]]}),
    msgpack.packb({"v": 1, "t": "ack", "f": "x", "id": 1, "m": [[None] * 6]}),
    msgpack.packb({"v": 1, "t": "ack", "f": "x", "id": 1, "m": "members"}),
    msgpack.packb([[[[[[[[[[[]]]]]]]]]]]),
]


def test_garbage_datagrams_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        a, b = await cluster("a", "b")
        errors: list[Any] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for junk in GARBAGE:
                s.sendto(junk, (HOST, a.port))
        rng = random.Random(7)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(200):
                s.sendto(rng.randbytes(rng.randint(1, 300)), (HOST, a.port))
        await asyncio.sleep(0.2)
        c = member("c")
        await c.start()
        assert await c.join([f"{HOST}:{a.port}"]) == 1  # a still answers
        await eventually(lambda: all(set(status(m)) == {"a", "b", "c"} for m in (a, b, c)))
        assert set(status(a).values()) == {ALIVE} and not errors
        await stop_all([a, b, c])

    with caplog.at_level(logging.WARNING):
        run(main())
    assert "malformed datagram" in caplog.text and "gossip round failed" not in caplog.text


class Probe(asyncio.DatagramProtocol):
    """A hand-driven peer: sends crafted messages, keeps what comes back."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait(msgpack.unpackb(data))


def test_merge_rules_incarnations_and_refutation() -> None:
    async def main() -> None:
        a = member("a")
        await a.start()
        transport, probe = await asyncio.get_running_loop().create_datagram_endpoint(Probe, local_addr=(HOST, 0))
        port = transport.get_extra_info("sockname")[1]

        async def say(kind: str, *records: list[Any]) -> dict[str, Any]:
            transport.sendto(msgpack.packb({"v": 1, "t": kind, "f": "p", "id": 9, "m": list(records)}), (HOST, a.port))
            while kind == "sync":  # a gossips to p too: wait for the answer to this request
                reply = await asyncio.wait_for(probe.received.get(), 1)
                if reply["t"] == "ack" and reply["id"] == 9:
                    return reply
            await asyncio.sleep(0.05)
            return {}

        def x(status: str, inc: int) -> list[Any]:
            return ["x", HOST, 1, status, inc, {"role": "nomad"}]

        reply = await say("sync", ["p", HOST, port, ALIVE, 0, {}], x(ALIVE, 5))
        assert reply["t"] == "ack" and reply["id"] == 9 and {r[0] for r in reply["m"]} == {"a", "p", "x"}
        assert status(a)["x"] == ALIVE
        await say("push", x(FAILED, 5))  # same incarnation: the graver claim wins
        assert status(a)["x"] == FAILED
        await say("push", x(ALIVE, 5))  # ...and its own word at that number is old news
        assert status(a)["x"] == FAILED
        await say("push", x(ALIVE, 6))  # back with a higher incarnation
        assert status(a)["x"] == ALIVE
        await say("push", x(LEFT, 7), x(ALIVE, 8))
        assert status(a)["x"] == ALIVE
        mine = {m.name: m.incarnation for m in a.members()}["a"]
        reply = await say("sync", ["a", HOST, a.port, FAILED, mine + 10, {}])  # a is told it died: it refutes
        assert {r[0]: (r[3], r[4]) for r in reply["m"]}["a"] == (ALIVE, mine + 11)
        assert status(a)["a"] == ALIVE
        transport.close()
        await a.stop()

    run(main())


def test_retry_join_succeeds_once_the_seed_appears() -> None:
    async def main() -> None:
        port = free_port()
        b = member("b")
        await b.start()
        joining = asyncio.create_task(b.retry_join([f"{HOST}:{port}"], interval=0.1))
        await asyncio.sleep(0.5)  # a few attempts find nobody
        assert not joining.done()
        a = member("a", port)
        await a.start()
        assert await asyncio.wait_for(joining, 3) == 1
        await eventually(lambda: status(a) == status(b) == {"a": ALIVE, "b": ALIVE})
        with pytest.raises(JoinError):
            await b.retry_join([f"{HOST}:{free_port()}"], interval=0.05, max_attempts=2)
        await stop_all([a, b])

    run(main())


def test_on_change_takes_plain_and_coroutine_callbacks() -> None:
    async def main() -> None:
        a, b = member("a"), member("b")
        seen: list[set[str]] = []
        later: list[set[str]] = []

        async def slow(members: list[Member]) -> None:
            await asyncio.sleep(0)
            later.append({m.name for m in members})

        a.on_change(lambda ms: seen.append({m.name for m in ms}))
        unsubscribe: Callable[[], None] = a.on_change(slow)
        await a.start()
        await b.start()
        await b.join([f"{HOST}:{a.port}"])
        await eventually(lambda: {"a", "b"} in later)
        unsubscribe()
        count = len(later)
        b.set_tags({"role": "nomad", "region": "global", "build": "2"})
        await eventually(lambda: {m.name: m.tags.get("build") for m in a.members()}["b"] == "2")
        await asyncio.sleep(0.02)
        assert seen[0] == {"a"} and {"a", "b"} in seen and len(later) == count
        await stop_all([a, b])

    run(main())


def test_addresses_and_raft_ids() -> None:
    assert parse_join_address("10.0.0.1") == ("10.0.0.1", 4648)
    assert parse_join_address("nomad-1:4700") == ("nomad-1", 4700)
    assert parse_join_address("[::1]:4700") == ("::1", 4700)
    assert parse_join_address("::1") == ("::1", 4648)
    with pytest.raises(ValueError):
        parse_join_address("host:port")

    def server(name: str, status: str = ALIVE, **tags: str) -> Member:
        return Member(name, "10.0.0.9", 4648, status, {"role": "nomad", "region": "global", "port": "4647", **tags})

    members = [
        server("a.global", rpc_addr="10.0.0.1"),
        server("b.global", rpc_addr="::2"),
        server("c.global"),  # no rpc_addr tag: its gossip address
        server("d.global", FAILED, rpc_addr="10.0.0.4"),
        server("e.europe", region="europe"),
        Member("client", "10.0.0.7", 4648, ALIVE, {"role": "client"}),
    ]
    assert raft_servers(members, "global") == ("10.0.0.1:4647", "10.0.0.9:4647", "[::2]:4647")


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        Membership("a", HOST, 0, {}, gossip_interval=1.0, suspect_after=0.5)
    with pytest.raises(ValueError):
        Membership("a", "0.0.0.0", 0, {})

    async def main() -> None:
        with pytest.raises(RuntimeError):
            await member("a").join(["127.0.0.1:1"])

    run(main())


