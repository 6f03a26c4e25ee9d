"""Tests for garbage collection: thresholds per object kind, terminal-only rules, force, the time table."""

from dataclasses import replace

from orchestrator.server.gc import GCThresholds, TimeTable, collect
from orchestrator.state import StateStore
from orchestrator.structs import Allocation, Deployment, DeploymentState, Evaluation, PeriodicConfig
from tests.scheduler.builders import make_job, make_node

SEC = 10**9
HOUR = 3600.0
NOW = 1_700_000_000.0


def ago(hours: float) -> int:
    return round((NOW - hours * HOUR) * SEC)


class World:
    def __init__(self) -> None:
        self.store = StateStore()
        self.index = 0

    def next(self) -> int:
        self.index += 1
        return self.index

    def job(self, job_id: str, **fields):
        job = replace(make_job(job_id, count=1, job_type=fields.pop("job_type", "service")), **fields)
        self.store.upsert_job(self.next(), job)
        return self.store.job_by_id("default", job_id)

    def eval(self, eval_id: str, job, *, hours: float, status: str = "complete") -> str:
        self.store.upsert_evals(self.next(), [Evaluation(id=eval_id, job_id=job.id, type=job.type, status=status,
                                                         create_time=ago(hours), modify_time=ago(hours))])
        return eval_id

    def alloc(self, alloc_id: str, job, eval_id: str, *, hours: float, client: str = "complete",
              desired: str = "run", node: str = "n1", **fields) -> str:
        self.store.upsert_allocs(self.next(), [Allocation(
            id=alloc_id, job_id=job.id, job=job, task_group="g", name=f"{job.id}.g[0]", eval_id=eval_id,
            node_id=node, client_status=client, desired_status=desired, create_time=ago(hours),
            modify_time=ago(hours), **fields)])
        return alloc_id


def test_old_terminal_eval_is_collected_with_its_terminal_allocs():
    w = World()
    web = w.job("web")
    w.alloc("a-old", web, w.eval("e-old", web, hours=2), hours=2, desired="stop")
    w.alloc("a-young", web, w.eval("e-young", web, hours=0.5), hours=0.5, desired="stop")
    w.eval("e-pending", web, hours=5, status="pending")
    w.alloc("a-running", web, w.eval("e-running", web, hours=2), hours=2, client="running")
    w.alloc("a-live", web, w.eval("e-live", web, hours=2), hours=2, client="pending")
    actions = collect(w.store, NOW)
    assert actions.eval_ids == ["e-old"] and actions.alloc_ids == ["a-old"]
    assert actions.job_keys == [] and actions.node_ids == [] and actions.deployment_ids == []


def test_thresholds_are_configurable():
    w = World()
    web = w.job("web")
    w.alloc("a", web, w.eval("e", web, hours=0.5), hours=0.5, desired="stop")
    assert collect(w.store, NOW).empty()
    assert collect(w.store, NOW, GCThresholds(eval_gc_threshold=600)).eval_ids == ["e"]


def test_failed_alloc_waiting_to_be_rescheduled_is_kept():
    w = World()
    web = w.job("web")  # service: unlimited reschedules
    w.alloc("waiting", web, w.eval("e1", web, hours=2), hours=2, client="failed")
    w.alloc("replaced", web, w.eval("e2", web, hours=2), hours=2, client="failed", next_allocation="x")
    w.eval("follow-up", web, hours=2, status="pending")  # the delayed reschedule: the job is not dead
    actions = collect(w.store, NOW)
    assert actions.alloc_ids == ["replaced"] and actions.eval_ids == ["e2"]


def test_batch_evals_of_a_live_batch_job_keep_their_allocs():
    w = World()
    crunch = w.job("crunch", job_type="batch")
    w.alloc("done", crunch, w.eval("e1", crunch, hours=30), hours=30)
    w.eval("e-waiting", crunch, hours=30, status="pending")  # keeps the job pending, not dead
    assert crunch.type == "batch" and w.store.job_by_id("default", "crunch").status != "dead"
    assert collect(w.store, NOW).alloc_ids == []


def test_batch_evals_use_the_batch_threshold():
    w = World()
    crunch = w.job("crunch", job_type="batch")
    w.alloc("a", crunch, w.eval("e", crunch, hours=2), hours=2)
    assert w.store.job_by_id("default", "crunch").status == "dead"
    assert collect(w.store, NOW).empty()  # 2 h: past the eval threshold, not the 24 h batch one
    assert collect(w.store, NOW + 23 * HOUR).job_keys == [("default", "crunch")]  # the job threshold hits first


def test_dead_job_is_purged_with_its_evals_and_allocs():
    w = World()
    old = w.job("old")
    w.alloc("a1", old, w.eval("e1", old, hours=5), hours=5, desired="stop")
    w.store.upsert_job(w.next(), replace(w.store.job_by_id("default", "old"), stop=True))
    young = w.job("young", stop=True)
    w.alloc("a2", young, w.eval("e2", young, hours=3), hours=3, desired="stop")
    actions = collect(w.store, NOW)
    assert actions.job_keys == [("default", "old")]
    assert sorted(actions.eval_ids) == ["e1", "e2"]  # e2 by eval GC: its job is stopped
    assert sorted(actions.alloc_ids) == ["a1", "a2"]


def test_running_job_and_active_periodic_job_are_never_purged():
    w = World()
    web = w.job("web")
    w.alloc("a", web, w.eval("e", web, hours=10), hours=10, client="running")
    parent = w.job("cron", job_type="batch", periodic=PeriodicConfig(enabled=True, spec="* * * * *"))
    assert parent.is_periodic()
    actions = collect(w.store, NOW + 100 * HOUR)
    assert actions.job_keys == [] and actions.alloc_ids == []


def test_down_node_is_collected_after_its_threshold_once_nothing_runs_there():
    w = World()
    web = w.job("web")
    for name, hours in (("gone", 25), ("recent", 2), ("busy", 25)):
        node = replace(make_node(hash(name) % 1000), id=name)
        w.store.upsert_node(w.next(), node)
        w.store.update_node_status(w.next(), name, "down", round(NOW - hours * HOUR))
    w.store.upsert_node(w.next(), replace(make_node(7), id="alive"))
    w.alloc("stuck", web, w.eval("e", web, hours=25, status="pending"), hours=25, client="running", node="busy")
    assert collect(w.store, NOW).node_ids == ["gone"]
    assert sorted(collect(w.store, NOW, force=True).node_ids) == ["gone", "recent"]


def test_node_status_time_in_nanoseconds_is_understood():
    w = World()
    w.store.upsert_node(w.next(), replace(make_node(1), id="n"))
    w.store.update_node_status(w.next(), "n", "down", ago(25))
    assert collect(w.store, NOW).node_ids == ["n"]


def test_finished_deployment_is_collected_when_its_allocs_are_old_and_terminal():
    w = World()
    web = w.job("web")
    for deployment_id, status in (("d-done", "successful"), ("d-active", "running"), ("d-fresh", "failed")):
        w.store.upsert_deployment(w.next(), Deployment(id=deployment_id, job_id="web",
                                                       task_groups={"g": DeploymentState(desired_total=1)}))
        if status != "running":
            w.store.update_deployment_status(w.next(), deployment_id, status, "")
    w.alloc("a1", web, w.eval("e1", web, hours=2), hours=2, desired="stop", deployment_id="d-done")
    w.alloc("a2", web, w.eval("e2", web, hours=2), hours=2, desired="stop", deployment_id="d-active")
    w.alloc("a3", web, w.eval("e3", web, hours=0.2), hours=0.2, desired="stop", deployment_id="d-fresh")
    assert collect(w.store, NOW).deployment_ids == ["d-done"]


def test_force_ignores_thresholds_but_not_the_rules():
    w = World()
    web = w.job("web")
    w.alloc("done", web, w.eval("e1", web, hours=0), hours=0, desired="stop")
    w.alloc("running", web, w.eval("e2", web, hours=0), hours=0, client="running", desired="stop")
    actions = collect(w.store, NOW, force=True)
    assert actions.eval_ids == ["e1"] and actions.alloc_ids == ["done"]


def test_time_table_maps_times_to_indexes():
    table = TimeTable(granularity=60, limit=3600)
    assert table.nearest_index(NOW) == 0
    table.witness(10, NOW)
    table.witness(11, NOW + 30)  # within the granularity: not recorded
    table.witness(20, NOW + 60)
    table.witness(30, NOW + 120)
    assert table.nearest_index(NOW - 1) == 0
    assert table.nearest_index(NOW + 59) == 10
    assert table.nearest_index(NOW + 60) == 20
    assert table.nearest_index(NOW + 10_000) == 30
    table.witness(40, NOW + 4000)  # beyond the limit: the oldest entries are dropped
    assert table.nearest_index(NOW + 60) == 0


def test_deployment_without_allocs_is_judged_through_the_time_table():
    w = World()
    w.job("web")
    w.store.upsert_deployment(w.next(), Deployment(id="d", job_id="web", status="cancelled"))
    index = w.store.deployment_by_id("d").modify_index
    assert collect(w.store, NOW).deployment_ids == []  # no time known, no table: kept
    table = TimeTable()
    table.witness(index, NOW - 2 * HOUR)
    assert collect(w.store, NOW, timetable=table).deployment_ids == ["d"]
    seeded = TimeTable()
    seeded.seed_from(w.store)
    assert seeded.nearest_index(NOW) == 0  # nothing with a time in this store
