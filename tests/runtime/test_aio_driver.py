"""The asyncio runtime and LocalCaller with a scripted agent: Ready order, group commit, timers, failures."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from orchestrator.agent.handle import RpcError
from orchestrator.rpc import RpcRequest, RpcResponse
from orchestrator.runtime.aio import REFUSED, AgentCrashed, AioRuntime, LocalCaller, Transport
from orchestrator.runtime.ports import AgentReady


class Echo:
    """Answers every request with its method and args after a Ready step; "Fail" raises in receive, "Boom"
    makes the next advance raise. Records every Agent call in `log`."""

    def __init__(self, agent_id: str = "echo", period: float | None = None) -> None:
        self.id = agent_id
        self.period = period
        self.deadline: float | None = None
        self.log: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[str, Any]] = []
        self.ticks: list[tuple[float, float | None]] = []  # (now, deadline it was due by)
        self.boom = False

    def tick(self, now: float) -> None:
        self.ticks.append((now, self.deadline))
        self.deadline = now + self.period if self.period is not None else None

    def receive(self, now: float, src: str, message: Any) -> None:
        self.log.append(("receive", src, getattr(message, "id", message)))
        if isinstance(message, RpcRequest):
            if message.method == "Fail":
                raise ValueError("cannot handle this")
            if message.method == "Boom":
                self.boom = True
            self.outbox.append((src, RpcResponse(id=message.id, result={"method": message.method,
                                                                         "args": message.args})))

    def ready(self) -> AgentReady | None:
        if not self.outbox:
            return None
        messages, self.outbox = self.outbox, []
        return AgentReady(messages=messages, persist=len(messages))

    def persist(self, ready: AgentReady) -> None:
        self.log.append(("persist", ready.persist))

    def advance(self, now: float, ready: AgentReady) -> None:
        self.log.append(("advance", ready.persist))
        if self.boom:
            raise RuntimeError("broken state")

    def next_deadline(self) -> float | None:
        if self.deadline is None and self.period is not None:
            self.deadline = time.time() + self.period
        return self.deadline


def test_now_is_unix_time_and_never_goes_back():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        readings = [runtime.now()]
        for _ in range(5):
            await asyncio.sleep(0.001)
            readings.append(runtime.now())
        assert abs(readings[0] - time.time()) < 0.05
        assert readings == sorted(readings)

    asyncio.run(main())


def test_a_local_call_runs_the_ready_loop_in_order():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        agent = Echo()
        synced: list[int] = []
        runtime.add_agent(agent, sync=lambda: synced.append(len(agent.log)))
        caller = LocalCaller(runtime, "api")
        assert await caller.call("echo", "Job.Register", {"Job": {"ID": "web"}}) == {
            "method": "Job.Register", "args": {"Job": {"ID": "web"}}}
        assert agent.log == [("receive", "api", agent.log[0][2]), ("persist", 1), ("advance", 1)]
        assert synced == [2]  # after persist, before advance (and so before the answer was sent)
        await runtime.stop()

    asyncio.run(main())


def test_inputs_arriving_during_the_fsync_share_the_next_ready():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        agent = Echo()
        released = threading.Event()
        syncs: list[str] = []

        def slow_sync() -> None:
            syncs.append(threading.current_thread().name)
            if len(syncs) == 1:
                released.wait(2.0)  # the first fsync is slow; everything else queues behind it

        runtime.add_agent(agent, sync=slow_sync)
        caller = LocalCaller(runtime, "api")
        first = asyncio.create_task(caller.call("echo", "first", {}))
        await asyncio.sleep(0.05)
        others = [asyncio.create_task(caller.call("echo", f"m{i}", {})) for i in range(5)]
        await asyncio.sleep(0.05)
        assert [entry[0] for entry in agent.log] == ["receive", "persist"]  # held, not fed, during the fsync
        released.set()
        await asyncio.gather(first, *others)
        steps = [entry[1] for entry in agent.log if entry[0] == "persist"]
        assert steps == [1, 5]  # a group commit
        assert all(name != threading.main_thread().name for name in syncs)
        await runtime.stop()

    asyncio.run(main())


def test_the_agent_is_ticked_by_its_deadline():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        agent = Echo(period=0.02)
        runtime.add_agent(agent)
        await asyncio.sleep(0.25)
        await runtime.stop()
        assert 6 <= len(agent.ticks) <= 14
        assert all(deadline is None or now >= deadline - 0.002 for now, deadline in agent.ticks)
        assert all(now - deadline < 0.05 for now, deadline in agent.ticks if deadline is not None)

    asyncio.run(main())


def test_a_tick_that_leaves_the_deadline_in_place_is_repeated():
    class Stuck(Echo):
        """Ignores its first three ticks (as a server whose tick came a hair early): the deadline stays."""

        def tick(self, now: float) -> None:
            self.ticks.append((now, self.deadline))
            if len(self.ticks) > 3:
                self.deadline = self.period = None

    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        agent = Stuck(period=0.01)
        runtime.add_agent(agent)
        await asyncio.sleep(0.1)
        await runtime.stop()
        assert len(agent.ticks) == 4 and agent.deadline is None

    asyncio.run(main())


def test_a_bad_input_is_logged_and_the_agent_keeps_going(caplog):
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        runner = runtime.add_agent(Echo())
        caller = LocalCaller(runtime, "api")
        with pytest.raises(RpcError, match="timeout"):
            await caller.call("echo", "Fail", {"x": 1}, timeout=0.1)
        assert await caller.call("echo", "Status.Leader", {}) == {"method": "Status.Leader", "args": {}}
        assert runner.rejected == 1 and not runner.task.done()
        await runtime.stop()

    asyncio.run(main())
    assert "rejected RpcRequest from api" in caplog.text and "Fail" in caplog.text


def test_a_failure_outside_receive_is_fatal_and_reported(caplog):
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        runtime.add_agent(Echo())
        caller = LocalCaller(runtime, "api")
        boom = asyncio.create_task(caller.call("echo", "Boom", {}, timeout=1.0))
        with pytest.raises(AgentCrashed) as crashed:
            await asyncio.wait_for(runtime.wait(), 1.0)
        assert isinstance(crashed.value.__cause__, RuntimeError)
        assert await boom  # the answer was sent before advance failed
        assert not runtime.is_local("echo")  # a dead agent is no longer reachable...
        with pytest.raises(RpcError, match="connection refused"):
            await caller.call("echo", "Status.Leader", {})  # ...and its callers hear so at once
        await runtime.stop()

    asyncio.run(main())
    assert "agent echo failed" in caplog.text


def test_errors_and_timeouts_raise_rpc_error():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        caller = LocalCaller(runtime, "api")
        runtime.register("mute", lambda src, message: None)
        runtime.register("grumpy", lambda src, message: runtime.send(
            "grumpy", src, RpcResponse(id=message.id, error="No cluster leader")))
        with pytest.raises(RpcError) as no_leader:
            await caller.call("grumpy", "Job.Register", {})
        assert no_leader.value.no_leader
        with pytest.raises(RpcError, match=r"^rpc error: timeout$"):
            await caller.call("mute", "Job.Register", {}, timeout=0.05)
        with pytest.raises(RpcError, match=REFUSED):
            await caller.call("nobody", "Job.Register", {})
        pending = asyncio.create_task(caller.call("mute", "x", {}))
        await asyncio.sleep(0)
        caller.close()
        with pytest.raises(RpcError, match="caller closed"):
            await pending

    asyncio.run(main())


def test_stop_cancels_agents_mid_fsync():
    async def main() -> None:
        runtime = AioRuntime(asyncio.get_running_loop())
        agent = Echo()
        runtime.add_agent(agent, sync=lambda: time.sleep(0.2))
        caller = LocalCaller(runtime, "api")
        call = asyncio.create_task(caller.call("echo", "x", {}, timeout=5.0))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(runtime.stop(), 1.0)
        await asyncio.wait_for(runtime.wait(), 0.1)  # stopped, not crashed
        assert ("advance", 1) not in agent.log  # the step in its fsync was abandoned, as in a crash
        call.cancel()

    asyncio.run(main())


def test_a_caller_reaches_an_agent_in_another_runtime_over_tcp():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ta, tb = Transport("127.0.0.1", 0), Transport("127.0.0.1", 0)
        await ta.start()
        await tb.start()
        a, b = AioRuntime(loop, ta), AioRuntime(loop, tb)
        b.add_agent(Echo(tb.local_id))
        caller = LocalCaller(a, "api-a")
        try:
            result = await caller.call(tb.local_id, "Node.Register", {"Node": {"ID": "n1", "Attrs": {"x": "1"}}})
            assert result == {"method": "Node.Register", "args": {"Node": {"ID": "n1", "Attrs": {"x": "1"}}}}
            await b.stop()
            with pytest.raises(RpcError, match=REFUSED):
                await caller.call(tb.local_id, "Node.Register", {})
        finally:
            await a.stop()
            await ta.close()
            await tb.close()

    asyncio.run(main())
