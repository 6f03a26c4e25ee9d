"""FSM snapshot and restore: the whole store round-trips, in place, with listeners told."""

from dataclasses import replace

import msgpack
import pytest
from builders import make_job, make_node
from fsm_helpers import RaftHarness, tables_of
from state_builders import make_eval

from orchestrator.fsm import FSM
from orchestrator.fsm import commands as c
from orchestrator.state import TABLE_NAMES, Namespace, StateError, StateStore
from orchestrator.state.core import new_tables
from orchestrator.state.persist import _CODECS, FORMAT_VERSION, _codec, _JobPool, dump_store, load_store, to_plain
from orchestrator.structs import (
    DrainSpec,
    DrainStrategy,
    ParameterizedJobConfig,
    PeriodicConfig,
    TaskState,
    UpdateStrategy,
)


def _scheduled_cluster() -> RaftHarness:
    """A store filled by real scheduling through FSM commands, touching every table."""
    h = RaftHarness(seed=11)
    for i in range(6):
        h.log.ok(c.node_register(node=make_node(i, cpu=1000, memory=2048), update_time=1))
    web = make_job("web", count=4)
    web = replace(web, task_groups=[replace(web.task_groups[0], update=UpdateStrategy(max_parallel=2))])
    h.register_and_schedule(web)
    h.register_and_schedule(make_job("batch", job_type="batch", count=3))
    h.register_and_schedule(make_job("sys", job_type="system"))
    h.register_and_schedule(make_job("huge", count=30, cpu=900))  # leaves a blocked evaluation
    h.register_and_schedule(make_job("web", count=4, memory=256))  # a second version
    allocs = h.store.allocs_by_job("default", "batch")
    h.log.ok(c.alloc_client_update(allocs=[replace(a, client_status="running",
                                                   task_states={"t": TaskState(state="running")})
                                           for a in allocs]))
    h.log.ok(c.node_drain_update(node_id=make_node(5).id, drain_strategy=DrainStrategy(DrainSpec(deadline=-1)),
                                 updated_at=5))
    cron = replace(make_job("cron", job_type="batch"), periodic=PeriodicConfig(enabled=True, spec="*/5 * * * *"))
    h.log.ok(c.job_register(job=cron, submit_time=9))
    h.log.ok(c.job_register(job=replace(make_job("param", job_type="batch"),
                                        parameterized_job=ParameterizedJobConfig())))
    h.log.ok(c.job_register(job=replace(make_job("param/dispatch-1", job_type="batch"), parent_id="param",
                                        dispatched=True), evaluation=make_eval("d1", "param/dispatch-1")))
    h.log.ok(c.scheduler_config(config={"SchedulerAlgorithm": "spread"}))
    h.store.upsert_namespace(h.next_index(), Namespace("prod", "production"))
    return h


@pytest.fixture(scope="module")
def cluster() -> RaftHarness:
    return _scheduled_cluster()


def test_every_table_has_a_snapshot_codec():
    assert set(new_tables()) == set(_CODECS) == set(TABLE_NAMES)


def test_snapshot_and_restore_round_trip_every_table(cluster):
    store = cluster.store
    assert all(len(store._tables[name]) for name in TABLE_NAMES)
    assert store.blocked_evals() and store.deployments() and store.periodic_launches()
    data = FSM(store).snapshot()
    restored = StateStore()
    FSM(restored).restore(data)
    assert tables_of(restored) == tables_of(store)
    assert restored.latest_index() == store.latest_index()
    assert FSM(restored).snapshot() == data  # the encoding is deterministic too


def test_restored_allocations_share_one_job_object_per_version(cluster):
    restored = StateStore()
    load_store(restored, dump_store(cluster.store))
    jobs = {id(a.job) for a in restored.allocs_by_job("default", "web")}
    versions = {id(restored.job_by_id_and_version("default", "web", v)) for v in (0, 1)}
    assert jobs <= versions


def test_restore_is_in_place_and_tells_listeners(cluster):
    store = StateStore()
    fsm = FSM(store)
    fsm.apply(1, c.node_register(node=make_node(99)))
    old_view = store.snapshot()
    heard = []
    store.add_listener(lambda tables, index: heard.append((tables, index)))
    fsm.restore(FSM(cluster.store).snapshot())
    assert heard == [(frozenset(TABLE_NAMES), cluster.store.latest_index())]
    assert tables_of(store) == tables_of(cluster.store)
    assert store.node_by_id(make_node(99).id) is None
    assert old_view.node_by_id(make_node(99).id) is not None  # snapshots taken before keep their picture


def test_a_restored_store_goes_on_exactly_like_the_original():
    original = _scheduled_cluster()
    twin = RaftHarness(seed=11, store=StateStore())
    load_store(twin.store, dump_store(original.store))
    for h in (original, twin):
        h.rng.seed(5)
        h.log.ok(c.node_status_update(node_id=make_node(0).id, status="down", updated_at=7))
        h.register_and_schedule(make_job("web", count=6, memory=256))
        h.register_and_schedule(make_job("late", count=2))
    assert tables_of(twin.store) == tables_of(original.store)


def test_corrupt_snapshots_change_nothing(cluster):
    store = StateStore()
    FSM(store).apply(1, c.node_register(node=make_node(1)))
    before = tables_of(store)
    for data in (b"\x00garbage", dump_store(cluster.store)[:-20]):
        with pytest.raises(StateError):
            load_store(store, data)
        assert tables_of(store) == before


def _whole_packb(store: StateStore) -> bytes:
    """The snapshot as one msgpack.packb of the whole structure, nothing reused: what dump_store must give."""
    pool = _JobPool()
    tables = {}
    for name, table in store._tables.items():
        dump_row, _ = _codec(name)
        position = {pk: i for i, pk in enumerate(table.rows)}
        indexes = {index: [[position[pk] for pk in bucket] for bucket in buckets.values()]
                   for index, buckets in table.indexes.items()}
        tables[name] = {"Index": table.index, "Rows": [[pk, dump_row(row, pool)] for pk, row in table.rows.items()],
                        "Indexes": indexes}
    return msgpack.packb({"Version": FORMAT_VERSION, "Jobs": pool.encoded, "Tables": tables}, default=to_plain)


def test_snapshots_reuse_what_the_previous_one_packed_and_stay_byte_identical():
    h = _scheduled_cluster()
    first = dump_store(h.store)
    assert first == _whole_packb(h.store)
    assert h.store._dumped_jobs and h.store._dumped_rows  # kept for the next snapshot
    # Writes between snapshots replace some jobs and summaries and add others; the next snapshot packs those.
    h.register_and_schedule(make_job("web", count=5, memory=256))
    h.register_and_schedule(make_job("another", count=1))
    h.log.ok(c.job_deregister(namespace="default", job_id="batch", purge=True))
    second = dump_store(h.store)
    assert second == _whole_packb(h.store) and second != first
    assert dump_store(h.store) == second
    # The generic scheduler sets blocked_eval on the (stored) evaluation it processes: packed again.
    stored = next(iter(h.store._tables["evals"].rows.values()))
    stored.blocked_eval = "set-in-place"
    assert dump_store(h.store) == _whole_packb(h.store) != second
    stored.blocked_eval = ""
    restored = StateStore()
    load_store(restored, second)
    assert tables_of(restored) == tables_of(h.store)
    # Only objects still stored are remembered: a purged job's packing is not kept alive.
    stored_jobs = {id(j) for name in ("jobs", "job_versions") for j in h.store._tables[name].rows.values()}
    stored_jobs |= {id(a.job) for a in h.store._tables["allocs"].rows.values() if a.job is not None}
    assert set(h.store._dumped_jobs) <= stored_jobs
