"""A minimal synchronous runtime for server tests: instant delivery, a manual clock, an outside caller."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from random import Random
from typing import Any

from orchestrator.raft import MemoryStorage
from orchestrator.rpc import RpcRequest, RpcResponse
from orchestrator.server.config import ServerConfig
from orchestrator.server.messages import ServerJoin
from orchestrator.server.server import Server

EPOCH = 1_790_000_000.0


class Loop:
    """Servers on a perfect network; messages to ids that are not servers land in `outside[id]`."""

    def __init__(self, count: int = 1, seed: int = 0, **options: Any) -> None:
        self.now = EPOCH
        self.ids = [f"s{i + 1}" for i in range(count)]
        self.disks = {sid: MemoryStorage() for sid in self.ids}
        self.options = options
        self.seed = seed
        self.servers: dict[str, Server] = {}
        self.cut: set[str] = set()  # servers nobody can reach
        self.queue: deque[tuple[str, str, Any]] = deque()
        self.outside: dict[str, list[Any]] = defaultdict(list)
        self._ids = itertools.count(1)
        for sid in self.ids:
            self.start(sid)

    def start(self, sid: str) -> Server:
        config = ServerConfig(id=sid, bootstrap_expect=len(self.ids), **self.options)
        server = Server(config, self.disks[sid], Random(f"{self.seed}/{sid}/{len(self.servers)}"), self.now)
        self.servers[sid] = server
        server.receive(self.now, sid, ServerJoin(servers=tuple(self.ids)))
        self.drain(sid)
        return server

    def crash(self, sid: str) -> None:
        """kill -9: the object is gone, its MemoryStorage (the disk) stays."""
        del self.servers[sid]

    def drain(self, sid: str) -> None:
        server = self.servers.get(sid)
        if server is None:
            return
        while (ready := server.ready()) is not None:
            server.persist(ready)
            for dst, message in ready.messages:
                self.queue.append((sid, dst, message))
            server.advance(self.now, ready)

    def deliver(self) -> None:
        while self.queue:
            src, dst, message = self.queue.popleft()
            if src in self.cut or dst in self.cut:
                continue
            server = self.servers.get(dst)
            if server is None:
                if dst not in self.ids:
                    self.outside[dst].append(message)
                continue
            server.receive(self.now, src, message)
            self.drain(dst)

    def advance(self, seconds: float, step: float = 0.05) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for sid, server in list(self.servers.items()):
                deadline = server.next_deadline()
                if deadline is not None and deadline <= self.now:
                    server.tick(self.now)
                    self.drain(sid)
            self.deliver()

    def leader(self) -> Server | None:
        leaders = [s for s in self.servers.values() if s.is_leader]
        return max(leaders, key=lambda s: s.raft.term) if leaders else None

    def elect(self, timeout: float = 10.0) -> Server:
        waited = 0.0
        while self.leader() is None and waited < timeout:
            self.advance(0.1)
            waited += 0.1
        leader = self.leader()
        assert leader is not None, "no leader elected"
        return leader

    def call(self, sid: str, method: str, args: dict[str, Any], *, caller: str = "op",
             wait: float = 5.0) -> RpcResponse | None:
        """Send one request to server `sid`; the response, or None if none came within `wait` seconds."""
        request_id = next(self._ids)
        self.queue.append((caller, sid, RpcRequest(id=request_id, src=caller, method=method, args=args)))
        self.deliver()
        waited = 0.0
        while True:
            for message in self.outside[caller]:
                if isinstance(message, RpcResponse) and message.id == request_id:
                    self.outside[caller].remove(message)
                    return message
            if waited >= wait:
                return None
            self.advance(0.05)
            waited += 0.05
