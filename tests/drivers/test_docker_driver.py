"""The docker driver against a real engine: runs, logs, env, exits, outside kills, stops, OOM, ports, recovery."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker_helpers import NODE_ID, Waker, make_alloc, make_task, read_log, wait_for

from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.drivers.docker import DockerDriver
from orchestrator.structs.alloc import AllocatedPortMapping
from orchestrator.testing.dockerd import DockerEngine
from orchestrator.testing.local_cluster import free_port

pytestmark = pytest.mark.docker

NODE_LABEL = "com.hashicorp.nomad.node_id"
# As PID 1 a shell ignores SIGTERM unless it traps it.
FOREVER = ["sh", "-c", 'trap "exit 0" TERM; while true; do sleep 0.1; done']


@pytest.fixture
def waker() -> Waker:
    return Waker()


@pytest.fixture
def driver(docker_engine: DockerEngine, docker_client: Any, alloc_root: Path, waker: Waker) -> Iterator[DockerDriver]:
    drv = DockerDriver({"endpoint": docker_engine.base_url}, wake=waker, alloc_dir_of=lambda a: alloc_root / a)
    yield drv
    drv.close()
    # Low-level listing: the high-level one inspects each container and races with the driver's removals.
    for container in docker_client.api.containers(all=True, filters={"label": f"{NODE_LABEL}={NODE_ID}"}):
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_container(container["Id"], force=True)


def command(*argv: str) -> dict[str, Any]:
    return {"command": argv[0], "args": list(argv[1:])}


def wait_exit(driver: DockerDriver, waker: Waker, timeout: float = 10.0) -> TaskExit:
    exits: list[TaskExit] = []

    def got() -> bool:
        waker.event.wait(0.05)
        waker.event.clear()
        exits.extend(driver.poll(0.0))
        return bool(exits)

    wait_for(got, timeout)
    assert len(exits) == 1, exits
    return exits[0]


def wait_running(client: Any, handle: str, timeout: float = 5.0) -> None:
    wait_for(lambda: client.api.inspect_container(handle)["State"]["Running"], timeout)


def test_task_runs_with_env_and_its_output_lands_in_the_log_files(driver, waker, alloc_root):
    task = make_task(command("sh", "-c", 'echo "out $GREETING"; echo "err $NOMAD_TASK_DIR" >&2; exit 3'),
                     env={"GREETING": "hello"})
    alloc = make_alloc(task)
    handle = driver.start(0.0, alloc, task)
    assert driver.next_deadline() is None
    waker.event.wait(10.0)
    assert driver.next_deadline() == 0.0  # a recorded exit is due at once: the client's tick polls it
    exit_ = wait_exit(driver, waker)
    assert (exit_.handle, exit_.exit_code, exit_.failed) == (handle, 3, True)
    assert driver.next_deadline() is None
    logs = alloc_root / alloc.id / "alloc" / "logs"
    assert wait_for(lambda: read_log(logs, "t", "stdout")) == "out hello\n"
    assert wait_for(lambda: read_log(logs, "t", "stderr")) == "err /local\n"
    assert driver.poll(0.0) == []  # each exit reported once


def test_container_is_named_labelled_limited_and_removed_after_exit(driver, waker, docker_client):
    task = make_task({**command("sleep", "600"), "labels": {"team": "a"}}, memory_mb=48)
    alloc = make_alloc(task)
    handle = driver.start(0.0, alloc, task)
    info = docker_client.api.inspect_container(handle)
    assert info["Name"] == f"/t-{alloc.id}"
    labels = info["Config"]["Labels"]
    assert labels["com.hashicorp.nomad.alloc_id"] == alloc.id and labels["team"] == "a"
    assert labels["com.hashicorp.nomad.task_name"] == "t" and labels["com.hashicorp.nomad.job_id"] == "web"
    assert info["HostConfig"]["Memory"] == 48 * 1024 * 1024 and info["HostConfig"]["CpuShares"] == 100
    wait_running(docker_client, handle)
    driver.stop(0.0, handle, kill_timeout=0.0)
    assert wait_exit(driver, waker).exit_code == 137
    wait_for(lambda: not docker_client.api.containers(all=True, filters={"id": handle}))


def test_outside_docker_kill_is_noticed_within_a_second(driver, waker, docker_client):
    task = make_task(command(*FOREVER))
    handle = driver.start(0.0, make_alloc(task), task)
    wait_running(docker_client, handle)
    killed_at = time.monotonic()
    docker_client.api.kill(handle)
    exit_ = wait_exit(driver, waker)
    noticed = waker.at - killed_at
    assert (exit_.exit_code, exit_.failed) == (137, True)
    assert noticed < 1.0, f"noticed after {noticed:.3f}s"
    print(f"outside docker kill noticed after {noticed * 1000:.1f} ms")


def test_stop_escalates_to_sigkill_after_the_kill_timeout(driver, waker, docker_client):
    task = make_task(command("sh", "-c", 'trap "" TERM; while true; do sleep 0.1; done'))
    handle = driver.start(0.0, make_alloc(task), task)
    wait_running(docker_client, handle)
    stopped_at = time.monotonic()
    driver.stop(0.0, handle, kill_timeout=0.5)
    exit_ = wait_exit(driver, waker)
    took = waker.at - stopped_at
    assert exit_.exit_code == 137 and 0.5 <= took < 2.0, (exit_, took)


def test_stop_with_the_tasks_kill_signal_ends_it_gracefully(driver, waker, docker_client):
    task = make_task(command("sh", "-c", 'trap "exit 0" INT; while true; do sleep 0.1; done'), kill_signal="SIGINT")
    handle = driver.start(0.0, make_alloc(task), task)
    wait_running(docker_client, handle)
    driver.stop(0.0, handle, kill_timeout=5.0)
    exit_ = wait_exit(driver, waker)
    assert (exit_.exit_code, exit_.failed) == (0, False)
    assert waker.at is not None


def test_out_of_memory_is_reported_as_oom_killed(driver, waker):
    # A shell variable of 64 MB in a container limited to 20 MB. Not less: under ~10 MB the container can be
    # killed while starting, before the engine watches for OOM, and the engine then reports a plain exit 137.
    task = make_task(command("sh", "-c", 'x="$(head -c 67108864 /dev/zero | tr "\\0" a)"; echo survived'),
                     memory_mb=20)
    driver.start(0.0, make_alloc(task), task)
    exit_ = wait_exit(driver, waker, timeout=20.0)
    assert (exit_.exit_code, exit_.failed, exit_.message) == (137, True, "OOM Killed")




def test_group_ports_are_published_on_the_node_address(driver, docker_client, alloc_root):
    host_port = free_port()
    task = make_task({**command("sh", "-c", "echo served > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"),
                      "ports": ["http"]})
    alloc = make_alloc(task, ports=[AllocatedPortMapping(label="http", value=host_port, to=8080, host_ip="127.0.0.1")])
    handle = driver.start(0.0, alloc, task)
    wait_running(docker_client, handle)
    bindings = docker_client.api.inspect_container(handle)["HostConfig"]["PortBindings"]
    assert bindings["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]
    assert bindings["8080/udp"] == [{"HostIp": "127.0.0.1", "HostPort": str(host_port)}]

    def fetch() -> bytes:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{host_port}/index.html", timeout=1) as resp:
                return resp.read()
        except OSError:
            return b""

    assert wait_for(fetch) == b"served\n"


def test_a_new_driver_recovers_a_running_container_and_its_logs(docker_engine, driver, waker, docker_client,
                                                                 alloc_root):
    task = make_task(command("sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done"))
    alloc = make_alloc(task)
    handle = driver.start(0.0, alloc, task)
    logs = alloc_root / alloc.id / "alloc" / "logs"
    wait_for(lambda: "tick 3\n" in read_log(logs, "t", "stdout"))
    driver.close()  # the client agent goes away; its container keeps running
    time.sleep(0.3)
    waker2 = Waker()
    driver2 = DockerDriver({"endpoint": docker_engine.base_url}, wake=waker2, alloc_dir_of=lambda a: alloc_root / a)
    try:
        assert driver2.recover(0.0, handle) is True
        assert driver2.recover(0.0, "0" * 64) is False
        assert driver2.running_handles() == [handle]
        time.sleep(0.3)
        docker_client.api.kill(handle)
        exit_ = wait_exit(driver2, waker2)
        assert (exit_.handle, exit_.exit_code) == (handle, 137)
        assert waker.calls == 0  # the closed driver no longer reports
        lines = wait_for(lambda: read_log(logs, "t", "stdout").splitlines(), 5)
        ticks = [int(line.split()[1]) for line in lines]
        assert ticks == list(range(len(ticks))), "lines lost or repeated across the recovery"
    finally:
        driver2.close()


def test_a_missing_image_is_a_clear_unrecoverable_error(driver):
    task = make_task({"image": "nowhere/nothing:1", **command("true")})
    with pytest.raises(DriverError) as err:
        driver.start(0.0, make_alloc(task), task)
    assert err.value.recoverable is False
    assert "Failed to pull `nowhere/nothing:1`: image not found locally and no registry reachable" in str(err.value)


def test_a_command_missing_from_the_image_fails_the_run(driver, waker):
    task = make_task(command("/no/such/binary"))
    driver.start(0.0, make_alloc(task), task)
    exit_ = wait_exit(driver, waker)
    assert exit_.failed and exit_.exit_code != 0 and "no/such/binary" in exit_.message


def test_a_restart_replaces_the_exited_container_of_the_same_name(driver, waker, docker_client):
    task = make_task(command("sh", "-c", "echo run"))
    alloc = make_alloc(task)
    first = driver.start(0.0, alloc, task)
    assert wait_exit(driver, waker).exit_code == 0
    second = driver.start(0.0, alloc, task)  # at once: the first may still be draining its logs
    assert second != first
    assert wait_exit(driver, waker).exit_code == 0


def test_fingerprint_healthy_and_unreachable(driver):
    info = driver.fingerprint()
    assert info["detected"] and info["healthy"] and info["health_description"] == "Healthy"
    assert info["attributes"]["driver.docker"] == "true" and info["attributes"]["driver.docker.version"]
    down = DockerDriver({"endpoint": "unix:///nonexistent/docker.sock"}).fingerprint()
    assert not down["detected"] and not down["healthy"]
    assert down["health_description"].startswith("Failed to connect to docker daemon")


def test_shutdown_with_kill_stops_and_removes_every_container(driver, docker_client):
    tasks = [make_task(command(*FOREVER), name=f"t{i}") for i in range(2)]
    handles = [driver.start(0.0, make_alloc(task), task) for task in tasks]
    for handle in handles:
        wait_running(docker_client, handle)
    asyncio.run(driver.shutdown(kill=True))
    assert driver.running_handles() == []
    assert not docker_client.api.containers(all=True, filters={"label": f"{NODE_LABEL}={NODE_ID}"})


def test_a_configuration_the_engine_refuses_is_unrecoverable(driver):
    task = make_task(command("true"), memory_mb=2)  # below the engine's 6 MB minimum
    with pytest.raises(DriverError) as err:
        driver.start(0.0, make_alloc(task), task)
    assert err.value.recoverable is False and "Minimum memory limit" in str(err.value)
