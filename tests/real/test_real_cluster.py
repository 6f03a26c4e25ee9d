"""Real agent processes on 127.0.0.1: a dev agent, and a 3-server cluster formed with retry_join,
surviving kill -9 of its leader and restarts from its data dirs."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request

import pytest

from orchestrator.testing.local_cluster import LocalCluster, count_zero_job

pytestmark = [pytest.mark.real]


def _get(cluster: LocalCluster, index: int, path: str):
    return cluster.request(index, "GET", path)


def test_a_dev_agent_serves_the_api_and_python_nomad_works_against_it():
    nomad = pytest.importorskip("nomad")
    with LocalCluster(dev=True) as cluster:
        cluster.start()
        assert cluster.wait(lambda: cluster.leader(0) != "", timeout=20) is not None, cluster.agents[0].log.read_text()
        client = nomad.Nomad(host="127.0.0.1", port=cluster.agents[0].http, timeout=5)
        job = count_zero_job("via-python-nomad")
        client.jobs.register_job({"Job": job})
        assert client.job.get_job("via-python-nomad")["ID"] == "via-python-nomad"
        assert "via-python-nomad" in [j["ID"] for j in client.jobs.get_jobs()]
        client.job.deregister_job("via-python-nomad", purge=True)
        assert "via-python-nomad" not in [j["ID"] for j in client.jobs.get_jobs()]


def test_bad_input_gets_a_clear_4xx_and_the_agent_keeps_serving():
    with LocalCluster(dev=True) as cluster:
        cluster.start()
        assert cluster.wait(lambda: cluster.leader(0) != "", timeout=20) is not None
        base = cluster.agents[0].address
        for path, body, fragment in [
            ("/v1/jobs", b'{"Job": ', "unexpected EOF"),  # Go's JSON error text, as Nomad answers
            ("/v1/jobs/parse", json.dumps({"JobHCL": 'job "x" {\n  group "g" {\n'}).encode(), ":"),
        ]:
            request = urllib.request.Request(base + path, data=body, method="PUT" if path == "/v1/jobs" else "POST")
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=5)
            assert caught.value.code == 400
            assert fragment in caught.value.read().decode()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + "/v1/job/nope", timeout=5)
        assert caught.value.code == 404
        assert cluster.register(0, count_zero_job("after-bad-input"))


@pytest.mark.slow
def test_three_servers_form_survive_kill_9_of_the_leader_and_restart_from_disk():
    with LocalCluster(servers=3) as cluster:
        cluster.start()
        logs = [a.log for a in cluster.agents]
        assert cluster.wait(cluster.healthy, timeout=60) is not None, [log.read_text()[-2000:] for log in logs]
        members = _get(cluster, 0, "/v1/agent/members")["Members"]
        assert sorted(m["Status"] for m in members) == ["alive"] * 3
        assert cluster.register(0, count_zero_job("before-failover"))
        leader = cluster.leader_index()
        assert leader is not None
        cluster.kill(leader, signal.SIGKILL)
        survivors = [i for i in range(3) if i != leader]
        took = cluster.wait(lambda: any(cluster.register(i, count_zero_job("after-failover"), timeout=1.0)
                                        for i in survivors), timeout=30)
        assert took is not None and took < 10
        for i in survivors:
            ids = [j["ID"] for j in _get(cluster, i, "/v1/jobs?stale")]
            assert "before-failover" in ids
        # Every server killed, then restarted from its data dir: the jobs are all there.
        for i in range(3):
            cluster.kill(i, signal.SIGKILL)
        cluster.start()
        assert cluster.wait(cluster.healthy, timeout=60) is not None
        ids = {j["ID"] for j in _get(cluster, 0, "/v1/jobs")}
        assert {"before-failover", "after-failover"} <= ids
