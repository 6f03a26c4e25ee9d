"""Tests for the node drainer: migrate.max_parallel, batch and system allocations, deadlines, completion."""

from dataclasses import replace
from random import Random

from orchestrator.server.drainer import NODE_DRAIN_COMPLETE, NodeDrainer, drain_complete_event, plan_drain
from orchestrator.state import StateStore
from orchestrator.structs import Allocation, DrainSpec, DrainStrategy, MigrateStrategy
from orchestrator.structs.alloc import AllocDeploymentStatus
from tests.scheduler.builders import make_job, make_node

SEC = 10**9
NOW = 1_000_000.0


class Cluster:
    """A real state store with a few nodes; writes at increasing indexes."""

    def __init__(self, nodes: int = 3) -> None:
        self.store = StateStore()
        self.index = 0
        self.nodes = [make_node(i) for i in range(nodes)]
        for node in self.nodes:
            self.store.upsert_node(self.next(), node)

    def next(self) -> int:
        self.index += 1
        return self.index

    def drain(self, i: int, *, deadline: int = 0, force_deadline: int = 0, ignore_system: bool = False) -> str:
        strategy = DrainStrategy(drain_spec=DrainSpec(deadline=deadline, ignore_system_jobs=ignore_system),
                                 force_deadline=force_deadline, started_at=round(NOW * SEC))
        self.store.update_node_drain(self.next(), self.nodes[i].id, strategy, False)
        return self.nodes[i].id

    def job(self, job_id: str, *, job_type: str = "service", count: int = 3, max_parallel: int = 1):
        job = make_job(job_id, job_type=job_type, count=count)
        if job_type == "service":
            job.task_groups[0].migrate = MigrateStrategy(max_parallel=max_parallel)
        self.store.upsert_job(self.next(), job)
        return self.store.job_by_id("default", job_id)

    def alloc(self, job, node: int, index: int, *, healthy: bool | None = True, status: str = "running",
              alloc_id: str = "") -> Allocation:
        alloc = Allocation(id=alloc_id or f"{job.id}-{index}-{node}", job_id=job.id, job=job, task_group="g",
                           name=f"{job.id}.g[{index}]", node_id=self.nodes[node].id, eval_id="e",
                           client_status=status,
                           deployment_status=AllocDeploymentStatus(healthy=healthy) if healthy is not None else None)
        self.store.upsert_allocs(self.next(), [alloc])
        return alloc

    def apply(self, actions) -> None:
        self.store.update_alloc_desired_transition(self.next(), actions.transitions, actions.evals)
        for node_id in actions.done_nodes:
            self.store.update_node_drain(self.next(), node_id, None, False)

    def stop(self, alloc_id: str, client_status: str = "complete") -> None:
        alloc = self.store.alloc_by_id(alloc_id)
        self.store.upsert_allocs(self.next(), [replace(alloc, desired_status="stop")])
        self.client(alloc_id, client_status)

    def client(self, alloc_id: str, status: str = "running", healthy: bool | None = None) -> None:
        alloc = self.store.alloc_by_id(alloc_id)
        health = AllocDeploymentStatus(healthy=healthy) if healthy is not None else alloc.deployment_status
        self.store.update_allocs_from_client(self.next(), [replace(alloc, client_status=status,
                                                                   deployment_status=health)])


def plan(c: Cluster, now: float = NOW, **kwargs):
    return plan_drain(c.store, now, Random(1), **kwargs)


def test_service_allocs_move_max_parallel_at_a_time():
    c = Cluster()
    web = c.job("web", count=3, max_parallel=1)
    for i in range(3):
        c.alloc(web, 0, i)
    c.drain(0)
    first = plan(c)
    assert list(first.transitions) == ["web-0-0"] and first.transitions["web-0-0"].migrate is True
    assert [(e.job_id, e.triggered_by, e.type) for e in first.evals] == [("web", "node-drain", "service")]
    assert first.done_nodes == []
    c.apply(first)
    assert plan(c).empty()  # one in flight: no more until it has been replaced
    # The scheduler stops it and places a replacement elsewhere, not yet healthy.
    c.stop("web-0-0")
    c.alloc(web, 1, 0, healthy=None, status="pending")
    assert plan(c).empty()
    c.client("web-0-1", healthy=True)
    assert list(plan(c).transitions) == ["web-1-0"]


def test_max_parallel_two_marks_two_and_counts_across_draining_nodes():
    c = Cluster(4)
    web = c.job("web", count=4, max_parallel=2)
    c.alloc(web, 0, 0)
    c.alloc(web, 0, 1)
    c.alloc(web, 1, 2)
    c.alloc(web, 2, 3)
    c.drain(0)
    c.drain(1)
    actions = plan(c)
    assert sorted(actions.transitions) == ["web-0-0", "web-1-0"]
    assert len(actions.evals) == 1  # one eval per job, however many allocs and nodes


def test_unhealthy_group_does_not_lose_more_allocs():
    c = Cluster()
    web = c.job("web", count=3, max_parallel=1)
    c.alloc(web, 0, 0)
    c.alloc(web, 0, 1)
    c.alloc(web, 1, 2, healthy=False)
    c.drain(0)
    assert plan(c).empty()  # only 2 healthy: taking one away would leave count - max_parallel - 1


def test_allocs_without_a_health_verdict_count_as_healthy_when_running_outside_a_deployment():
    c = Cluster()
    web = c.job("web", count=2, max_parallel=1)
    c.alloc(web, 0, 0, healthy=None)
    c.alloc(web, 0, 1, healthy=None)
    c.drain(0)
    assert list(plan(c).transitions) == ["web-0-0"]


def test_batch_allocs_run_to_completion_then_the_node_is_done():
    c = Cluster()
    batch = c.job("crunch", job_type="batch", count=1)
    c.alloc(batch, 0, 0)
    node = c.drain(0)
    assert plan(c).empty()
    c.client("crunch-0-0", "complete")
    actions = plan(c)
    assert actions.done_nodes == [node] and actions.deadlined_nodes == [] and not actions.transitions


def test_system_allocs_are_stopped_last():
    c = Cluster()
    web = c.job("web", count=2, max_parallel=1)
    agent = c.job("agent", job_type="system", count=1)
    c.alloc(web, 0, 0)
    c.alloc(web, 1, 1)
    c.alloc(agent, 0, 0)
    node = c.drain(0)
    first = plan(c)
    assert list(first.transitions) == ["web-0-0"] and first.done_nodes == []
    c.apply(first)
    c.stop("web-0-0")
    last = plan(c)
    # Marked, but the drain completes only once the client has stopped it (Nomad's drainingNode.IsDone).
    assert list(last.transitions) == ["agent-0-0"] and last.done_nodes == []
    assert [(e.job_id, e.type) for e in last.evals] == [("agent", "system")]
    c.apply(last)
    c.stop("agent-0-0")
    done = plan(c)
    assert done.done_nodes == [node] and not done.transitions


def test_ignore_system_jobs_leaves_them_running():
    c = Cluster()
    agent = c.job("agent", job_type="system", count=1)
    c.alloc(agent, 0, 0)
    node = c.drain(0, ignore_system=True)
    actions = plan(c)
    assert actions.done_nodes == [node] and not actions.transitions


def test_deadline_forces_everything_off():
    c = Cluster()
    web = c.job("web", count=3, max_parallel=1)
    batch = c.job("crunch", job_type="batch", count=1)
    agent = c.job("agent", job_type="system", count=1)
    for i in range(3):
        c.alloc(web, 0, i)
    c.alloc(batch, 0, 0)
    c.alloc(agent, 0, 0)
    deadline = round((NOW + 3600) * SEC)
    node = c.drain(0, deadline=3600 * SEC, force_deadline=deadline)
    before = plan(c)
    assert list(before.transitions) == ["web-0-0"] and before.next_deadline == NOW + 3600
    c.apply(before)
    after = plan(c, NOW + 3600)
    assert sorted(after.transitions) == ["agent-0-0", "crunch-0-0", "web-1-0", "web-2-0"]
    assert after.done_nodes == after.deadlined_nodes == [node]
    assert {e.job_id for e in after.evals} == {"web", "crunch", "agent"}


def test_deadline_from_started_at_when_no_force_deadline_is_recorded():
    c = Cluster()
    batch = c.job("crunch", job_type="batch", count=1)
    c.alloc(batch, 0, 0)
    c.drain(0, deadline=60 * SEC)
    assert plan(c).next_deadline == NOW + 60
    assert list(plan(c, NOW + 60).transitions) == ["crunch-0-0"]


def test_negative_deadline_forces_now_and_ignore_system_still_holds():
    c = Cluster()
    web = c.job("web", count=3)
    agent = c.job("agent", job_type="system", count=1)
    for i in range(3):
        c.alloc(web, 0, i)
    c.alloc(agent, 0, 0)
    node = c.drain(0, deadline=-1, ignore_system=True)
    actions = plan(c)
    assert sorted(actions.transitions) == ["web-0-0", "web-1-0", "web-2-0"]
    assert actions.deadlined_nodes == [node] and actions.next_deadline is None


def test_empty_node_is_done_at_once_and_the_event_says_so():
    c = Cluster()
    node = c.drain(2)
    assert plan(c).done_nodes == [node]
    event = drain_complete_event(True, NOW)
    assert event.message == NODE_DRAIN_COMPLETE == "Node drain complete"
    assert event.details == {"deadline_reached": "true"} and event.subsystem == "Drain"


def test_already_marked_allocs_are_never_marked_again():
    c = Cluster()
    web = c.job("web", count=3, max_parallel=3)
    for i in range(3):
        c.alloc(web, 0, i)
    c.drain(0, deadline=-1)
    c.apply(plan(c))
    c.store.update_node_drain(c.next(), c.nodes[0].id, DrainStrategy(drain_spec=DrainSpec(deadline=-1)), False)
    assert not plan(c).transitions


def test_node_drainer_does_not_propose_twice_while_the_write_is_in_flight():
    c = Cluster()
    web = c.job("web", count=3, max_parallel=1)
    for i in range(3):
        c.alloc(web, 0, i)
    empty = c.drain(2)
    c.drain(0)
    drainer = NodeDrainer(Random(1), retry_after=30)
    first = drainer.plan(c.store, NOW)
    assert list(first.transitions) == ["web-0-0"] and first.done_nodes == [empty]
    assert drainer.plan(c.store, NOW + 1).empty()
    again = drainer.plan(c.store, NOW + 31)  # never applied: proposed again
    assert list(again.transitions) == ["web-0-0"] and again.done_nodes == [empty]
    c.apply(again)
    assert drainer.plan(c.store, NOW + 32).empty()
    drainer.set_enabled(False)
    assert drainer.plan(c.store, NOW + 33).empty() and drainer.next_deadline() is None
