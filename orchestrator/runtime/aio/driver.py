"""The asyncio runtime: drives sans-IO agents in real time, the twin of the SimPy runtime in sim/runtime.py."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from orchestrator.rpc.messages import RpcRequest, RpcResponse
from orchestrator.runtime.ports import Agent

from .transport import REFUSED, Transport

log = logging.getLogger(__name__)

Endpoint = Callable[[str, Any], None]  # (src, message): how a local agent or caller takes a message
_EARLY = 1e-3  # tick when the deadline is this close: early ticks are allowed, and loop timers may fire early


class AgentCrashed(Exception):
    """An agent failed outside `receive` (a bug or a broken disk) and was stopped; the cause is chained."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agent {agent_id} stopped on a fatal error")
        self.agent_id = agent_id


class AgentRunner:
    """One agent's inbox, timer and task. `deliver` may be called from any code on the loop's thread."""

    def __init__(self, runtime: AioRuntime, agent: Agent, sync: Callable[[], None] | None, blocking_sync: bool):
        self.runtime = runtime
        self.agent = agent
        self.id = agent.id
        self.sync = sync
        self.blocking_sync = blocking_sync
        self.inbox: deque[tuple[str, Any]] = deque()
        self.wake = asyncio.Event()
        self.steps = 0
        self.ticks = 0
        self.rejected = 0  # inputs whose receive raised
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.task: asyncio.Task = runtime.loop.create_task(self._run(), name=f"yurt-agent-{self.id}")

    def deliver(self, src: str, message: Any) -> None:
        self.inbox.append((src, message))
        self.wake.set()

    async def _run(self) -> None:
        try:
            await self._drain()
            while True:
                if self.inbox:
                    # Inputs are waiting already: still let the loop run others (an agent sending to itself
                    # must not starve the transport).
                    await asyncio.sleep(0)
                else:
                    self._arm()
                    self.wake.clear()
                    await self.wake.wait()
                self._feed()
                await self._drain()
        except Exception:  # not CancelledError: stop() is no failure
            log.critical("agent %s failed; stopping it", self.id, exc_info=True)
            raise
        finally:
            self._disarm()

    def _feed(self) -> None:
        """Tick if due, then feed every waiting input; the caller drains once after, so they share a Ready."""
        agent, runtime = self.agent, self.runtime
        now = runtime.now()
        deadline = agent.next_deadline()
        if deadline is not None and now + _EARLY >= deadline:
            self.ticks += 1
            agent.tick(now)
        inbox = self.inbox
        while inbox:
            src, message = inbox.popleft()
            try:
                agent.receive(now, src, message)
            except Exception:
                self.rejected += 1
                log.exception("agent %s rejected %s from %s: %.500r", self.id, type(message).__name__, src, message)

    async def _drain(self) -> None:
        agent, runtime, sync = self.agent, self.runtime, self.sync
        while (ready := agent.ready()) is not None:
            agent.persist(ready)
            if sync is not None:
                if self.blocking_sync:
                    await asyncio.to_thread(sync)  # inputs arriving meanwhile wait in the inbox
                else:
                    sync()
            self.steps += 1
            for dst, message in ready.messages:
                runtime.send(self.id, dst, message)
            agent.advance(runtime.now(), ready)
            if self.inbox or sync is not None:
                # What arrived during the fsync (and a tick that came due) joins the next Ready.
                self._feed()

    def _arm(self) -> None:
        """Keep one loop timer for the agent's next deadline (on the loop's clock)."""
        deadline = self.agent.next_deadline()
        if deadline == self._timer_at:
            return
        self._disarm()
        if deadline is not None:
            self._timer = self.runtime.loop.call_at(deadline - self.runtime.offset, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        # Forget the fired timer: if the tick leaves the deadline where it was (it came a hair early), the
        # same deadline must be armed again.
        self._timer, self._timer_at = None, None
        self.wake.set()

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, None


class AioRuntime:
    """Runs agents on one event loop; routes their messages to local endpoints or over `transport`.

    Each agent gets one task. Inputs (messages from the transport, local agents and local callers) go into
    its inbox; the task feeds them, runs the Ready loop of `orchestrator.runtime.ports` and sleeps until the
    agent's next deadline or the next input: persist, sync() (the fsync, in a thread), send, advance. While
    the fsync runs, inputs wait in the inbox and are all fed after `advance`, so they share the next Ready (a
    group commit); nothing is fed between `ready()` and `advance()`.

    Failures. An exception from `receive` is the agent rejecting one input: it is logged with the input and
    the agent keeps running, because no peer or client may crash a server by what it sends. An exception
    from `tick`, `ready`, `persist`, the sync, the send or `advance` is fatal: the agent's own state or its
    disk is broken, and carrying on could acknowledge writes that are not durable or apply a log out of
    order (a safety violation). The agent's task logs it and ends with it, the agent is unregistered
    (requests to it are refused from then on) and `wait()` raises AgentCrashed, so the process can exit and
    be restarted from its disk.

    Everything here runs on the loop's thread: from another thread, use loop.call_soon_threadsafe.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, transport: Transport | None = None) -> None:
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        # Agents read unix seconds, but must never see time go back (NTP steps the wall clock): take the wall
        # clock's offset from the loop's monotonic clock once, and count on the monotonic clock after.
        self.offset = time.time() - self.loop.time()
        self.transport = transport
        self.runners: dict[str, AgentRunner] = {}
        self._endpoints: dict[str, Endpoint] = {}
        self._done: asyncio.Future[None] = self.loop.create_future()
        if transport is not None:
            transport.handler = self.deliver

    def now(self) -> float:
        """Unix seconds as the agents see them: monotonic, from the loop's clock plus a fixed offset."""
        return self.loop.time() + self.offset

    def add_agent(self, agent: Agent, *, sync: Callable[[], None] | None = None,
                  blocking_sync: bool = True) -> AgentRunner:
        """Start driving `agent`. `sync` makes what `persist` wrote durable (an fsync); it runs in a worker
        thread unless `blocking_sync` is False (a sync that returns at once)."""
        if agent.id in self._endpoints:
            raise ValueError(f"agent {agent.id!r} already added")
        runner = AgentRunner(self, agent, sync, blocking_sync)
        self.runners[agent.id] = runner
        self._endpoints[agent.id] = runner.deliver
        runner.task.add_done_callback(lambda task, r=runner: self._agent_ended(r, task))
        return runner

    def register(self, endpoint_id: str, endpoint: Endpoint) -> None:
        """Receive what is sent to `endpoint_id` (a LocalCaller's mailbox): endpoint(src, message)."""
        if endpoint_id in self._endpoints:
            raise ValueError(f"endpoint {endpoint_id!r} already registered")
        self._endpoints[endpoint_id] = endpoint

    def unregister(self, endpoint_id: str) -> None:
        self._endpoints.pop(endpoint_id, None)

    def is_local(self, endpoint_id: str) -> bool:
        return endpoint_id in self._endpoints

    def deliver(self, src: str, dst: str, message: Any) -> bool:
        """Hand `message` to local agent or caller `dst`; False when there is none (the transport's handler)."""
        endpoint = self._endpoints.get(dst)
        if endpoint is None:
            return False
        endpoint(src, message)
        return True

    def wake(self, agent_id: str) -> None:
        """Make agent `agent_id` look at its deadlines now: something outside its inputs changed (a driver
        recorded a task's exit, due at once). A no-op when no such agent runs. On the loop's thread only."""
        runner = self.runners.get(agent_id)
        if runner is not None:
            runner.wake.set()

    def send(self, src: str, dst: str, message: Any) -> None:
        """Route a message: to a local endpoint by reference (messages are immutable), else over the network."""
        if self.deliver(src, dst, message):
            return
        if self.transport is not None:
            self.transport.send(dst, message, src=src)
        elif isinstance(message, RpcRequest):
            self.deliver(dst, src, RpcResponse(id=message.id, error=REFUSED))

    async def stop(self) -> None:
        """Cancel every agent's task and wait for them; a step in its fsync is abandoned (as in a crash)."""
        runners = list(self.runners.values())
        for runner in runners:
            self._endpoints.pop(runner.id, None)
            runner.task.cancel()
        await asyncio.gather(*(runner.task for runner in runners), return_exceptions=True)
        self.runners.clear()
        if not self._done.done():
            self._done.set_result(None)

    async def wait(self) -> None:
        """Return once `stop()` is called; raise AgentCrashed (from the cause) as soon as an agent dies."""
        await asyncio.shield(self._done)

    def _agent_ended(self, runner: AgentRunner, task: asyncio.Task) -> None:
        if self._endpoints.get(runner.id) == runner.deliver:
            del self._endpoints[runner.id]
        self.runners.pop(runner.id, None)
        if task.cancelled():
            return
        exc = task.exception()  # also marks it retrieved: it was logged by the task already
        if exc is not None and not self._done.done():
            crashed = AgentCrashed(runner.id)
            crashed.__cause__ = exc
            self._done.set_exception(crashed)
