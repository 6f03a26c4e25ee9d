"""The seeds' walkthroughs end to end with `yurt` on a dev agent running docker tasks: seed 000 (a Chinese blog
post: `nomad init`, `job run`, count = 3 with `job plan` and `job run -check-index`, `stop`, status dead) and seed
004 (a Japanese one: `job init -short`, `job run`, `docker ps`, `logs`, count = 3, `docker kill` a container and
watch it come back, `job stop`).

The posts run the public `redis:3.2` image; no registry is reachable here, so the job file `yurt job init` writes
gets the local busybox image (`yurt/busybox:1`, built from busybox-static) and a shell loop in its place."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from orchestrator.drivers.docker_config import LABEL_ALLOC_ID
from orchestrator.testing.dockerd import DockerEngine
from orchestrator.testing.local_cluster import LocalCluster
from orchestrator.testing.local_cluster import eventually as poll_until

pytestmark = [pytest.mark.real, pytest.mark.docker]

YURT = [sys.executable, "-m", "orchestrator.cli.main"]
IMAGE = "yurt/busybox:1"
# As PID 1 a shell ignores SIGTERM unless it traps it: without the trap every stop would wait for the kill timeout.
SERVER_LOOP = 'echo "server started"; trap "exit 0" TERM; while true; do sleep 0.2; done'
# Nomad's default restart policy for service jobs (the posts' job files have none): 15 s delay, plus up to 25 %
# jitter, as yurt's restart tracker adds (orchestrator/client/restarts.py).
RESTART_DELAY = 15.0 * 1.25


eventually = partial(poll_until, interval=0.1, tolerate=(OSError, urllib.error.URLError, ValueError, KeyError))


@pytest.fixture(scope="module")
def engine(docker_engine: DockerEngine, docker_client: Any) -> DockerEngine:
    """The session's engine (root conftest), with the busybox image in it."""
    return docker_engine


class Dev:
    """A dev agent whose docker driver talks to the test's engine, and the `yurt` CLI pointed at it."""

    def __init__(self, cluster: LocalCluster, engine: DockerEngine, workdir: Path) -> None:
        self.cluster = cluster
        self.docker = engine.client()
        self.workdir = workdir

    @property
    def address(self) -> str:
        return self.cluster.agents[0].address

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(self.address + path, timeout=10) as response:
            return json.loads(response.read())

    def yurt(self, *args: str) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "YURT_"))}
        env["NOMAD_ADDR"] = self.address
        return subprocess.run([*YURT, *args], capture_output=True, text=True, timeout=120, cwd=self.workdir, env=env)

    def ok(self, *args: str) -> str:
        result = self.yurt(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr, self.log())
        return result.stdout

    def running(self, count: int) -> list[dict]:
        allocs = [a for a in self.api("/v1/job/example/allocations") if a["ClientStatus"] == "running"]
        return allocs if len(allocs) == count else []

    def containers(self, *, all_: bool = False) -> list[dict]:
        """The job's containers (`docker ps`), told apart from other tests' by the allocations' ids."""
        ids = {a["ID"] for a in self.api("/v1/job/example/allocations")}
        listed = self.docker.api.containers(all=all_, filters={"label": LABEL_ALLOC_ID})
        return [c for c in listed if c["Labels"].get(LABEL_ALLOC_ID) in ids]

    def log(self) -> str:
        return self.cluster.agents[0].log.read_text()[-3000:]


@pytest.fixture
def dev(engine: DockerEngine, tmp_path: Path) -> Iterator[Dev]:
    with LocalCluster(dev=True) as cluster:
        config = cluster.agents[0].config
        config.write_text(config.read_text() + f'\nplugin "docker" {{\n  config {{\n    endpoint = "{engine.base_url}"'
                                               '\n  }\n}\n')
        cluster.start()
        agent = Dev(cluster, engine, tmp_path)

        def docker_ready() -> bool:
            nodes = agent.api("/v1/nodes")
            return bool(nodes) and nodes[0]["Status"] == "ready" and nodes[0]["Drivers"]["docker"]["Healthy"]

        assert eventually(docker_ready, timeout=60), agent.log()
        try:
            yield agent
        finally:
            # Stopping the dev agent stops its tasks; whatever is left (a failed test) goes here. The job's
            # containers are listed while the agent still answers, which it no longer does once stopped.
            leftovers: list[dict] = []
            with contextlib.suppress(Exception):
                leftovers = agent.containers(all_=True)
            cluster.stop()
            for container in leftovers:
                with contextlib.suppress(Exception):
                    agent.docker.api.remove_container(container["Id"], force=True)
            agent.docker.close()


def local_image(spec: Path) -> None:
    """The job file with the local busybox image and a long-running shell in place of redis (no registry)."""
    text = spec.read_text()
    replaced = re.sub(r'image = "redis:[^"]*"', f'image = "{IMAGE}"\n        command = "sh"\n'
                      f'        args = ["-c", {json.dumps(SERVER_LOOP)}]', text)
    assert replaced != text, text
    spec.write_text(replaced)


def set_count(spec: Path, count: int) -> None:
    text = spec.read_text()
    spec.write_text(text.replace('group "cache" {', f'group "cache" {{\n    count = {count}\n', 1))


def test_seed_000_init_run_scale_with_plan_and_check_index_then_stop(dev):
    assert "Example job file written to example.nomad" in dev.ok("init")
    spec = dev.workdir / "example.nomad"
    local_image(spec)
    run = dev.ok("job", "run", "example.nomad")
    assert 'finished with status "complete"' in run, run
    assert eventually(lambda: dev.running(1), timeout=30), dev.log()
    listing = dev.ok("job", "status")
    assert re.search(r"^example\s+service\s+50\s+running", listing, re.M), listing

    set_count(spec, 3)
    plan = dev.yurt("job", "plan", "example.nomad")
    assert plan.returncode == 1, (plan.stdout, plan.stderr)  # 1: allocations would be created
    assert '+/- Task Group: "cache" (2 create' in plan.stdout, plan.stdout
    index = re.search(r"yurt job run -check-index (\d+) example.nomad", plan.stdout)
    assert index, plan.stdout
    assert 'finished with status "complete"' in dev.ok("job", "run", "-check-index", index.group(1), "example.nomad")
    allocs = eventually(lambda: dev.running(3), timeout=30)
    assert allocs, dev.log()
    assert eventually(lambda: len(dev.containers()) == 3, timeout=10)
    status = dev.ok("job", "status", "example")
    rows = [line.split() for line in status.split("Allocations\n", 1)[1].splitlines()[1:]]
    assert sorted((row[2], row[4], row[5]) for row in rows) == [("cache", "run", "running")] * 3, status

    assert "dead (stopped)" not in dev.ok("status")
    dev.ok("stop", "example")
    assert eventually(lambda: re.search(r"^example\s+service\s+50\s+dead \(stopped\)", dev.ok("job", "status"),
                                        re.M), timeout=30)
    assert eventually(lambda: not dev.containers(all_=True), timeout=20), dev.containers(all_=True)


def test_seed_004_init_short_run_logs_scale_docker_kill_and_stop(dev):
    assert "Example job file written to example.nomad" in dev.ok("job", "init", "-short")
    spec = dev.workdir / "example.nomad"
    local_image(spec)
    dev.ok("job", "run", "example.nomad")
    first = eventually(lambda: dev.running(1), timeout=30)
    assert first, dev.log()
    assert eventually(lambda: len(dev.containers()) == 1, timeout=10)  # `docker ps`
    assert eventually(lambda: "server started" in dev.ok("logs", first[0]["ID"][:8]), timeout=10)

    set_count(spec, 3)
    plan = dev.yurt("job", "plan", "example.nomad")
    assert plan.returncode == 1 and '(2 create' in plan.stdout, (plan.stdout, plan.stderr)
    dev.ok("job", "run", "example.nomad")
    assert eventually(lambda: dev.running(3), timeout=30), dev.log()
    before = eventually(lambda: dev.containers() if len(dev.containers()) == 3 else None, timeout=10)
    assert before

    victim = before[0]["Id"]
    dev.docker.api.kill(victim)  # `docker kill 94401e464ba7`
    killed_at = time.monotonic()

    def replaced() -> list[dict]:
        now = dev.containers()
        return now if len(now) == 3 and victim not in {c["Id"] for c in now} else []

    assert eventually(replaced, timeout=RESTART_DELAY + 1.0), dev.containers(all_=True)
    took = time.monotonic() - killed_at
    assert took <= RESTART_DELAY + 1.0, took
    alloc = next(a for a in dev.running(3) if a["ID"] == before[0]["Labels"][LABEL_ALLOC_ID])
    assert alloc["TaskStates"]["redis"]["Restarts"] == 1, alloc["TaskStates"]
    status = dev.ok("job", "status", "example")
    assert re.search(r"^Status\s+= running$", status, re.M), status
    rows = [line.split() for line in status.split("Allocations\n", 1)[1].splitlines()[1:]]
    assert sorted(row[5] for row in rows) == ["running"] * 3, status

    dev.ok("job", "stop", "example")
    assert eventually(lambda: not dev.containers(all_=True), timeout=20), dev.containers(all_=True)
    assert eventually(lambda: "dead (stopped)" in dev.ok("job", "status", "example"), timeout=10)


ENV_JOB = """job "example" {
  datacenters = ["dc1"]
  group "g" {
    task "show" {
      driver = "docker"
      config {
        image   = "yurt/busybox:1"
        command = "sh"
        args    = ["-c", "echo alloc=$NOMAD_ALLOC_ID task=${NOMAD_TASK_NAME} dir=$NOMAD_TASK_DIR; sleep 300"]
      }
      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
"""


def test_a_docker_task_sees_nomads_environment(dev):
    (dev.workdir / "env.nomad").write_text(ENV_JOB)
    dev.yurt("job", "run", "-detach", "env.nomad")
    (alloc,) = eventually(lambda: dev.running(1), timeout=60)
    out = eventually(lambda: dev.yurt("alloc", "logs", alloc["ID"], "show").stdout.strip(), timeout=20)
    assert out == f"alloc={alloc['ID']} task=show dir=/local", out
    dev.ok("job", "stop", "-purge", "example")
