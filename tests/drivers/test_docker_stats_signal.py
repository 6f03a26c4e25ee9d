"""The docker driver's stats (Nomad's ResourceUsage from the engine's stats API) and signals, on a real engine,
and the DriverSet routing both to it."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker_helpers import NODE_ID, Waker, make_alloc, make_task, read_log, wait_for

from orchestrator.api import client_stats
from orchestrator.drivers.docker import DockerDriver, docker_resource_usage
from orchestrator.drivers.registry import DriverSet
from orchestrator.testing.dockerd import DockerEngine

NODE_LABEL = "com.hashicorp.nomad.node_id"
# Prints a line per SIGUSR1 and burns CPU, so that both the signal and the CPU figures can be seen.
BUSY = ["sh", "-c", 'trap "echo got-usr1" USR1; trap "exit 0" TERM; while true; do :; done']


@pytest.fixture
def driver(docker_engine: DockerEngine, docker_client: Any, alloc_root: Path) -> Iterator[DockerDriver]:
    drv = DockerDriver({"endpoint": docker_engine.base_url}, wake=Waker(), alloc_dir_of=lambda a: alloc_root / a)
    yield drv
    drv.close()
    for container in docker_client.api.containers(all=True, filters={"label": f"{NODE_LABEL}={NODE_ID}"}):
        with contextlib.suppress(docker.errors.APIError):
            docker_client.api.remove_container(container["Id"], force=True)


def _start(driver: DockerDriver, docker_client: Any) -> tuple[str, Any]:
    task = make_task({"command": BUSY[0], "args": BUSY[1:]})
    alloc = make_alloc(task)
    handle = driver.start(0.0, alloc, task)
    wait_for(lambda: docker_client.api.inspect_container(handle)["State"]["Running"], 10.0)
    return handle, alloc


@pytest.mark.docker
def test_stats_and_signal_of_a_running_container_through_the_driver_set(driver, docker_client, alloc_root):
    handle, alloc = _start(driver, docker_client)
    drivers = DriverSet([driver])
    routed = f"docker:{handle}"
    usage = drivers.stats(routed, 1000.0)
    assert usage is not None
    # The same keys as the /proc-based usage, so the alloc endpoint can add docker and raw_exec tasks up.
    blank = client_stats.resource_usage()
    assert {g: set(usage[g]) for g in ("MemoryStats", "CpuStats")} == {g: set(blank[g]) for g in
                                                                       ("MemoryStats", "CpuStats")}
    client_stats.sum_usage([usage, blank])
    assert usage["MemoryStats"]["Usage"] > 0
    assert "Usage" in usage["MemoryStats"]["Measured"] and "Percent" in usage["CpuStats"]["Measured"]
    assert usage["CpuStats"]["Percent"] > 10  # a busy loop: near one core's worth
    assert usage["CpuStats"]["TotalTicks"] == pytest.approx(usage["CpuStats"]["Percent"] / 100 * 1000.0)

    # The container's init as this host sees it: what `kill -9` of the container's process would hit.
    pid = drivers.main_pid(routed)
    assert pid == docker_client.api.inspect_container(handle)["State"]["Pid"] and Path(f"/proc/{pid}").exists()

    assert drivers.signal(routed, int(signal.SIGUSR1))
    logs = alloc_root / alloc.id / "alloc" / "logs"
    wait_for(lambda: "got-usr1" in read_log(logs, "t", "stdout"), 10.0)
    assert drivers.signal(routed, int(signal.SIGKILL))
    wait_for(lambda: not docker_client.api.inspect_container(handle)["State"]["Running"], 10.0)
    wait_for(lambda: driver.poll(0.0), 10.0)
    assert drivers.stats(routed) is None and not drivers.signal(routed, int(signal.SIGUSR1))
    assert drivers.main_pid(routed) is None


@pytest.mark.docker
def test_unknown_handles_have_no_stats_and_take_no_signal(driver):
    drivers = DriverSet([driver])
    assert drivers.stats("docker:nosuchcontainer") is None
    assert not drivers.signal("docker:nosuchcontainer", int(signal.SIGTERM))
    assert drivers.stats("raw_exec:123") is None  # no such driver loaded


def test_resource_usage_from_cgroup_v1_and_v2_readings():
    v1 = {"memory_stats": {"usage": 5000, "max_usage": 6000, "stats": {"rss": 4000, "cache": 100, "swap": 7}},
          "cpu_stats": {"cpu_usage": {"total_usage": 300, "usage_in_kernelmode": 100, "usage_in_usermode": 200},
                        "system_cpu_usage": 2000, "online_cpus": 2,
                        "throttling_data": {"throttled_periods": 3, "throttled_time": 9}},
          "precpu_stats": {"cpu_usage": {"total_usage": 100, "usage_in_kernelmode": 50, "usage_in_usermode": 50},
                           "system_cpu_usage": 1000}}
    usage = docker_resource_usage(v1, 2000.0)
    assert usage["MemoryStats"]["RSS"] == 4000 and usage["MemoryStats"]["Cache"] == 100
    assert usage["MemoryStats"]["Measured"] == ["RSS", "Cache", "Swap", "Usage", "Max Usage"]
    cpu = usage["CpuStats"]
    assert cpu["Percent"] == pytest.approx(200 / 1000 * 2 * 100)
    assert cpu["SystemMode"] == pytest.approx(50 / 200 * 2 * 100)
    assert cpu["UserMode"] == pytest.approx(150 / 200 * 2 * 100)
    assert cpu["TotalTicks"] == pytest.approx(cpu["Percent"] / 100 * 2000.0)
    assert (cpu["ThrottledPeriods"], cpu["ThrottledTime"]) == (3, 9)
    v2 = {"memory_stats": {"usage": 10, "stats": {"file": 4, "anon": 6}}, "cpu_stats": {}, "precpu_stats": {}}
    usage = docker_resource_usage(v2)
    assert usage["MemoryStats"]["Cache"] == 4 and usage["MemoryStats"]["Measured"] == ["Cache", "Swap", "Usage"]
    assert usage["CpuStats"]["Percent"] == 0.0
