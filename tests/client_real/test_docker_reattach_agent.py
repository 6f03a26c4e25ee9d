"""A client agent killed while a docker task runs and started again reattaches to its container: the same
container keeps running, its logs flow on, no restart is counted, and the job's stop still removes it."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker
import pytest

from orchestrator.drivers.docker_config import LABEL_ALLOC_ID
from orchestrator.testing.dockerd import DockerEngine
from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import CLIENT_STANZAS, eventually, running, start_agent

pytestmark = [pytest.mark.real, pytest.mark.docker]

JOB = """job "boxed" {
  datacenters = ["dc1"]
  group "g" {
    task "t" {
      driver = "docker"
      config {
        image   = "yurt/busybox:1"
        command = "sh"
        args    = ["-c", "trap 'exit 0' TERM; i=0; while true; do echo \\"tick $i\\"; i=$((i+1)); sleep 0.1; done"]
      }
      resources {
        cpu    = 20
        memory = 32
      }
    }
  }
}
"""


def test_a_restarted_client_reattaches_to_its_running_container(docker_engine: DockerEngine, docker_client: Any):
    plugin = f'\nplugin "docker" {{\n  config {{\n    endpoint = "{docker_engine.base_url}"\n  }}\n}}\n'
    with LocalCluster(servers=1) as cluster:
        agent = start_agent(cluster, cluster.base / "data" / "s1", CLIENT_STANZAS + plugin)

        def docker_healthy() -> bool:
            node = agent.api(f"/v1/node/{agent.api('/v1/nodes')[0]['ID']}")
            return bool((node["Drivers"].get("docker") or {}).get("Healthy"))

        assert eventually(docker_healthy, timeout=30)
        job_id = agent.run(JOB)
        alloc_id = eventually(lambda: running(agent, job_id), timeout=60)[0]["ID"]

        def containers(all_: bool = False) -> list[dict]:
            return docker_client.api.containers(all=all_, filters={"label": f"{LABEL_ALLOC_ID}={alloc_id}"})

        try:
            (container,) = eventually(containers, timeout=10)
            log = agent.data_dir / "alloc" / alloc_id / "alloc/logs/t.stdout.0"
            assert eventually(lambda: log.exists() and log.read_text().count("tick") > 2, timeout=10)
            cluster.kill(0)  # kill -9 of the agent: the container runs on
            time.sleep(0.3)
            assert [c["Id"] for c in containers()] == [container["Id"]]
            cluster.start(0)
            lines = len(log.read_text().splitlines())
            assert eventually(lambda: len(log.read_text().splitlines()) > lines + 3, timeout=20)  # logs flow again
            state = agent.alloc(alloc_id)["TaskStates"]["t"]
            assert (state["State"], state["Restarts"]) == ("running", 0)
            assert [c["Id"] for c in containers(all_=True)] == [container["Id"]]  # the same one, no other
            ticks = [int(line.split()[1]) for line in log.read_text().splitlines()]
            assert ticks == sorted(set(ticks))  # nothing written twice across the reattach
            agent.api(f"/v1/job/{job_id}", "DELETE")
            assert eventually(lambda: not containers(), timeout=20)
        finally:
            for leftover in containers(all_=True):
                with contextlib.suppress(docker.errors.APIError):
                    docker_client.api.remove_container(leftover["Id"], force=True)
