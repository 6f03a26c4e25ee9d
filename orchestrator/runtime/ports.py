"""The seam between the sans-IO agents (servers, clients) and the runtimes that drive them (SimPy, asyncio).

An agent never waits, sleeps, reads a clock or touches a socket. A runtime feeds it inputs (`tick`,
`receive`) stamped with `now` (unix seconds as a float: virtual in the simulator, the loop's clock plus
the wall-clock offset in the agent), then drains its output in the order etcd-io/raft's `Ready`
contract demands:

    while (ready := agent.ready()) is not None:
        agent.persist(ready)          # write what must be durable (buffered in the agent's storage port)
        <runtime makes it durable>    # fsync on disk; in the simulator, optionally after a virtual delay
        for dst, message in ready.messages:
            <runtime sends message to dst>
        agent.advance(now, ready)     # apply what is committed; may produce a further ready

and calls `tick(now)` again no later than `next_deadline()`. No input is fed between `ready()` and
`advance()`. Messages are immutable values (frozen dataclasses or dicts nobody mutates), so the
simulator may hand the same object to the receiver; the asyncio runtime encodes them as msgpack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(slots=True)
class AgentReady:
    """What one agent asks its runtime to do next: persist (agent-specific payload), then send."""

    messages: list[tuple[str, Any]] = field(default_factory=list)  # (destination agent id, message)
    persist: Any = None  # opaque to the runtime: handed back to agent.persist / agent.advance


class Agent(Protocol):
    """A sans-IO agent: a server (Raft + FSM + leader loops) or a client (registration, allocations)."""

    id: str

    def tick(self, now: float) -> None:
        """Time passed: fire whatever timers are due at `now`."""
        ...

    def receive(self, now: float, src: str, message: Any) -> None:
        """A message arrived from agent `src` (a Raft message, an RPC request or an RPC response)."""
        ...

    def ready(self) -> AgentReady | None:
        """What to persist and send now, or None when there is nothing to do."""
        ...

    def persist(self, ready: AgentReady) -> None:
        """Write `ready`'s durable state through the agent's storage port (the runtime syncs it after)."""
        ...

    def advance(self, now: float, ready: AgentReady) -> None:
        """`ready` is persisted and its messages sent: apply what is committed and move on."""
        ...

    def next_deadline(self) -> float | None:
        """The latest `now` by which the runtime must call `tick`; None when no timer is pending."""
        ...
