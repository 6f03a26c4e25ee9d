"""Service, batch, system and sysbatch scheduling end to end through the real plan applier and state store."""

from collections import Counter
from dataclasses import replace

from builders import dynamic_port, make_job, make_node, static_port

from orchestrator.scheduler.rank import SchedulerConfig
from orchestrator.structs import SECOND, Constraint, DesiredTransition, DrainStrategy, Spread, SpreadTarget
from orchestrator.testing.harness import Harness


def cluster(n: int, **kwargs) -> Harness:
    harness = Harness(seed=7, now_ns=1_000 * SECOND, **kwargs)
    for i in range(n):
        harness.store.upsert_node(harness.next_index(), make_node(i))
    return harness


def live_allocs(harness: Harness, job_id: str):
    return [a for a in harness.store.allocs_by_job("default", job_id) if not a.terminal()]


def set_client_status(harness: Harness, alloc, status: str, at_ns: int | None = None) -> None:
    updated = replace(alloc, client_status=status, modify_time=at_ns or harness.now_ns)
    harness.store.update_allocs_from_client(harness.next_index(), [updated])


def test_service_job_places_count_allocations_with_names_and_resources():
    harness = cluster(3)
    evaluation = harness.register_and_schedule(make_job(count=3))
    allocs = live_allocs(harness, "web")
    assert evaluation.status == "complete"
    assert sorted(a.name for a in allocs) == ["web.g[0]", "web.g[1]", "web.g[2]"]
    assert all(a.allocated_resources.totals()[:2] == (100, 128) for a in allocs)
    assert all(a.deployment_id for a in allocs)  # a service job rolls out under a deployment


def test_binpack_packs_and_spread_spreads():
    def placements(config: SchedulerConfig) -> tuple[str, set[str]]:
        harness = cluster(4, config=config)
        harness.register_and_schedule(make_job("filler", count=1, cpu=3000, memory=6000))
        (filler,) = live_allocs(harness, "filler")
        harness.register_and_schedule(make_job(count=2, cpu=200, memory=128))
        return filler.node_id, {a.node_id for a in live_allocs(harness, "web")}

    loaded, packed = placements(SchedulerConfig())
    assert loaded in packed  # binpack fills the busy node first
    loaded, spread = placements(SchedulerConfig(algorithm="spread"))
    assert loaded not in spread and len(spread) == 2


def test_scale_up_and_down_keeps_lowest_indexes():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=2))
    harness.register_and_schedule(make_job(count=5))
    assert len(live_allocs(harness, "web")) == 5
    harness.register_and_schedule(make_job(count=1))
    assert [a.name for a in live_allocs(harness, "web")] == ["web.g[0]"]


def test_in_place_update_keeps_allocations_destructive_replaces_one_at_a_time():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=3, job_type="batch"))
    before = {a.id for a in live_allocs(harness, "web")}
    job = make_job(count=3, job_type="batch")
    job.task_groups[0].tasks[0].kill_timeout = 30 * SECOND  # in-place change
    harness.register_and_schedule(job)
    after = live_allocs(harness, "web")
    assert {a.id for a in after} == before
    assert all(a.job.version == 1 for a in after)

    service = cluster(2)
    service.register_and_schedule(make_job(count=3))
    for alloc in live_allocs(service, "web"):
        set_client_status(service, alloc, "running")
    changed = make_job(count=3, config={"command": "/bin/sleep", "args": ["120"]})
    evaluation = service.register_and_schedule(changed)
    updates = service.plans[-1].annotations.desired_tg_updates["g"]
    assert updates.destructive_update == 1  # update.max_parallel = 1
    assert evaluation.status == "complete"
    versions = Counter(a.job.version for a in live_allocs(service, "web"))
    assert versions == {0: 2, 1: 1}


def test_failed_allocation_is_rescheduled_after_its_delay():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=1))
    (alloc,) = live_allocs(harness, "web")
    set_client_status(harness, alloc, "failed", at_ns=harness.now_ns)
    # Service policy: 30 s exponential delay, so the first evaluation only schedules a follow-up.
    job = harness.store.job_by_id("default", "web")
    harness.register_and_schedule(job, triggered_by="alloc-failure")
    followups = [e for e in harness.created_evals if e.triggered_by == "alloc-failure"]
    assert len(followups) == 1 and followups[0].wait_until == harness.now_ns + 30 * SECOND
    assert harness.store.alloc_by_id(alloc.id).followup_eval_id == followups[0].id
    harness.now_ns += 31 * SECOND
    harness.process(followups[0])
    replacement = [a for a in live_allocs(harness, "web") if a.id != alloc.id]
    assert len(replacement) == 1
    assert replacement[0].previous_allocation == alloc.id
    assert replacement[0].reschedule_tracker.events[0].prev_alloc_id == alloc.id
    assert replacement[0].node_id != alloc.node_id  # the failed node is penalised


def test_a_failed_allocation_is_rescheduled_by_its_follow_up_even_when_modified_since():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=1))
    (alloc,) = live_allocs(harness, "web")
    set_client_status(harness, alloc, "failed", at_ns=harness.now_ns)
    harness.register_and_schedule(harness.store.job_by_id("default", "web"), triggered_by="alloc-failure")
    (followup,) = [e for e in harness.created_evals if e.triggered_by == "alloc-failure"]
    # The client reports the failure again later (a retried update): the allocation's modify time moves
    # past the follow-up's wait_until, yet the follow-up, when it runs, must still replace it.
    set_client_status(harness, harness.store.alloc_by_id(alloc.id), "failed", at_ns=harness.now_ns + 20 * SECOND)
    harness.now_ns = followup.wait_until
    harness.process(followup)
    assert [a.previous_allocation for a in live_allocs(harness, "web") if a.id != alloc.id] == [alloc.id]


def test_a_failed_allocation_whose_policy_allows_no_reschedule_is_not_replaced():
    harness = cluster(2)
    job = make_job(count=2)
    job.task_groups[0].reschedule_policy = replace(job.task_groups[0].reschedule_policy, attempts=0,
                                                   unlimited=False)
    harness.register_and_schedule(job)
    alloc = live_allocs(harness, "web")[0]
    set_client_status(harness, alloc, "failed")
    evaluation = harness.register_and_schedule(harness.store.job_by_id("default", "web"),
                                               triggered_by="alloc-failure")
    allocs = harness.store.allocs_by_job("default", "web")
    assert len(allocs) == 2 and harness.store.alloc_by_id(alloc.id).client_status == "failed"
    assert not [e for e in harness.created_evals if e.triggered_by == "alloc-failure"]
    assert evaluation.queued_allocations == {"g": 0}


def test_lost_node_allocations_are_replaced_elsewhere():
    harness = cluster(3)
    harness.register_and_schedule(make_job(count=3))
    victim = live_allocs(harness, "web")[0]
    harness.store.update_node_status(harness.next_index(), victim.node_id, "down", harness.now_ns)
    harness.register_and_schedule(harness.store.job_by_id("default", "web"), triggered_by="node-update")
    lost = harness.store.alloc_by_id(victim.id)
    assert lost.client_status == "lost" and lost.desired_status == "stop"
    live = live_allocs(harness, "web")
    assert len(live) == 3 and all(a.node_id != victim.node_id for a in live)


def test_only_allocations_marked_to_migrate_move_the_drainer_sets_the_pace():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=4, cpu=10, memory=10))
    counts = Counter(a.node_id for a in live_allocs(harness, "web"))
    drained, _ = counts.most_common(1)[0]
    harness.store.update_node_drain(harness.next_index(), drained, DrainStrategy(), False)
    marked = next(a for a in live_allocs(harness, "web") if a.node_id == drained)
    harness.store.update_alloc_desired_transition(harness.next_index(), {marked.id: DesiredTransition(migrate=True)})
    harness.register_and_schedule(harness.store.job_by_id("default", "web"), triggered_by="node-drain")
    assert harness.plans[-1].annotations.desired_tg_updates["g"].migrate == 1
    assert sum(1 for a in live_allocs(harness, "web") if a.node_id == drained) == counts[drained] - 1
    assert harness.store.alloc_by_id(marked.id).desired_status == "stop"


def test_an_allocation_stopped_on_a_healthy_node_is_replaced():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=2, cpu=10, memory=10))
    stopped = live_allocs(harness, "web")[0]
    harness.store.update_alloc_desired_transition(harness.next_index(), {stopped.id: DesiredTransition(migrate=True)})
    harness.register_and_schedule(harness.store.job_by_id("default", "web"), triggered_by="alloc-stop")
    live = live_allocs(harness, "web")
    assert len(live) == 2 and stopped.id not in {a.id for a in live}
    assert any(a.previous_allocation == stopped.id for a in live)


def test_system_job_runs_on_every_node_including_new_ones():
    harness = cluster(3)
    harness.register_and_schedule(make_job("agent", job_type="system", count=1))
    assert len(live_allocs(harness, "agent")) == 3
    harness.store.upsert_node(harness.next_index(), make_node(99))
    harness.register_and_schedule(harness.store.job_by_id("default", "agent"), triggered_by="node-update")
    assert {a.node_id for a in live_allocs(harness, "agent")} == {n.id for n in harness.store.nodes()}


def test_sysbatch_does_not_rerun_finished_allocations():
    harness = cluster(2)
    harness.register_and_schedule(make_job("once", job_type="sysbatch"))
    for alloc in live_allocs(harness, "once"):
        set_client_status(harness, alloc, "complete")
    harness.register_and_schedule(harness.store.job_by_id("default", "once"))
    assert len(harness.store.allocs_by_job("default", "once")) == 2


def test_static_port_collision_limits_one_per_node_and_dynamic_ports_are_in_range():
    harness = cluster(2)
    evaluation = harness.register_and_schedule(make_job(count=3, networks=[static_port("http", 8080)]))
    assert len(live_allocs(harness, "web")) == 2
    assert evaluation.failed_tg_allocs["g"].dimension_exhausted.get("network: port collision", 0) >= 1
    assert harness.created_evals and harness.created_evals[-1].status == "blocked"

    other = cluster(1)
    other.register_and_schedule(make_job(count=5, networks=[dynamic_port("db", to=6379)]))
    ports = [p.value for a in live_allocs(other, "web") for p in a.allocated_resources.shared.ports]
    assert len(ports) == 5 and len(set(ports)) == 5
    assert all(20000 <= p <= 32000 for p in ports)


def test_placement_failure_metrics_name_the_dimension_and_constraint():
    harness = cluster(3)
    evaluation = harness.register_and_schedule(make_job(count=1, memory=100_000))
    assert evaluation.failed_tg_allocs["g"].dimension_exhausted == {"memory": 3}
    assert 'Dimension "memory" exhausted on 3 nodes' in evaluation.failed_tg_allocs["g"].describe()
    windows = Constraint(l_target="${attr.kernel.name}", operand="=", r_target="windows")
    evaluation = harness.register_and_schedule(make_job("win", count=1, constraints=[windows]))
    assert evaluation.failed_tg_allocs["g"].constraint_filtered == {"${attr.kernel.name} = windows": 3}
    assert evaluation.queued_allocations == {"g": 1}


def test_distinct_hosts_and_spread_targets():
    harness = cluster(3)
    job = make_job(count=4, constraints=[Constraint(operand="distinct_hosts")])
    harness.register_and_schedule(job)
    assert len(live_allocs(harness, "web")) == 3

    racks = Harness(seed=3, now_ns=0)
    for i in range(6):
        racks.store.upsert_node(racks.next_index(), make_node(i, meta={"rack": f"r{i % 3}"}))
    job = make_job("spread", count=6)
    job.task_groups[0].spreads = [Spread(attribute="${meta.rack}", weight=100)]
    racks.register_and_schedule(job)
    per_rack = Counter(racks.store.node_by_id(a.node_id).meta["rack"] for a in live_allocs(racks, "spread"))
    assert per_rack == {"r0": 2, "r1": 2, "r2": 2}

    job = make_job("targets", count=10, cpu=10, memory=10)
    job.task_groups[0].spreads = [Spread(attribute="${meta.rack}", weight=100, spread_target=[
        SpreadTarget(value="r0", percent=70), SpreadTarget(value="r1", percent=30)])]
    racks.register_and_schedule(job)
    per_rack = Counter(racks.store.node_by_id(a.node_id).meta["rack"] for a in live_allocs(racks, "targets"))
    assert per_rack == {"r0": 7, "r1": 3}


def test_system_job_preempts_lower_priority_allocations():
    harness = cluster(1)
    harness.register_and_schedule(make_job("low", count=1, cpu=3500, priority=20))
    harness.register_and_schedule(make_job("agent", job_type="system", cpu=1000, priority=80))
    assert len(live_allocs(harness, "agent")) == 1
    assert live_allocs(harness, "low") == []
    evicted = harness.store.allocs_by_job("default", "low")[0]
    assert evicted.desired_status == "evict"


def test_stopping_a_job_stops_its_allocations():
    harness = cluster(2)
    harness.register_and_schedule(make_job(count=2))
    stopped = replace(harness.store.job_by_id("default", "web"), stop=True)
    harness.register_and_schedule(stopped, triggered_by="job-deregister")
    assert live_allocs(harness, "web") == []


def test_same_seed_gives_the_same_placements():
    def run():
        harness = cluster(20)
        harness.register_and_schedule(make_job(count=15, networks=[dynamic_port("p")]))
        return sorted((a.name, a.node_id, a.allocated_resources.port_numbers()[0])
                      for a in live_allocs(harness, "web"))

    assert run() == run()


def test_empty_cluster_blocks_the_evaluation_instead_of_failing():
    harness = Harness(seed=1)
    evaluation = harness.register_and_schedule(make_job(count=2))
    assert evaluation.status == "complete" and evaluation.queued_allocations == {"g": 2}
    assert [e.status for e in harness.created_evals] == ["blocked"]
    assert harness.register_and_schedule(make_job("agent", job_type="system")).status == "complete"


def test_in_place_update_rolls_out_under_the_new_versions_deployment():
    harness = cluster(2)
    first = harness.register_and_schedule(make_job(count=2))
    old = harness.store.latest_deployment_by_job("default", "web")
    assert first.deployment_id == old.id  # the evaluation names the deployment it worked within
    group = old.task_groups["g"]
    assert group.placed_allocs == 2 and group.require_progress_by  # the first placement starts the clock

    second = harness.register_and_schedule(make_job(count=3))  # a new version: 2 in place, 1 placed
    new = harness.store.latest_deployment_by_job("default", "web")
    assert new.id != old.id and second.deployment_id == new.id and new.job_version == 1
    allocs = live_allocs(harness, "web")
    assert {a.deployment_id for a in allocs} == {new.id}
    assert all(a.deployment_status is None for a in allocs)  # health is proven again under the new deployment
    assert new.task_groups["g"].placed_allocs == 3
