"""The exec driver on an event loop, with real namespaces, chroots and cgroups (root only; no agent)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.client.allocdir import TaskPreparer
from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.drivers import isolation
from orchestrator.drivers.exec import OOM_MESSAGE, ExecDriver
from orchestrator.drivers.registry import DriverContext, DriverSet
from orchestrator.structs import Allocation, job_from_api

ALLOC_ID = "0123abcd-0000-4000-8000-000000000000"
needs_root = pytest.mark.skipif(isolation.unavailable_reason() is not None,
                                reason=f"exec isolation unavailable: {isolation.unavailable_reason()}")


class Bench:
    """An exec driver (or a subclass) on a running loop, with the exits it reports."""

    def __init__(self, root: Path, loop: asyncio.AbstractEventLoop, driver_class: type = ExecDriver,
                 config: dict | None = None):
        self.root = root
        self.woken = asyncio.Event()
        context = DriverContext(loop, TaskPreparer(root, "global"), self.woken.set, dict(config or {}))
        self.driver = driver_class(context)
        self.drivers = DriverSet([self.driver])

    def start(self, config: dict, alloc_id: str = ALLOC_ID, **task: object) -> str:
        job = job_from_api({"ID": "web", "Name": "web", "Type": "service", "TaskGroups": [
            {"Name": "g", "Tasks": [{"Name": "t", "Driver": self.driver.name, "Config": config, **task}]}]})
        alloc = Allocation(id=alloc_id, name="web.g[0]", node_id="n1", job_id=job.id, job=job, task_group="g")
        return self.drivers.start(time.time(), alloc, job.task_groups[0].tasks[0])

    def shell(self, script: str, **task: object) -> str:
        return self.start({"command": "/bin/sh", "args": ["-c", script]}, **task)

    async def exit(self, timeout: float = 15.0) -> TaskExit:
        async with asyncio.timeout(timeout):
            while True:
                await self.woken.wait()
                self.woken.clear()
                exits = self.drivers.poll(time.time())
                if exits:
                    return exits[0]

    def logs(self, stream: str) -> str:
        return (self.root / ALLOC_ID / "alloc/logs" / f"t.{stream}.0").read_text()

    def task_dir(self) -> Path:
        return self.root / ALLOC_ID / "t"


def host_mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(path) in line]


def leftover_cgroups(driver: ExecDriver) -> list[Path]:
    parent = [isolation.CGROUP_ROOT / c / driver.cgroup_parent for c in isolation.CONTROLLERS]
    return [child for p in parent if p.is_dir() for child in p.iterdir() if child.is_dir()]


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return result


@needs_root
def test_exec_task_is_pid_1_in_its_namespaces_chrooted_and_runs_as_nobody(tmp_path, cgroup_parent):
    async def run():
        bench = Bench(tmp_path, asyncio.get_running_loop(), config={"cgroup_parent": cgroup_parent})
        script = ('echo "pid=$$"; echo "host=$(cat /proc/sys/kernel/hostname)"; echo "uid=$(id -u) $(id -un)"; '
                  'ls /root >/dev/null 2>&1 && echo "root=visible" || echo "root=hidden"; '
                  'echo "dirs=$NOMAD_TASK_DIR $NOMAD_ALLOC_DIR $(pwd)"; echo hi > /local/out; '
                  'touch /usr/x 2>/dev/null && echo "usr=rw" || echo "usr=ro"; '
                  'echo "procs=$(ls /proc | grep -c "^[0-9]")"; '
                  'echo "init=$(cat /proc/1/comm)"; '
                  'echo err >&2; sleep 0.3; exit 3')
        handle = bench.shell(script, Resources={"CPU": 300, "MemoryMB": 64})
        await asyncio.sleep(0.15)
        # While it runs: its limits are set, and none of its mounts shows on the host.
        memory, cpu = isolation.cgroup_dirs(bench.driver.cgroup_parent, handle_run(handle))
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(64 << 20)
        assert (cpu / "cpu.shares").read_text().strip() == "300"
        assert host_mounts_under(tmp_path) == []
        result = await bench.exit()
        assert (result.exit_code, result.signal, result.failed) == (3, 0, True)
        out = bench.logs("stdout").splitlines()
        assert out == ["pid=1", f"host=t-{ALLOC_ID[:8]}", "uid=65534 nobody", "root=hidden",
                       "dirs=/local /alloc /", "usr=ro", out[6], "init=sh"], bench.logs("stderr")
        assert int(out[6].partition("=")[2]) <= 4  # the shell, the subshell, ls and grep: not the host's
        assert bench.logs("stderr") == "err\n"
        assert (bench.task_dir() / "local/out").read_text() == "hi\n"
        assert not (bench.task_dir() / isolation.SPEC_FILE).exists()
        assert await eventually(lambda: not leftover_cgroups(bench.driver)), leftover_cgroups(bench.driver)
        assert host_mounts_under(tmp_path) == []
        await bench.drivers.shutdown(kill=True)

    asyncio.run(run())


@needs_root
def test_exec_memory_limit_kills_the_task_and_stop_leaves_nothing_behind(tmp_path, cgroup_parent):
    async def run():
        bench = Bench(tmp_path, asyncio.get_running_loop(), config={"cgroup_parent": cgroup_parent})
        bench.start({"command": "/usr/bin/python3", "args": ["-c", "b = b'x' * (256 << 20); print('survived')"]},
                    Resources={"CPU": 100, "MemoryMB": 32})
        result = await bench.exit()
        assert (result.exit_code, result.signal, result.message) == (137, signal.SIGKILL, OOM_MESSAGE)
        assert "survived" not in bench.logs("stdout")
        # A task that ignores its kill signal, with a child: SIGKILL after the timeout takes the namespace down.
        handle = bench.shell('trap "" INT TERM; sleep 3600 & echo started; wait', alloc_id=ALLOC_ID)
        pid = await eventually(lambda: bench.driver.pid(handle.partition(":")[2]))
        await eventually(lambda: "started" in bench.logs("stdout"))
        inside = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _in_pid_ns_of(pid, p.name)]
        assert len(inside) >= 2  # the shell and its sleep
        started = time.monotonic()
        bench.drivers.stop(time.time(), handle, 0.3)
        result = await bench.exit()
        assert 0.25 < time.monotonic() - started < 2.0
        assert (result.exit_code, result.signal, result.message) == (137, signal.SIGKILL, "")
        # SIGKILL reaches the launcher and PID 1 together: the namespace's other processes die just after.
        assert await eventually(lambda: not [p for p in inside if _state(p.name) not in ("gone", "Z")], 1.0)
        assert await eventually(lambda: not leftover_cgroups(bench.driver)), leftover_cgroups(bench.driver)
        assert host_mounts_under(tmp_path) == []
        await bench.drivers.shutdown(kill=True)

    asyncio.run(run())


def test_exec_refuses_tasks_without_root_or_with_an_unknown_user(tmp_path, monkeypatch):
    async def run():
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(isolation.os, "geteuid", lambda: 1000)
        bench = Bench(tmp_path, loop)
        info = bench.drivers.fingerprint()[0]["exec"]
        assert (info.detected, info.healthy, info.health_description) == (True, False, "Driver must run as root")
        with pytest.raises(DriverError, match="must run as root"):
            bench.shell("true")
        monkeypatch.undo()
        if isolation.unavailable_reason() is not None:
            return
        bench = Bench(tmp_path, loop)
        assert bench.drivers.fingerprint()[1] == {"driver.exec": "1"}
        with pytest.raises(DriverError, match="not found"):
            bench.shell("true", User="no-such-user-here")
        with pytest.raises(DriverError, match="command"):
            bench.start({"args": ["x"]})

    asyncio.run(run())


def handle_run(handle: str) -> str:
    return json.loads(handle.partition(":")[2])["run"]


def _in_pid_ns_of(pid: int, other: str) -> bool:
    try:
        return os.readlink(f"/proc/{other}/ns/pid") == os.readlink(f"/proc/{pid}/ns/pid_for_children")
    except OSError:
        return False


def _state(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
