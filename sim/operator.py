"""The operator's seat in a simulated cluster: RPC calls to the servers as the CLI and API would make them,
retried on another server while there is no leader, exactly as an operator's script retries `job run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random
from typing import Any

from orchestrator.rpc import RpcRequest, RpcResponse
from orchestrator.runtime.ports import AgentReady

RETRYABLE = ("No cluster leader", "leadership lost", "timeout", "rpc error")


@dataclass(slots=True)
class Call:
    """One logical call; `attempts` RPCs may be sent for it before it succeeds or its deadline passes."""

    method: str
    args: dict[str, Any]
    deadline: float
    started: float
    retry_interval: float
    done: bool = False
    result: Any = None
    error: str = ""
    finished: float | None = None
    attempts: int = 0
    servers_tried: list[str] = field(default_factory=list)
    avoid: frozenset[str] = frozenset()  # servers this call must not be sent to (LAB.md polls the survivors)

    @property
    def ok(self) -> bool:
        return self.done and not self.error

    @property
    def latency(self) -> float | None:
        return None if self.finished is None else self.finished - self.started


@dataclass(slots=True)
class _Attempt:
    call: Call
    server: str
    deadline: float


class Operator:
    """A sans-IO agent that places calls on servers in turn; queue calls with `call()`, then poke the runtime."""

    def __init__(self, agent_id: str, servers: list[str], rng: Random, *, rpc_timeout: float = 5.0) -> None:
        self.id = agent_id
        self.servers = list(servers)
        self.rng = rng
        self.rpc_timeout = rpc_timeout
        self._next_server = 0
        self._seq = 0
        self._open: dict[int, _Attempt] = {}
        self._retry_at: list[tuple[float, Call]] = []
        self._outbox: list[tuple[str, Any]] = []
        self.calls: list[Call] = []
        self.now = 0.0

    def call(self, now: float, method: str, args: dict[str, Any], *, timeout: float = 60.0,
             retry_interval: float = 0.02, avoid: tuple[str, ...] = ()) -> Call:
        """Start a call now; it is retried every `retry_interval` until it succeeds or `timeout` passes."""
        self.now = now
        call = Call(method, args, deadline=now + timeout, started=now, retry_interval=retry_interval,
                    avoid=frozenset(avoid))
        self.calls.append(call)
        self._send(now, call)
        return call

    def _send(self, now: float, call: Call) -> None:
        candidates = [s for s in self.servers if s not in call.avoid] or self.servers
        server = candidates[self._next_server % len(candidates)]
        self._seq += 1
        call.attempts += 1
        call.servers_tried.append(server)
        self._open[self._seq] = _Attempt(call, server, now + self.rpc_timeout)
        self._outbox.append((server, RpcRequest(id=self._seq, src=self.id, method=call.method, args=call.args)))

    def _failed(self, now: float, call: Call, error: str) -> None:
        retryable = any(marker in error for marker in RETRYABLE)
        if not retryable or now >= call.deadline:
            call.done, call.error, call.finished = True, error, now
            return
        self._next_server += 1  # the next attempt goes to another server
        self._retry_at.append((now + call.retry_interval, call))

    # -- Agent protocol ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        self.now = now
        for request_id, attempt in list(self._open.items()):
            if attempt.deadline <= now:
                del self._open[request_id]
                self._failed(now, attempt.call, "timeout")
        due = [c for t, c in self._retry_at if t <= now]
        self._retry_at = [(t, c) for t, c in self._retry_at if t > now]
        for call in due:
            self._send(now, call)

    def receive(self, now: float, src: str, message: Any) -> None:
        self.now = now
        if not isinstance(message, RpcResponse):
            return
        attempt = self._open.pop(message.id, None)
        if attempt is None:
            return
        if message.error:
            self._failed(now, attempt.call, message.error)
        else:
            call = attempt.call
            call.done, call.result, call.finished = True, message.result, now

    def ready(self) -> AgentReady | None:
        if not self._outbox:
            return None
        out, self._outbox = self._outbox, []
        return AgentReady(messages=out)

    def persist(self, ready: AgentReady) -> None:
        return None

    def advance(self, now: float, ready: AgentReady) -> None:
        return None

    def next_deadline(self) -> float | None:
        times = [a.deadline for a in self._open.values()] + [t for t, _ in self._retry_at]
        return min(times) if times else None
