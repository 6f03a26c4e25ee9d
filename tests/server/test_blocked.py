"""Tests for blocked evaluations: unblock by class, node and plan failure, one per job, missed unblocks."""

from orchestrator.server.blocked import BlockedEvals
from orchestrator.state import StateStore
from orchestrator.structs import Evaluation


def blocked(eval_id: str, job: str = "", *, elig: dict | None = None, escaped: bool = False,
            index: int = 10, snapshot: int = 0, **fields) -> Evaluation:
    return Evaluation(id=eval_id, job_id=job or f"job-{eval_id}", status="blocked",
                      class_eligibility=dict(elig or {}), escaped_computed_class=escaped,
                      create_index=index, modify_index=index, snapshot_index=snapshot, **fields)


def ids(evals) -> list[str]:
    return [e.id for e in evals]


def test_unblock_releases_evals_eligible_for_or_unaware_of_the_class():
    b = BlockedEvals()
    b.block(blocked("eligible", elig={"c1": True, "c2": False}))
    b.block(blocked("ineligible", elig={"c1": False}))
    b.block(blocked("unknown", elig={"c2": True}))
    b.block(blocked("escaped", elig={"c1": False}, escaped=True))
    released = b.unblock("c1", 20)
    assert ids(released) == ["eligible", "unknown", "escaped"]
    assert all(e.status == "pending" for e in released)
    assert ids(b.blocked()) == ["ineligible"]
    assert ids(b.unblock("c9", 21)) == ["ineligible"]


def test_released_copies_leave_the_inputs_untouched():
    b = BlockedEvals()
    original = blocked("a")
    b.block(original)
    (released,) = b.unblock("c1", 20)
    assert released is not original and original.status == "blocked" and released.status == "pending"


def test_escaped_evals_wait_for_a_named_class():
    b = BlockedEvals()
    b.block(blocked("escaped", escaped=True))
    assert b.unblock("", 20) == []
    assert ids(b.unblock("c1", 21)) == ["escaped"]


def test_only_one_blocked_eval_per_job_the_newer_wins():
    b = BlockedEvals()
    b.block(blocked("old", "web", index=10))
    b.block(blocked("new", "web", index=12))
    assert ids(b.take_duplicates()) == ["old"]
    assert b.take_duplicates() == []
    b.block(blocked("stale", "web", index=11))  # older than the tracked one: it is the duplicate
    assert ids(b.take_duplicates()) == ["stale"]
    assert b.get("default", "web").id == "new"
    assert ids(b.unblock("c1", 20)) == ["new"]


def test_untrack_forgets_a_job():
    b = BlockedEvals()
    b.block(blocked("a", "web"))
    b.block(blocked("b", "api"))
    b.untrack("default", "web")
    assert ids(b.unblock("c1", 20)) == ["b"]


def test_system_evals_block_per_node_and_unblock_by_node():
    b = BlockedEvals()
    b.block(blocked("n1", "sys", type="system", node_id="node-1", elig={"c1": False}))
    b.block(blocked("n2", "sys", type="system", node_id="node-2", elig={"c1": False}))
    assert b.take_duplicates() == []  # one per job and node
    assert ids(b.unblock("c1", 20)) == []
    assert ids(b.unblock_node("node-1", 21)) == ["n1"]
    assert b.unblock_node("node-1", 22) == []
    assert b.stats().total_system == 1
    b.untrack("default", "sys")
    assert len(b) == 0


def test_unblock_failed_releases_only_plan_failures():
    b = BlockedEvals()
    b.block(blocked("plans", triggered_by="max-plan-attempts"))
    b.block(blocked("capacity", triggered_by="queued-allocs"))
    b.block(blocked("plans-escaped", triggered_by="max-plan-attempts", escaped=True))
    assert ids(b.unblock_failed()) == ["plans", "plans-escaped"]
    assert ids(b.blocked()) == ["capacity"]


def test_missed_unblock_returns_the_eval_for_immediate_enqueue():
    b = BlockedEvals()
    b.unblock("c1", 50)
    # Planned on a snapshot at index 40, before capacity appeared on c1 at 50: it may fit now.
    missed = b.block(blocked("late", elig={"c1": True}, snapshot=40, index=55))
    assert missed is not None and missed.status == "pending"
    assert len(b) == 0
    # Planned after the unblock, or ineligible for the class: blocked as usual.
    assert b.block(blocked("fresh", elig={"c1": True}, snapshot=60, index=61)) is None
    assert b.block(blocked("inelig", elig={"c1": False}, snapshot=40, index=62)) is None
    # A class it never saw was unblocked after its snapshot: it may be feasible there.
    b.unblock("c2", 70)
    assert ids(b.take_duplicates()) == []
    assert b.block(blocked("unaware", elig={"c1": False}, snapshot=65, index=72)) is not None
    # Escaped evals missed any unblock after their snapshot.
    assert b.block(blocked("esc", escaped=True, snapshot=69, index=73)) is not None


def test_missed_unblock_falls_back_to_the_create_index_and_never_loops_without_either():
    b = BlockedEvals()
    b.unblock("c1", 50)
    assert b.block(blocked("committed-before", snapshot=0, index=45)) is not None
    assert b.block(blocked("committed-after", snapshot=0, index=51)) is None
    assert b.block(blocked("unknown", snapshot=0, index=0)) is None


def test_stats_and_flush():
    b = BlockedEvals()
    b.block(blocked("a", elig={"c1": True}))
    b.block(blocked("b", escaped=True))
    stats = b.stats()
    assert (stats.total_blocked, stats.total_escaped, stats.total_captured) == (2, 1, 1)
    assert stats.to_api()["TotalBlocked"] == 2
    b.set_enabled(False)
    assert len(b) == 0
    assert b.block(blocked("c")) is None and len(b) == 0 and b.unblock("c1", 1) == []


def test_restore_from_state_tracks_blocked_evals():
    store = StateStore()
    store.upsert_evals(5, [blocked("b1", "web"), Evaluation(id="p", job_id="x")])
    store.upsert_evals(6, [blocked("b2", "api")])
    b = BlockedEvals()
    assert b.restore_from(store) == []
    assert ids(b.blocked()) == ["b1", "b2"]


def test_unblock_cost_does_not_grow_with_evals_that_stay_blocked():
    b = BlockedEvals()
    for i in range(2000):
        b.block(blocked(f"e{i}", elig={"busy": False, f"own{i % 3}": True}))
    for index in range(100):
        assert b.unblock("busy", 100 + index) == []  # three buckets looked at, not 2000 evals
    assert len(b.unblock("other", 300)) == 2000
