"""The TCP transport: frames both ways, reconnects, answers for unreachable peers and broken connections."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from orchestrator.raft import Message, MessageType
from orchestrator.rpc import RpcRequest, RpcResponse
from orchestrator.runtime.aio.transport import (
    QUEUE_FULL,
    REFUSED,
    RESET,
    Outgoing,
    SendQueue,
    Transport,
    parse_address,
)
from orchestrator.runtime.aio.wire import HEADER, encode_frame
from orchestrator.testing.local_cluster import free_port


class Inbox:
    """A transport handler that takes everything addressed to `ids` and lets a test await it."""

    def __init__(self, transport: Transport, *ids: str) -> None:
        self.ids = set(ids) or {transport.local_id}
        self.queue: asyncio.Queue[tuple[str, str, Any]] = asyncio.Queue()
        transport.handler = self.take

    def take(self, src: str, dst: str, message: Any) -> bool:
        if dst not in self.ids:
            return False
        self.queue.put_nowait((src, dst, message))
        return True

    async def get(self, timeout: float = 3.0) -> tuple[str, str, Any]:
        async with asyncio.timeout(timeout):
            return await self.queue.get()


def _heartbeat(src: str, dst: str, term: int = 1) -> Message:
    return Message(type=MessageType.HEARTBEAT, src=src, dst=dst, term=term)




async def _started(port: int = 0, **options: Any) -> Transport:
    transport = Transport("127.0.0.1", port, **options)
    await transport.start()
    return transport


def test_addresses_are_told_apart_from_other_ids():
    assert parse_address("127.0.0.1:4647") == ("127.0.0.1", 4647)
    assert parse_address("[::1]:4647") == ("::1", 4647)
    assert parse_address("nomad-1.example.com:4647") == ("nomad-1.example.com", 4647)
    for not_an_address in ("2d7c8f0e-6c1a-4a8e-9a55-0e1f2b3c4d5e", "api", "api@10.0.0.1:4647", "h:0", "h:99999"):
        assert parse_address(not_an_address) is None


def test_two_transports_exchange_frames_both_ways():
    async def main() -> None:
        a, b = await _started(), await _started()
        inbox_a, inbox_b = Inbox(a), Inbox(b)
        try:
            for term in (1, 2, 3):
                a.send(b.local_id, _heartbeat(a.local_id, b.local_id, term))
            terms = [(await inbox_b.get())[2].term for _ in range(3)]
            assert terms == [1, 2, 3]  # one connection per peer keeps order
            a.send(b.local_id, RpcRequest(id=5, src=a.local_id, method="Status.Leader"))
            src, dst, request = await inbox_b.get()
            assert (src, dst, request.id) == (a.local_id, b.local_id, 5)
            b.send(a.local_id, RpcResponse(id=5, result="x"))
            src, _, response = await inbox_a.get()
            assert src == b.local_id and response == RpcResponse(id=5, result="x")
            assert a.stats.connects == 1 and b.stats.connects == 1
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_an_unreachable_peer_refuses_requests_and_swallows_raft_messages():
    async def main() -> None:
        a = await _started()
        inbox = Inbox(a, a.local_id, "api")
        dead = f"127.0.0.1:{free_port()}"
        try:
            a.send(dead, _heartbeat(a.local_id, dead))
            a.send(dead, RpcRequest(id=9, src="api", method="Job.Register"))
            src, dst, response = await inbox.get()
            assert (src, dst) == (dead, "api")
            assert response == RpcResponse(id=9, error=REFUSED)
            # While backing off, a new request is refused at once rather than after the backoff.
            a.send(dead, RpcRequest(id=10, src="api", method="Job.Register"))
            assert (await inbox.get(timeout=0.05))[2].id == 10
            a.send("not-an-address", RpcRequest(id=11, src="api", method="Job.Register"))
            assert (await inbox.get(timeout=0.05))[2] == RpcResponse(id=11, error=REFUSED)
            assert inbox.queue.empty()  # the heartbeat was dropped, nothing else answered
        finally:
            await a.close()

    asyncio.run(main())


def test_reconnects_after_the_peer_restarts_on_the_same_port():
    async def main() -> None:
        a, b = await _started(backoff_cap=0.2), await _started()
        port = b.port
        inbox_a, inbox_b = Inbox(a, a.local_id, "api"), Inbox(b)
        try:
            a.send(b.local_id, _heartbeat(a.local_id, b.local_id, 1))
            await inbox_b.get()
            await b.close()
            # A request sent while the peer is down is answered, never left waiting.
            a.send(b.local_id, RpcRequest(id=1, src="api", method="Status.Leader"))
            _, _, response = await inbox_a.get()
            assert response.error in (REFUSED, RESET)
            b = await _started(port)
            inbox_b = Inbox(b)
            for term in range(2, 200):
                a.send(b.local_id, _heartbeat(a.local_id, b.local_id, term))
                try:
                    _, _, message = await inbox_b.get(timeout=0.05)
                    break
                except TimeoutError:
                    continue
            else:
                pytest.fail("never reconnected")
            assert message.term >= 2
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_requests_in_flight_on_a_broken_connection_are_reset():
    async def main() -> None:
        a, b = await _started(), await _started()
        inbox_a, inbox_b = Inbox(a, a.local_id, "api"), Inbox(b)
        try:
            a.send(b.local_id, RpcRequest(id=1, src="api", method="Node.GetClientAllocs"))
            a.send(b.local_id, RpcRequest(id=2, src="api", method="Node.GetClientAllocs"))
            await inbox_b.get()
            await inbox_b.get()
            b.send("api", RpcResponse(id=1, result={}), src=b.local_id)  # 1 is answered, 2 stays parked
            assert (await inbox_a.get())[2].id == 1
            await b.close()
            src, dst, response = await inbox_a.get()
            assert (src, dst, response) == (b.local_id, "api", RpcResponse(id=2, error=RESET))
            assert a.stats.reset == 1
        finally:
            await a.close()

    asyncio.run(main())


def test_replies_to_a_client_go_back_over_its_own_connection():
    async def main() -> None:
        server = await _started()
        client = Transport("127.0.0.1", None, "2d7c8f0e-client")  # a client does not listen
        await client.start()
        inbox_server, inbox_client = Inbox(server), Inbox(client)
        try:
            client.send(server.local_id, RpcRequest(id=3, src=client.local_id, method="Node.Register"))
            src, _, request = await inbox_server.get()
            assert src == "2d7c8f0e-client"
            server.send(src, RpcResponse(id=request.id, result={"HeartbeatTTL": 10.0}))
            src, dst, response = await inbox_client.get()
            assert (src, dst, response.result) == (server.local_id, "2d7c8f0e-client", {"HeartbeatTTL": 10.0})
            await client.close()
            await asyncio.sleep(0.05)
            # The client is gone: a request for it is answered here, a response is dropped.
            server.send("2d7c8f0e-client", RpcResponse(id=4))
            server.send("2d7c8f0e-client", RpcRequest(id=5, src=server.local_id, method="x"))
            assert (await inbox_server.get(timeout=0.5))[2] == RpcResponse(id=5, error=REFUSED)
        finally:
            await server.close()

    asyncio.run(main())


def test_a_request_for_nobody_here_gets_a_refusal_back():
    async def main() -> None:
        a, b = await _started(), await _started()
        inbox_a = Inbox(a, "api")
        b.handler = lambda src, dst, message: False  # b's agent is gone, its transport still up
        try:
            a.send(b.local_id, RpcRequest(id=3, src="api", method="x"))
            src, dst, response = await inbox_a.get()
            assert (src, dst, response) == (b.local_id, "api", RpcResponse(id=3, error=REFUSED))
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_malformed_and_oversized_frames_close_only_that_connection():
    async def main() -> None:
        b = await _started(max_frame=1024)
        inbox_b = Inbox(b)
        try:
            for junk in (HEADER.pack(4) + b"\xc1\xc1\xc1\xc1", HEADER.pack(10**6), HEADER.pack(3) + b"\x93\x01\x02"):
                reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
                writer.write(junk)
                await writer.drain()
                async with asyncio.timeout(2):
                    assert await reader.read() == b""  # the transport hung up
                writer.close()
            assert b.stats.malformed == 3
            # A well-behaved peer is still served.
            reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
            writer.write(encode_frame("c1", b.local_id, RpcRequest(id=1, src="c1", method="x")))
            await writer.drain()
            assert (await inbox_b.get())[2].id == 1
            writer.close()
        finally:
            await b.close()

    asyncio.run(main())


def test_the_send_queue_drops_oldest_raft_messages_but_never_requests():
    async def main() -> None:
        queue = SendQueue(limit=3)
        raft = [Outgoing(b"r%d" % i, "d", droppable=True) for i in range(3)]
        request = Outgoing(b"q", "d", droppable=False, request=("api", 1))
        response = Outgoing(b"p", "d", droppable=False)
        for item in raft:
            assert queue.put(item)
        assert queue.put(request)
        assert [i.frame for i in queue.items] == [b"r1", b"r2", b"q"] and queue.dropped == 1
        assert queue.put(response) and queue.put(Outgoing(b"q2", "d", droppable=False, request=("api", 2)))
        assert [i.frame for i in queue.items] == [b"q", b"p", b"q2"]
        # Full of RPC: a request is refused (the transport answers it), a Raft message dropped, a response kept.
        assert not queue.put(Outgoing(b"q3", "d", droppable=False, request=("api", 3)))
        assert queue.put(Outgoing(b"r9", "d", droppable=True)) and len(queue.items) == 3
        assert queue.put(response) and len(queue.items) == 4
        assert [item.request for item in queue.take_requests()] == [("api", 1), ("api", 2)]
        assert not queue.items

    asyncio.run(main())
    assert QUEUE_FULL.startswith("rpc error")


def test_unencodable_messages_are_answered_not_lost():
    async def main() -> None:
        a, b = await _started(), await _started()
        inbox_a, inbox_b = Inbox(a, a.local_id, "api"), Inbox(b)
        try:
            a.send(b.local_id, RpcRequest(id=1, src="api", method="x", args={"bad": object()}))
            _, _, response = await inbox_a.get()
            assert response.id == 1 and response.error.startswith("rpc error: cannot encode")
            a.send(b.local_id, RpcResponse(id=2, result={1, 2}))  # a set: msgpack has none
            _, _, response = await inbox_b.get()
            assert response.id == 2 and response.error.startswith("rpc error")
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())
