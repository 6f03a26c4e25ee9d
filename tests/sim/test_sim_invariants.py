"""The "no committed job lost" invariant: every acknowledged registration is recorded and checked."""

from __future__ import annotations

import pytest

from sim.cluster import ClusterSpec, SimCluster
from sim.scenarios import SCENARIOS, SERVICE_JOB, ScenarioResult, boot, finish

pytestmark = pytest.mark.sim


def test_a_scenarios_job_and_probe_writes_are_recorded_and_checked():
    cluster = SimCluster(ClusterSpec(seed=7))
    result = ScenarioResult("leader-minority-partition", 7)
    assert boot(cluster) is not None
    SCENARIOS["leader-minority-partition"](cluster, result)
    finish(cluster, result, ["web"])
    assert result.ok, result.violations
    acknowledged = cluster.checker.acknowledged_jobs
    assert set(acknowledged) == {("default", "web"), ("default", "probe")}
    state = cluster.state()
    for (namespace, job_id), (index, modify_index) in acknowledged.items():
        assert 0 < modify_index <= index <= state.latest_index()
        assert state.job_by_id(namespace, job_id).job_modify_index >= modify_index


def test_a_lost_or_rolled_back_registration_is_a_violation_and_a_purge_is_not():
    cluster = SimCluster(ClusterSpec(seed=3, servers=3, clients=2))
    assert boot(cluster) is not None
    assert cluster.run_job(SERVICE_JOB % {"count": 1}).ok
    checker = cluster.checker
    checker.check_state()
    assert checker.violations == [] and ("default", "web") in checker.acknowledged_jobs
    index, modify_index = checker.acknowledged_jobs[("default", "web")]
    # What a lost write would look like: a job acknowledged but absent, or at an older version.
    checker.acknowledged_jobs[("default", "ghost")] = (index, modify_index)
    checker.acknowledged_jobs[("default", "web")] = (index, modify_index + 1)
    checker.check_state()
    assert sorted(v.detail.split(" ")[1] for v in checker.violations) == ["ghost", "web"]
    del checker.acknowledged_jobs[("default", "ghost")]
    checker.violations.clear()
    checker.acknowledged_jobs[("default", "web")] = (index, modify_index)
    assert cluster.stop_job("web", purge=True).ok
    checker.check_state()
    assert checker.violations == [] and ("default", "web") not in checker.acknowledged_jobs
