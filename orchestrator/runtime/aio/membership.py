"""Server discovery and failure detection by UDP gossip: what serf does for Nomad servers on port 4648."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_never,
    wait_fixed,
)

log = logging.getLogger(__name__)

ALIVE, FAILED, LEFT = "alive", "failed", "left"
# At equal incarnation the graver claim wins: a member's own word (alive) is only news with a higher number.
_RANK = {ALIVE: 0, FAILED: 1, LEFT: 2}
DEFAULT_PORT = 4648
_PROTOCOL = 1
# One datagram carries the whole member list. Server-only gossip (a region's 3 to 7 servers, a few dozen
# with federation) stays far below this; past it, sending fails loudly rather than silently truncating.
_MAX_DATAGRAM = 65_000
_RECONNECT_EVERY = 5  # every this many rounds, also gossip with a failed member, so partitions heal
_GARBAGE_LOG_EVERY = 10.0  # seconds between reports of malformed datagrams
_SYNC, _ACK, _PUSH = "sync", "ack", "push"  # push-pull request, its answer, one-way news (leave, refutation)

Listener = Callable[[list["Member"]], Any]


class JoinError(Exception):
    """retry_join ran out of attempts without any address answering."""


@dataclass(frozen=True, slots=True)
class Member:
    """One member as this node sees it. `suspect`: alive, but not heard from for `suspect_after`."""

    name: str
    addr: str
    port: int
    status: str
    tags: dict[str, str]
    incarnation: int = 0
    suspect: bool = False


@dataclass(slots=True)
class _Known:
    name: str
    addr: str
    port: int
    status: str
    tags: dict[str, str]
    incarnation: int
    heard: float = 0.0  # loop time we last heard of it directly or through a fresher incarnation
    suspect: bool = False

    def wire(self) -> list[Any]:
        return [self.name, self.addr, self.port, self.status, self.incarnation, self.tags]

    def view(self) -> Member:
        return Member(self.name, self.addr, self.port, self.status, dict(self.tags), self.incarnation, self.suspect)


@dataclass(frozen=True, slots=True)
class _Message:
    kind: str
    sender: str
    id: int
    records: list[_Known] = field(default_factory=list)


def _decode(data: bytes) -> _Message:
    """A datagram, validated field by field: anything else raises (ValueError, TypeError, msgpack's errors)."""
    msg = msgpack.unpackb(data)
    if not isinstance(msg, dict) or msg.get("v") != _PROTOCOL:
        raise ValueError("not a membership message of this protocol version")
    kind, sender, req_id, raw = msg.get("t"), msg.get("f"), msg.get("id"), msg.get("m")
    if kind not in (_SYNC, _ACK, _PUSH) or not isinstance(sender, str) or not isinstance(req_id, int):
        raise ValueError("bad message header")
    if not isinstance(raw, list):
        raise ValueError("bad member list")
    records = []
    for r in raw:
        if not isinstance(r, list) or len(r) != 6:
            raise ValueError("bad member record")
        name, addr, port, status, inc, tags = r
        if not (isinstance(name, str) and name and isinstance(addr, str) and isinstance(port, int)):
            raise ValueError("bad member identity")
        if status not in _RANK or not isinstance(inc, int) or inc < 0 or not 0 < port < 65536:
            raise ValueError("bad member state")
        if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise ValueError("bad member tags")
        records.append(_Known(name, addr, port, status, tags, inc))
    return _Message(kind, sender, req_id, records)


def parse_join_address(address: str) -> tuple[str, int]:
    """("host", port) of "host", "host:port", "[v6]" or "[v6]:port"; the port defaults to serf's 4648."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        host, port = address, ""  # a bare host, or a bare IPv6 address
    if not host or (port and not port.isdigit()):
        raise ValueError(f"membership: bad address {address!r}")
    return host, int(port) if port else DEFAULT_PORT


def raft_servers(members: Iterable[Member], region: str) -> tuple[str, ...]:
    """Raft ids ("host:rpcport") of the alive Nomad servers of `region`: a ServerJoin's `servers`."""
    ids = []
    for m in members:
        tags = m.tags
        if m.status != ALIVE or tags.get("role") != "nomad" or tags.get("region") != region or "port" not in tags:
            continue
        host = tags.get("rpc_addr") or m.addr
        ids.append(f"[{host}]:{tags['port']}" if ":" in host else f"{host}:{tags['port']}")
    return tuple(sorted(ids))


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, owner: Membership) -> None:
        self._owner = owner
        self.closed = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._owner._on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" from a peer that is down: failure detection already covers it.
        log.debug("membership: send error: %s", exc)


class Membership:
    """This node's view of the cluster, kept by push-pull gossip over UDP.

    UDP because the list is small (servers only) and fits one datagram: no connection to set up or time out
    towards a dead peer, no framing, no per-peer state; a lost datagram costs one interval, as gossip repeats.

    Each member owns its record and bumps its incarnation every round, so the number doubles as a heartbeat
    that spreads transitively: a member is fresh if we heard it directly or learnt a higher incarnation of it
    from anyone, and failure detection works even between members that seldom pick each other. A claim about
    a member with a higher incarnation replaces ours; at an equal one, the graver status wins (left > failed >
    alive). A member that hears itself claimed failed or left refutes with a higher incarnation, which is also
    how a restarted member (starting again from 0) gets back to alive.
    """

    def __init__(
        self,
        name: str,
        bind_host: str,
        bind_port: int,
        tags: dict[str, str],
        *,
        gossip_interval: float = 0.5,
        suspect_after: float = 3.0,
        fail_after: float = 6.0,
        rng: random.Random | None = None,
        advertise_host: str | None = None,
        join_timeout: float = 1.0,
    ) -> None:
        if not 0 < gossip_interval < suspect_after <= fail_after:
            raise ValueError("membership: need 0 < gossip_interval < suspect_after <= fail_after")
        if advertise_host is None and bind_host in ("", "0.0.0.0", "::"):
            raise ValueError("membership: binding to a wildcard address needs an advertise_host")
        self.name = name
        self._bind = (bind_host, bind_port)
        self._advertise = advertise_host or bind_host
        self._tags = dict(tags)
        self._interval = gossip_interval
        self._suspect_after = suspect_after
        self._fail_after = fail_after
        self._join_timeout = join_timeout
        self._rng = rng or random.Random()
        self._members: dict[str, _Known] = {}
        self._listeners: list[Listener] = []
        self._callback_tasks: set[asyncio.Future[Any]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._task: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._round = 0
        self._port = bind_port
        self._family = socket.AF_UNSPEC
        self._garbage, self._garbage_logged = 0, float("-inf")

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when bind_port was 0)."""
        return self._port

    @property
    def running(self) -> bool:
        return self._transport is not None

    async def start(self) -> None:
        if self._transport is not None:
            raise RuntimeError("membership: already started")
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(lambda: _Protocol(self), local_addr=self._bind)
        self._transport, self._protocol = transport, protocol
        self._port = transport.get_extra_info("sockname")[1]
        self._family = transport.get_extra_info("socket").family  # join resolves names to this family only
        previous = self._members.get(self.name)  # started again after a stop or a leave: a new incarnation
        inc = previous.incarnation + 1 if previous else 0
        self._members[self.name] = _Known(self.name, self._advertise, self._port, ALIVE, self._tags, inc, loop.time())
        self._task = loop.create_task(self._gossip_loop(), name=f"membership-{self.name}")
        self._notify()

    async def join(self, addresses: Sequence[str]) -> int:
        """Push-pull with each "host[:port]" address; how many answered within join_timeout."""
        self._require_running()
        loop = asyncio.get_running_loop()
        targets = []
        for address in addresses:
            try:
                host, port = parse_join_address(address)
                infos = await loop.getaddrinfo(host, port, family=self._family, type=socket.SOCK_DGRAM)
            except (ValueError, OSError) as exc:
                log.warning("membership: cannot join %s: %s", address, exc)
                continue
            targets.append(infos[0][4][:2])
        # Only our own address (a one-server cluster's retry_join lists itself): that join succeeds at once,
        # or a lone server would retry forever. With others listed, only their answers count.
        others = [t for t in targets if not (t[1] == self._port and t[0] in (self._advertise, self._bind[0]))]
        if targets and not others:
            return len(targets)
        return await self._exchange(others, self._join_timeout)

    async def retry_join(self, addresses: Sequence[str], interval: float = 30.0, max_attempts: int = 0) -> int:
        """join() until at least one address answers (Nomad's server_join retry_join, retry_interval and
        retry_max; max_attempts 0 retries forever). JoinError when the attempts run out."""

        def log_retry(state: RetryCallState) -> None:
            log.warning("membership: join %s: no answer (attempt %d), retrying in %.1fs",
                        list(addresses), state.attempt_number, interval)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(max_attempts) if max_attempts > 0 else stop_never,
            wait=wait_fixed(interval),
            retry=retry_if_result(lambda answered: answered == 0) | retry_if_exception_type(OSError),
            before_sleep=log_retry,
        )
        try:
            return await retrying(self.join, addresses)
        except RetryError as exc:
            raise JoinError(f"membership: none of {list(addresses)} answered in {max_attempts} attempts") from exc

    async def leave(self) -> None:
        """Tell the others we are leaving (they mark us left, for good unless we come back), then stop."""
        if self._transport is None:
            return
        me = self._members[self.name]
        me.status = LEFT
        me.incarnation += 1
        self._notify()
        peers = [(m.addr, m.port) for m in self._members.values() if m.name != self.name and m.status == ALIVE]
        await self._exchange(peers, min(self._join_timeout, self._fail_after))
        await self.stop()

    async def stop(self) -> None:
        """Stop at once, telling nobody (as kill -9 would): the others will find us failed."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller is being cancelled too: not ours to swallow
        if self._transport is not None and self._protocol is not None:
            self._transport.close()
            await self._protocol.closed  # the socket is really closed: the port may be bound again at once
            self._transport = self._protocol = None
        for waiter in self._waiters.values():
            waiter.cancel()
        self._waiters.clear()

    # -- the view -------------------------------------------------------------------------------------------

    def members(self) -> list[Member]:
        return [m.view() for _, m in sorted(self._members.items())]

    def on_change(self, callback: Listener) -> Callable[[], None]:
        """Call `callback(members())` whenever a member appears or changes status, suspicion, address or
        tags. A coroutine callback runs as a task. Returns a function that unsubscribes."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    def set_tags(self, tags: dict[str, str]) -> None:
        """Replace our tags; the next rounds spread them."""
        self._tags = dict(tags)
        me = self._members.get(self.name)
        if me is not None:
            me.tags = self._tags
            me.incarnation += 1
            self._notify()

    def force_leave(self, name: str) -> bool:
        """Mark a failed member left (Nomad's `server force-leave`); False unless it is known and failed."""
        member = self._members.get(name)
        if member is None or member.status != FAILED:
            return False
        member.status = LEFT  # same incarnation: left outranks failed, so gossip carries it everywhere
        self._notify()
        return True

    # -- gossip ---------------------------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._transport is None:
            raise RuntimeError("membership: not started")

    async def _gossip_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self._gossip_round()
            except Exception:  # a bug in one round must not end failure detection for good
                log.exception("membership: gossip round failed")

    def _gossip_round(self) -> None:
        now = asyncio.get_running_loop().time()
        self._members[self.name].incarnation += 1  # the heartbeat
        self._detect_failures(now)
        others = [m for m in self._members.values() if m.name != self.name]
        alive = [m for m in others if m.status == ALIVE]
        if alive:
            target = self._rng.choice(alive)
            self._send((target.addr, target.port), _SYNC)
        self._round += 1
        failed = [m for m in others if m.status == FAILED]
        if failed and self._round % _RECONNECT_EVERY == 0:
            target = self._rng.choice(failed)
            self._send((target.addr, target.port), _SYNC)

    def _detect_failures(self, now: float) -> None:
        before = self._snapshot()
        for m in self._members.values():
            if m.name == self.name or m.status != ALIVE:
                continue
            silent = now - m.heard
            if silent >= self._fail_after:
                m.status, m.suspect = FAILED, False
                log.info("membership: %s failed (silent for %.1fs)", m.name, silent)
            elif silent >= self._suspect_after:
                m.suspect = True
        self._notify_if_changed(before)

    async def _exchange(self, targets: Sequence[tuple[Any, ...]], timeout: float) -> int:
        """Push-pull with each target, resending a few times within `timeout`; how many answered."""
        self._require_running()
        loop = asyncio.get_running_loop()
        pending = {}
        for target in targets:
            self._next_id += 1
            pending[self._next_id] = (target, loop.create_future())
            self._waiters[self._next_id] = pending[self._next_id][1]
        deadline = loop.time() + timeout
        try:
            for attempt in range(3):  # datagrams get lost: ask again, but not forever
                for req_id, (target, answered) in pending.items():
                    if not answered.done():
                        self._send(target, _SYNC, req_id)
                waits = [f for _, f in pending.values() if not f.done()]
                remaining = deadline - loop.time()
                if not waits or remaining <= 0:
                    break
                await asyncio.wait(waits, timeout=remaining if attempt == 2 else min(remaining, timeout / 3))
        finally:
            for req_id in pending:
                self._waiters.pop(req_id, None)
        return sum(1 for _, f in pending.values() if f.done() and not f.cancelled())

    def _send(self, target: tuple[Any, ...], kind: str, req_id: int = 0) -> None:
        if self._transport is None:
            return
        records = [m.wire() for m in self._members.values()]
        data = msgpack.packb({"v": _PROTOCOL, "t": kind, "f": self.name, "id": req_id, "m": records})
        if len(data) > _MAX_DATAGRAM:
            log.error("membership: member list of %d bytes does not fit a datagram; not sent", len(data))
            return
        self._transport.sendto(data, target)

    def _on_datagram(self, data: bytes, source: tuple[Any, ...]) -> None:
        try:
            msg = _decode(data)
        except Exception as exc:  # whatever reaches the port, only well-formed messages count
            self._garbage += 1
            now = asyncio.get_running_loop().time()
            if now >= self._garbage_logged + _GARBAGE_LOG_EVERY:  # a flood must not flood the log too
                log.warning("membership: ignoring a malformed datagram from %s (%d since the last report): %s",
                            source[:2], self._garbage, exc)
                self._garbage, self._garbage_logged = 0, now
            return
        if msg.sender == self.name:
            return  # our own address among the join addresses: joining ourselves is no join
        before = self._snapshot()
        refuted = self._merge(msg)
        self._notify_if_changed(before)
        if msg.kind == _SYNC:
            self._send(source, _ACK, msg.id)
        else:
            if msg.kind == _ACK and (waiter := self._waiters.get(msg.id)) is not None and not waiter.done():
                waiter.set_result(None)
            if refuted:
                self._send(source, _PUSH)  # so the claim about us dies at once, not at our next round

    def _merge(self, msg: _Message) -> bool:
        """Fold the sender's records into ours; True when we had to refute a claim about ourselves."""
        now = asyncio.get_running_loop().time()
        me = self._members[self.name]
        refuted = False
        for r in msg.records:
            if r.name == self.name:
                stale = r.incarnation < me.incarnation or (r.incarnation == me.incarnation and r.status == ALIVE)
                if me.status != LEFT and not stale:
                    me.incarnation = r.incarnation + 1
                    refuted = True
                continue
            known = self._members.get(r.name)
            if known is None:
                r.heard = now
                self._members[r.name] = r
                log.info("membership: learnt of %s (%s) at %s:%d", r.name, r.status, r.addr, r.port)
                continue
            fresher = r.incarnation > known.incarnation
            if fresher or (r.incarnation == known.incarnation and _RANK[r.status] > _RANK[known.status]):
                if known.status != r.status:
                    log.info("membership: %s is %s (was %s)", r.name, r.status, known.status)
                known.addr, known.port, known.tags, known.incarnation = r.addr, r.port, r.tags, r.incarnation
                known.status = r.status
                if fresher:
                    known.heard, known.suspect = now, False
            if r.name == msg.sender and known.status == ALIVE:
                known.heard, known.suspect = now, False  # heard directly
        return refuted

    # -- change notification --------------------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[Any, ...]]:
        return [(m.name, m.addr, m.port, m.status, m.suspect, m.tags) for m in self._members.values()]

    def _notify_if_changed(self, before: list[tuple[Any, ...]]) -> None:
        if self._snapshot() != before:
            self._notify()

    def _notify(self) -> None:
        members = self.members()
        for callback in list(self._listeners):
            try:
                result = callback(members)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)  # held, so the loop cannot drop it half-way
                    task.add_done_callback(self._callback_done)
            except Exception:
                log.exception("membership: on_change callback failed")

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("membership: on_change callback failed", exc_info=task.exception())
