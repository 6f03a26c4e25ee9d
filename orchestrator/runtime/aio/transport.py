"""TCP transport on asyncio streams: frames to and from other agents by id, with reconnects and bounded queues."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import re
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.rpc.messages import RpcRequest, RpcResponse

from . import wire

log = logging.getLogger(__name__)

REFUSED = "rpc error: connection refused"
RESET = "rpc error: connection reset"
QUEUE_FULL = "rpc error: send queue full"

# Delivers an inbound frame: (src, dst, message) -> whether a local agent or caller took it.
Handler = Callable[[str, str, Any], bool]

_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_MAX_IN_FLIGHT = 65_536  # per peer; callers time out long before, this only bounds memory
# A peer whose host died without a reset shows no EOF: keepalive notices an idle connection (15 + 3 x 5 s) and
# TCP_USER_TIMEOUT one with unacknowledged data (30 s), as yamux's 30 s keepalive does in Nomad.
_TCP_OPTIONS = (("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 3), ("TCP_USER_TIMEOUT", 30_000))


def parse_address(agent_id: str) -> tuple[str, int] | None:
    """(host, port) when `agent_id` is a server address like "10.0.0.1:4647" or "[::1]:4647", else None."""
    match = _ADDRESS.match(agent_id)
    if match is None:
        return None
    port = int(match.group(2))
    if not 0 < port < 65536:
        return None
    return match.group(1).strip("[]"), port


def _tune(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in _TCP_OPTIONS:
            option = getattr(socket, name, None)  # Linux has them all; others may lack some
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


@dataclass(slots=True)
class Outgoing:
    """An encoded frame waiting to be written. `request` is (src, id) for an RpcRequest: never lost silently."""

    frame: bytes
    dst: str
    droppable: bool  # Raft messages and joins: Raft retransmits, so losing some under load is safe
    request: tuple[str, int] | None = None


class SendQueue:
    """A bounded FIFO of frames for one connection; when full it evicts the oldest droppable frame."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: deque[Outgoing] = deque()
        self.wake = asyncio.Event()
        self.dropped = 0

    def put(self, item: Outgoing) -> bool:
        """Queue `item`; False when it was refused (only a request is ever refused, and the caller answers it)."""
        if len(self.items) >= self.limit:
            victim = next((i for i, queued in enumerate(self.items) if queued.droppable), None)
            if victim is not None:
                del self.items[victim]
                self.dropped += 1
            elif item.droppable:
                self.dropped += 1
                return True
            elif item.request is not None:
                return False
            # A response is queued over the limit: its caller is waiting, and the responses a peer can owe
            # are bounded by the requests it sent us.
        self.items.append(item)
        self.wake.set()
        return True

    def take_requests(self) -> list[Outgoing]:
        """Empty the queue; the requests that were in it, for their callers to be answered."""
        requests = [item for item in self.items if item.request is not None]
        self.dropped += sum(1 for item in self.items if item.droppable)
        self.items.clear()
        return requests


class Backoff:
    """Exponential backoff with jitter between reconnects, so restarted peers are not stampeded."""

    def __init__(self, base: float = 0.05, cap: float = 2.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt = min(self.attempt + 1, 30)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


@dataclass(slots=True)
class TransportStats:
    sent: int = 0          # frames queued for writing
    received: int = 0      # frames decoded and handed to the handler
    refused: int = 0       # requests answered here with connection refused (or queue full, unencodable)
    reset: int = 0         # requests answered here with connection reset
    malformed: int = 0     # connections closed for a bad frame
    connects: int = 0      # outbound connections established


class _Link:
    """One TCP connection: a reader task delivering frames, and a writer loop draining a SendQueue."""

    def __init__(self, transport: Transport, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 queue: SendQueue, peer: _Peer | None) -> None:
        self.transport = transport
        self.reader, self.writer = reader, writer
        self.queue = queue
        self.peer = peer  # set on our outbound connection to a server address
        self.name = str(writer.get_extra_info("peername"))
        _tune(writer)
        self.clients: set[str] = set()  # non-address src ids whose replies go back over this link
        self.servers: set[str] = set()  # server addresses whose frames came over this link
        self.closed = False

    async def serve(self) -> None:
        """Run until the connection breaks or is closed."""
        reading = asyncio.create_task(self._read_loop())
        try:
            await self._write_loop()
        finally:
            self.close()
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        self.queue.wake.set()  # the writer loop may be waiting for something to send
        self.transport._link_closed(self)

    async def _read_loop(self) -> None:
        transport, reader, max_size = self.transport, self.reader, self.transport.max_frame
        try:
            while True:
                length = wire.frame_length(await reader.readexactly(wire.HEADER.size), max_size=max_size)
                frame = wire.decode_payload(await reader.readexactly(length))
                transport._on_frame(self, frame)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                log.warning("connection %s closed mid-frame (%d bytes read)", self.name, len(exc.partial))
            transport._peers_gone(self)  # the other side closed: its process stopped or dropped us
        except wire.WireError as exc:
            transport.stats.malformed += 1
            log.warning("malformed frame from %s, closing the connection: %s", self.name, exc)
        except OSError as exc:
            log.debug("connection %s broke: %s", self.name, exc)
            transport._peers_gone(self)
        finally:
            self.close()

    async def _write_loop(self) -> None:
        queue, writer, peer = self.queue, self.writer, self.peer
        while not self.closed:
            if not queue.items:
                queue.wake.clear()
                await queue.wake.wait()
                continue
            if writer.is_closing():
                return
            frames = []
            while queue.items:
                item = queue.items.popleft()
                frames.append(item.frame)
                if item.request is not None and peer is not None:
                    peer.track(item.request)
            writer.write(b"".join(frames))  # one send for everything queued: a syscall per frame dominated
            try:
                # A peer that stopped reading (hung, or its host died without a reset) must not hold our
                # queue forever: give up on the connection, and its requests get their reset.
                async with asyncio.timeout(self.transport.write_timeout):
                    await writer.drain()
            except (OSError, TimeoutError) as exc:
                log.debug("writing to %s failed: %r", self.name, exc)
                return


class _Peer:
    """The outbound side towards one server address: its queue survives reconnects."""

    def __init__(self, transport: Transport, address: str, host: str, port: int) -> None:
        self.transport = transport
        self.address, self.host, self.port = address, host, port
        self.queue = SendQueue(transport.queue_limit)
        self.backoff = Backoff(transport.backoff_base, transport.backoff_cap)
        self.retry_at = 0.0  # loop time before which a connect is known to fail: refuse requests at once
        self.in_flight: dict[tuple[str, int], None] = {}  # requests written and not yet answered
        self.link: _Link | None = None
        self.task: asyncio.Task | None = None

    def put(self, item: Outgoing) -> None:
        transport = self.transport
        if item.request is not None and self.link is None and transport._loop.time() < self.retry_at:
            transport._answer_request(self.address, item.request, REFUSED)
            return
        if not self.queue.put(item):
            transport._answer_request(self.address, item.request, QUEUE_FULL)  # type: ignore[arg-type]
            return
        if self.task is None or self.task.done():
            self.task = transport._loop.create_task(self._run(), name=f"yurt-peer-{self.address}")

    def source(self) -> tuple[str, int] | None:
        """Connect from our listen address when both ends are loopback addresses: agents side by side on
        127.0.0.x then show who they are to the kernel, so a firewall rule can partition them (the scenario
        suites do). Elsewhere the kernel picks the source, as it would for Nomad."""
        listen = self.transport.listen_host
        try:
            both = ipaddress.ip_address(listen).is_loopback and ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return None
        return (listen, 0) if both and listen != self.host else None

    def track(self, request: tuple[str, int]) -> None:
        if len(self.in_flight) >= _MAX_IN_FLIGHT:
            del self.in_flight[next(iter(self.in_flight))]
        self.in_flight[request] = None

    async def _run(self) -> None:
        try:
            await self._connect_and_serve()
        except Exception:
            # A bug, not a network failure: say so; the next send starts a fresh task.
            log.exception("connection manager for %s failed", self.address)

    async def _connect_and_serve(self) -> None:
        transport = self.transport
        while True:
            while not self.queue.items:
                self.queue.wake.clear()
                await self.queue.wake.wait()
            try:
                async with asyncio.timeout(transport.connect_timeout):
                    reader, writer = await asyncio.open_connection(self.host, self.port,
                                                                   local_addr=self.source())
            except (OSError, TimeoutError) as exc:
                delay = self.backoff.next()
                self.retry_at = transport._loop.time() + delay
                log.debug("cannot connect to %s (%r); retrying in %.2fs", self.address, exc, delay)
                # Raft's queued messages are stale by the next attempt; the requests' callers want an answer.
                for item in self.queue.take_requests():
                    transport._answer_request(self.address, item.request, REFUSED)  # type: ignore[arg-type]
                await asyncio.sleep(delay)
                continue
            self.backoff.reset()
            self.retry_at = 0.0
            transport.stats.connects += 1
            link = self.link = _Link(transport, reader, writer, self.queue, self)
            transport._links.add(link)
            try:
                await link.serve()
            finally:
                self.link = None
                in_flight, self.in_flight = list(self.in_flight), {}
                if not transport._closing:
                    for request in in_flight:
                        transport._answer_request(self.address, request, RESET, reset=True)


class Transport:
    """Frames between this process's agents and everyone else's. Set `handler` (the runtime does) before start.

    A server's id is its RPC address "host:port" (Raft protocol 2 in Nomad 1.0 uses addresses as server ids),
    so sending to a server means connecting to its id. Other peers (clients, API callers) have ids that are
    not addresses: they connect to us, and what is addressed to them goes back over the connection they
    came on. Every connection carries frames both ways. Each destination address gets one outbound
    connection, opened on the first send and reopened with backoff after it breaks.

    RPC runs over TCP, so its callers never wait for nothing: a request to a peer that cannot be reached is
    answered here with "connection refused", and one in flight on a connection that breaks with "connection
    reset" (the errors the simulator's network gives).
    """

    def __init__(self, listen_host: str = "127.0.0.1", listen_port: int | None = 0, local_id: str | None = None, *,
                 max_frame: int = wire.MAX_FRAME, queue_limit: int = 4096, connect_timeout: float = 2.0,
                 write_timeout: float = 10.0, backoff_base: float = 0.05, backoff_cap: float = 2.0) -> None:
        self.listen_host = listen_host
        self.listen_port = listen_port  # None: do not listen (a client-only agent dials its servers)
        self._local_id = local_id
        self.max_frame = max_frame
        self.queue_limit = queue_limit
        self.connect_timeout = connect_timeout
        self.write_timeout = write_timeout
        self.backoff_base, self.backoff_cap = backoff_base, backoff_cap
        self.handler: Handler | None = None
        # Called with a server address whose connection the other end closed (its process went away).
        self.on_peer_lost: Callable[[str], None] | None = None
        self.stats = TransportStats()
        self._server: asyncio.AbstractServer | None = None
        self._port: int | None = None
        self._peers: dict[str, _Peer] = {}
        self._clients: dict[str, _Link] = {}
        self._links: set[_Link] = set()
        self._accepted: set[asyncio.Task] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # bound in start()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("transport is not listening")
        return self._port

    @property
    def local_id(self) -> str:
        """This process's default frame src: the given id, else the listen address once started."""
        if self._local_id is not None:
            return self._local_id
        return f"{self.listen_host}:{self.port}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.listen_port is None:
            return
        self._server = await asyncio.start_server(self._accept, self.listen_host, self.listen_port)
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("transport %s listening on %s:%d", self.local_id, self.listen_host, self._port)

    def send(self, dst: str, message: Any, *, src: str | None = None) -> None:
        """Queue `message` from agent `src` to agent `dst`. Never blocks or raises on I/O.

        `src` defaults to a request's own src, else to local_id."""
        if src is None:
            src = message.src if isinstance(message, RpcRequest) else self.local_id
        request = (src, message.id) if isinstance(message, RpcRequest) else None
        try:
            frame = wire.encode_frame(src, dst, message, max_size=self.max_frame)
        except wire.WireError as exc:
            log.error("cannot send %s to %s: %s", type(message).__name__, dst, exc)
            if request is not None:
                self._answer_request(dst, request, f"rpc error: {exc}")
            elif isinstance(message, RpcResponse):
                # The caller is waiting: tell it what went wrong rather than let it time out.
                self.send(dst, RpcResponse(id=message.id, error=f"rpc error: {exc}", index=message.index,
                                           leader=message.leader), src=src)
            return
        item = Outgoing(frame, dst, droppable=not isinstance(message, (RpcRequest, RpcResponse)), request=request)
        self.stats.sent += 1
        link = self._clients.get(dst)
        if link is not None:
            if not link.queue.put(item) and request is not None:
                self._answer_request(dst, request, QUEUE_FULL)
            return
        address = parse_address(dst)
        if address is None or self._closing:
            log.debug("no route to %s for %s", dst, type(message).__name__)
            if request is not None:
                self._answer_request(dst, request, REFUSED)
            return
        peer = self._peers.get(dst)
        if peer is None:
            peer = self._peers[dst] = _Peer(self, dst, *address)
        peer.put(item)

    async def close(self) -> None:
        """Stop listening, drop every connection and cancel reconnects; nothing is answered after this."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        tasks = [peer.task for peer in self._peers.values() if peer.task is not None]
        for task in tasks:
            task.cancel()
        for link in list(self._links):
            link.close()
        tasks.extend(self._accepted)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        self._peers.clear()
        self._clients.clear()

    # -- inbound ----------------------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.close()
            return
        task = asyncio.current_task()
        if task is not None:
            self._accepted.add(task)
        link = _Link(self, reader, writer, SendQueue(self.queue_limit), None)
        self._links.add(link)
        try:
            await link.serve()
        except Exception:
            log.exception("connection %s failed", link.name)
        finally:
            self._accepted.discard(task)  # type: ignore[arg-type]

    def _on_frame(self, link: _Link, frame: wire.Frame) -> None:
        self.stats.received += 1
        src, dst, message = frame.src, frame.dst, frame.message
        if parse_address(src) is None:
            if self._clients.get(src) is not link:
                self._clients[src] = link  # the newest connection from a client is the one it listens on
                link.clients.add(src)
        elif src not in link.servers:
            link.servers.add(src)
        if isinstance(message, RpcResponse):
            peer = self._peers.get(src)
            if peer is not None:
                peer.in_flight.pop((dst, message.id), None)
        try:
            taken = self.handler is not None and self.handler(src, dst, message)
        except Exception:
            log.exception("handler failed on %s from %s to %s", type(message).__name__, src, dst)
            return
        if not taken and isinstance(message, RpcRequest):
            # Nobody here by that id (its agent stopped): what a host without the process would say.
            self.send(src, RpcResponse(id=message.id, error=REFUSED), src=dst)

    def _peers_gone(self, link: _Link) -> None:
        """A connection closed from the other end: tell the runtime which servers were behind it."""
        if self._closing or self.on_peer_lost is None:
            return
        gone = set(link.servers)
        if link.peer is not None:
            gone.add(link.peer.address)
        for address in sorted(gone):
            try:
                self.on_peer_lost(address)
            except Exception:
                log.exception("on_peer_lost failed for %s", address)

    def _link_closed(self, link: _Link) -> None:
        self._links.discard(link)
        for client in link.clients:
            if self._clients.get(client) is link:
                del self._clients[client]
        if link.peer is None and not self._closing:
            # Requests we were sending to a client over its own connection: that connection is gone.
            for item in link.queue.take_requests():
                self._answer_request(item.dst, item.request, RESET, reset=True)  # type: ignore[arg-type]

    def _answer_request(self, dst: str, request: tuple[str, int], error: str, *, reset: bool = False) -> None:
        """Answer a request we sent (src, id) to `dst` on the remote's behalf: the caller must not wait forever."""
        if reset:
            self.stats.reset += 1
        else:
            self.stats.refused += 1
        src, request_id = request
        if self.handler is None:
            return
        try:
            self.handler(dst, src, RpcResponse(id=request_id, error=error))
        except Exception:
            log.exception("handler failed on a synthesized %r for request %d", error, request_id)
