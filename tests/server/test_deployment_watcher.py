"""Tests for the deployment watcher: success, failure, progress deadline, auto revert, auto promote."""

from dataclasses import replace
from datetime import UTC, datetime
from random import Random

from orchestrator.server.deployment_watcher import DeploymentWatcher
from orchestrator.state import StateStore
from orchestrator.structs import Allocation, Deployment, DeploymentState
from orchestrator.structs.alloc import AllocDeploymentStatus
from tests.scheduler.builders import make_job

SEC = 10**9
NOW = 1_700_000_000.0
MIN = 60.0


def stamp(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat().replace("+00:00", "Z")


class Rollout:
    """Job `web` registered as a stable v0, then updated to v1 rolling out under deployment `d1`."""

    def __init__(self, *, count: int = 3, progress_deadline: float = 0, auto_revert: bool = False,
                 canaries: int = 0, auto_promote: bool = False, same_spec: bool = False) -> None:
        self.store = StateStore()
        self.index = 0
        v0 = make_job("web", count=count)
        self.store.upsert_job(self.next(), v0)
        self.store.set_job_stable(self.next(), "default", "web", 0, True)
        v1 = make_job("web", count=count, config={"command": "/bin/sleep", "args": ["61"]})
        self.store.upsert_job(self.next(), v1)
        if same_spec:  # v2 is v0's spec again (a revert): reverting once more would change nothing
            self.store.upsert_job(self.next(), v0)
        self.job = self.store.job_by_id("default", "web")
        state = DeploymentState(desired_total=count, progress_deadline=round(progress_deadline * SEC),
                                auto_revert=auto_revert, desired_canaries=canaries, auto_promote=auto_promote)
        self.store.upsert_deployment(self.next(), Deployment(
            id="d1", job_id="web", job_version=self.job.version, job_create_index=self.job.create_index,
            task_groups={"g": state}))

    def next(self) -> int:
        self.index += 1
        return self.index

    def place(self, i: int, *, canary: bool = False, at: float = NOW) -> str:
        alloc = Allocation(id=f"a{i}", job_id="web", job=self.job, task_group="g", name=f"web.g[{i}]",
                           node_id="n1", eval_id="e", deployment_id="d1", client_status="running",
                           deployment_status=AllocDeploymentStatus(canary=canary) if canary else None,
                           create_time=round(at * SEC), modify_time=round(at * SEC))
        self.store.upsert_allocs(self.next(), [alloc])
        return alloc.id

    def health(self, alloc_id: str, healthy: bool, at: float = NOW) -> None:
        alloc = self.store.alloc_by_id(alloc_id)
        status = AllocDeploymentStatus(healthy=healthy, timestamp=stamp(at))
        self.store.update_allocs_from_client(self.next(), [replace(alloc, deployment_status=status,
                                                                   modify_time=round(at * SEC))])

    def apply(self, actions) -> None:
        for deployment_id, status, description in actions.status_updates:
            self.store.update_deployment_status(self.next(), deployment_id, status, description,
                                                job=actions.revert_for.get(deployment_id),
                                                evals=actions.evals_for(deployment_id))


def watcher(**kwargs) -> DeploymentWatcher:
    return DeploymentWatcher(Random(3), **kwargs)


def test_deployment_succeeds_when_every_group_has_enough_healthy_allocs():
    r = Rollout(count=2)
    w = watcher()
    for i in range(2):
        r.health(r.place(i), True)
    actions = w.watch(r.store, NOW)
    assert actions.status_updates == [("d1", "successful", "Deployment completed successfully")]
    r.apply(actions)
    assert r.store.job_by_id("default", "web").stable  # the store marks the version stable
    assert w.watch(r.store, NOW + 1).empty()


def test_a_newly_healthy_alloc_yields_one_eval_so_the_rollout_continues():
    r = Rollout(count=3)
    w = watcher()
    r.health(r.place(0), True)
    actions = w.watch(r.store, NOW)
    assert actions.status_updates == []
    assert [(e.triggered_by, e.deployment_id, e.job_id) for e in actions.evals] == [
        ("deployment-watcher", "d1", "web")]
    assert w.watch(r.store, NOW + 1).evals == []  # not twice for the same health change
    r.store.upsert_evals(r.next(), actions.evals)
    r.health(r.place(1), True)
    assert len(w.watch(r.store, NOW + 2).evals) == 1


def test_stopped_allocs_do_not_count_towards_success():
    r = Rollout(count=2)
    w = watcher()
    r.health(r.place(0), True)
    r.health(r.place(1), True)
    stopped = r.store.alloc_by_id("a1")
    r.store.upsert_allocs(r.next(), [replace(stopped, desired_status="stop")])
    assert w.watch(r.store, NOW).status_updates == []


def test_unhealthy_alloc_without_progress_deadline_fails_and_auto_reverts():
    r = Rollout(count=2, auto_revert=True)
    w = watcher()
    r.health(r.place(0), True)
    r.health(r.place(1), False)
    actions = w.watch(r.store, NOW)
    assert actions.status_updates == [
        ("d1", "failed", "Failed due to unhealthy allocations - rolling back to job version 0")]
    (revert,) = actions.reverts
    assert revert.version == 0 and revert.task_groups[0].tasks[0].config["args"] == ["60"] and not revert.stable
    assert [e.deployment_id for e in actions.evals] == ["d1"]
    r.apply(actions)
    job = r.store.job_by_id("default", "web")
    assert job.version == 2 and job.task_groups[0].tasks[0].config["args"] == ["60"]
    assert r.store.deployment_by_id("d1").status == "failed"


def test_unhealthy_alloc_without_auto_revert_fails_without_revert():
    r = Rollout(count=2)
    r.health(r.place(0), False)
    actions = watcher().watch(r.store, NOW)
    assert actions.status_updates == [("d1", "failed", "Failed due to unhealthy allocations")]
    assert actions.reverts == []


def test_revert_to_the_same_spec_is_not_attempted():
    r = Rollout(count=1, auto_revert=True, same_spec=True)
    r.health(r.place(0), False)
    (update,) = watcher().watch(r.store, NOW).status_updates
    assert update[2] == ("Failed due to unhealthy allocations - not rolling back to stable job version 0 "
                         "as current job has same specification")


def test_progress_deadline_groups_replace_unhealthy_allocs_then_fail_at_the_deadline():
    r = Rollout(count=2, progress_deadline=10 * MIN, auto_revert=True)
    w = watcher()
    r.place(0, at=NOW)
    r.health(r.place(1, at=NOW), False, at=NOW + 30)
    actions = w.watch(r.store, NOW + 30)
    assert actions.status_updates == []
    assert list(actions.reschedules) == ["a1"] and actions.reschedules["a1"].reschedule is True
    assert len(actions.evals) == 1
    assert actions.next_deadline == NOW + 10 * MIN
    assert w.watch(r.store, NOW + 31).reschedules == {}  # in flight: not proposed twice
    failed = w.watch(r.store, NOW + 10 * MIN)
    assert failed.status_updates == [
        ("d1", "failed", "Failed due to progress deadline - rolling back to job version 0")]
    assert [j.version for j in failed.reverts] == [0]


def test_a_healthy_alloc_pushes_the_progress_deadline_back():
    r = Rollout(count=3, progress_deadline=10 * MIN)
    w = watcher()
    r.place(0, at=NOW)
    assert w.watch(r.store, NOW).next_deadline == NOW + 10 * MIN
    r.health("a0", True, at=NOW + 5 * MIN)
    assert w.watch(r.store, NOW + 5 * MIN).next_deadline == NOW + 15 * MIN
    assert w.next_deadline() == NOW + 15 * MIN
    assert w.watch(r.store, NOW + 14 * MIN).status_updates == []
    failed = w.watch(r.store, NOW + 15 * MIN)
    assert failed.status_updates == [("d1", "failed", "Failed due to progress deadline")]


def test_auto_promote_when_canaries_are_healthy():
    r = Rollout(count=2, canaries=1, auto_promote=True)
    w = watcher()
    canary = r.place(0, canary=True)
    assert w.watch(r.store, NOW).promotions == []
    r.health(canary, True)
    actions = w.watch(r.store, NOW)
    assert actions.promotions == ["d1"] and actions.status_updates == [] and len(actions.evals) == 1
    assert w.watch(r.store, NOW + 1).promotions == []  # in flight


def test_unpromoted_canaries_block_success_and_without_auto_promote_wait_for_the_operator():
    r = Rollout(count=1, canaries=1)
    w = watcher()
    r.health(r.place(0, canary=True), True)
    actions = w.watch(r.store, NOW)
    assert actions.status_updates == [] and actions.promotions == []
    deployment = r.store.deployment_by_id("d1")
    promoted = replace(deployment, task_groups={"g": replace(deployment.task_groups["g"], promoted=True)})
    r.store.upsert_deployment(r.next(), promoted)
    assert w.watch(r.store, NOW + 1).status_updates[0][1] == "successful"


def test_deployment_of_a_stopped_or_replaced_job_is_cancelled():
    r = Rollout()
    r.store.upsert_job(r.next(), replace(r.job, stop=True))
    assert watcher().watch(r.store, NOW).status_updates == [("d1", "cancelled", "Cancelled because job is stopped")]
    r2 = Rollout()
    r2.store.upsert_job(r2.next(), make_job("web", count=3, config={"command": "/bin/true"}))
    assert watcher().watch(r2.store, NOW).status_updates == [
        ("d1", "cancelled", "Cancelled due to newer version of job")]


def test_paused_deployment_neither_completes_nor_fails():
    r = Rollout(count=1, progress_deadline=MIN)
    r.health(r.place(0), True)
    r.store.update_deployment_status(r.next(), "d1", "paused", "Deployment is paused")
    assert watcher().watch(r.store, NOW + 3600).empty()


def test_a_status_decision_is_proposed_again_only_after_the_retry_delay():
    r = Rollout(count=1)
    w = watcher(retry_after=30)
    r.health(r.place(0), True)
    assert w.watch(r.store, NOW).status_updates
    assert w.watch(r.store, NOW + 10).empty()
    assert w.watch(r.store, NOW + 30).status_updates
    w.set_enabled(False)
    assert w.watch(r.store, NOW + 31).empty()
