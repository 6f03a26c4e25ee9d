"""The SimPy runtime: the Ready contract, deliveries, deadline ticks, crash/restart, pause/resume, clock skew."""

import random

import pytest
import simpy
from sim_toys import EPOCH, Counter, Note, Scripted

from orchestrator.runtime.ports import AgentReady
from sim.network import Network
from sim.runtime import SimRuntime

pytestmark = pytest.mark.sim


def world(nodes=("a", "b", "c"), latency=0.05, seed=1, **options) -> tuple[simpy.Environment, SimRuntime]:
    rng = random.Random(seed)
    env = simpy.Environment()
    network = Network(rng).full_mesh(nodes, latency=latency)
    return env, SimRuntime(env, network, rng, epoch=EPOCH, **options)


def pings(dst: str, *offsets: float) -> list[tuple[float, str, Note]]:
    return [(offset, dst, Note("ping", i)) for i, offset in enumerate(offsets, 1)]


def times(inbox) -> list[float]:
    return [round(now - EPOCH, 6) for now, _src, _msg in inbox]


def test_a_message_arrives_after_the_edge_latency_and_the_echo_comes_back():
    env, runtime = world()
    a = runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0)))
    b = runtime.add_agent("b", lambda now: Scripted("b", now, echo=True))
    env.run(until=5)
    assert times(b.inbox) == [1.05] and b.inbox[0][1:] == ("a", Note("ping", 1))
    assert times(a.inbox) == [1.1] and a.inbox[0][2] == Note("pong", 1)
    assert runtime.now == EPOCH + 5
    c = runtime.counters
    assert (c.sent, c.delivered, c.dropped, c.ticks) == (2, 2, 0, 1)


def test_an_idle_agent_costs_no_events():
    env, runtime = world()
    runtime.add_agent("a", lambda now: Scripted("a", now))
    env.run(until=3600)
    assert runtime.counters.events == 0 and runtime.counters.ticks == 0


def test_ticks_follow_next_deadline_with_one_timer_per_deadline():
    env, runtime = world()
    disk = {}
    counter = runtime.add_agent("a", lambda now: Counter("a", now, disk, interval=10.0))
    env.run(until=100.5)
    assert counter.count == 10 and disk["count"] == 10
    c = runtime.counters
    assert (c.ticks, c.events, c.stale_timers, c.steps) == (10, 10, 0, 10)


class Logged(Scripted):
    """Records persist and advance, at the virtual time `clock` reads, into a log the send hook shares."""

    def __init__(self, agent_id, now, shared, clock, plan=(), echo=False):
        super().__init__(agent_id, now, plan, echo)
        self.shared = shared
        self.clock = clock

    def persist(self, ready: AgentReady) -> None:
        self.shared.append(("persist", self.id, round(self.clock(), 6)))

    def advance(self, now: float, ready: AgentReady) -> None:
        self.shared.append(("advance", self.id, round(now - EPOCH, 6)))


def log_sends(runtime: SimRuntime, shared: list) -> None:
    runtime.on_send.append(lambda t, src, dst, msg, delays: shared.append(("send", src, round(t, 6))))


def test_each_ready_is_persisted_then_sent_then_advanced():
    env, runtime = world()
    shared = []
    log_sends(runtime, shared)
    runtime.add_agent("a", lambda now: Logged("a", now, shared, lambda: env.now, pings("b", 1.0)))
    runtime.add_agent("b", lambda now: Logged("b", now, shared, lambda: env.now, echo=True))
    env.run(until=5)
    assert shared == [("persist", "a", 1.0), ("send", "a", 1.0), ("advance", "a", 1.0),
                      ("persist", "b", 1.05), ("send", "b", 1.05), ("advance", "b", 1.05)]


def test_disk_sync_latency_delays_the_send_and_advance_and_the_next_tick():
    env, runtime = world(disk_sync_latency=1.0)
    shared = []
    log_sends(runtime, shared)
    runtime.add_agent("a", lambda now: Logged("a", now, shared, lambda: env.now, pings("b", 1.0, 1.5)))
    runtime.add_agent("b", lambda now: Scripted("b", now))
    env.run(until=10)
    # a persists its first ping at 1.0 and sends it after its fsync, at 2.0; the tick due at 1.5 waits
    # for that step, so the second ping is persisted at 2.0 and sent at 3.0.
    assert [entry for entry in shared if entry[1] == "a"] == [
        ("persist", "a", 1.0), ("send", "a", 2.0), ("advance", "a", 2.0),
        ("persist", "a", 2.0), ("send", "a", 3.0), ("advance", "a", 3.0)]


def test_inputs_arriving_during_an_fsync_queue_until_the_step_is_sent():
    env, runtime = world(disk_sync_latency=1.0)
    synced = []
    a = runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0, 1.5)), disk_sync_latency=0)
    b = runtime.add_agent("b", lambda now: Scripted("b", now, echo=True), on_sync=lambda: synced.append(env.now))
    env.run(until=10)
    # b echoes the first ping at 1.05 and fsyncs until 2.05; the second ping (1.55) is held until then.
    assert times(b.inbox) == [1.05, 2.05]
    assert times(a.inbox) == [2.1, 3.1]
    assert [round(t, 6) for t in synced] == [2.05, 3.05]
    assert runtime.counters.held == 1


def test_an_fsync_completing_while_paused_is_sent_on_resume():
    env, runtime = world(disk_sync_latency=1.0)
    a = runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0)), disk_sync_latency=0)
    b = runtime.add_agent("b", lambda now: Scripted("b", now, echo=True))
    env.run(until=1.5)  # b received the ping at 1.05 and is in its fsync until 2.05
    runtime.pause("b")
    env.run(until=5)
    assert a.inbox == [] and b.log == [("persist", 1)]
    runtime.resume("b")
    env.run(until=6)
    assert times(a.inbox) == [5.05] and b.log == [("persist", 1), ("advance", EPOCH + 5)]


def test_a_crash_during_the_fsync_loses_the_persisted_but_unsent_step():
    env, runtime = world(disk_sync_latency=1.0)
    a = runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0)))
    b = runtime.add_agent("b", lambda now: Scripted("b", now))
    env.run(until=1.5)
    assert a.log == [("persist", 1)]  # persisted; its fsync ends at 2.0
    runtime.crash("a")
    env.run(until=10)
    assert b.inbox == [] and runtime.counters.sent == 0


def test_crash_drops_inputs_and_restart_rebuilds_from_the_factory_disk():
    env, runtime = world()
    disk = {}
    runtime.add_agent("a", lambda now: Counter("a", now, disk, interval=1.0))
    runtime.add_agent("b", lambda now: Scripted("b", now, pings("a", 6.0)))
    env.run(until=5.5)
    runtime.crash("a")
    assert not runtime.is_up("a") and "a" not in runtime.agents and runtime.agent("a") is None
    env.run(until=10)
    assert disk == {"boots": 1, "count": 5}
    assert runtime.counters.dropped_down == 1 and runtime.counters.ticks == 6  # a's five, b's one
    counter = runtime.restart("a")
    assert runtime.is_up("a") and runtime.agents["a"] is counter
    assert counter.count == 5 and disk["boots"] == 2
    env.run(until=13.5)
    assert counter.count == 8


def test_a_crash_discards_inputs_held_for_a_paused_agent():
    env, runtime = world()
    runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0, 2.0)))
    runtime.add_agent("b", lambda now: Scripted("b", now))
    runtime.pause("b")
    env.run(until=3)
    runtime.crash("b")
    b = runtime.restart("b")
    env.run(until=5)
    assert b.inbox == [] and runtime.counters.dropped_down == 2 and not runtime.is_paused("b")


def test_restarting_a_live_agent_reboots_it():
    _env, runtime = world()
    disk = {}
    first = runtime.add_agent("a", lambda now: Counter("a", now, disk))
    second = runtime.restart("a")
    assert second is not first and disk["boots"] == 2


def test_pause_holds_inputs_and_ticks_and_resume_delivers_them_in_order():
    env, runtime = world()
    disk = {}
    a = runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0, 2.0, 3.0)))
    runtime.add_agent("b", lambda now: Scripted("b", now, echo=True))
    counter = runtime.add_agent("c", lambda now: Counter("c", now, disk, interval=1.0))
    env.run(until=0.5)
    runtime.pause("b")
    runtime.pause("c")
    env.run(until=10)
    b = runtime.agent("b")
    assert b.inbox == [] and counter.count == 0
    runtime.resume("b")
    runtime.resume("c")
    assert times(b.inbox) == [10.0, 10.0, 10.0]
    assert [m.id for _t, _s, m in b.inbox] == [1, 2, 3]
    assert counter.count == 1  # the held tick; the rest catch up at once, at the same instant
    env.run(until=10.1)
    assert counter.count == 10
    assert times(a.inbox) == [10.05, 10.05, 10.05]
    assert [m.id for _t, _s, m in a.inbox] == [1, 2, 3]


def test_clock_skew_shifts_what_the_agent_reads_and_when_its_deadlines_fire():
    env, runtime = world()
    disk = {}
    counter = runtime.add_agent("a", lambda now: Counter("a", now, disk, interval=10.0))
    b = runtime.add_agent("b", lambda now: Scripted("b", now))
    runtime.skew_clock("b", -30.0)
    assert runtime.clock("b") == runtime.now - 30.0 and runtime.skew("b") == -30.0
    env.run(until=3)
    runtime.skew_clock("a", 5.0)  # its deadline (epoch + 10 on its clock) now comes at virtual 5
    env.run(until=5.5)
    assert counter.count == 1
    runtime.skew_clock("a", 0.0)  # next deadline epoch + 20, due at virtual 20
    env.run(until=19.9)
    assert counter.count == 1
    env.run(until=20.1)
    assert counter.count == 2
    runtime.add_agent("c", lambda now: Scripted("c", now, pings("b", 1.0)))
    env.run(until=25)
    assert times(b.inbox) == [pytest.approx(21.15 - 30.0)]  # sent at 21.1 by c's clock and the true one


def test_skew_is_kept_across_a_restart():
    env, runtime = world()
    runtime.add_agent("a", lambda now: Scripted("a", now))
    runtime.skew_clock("a", 7.0)
    runtime.crash("a")
    env.run(until=1)
    assert runtime.restart("a").started == EPOCH + 8.0


def test_hooks_see_sends_with_their_delays_and_deliveries():
    env, runtime = world()
    network = runtime.network
    sends, deliveries = [], []
    runtime.on_send.append(lambda *args: sends.append(args))
    runtime.on_deliver.append(lambda *args: deliveries.append(args))
    runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0) + pings("ghost", 2.0)))
    runtime.add_agent("b", lambda now: Scripted("b", now))
    network.isolate("c")
    runtime.add_agent("c", lambda now: Scripted("c", now, pings("b", 1.0)))
    env.run(until=5)
    assert [(t, src, dst, delays) for t, src, dst, _m, delays in sends] == [
        (1.0, "a", "b", (0.05,)), (1.0, "c", "b", ()), (2.0, "a", "ghost", ())]
    assert [(round(t, 6), src, dst) for t, src, dst, _m in deliveries] == [(1.05, "a", "b")]
    c = runtime.counters
    assert (c.sent, c.delivered, c.dropped, c.dropped_network) == (3, 1, 2, 2)


def test_duplicates_are_delivered_twice():
    env, runtime = world()
    runtime.network.duplicate_rate = 1.0
    runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", 1.0)))
    b = runtime.add_agent("b", lambda now: Scripted("b", now))
    env.run(until=5)
    assert len(b.inbox) == 2 and runtime.counters.duplicated == 1 and b.inbox[0][0] <= b.inbox[1][0]


def test_random_latency_keeps_link_order_until_reorder_jitter():
    def received(jitter):
        env, runtime = world(latency=("lognormal", 0.05, 1.0), seed=3)
        runtime.network.reorder_jitter = jitter
        runtime.add_agent("a", lambda now: Scripted("a", now, pings("b", *(i * 0.001 for i in range(1, 300)))))
        b = runtime.add_agent("b", lambda now: Scripted("b", now))
        env.run(until=10)
        return [m.id for _t, _s, m in b.inbox]

    assert received(0.0) == list(range(1, 300))
    overtaken = received(0.1)
    assert sorted(overtaken) == list(range(1, 300)) and overtaken != list(range(1, 300))


def test_on_crash_is_told_and_an_agent_stuck_at_one_instant_is_reported():
    class Stuck(Scripted):
        def next_deadline(self):
            return self.started

    env, runtime = world()
    crashed = []
    runtime.add_agent("a", lambda now: Scripted("a", now), on_crash=lambda: crashed.append(env.now))
    runtime.crash("a")
    runtime.crash("a")  # already down: nothing more happens
    assert crashed == [0]
    runtime.add_agent("b", lambda now: Stuck("b", now))
    with pytest.raises(RuntimeError, match="does not move past now"):
        env.run(until=1)
