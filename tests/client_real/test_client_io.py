"""The real client's I/O pieces in-process: task environment, log rotation, the state file, fingerprinting,
and the raw_exec driver on an event loop (real processes, no agent)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import time
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from orchestrator.client.allocdir import AllocDir, TaskPreparer
from orchestrator.client.fingerprint import NodeSpec, fingerprint_node, node_identity
from orchestrator.client.logs import RotatingLogWriter, log_indexes
from orchestrator.client.state import ClientStateBatch
from orchestrator.client.state_file import STATE_FILE, FileClientStateStore
from orchestrator.client.task_driver import DriverError
from orchestrator.client.taskenv import TaskPaths, build_env, interpolate
from orchestrator.drivers.raw_exec import RawExecDriver
from orchestrator.drivers.registry import DriverContext, DriverSet
from orchestrator.structs import (
    AllocatedPortMapping,
    AllocatedResources,
    AllocatedSharedResources,
    AllocatedTaskResources,
    Allocation,
    Node,
    job_from_api,
)


def make_job(task: dict, *, job_type: str = "service", extra: dict | None = None):
    return job_from_api({"ID": "web", "Name": "web", "Type": job_type, "Meta": {"team": "core", "zone": "a"},
                         "TaskGroups": [{"Name": "g", "Meta": {"zone": "b"}, "Tasks": [{"Name": "t", **task}]}],
                         **(extra or {})})


def make_alloc(job, alloc_id: str = "0123abcd-0000-4000-8000-000000000000") -> Allocation:
    resources = AllocatedResources(
        tasks={"t": AllocatedTaskResources(cpu={"CpuShares": 250}, memory={"MemoryMB": 128})},
        shared=AllocatedSharedResources(ports=[AllocatedPortMapping("http", 23456, 8080, "127.0.0.1")]))
    return Allocation(id=alloc_id, name="web.g[2]", node_id="n1", job_id=job.id, job=job, task_group="g",
                      allocated_resources=resources)


# -- the task environment ---------------------------------------------------------------------------------


def test_environment_has_nomad_variables_meta_ports_and_interpolated_env():
    job = make_job({"Driver": "raw_exec", "Meta": {"zone": "c"},
                    "Env": {"GREETING": "hi ${NOMAD_TASK_NAME} on ${node.unique.name}/${attr.os.name}",
                            "UNKNOWN": "${nope.nothing}", "HOME": "/override"}})
    node = Node(id="node-1", name="box", datacenter="dc7", attributes={"os.name": "debian"}, meta={"rack": "r1"})
    env = build_env(node, make_alloc(job), job.task_groups[0].tasks[0], TaskPaths("/a", "/l", "/s"),
                    region="eu", host_env={"PATH": "/bin", "HOME": "/root", "VAULT_TOKEN": "secret"})
    expected = {"NOMAD_ALLOC_ID": "0123abcd-0000-4000-8000-000000000000", "NOMAD_SHORT_ALLOC_ID": "0123abcd",
                "NOMAD_ALLOC_INDEX": "2", "NOMAD_ALLOC_NAME": "web.g[2]", "NOMAD_JOB_ID": "web",
                "NOMAD_JOB_NAME": "web", "NOMAD_GROUP_NAME": "g", "NOMAD_TASK_NAME": "t", "NOMAD_DC": "dc7",
                "NOMAD_REGION": "eu", "NOMAD_NAMESPACE": "default", "NOMAD_ALLOC_DIR": "/a", "NOMAD_TASK_DIR": "/l",
                "NOMAD_SECRETS_DIR": "/s",
                "NOMAD_CPU_LIMIT": "250", "NOMAD_MEMORY_LIMIT": "128", "NOMAD_META_TEAM": "core",
                "NOMAD_META_team": "core", "NOMAD_META_ZONE": "c", "NOMAD_PORT_http": "8080",
                "NOMAD_HOST_PORT_http": "23456", "NOMAD_IP_http": "127.0.0.1", "NOMAD_ADDR_http": "127.0.0.1:23456",
                "GREETING": "hi t on box/debian", "UNKNOWN": "${nope.nothing}", "PATH": "/bin", "HOME": "/override"}
    assert {k: env.get(k) for k in expected} == expected
    assert "VAULT_TOKEN" not in env  # Nomad's default env.denylist
    assert interpolate("${a}-${b}-${c}", {"a": "1"}, {"b": "2", "a": "x"}) == "1-2-${c}"


def test_prepare_builds_the_alloc_dir_and_writes_the_dispatch_payload(tmp_path):
    job = make_job({"Driver": "raw_exec", "DispatchPayload": {"File": "in/payload.txt"}},
                   extra={"Payload": base64.b64encode(b"data!").decode(), "Dispatched": True})
    preparer = TaskPreparer(tmp_path, "global", host_env={})
    prepared = preparer.prepare(make_alloc(job), job.task_groups[0].tasks[0])
    root = tmp_path / "0123abcd-0000-4000-8000-000000000000"
    for sub in ("alloc/logs", "alloc/data", "alloc/tmp", "t/local", "t/secrets", "t/tmp"):
        assert (root / sub).is_dir(), sub
    assert (root / "t/local/in/payload.txt").read_bytes() == b"data!"
    assert prepared.env["NOMAD_TASK_DIR"] == str(root / "t/local")
    isolated = preparer.prepare(make_alloc(job), job.task_groups[0].tasks[0], isolated=True)
    assert isolated.env["NOMAD_ALLOC_DIR"] == "/alloc"
    AllocDir(tmp_path, root.name).destroy()
    assert not root.exists()


# -- logs ---------------------------------------------------------------------------------------------------


def test_log_files_rotate_keep_max_files_and_continue_after_a_restart(tmp_path):
    writer = RotatingLogWriter(tmp_path, "t", "stdout", max_files=3, max_bytes=10)
    writer.write(b"0123456789abcdefghij0123456789abcdefghij!")  # 41 bytes: files 0..4, the first two purged
    writer.close()
    assert log_indexes(tmp_path, "t", "stdout") == [2, 3, 4]
    assert (tmp_path / "t.stdout.4").read_bytes() == b"!"
    again = RotatingLogWriter(tmp_path, "t", "stdout", max_files=3, max_bytes=10)
    again.write(b"more")
    again.close()
    assert (tmp_path / "t.stdout.4").read_bytes() == b"!more"


# -- the state file -----------------------------------------------------------------------------------------


def test_state_file_survives_a_reload_a_torn_tail_and_compaction(tmp_path):
    store = FileClientStateStore(tmp_path)
    store.write(ClientStateBatch(node={"NodeID": "n", "AllocIndex": 3}, allocs={"a": {"ID": "a"}, "b": {"ID": "b"}},
                                 runners={"a": {"Tasks": {"t": {"Handle": "h"}}}}))
    store.sync()
    store.write(ClientStateBatch(deleted=["b"]))
    store.sync()
    with open(tmp_path / STATE_FILE, "ab") as out:
        out.write(msgpack.packb({"Kind": "batch", "Deleted": ["a"]})[:-3])  # a crash mid-append
    reloaded = FileClientStateStore(tmp_path).load()
    assert reloaded.node == {"NodeID": "n", "AllocIndex": 3} and list(reloaded.allocs) == ["a"]
    assert reloaded.runners["a"]["Tasks"]["t"]["Handle"] == "h"
    big = FileClientStateStore(tmp_path)
    for i in range(400):  # well over the compaction threshold
        big.write(ClientStateBatch(runners={"a": {"Blob": "x" * 4000, "I": i}}))
        big.sync()
    assert (tmp_path / STATE_FILE).stat().st_size < 1 << 20
    assert FileClientStateStore(tmp_path).load().runners["a"]["I"] == 399


# -- fingerprinting -----------------------------------------------------------------------------------------


def test_fingerprint_describes_the_machine_and_the_id_is_stable(tmp_path):
    node_id, secret = node_identity(tmp_path)
    assert node_identity(tmp_path) == (node_id, secret) and node_identity(None)[0] != node_id
    spec = NodeSpec(name="n1", node_class="big", meta={"rack": "r1"}, network_interface="lo", data_dir=str(tmp_path),
                    reserved_cpu=100, host_volumes={"data": (str(tmp_path), True)}, cpu_total_compute=4000)
    node = fingerprint_node(spec, node_id, secret, {}, {"driver.raw_exec": "1"})
    attrs = node.attributes
    assert attrs["unique.network.ip-address"] == "127.0.0.1" and attrs["kernel.name"] == "linux"
    assert attrs["cpu.totalcompute"] == "4000" and node.node_resources.cpu.cpu_shares == 4000
    assert int(attrs["cpu.numcores"]) == os.cpu_count() and attrs["driver.raw_exec"] == "1"
    assert node.node_resources.memory.memory_mb > 0 and node.node_resources.disk.disk_mb > 0
    assert node.node_resources.networks[0].ip == "127.0.0.1"
    assert (node.name, node.node_class, node.reserved_resources.cpu.cpu_shares) == ("n1", "big", 100)
    # Nomad's connect.* defaults, under the configured meta (which wins).
    assert node.meta == {"rack": "r1", "connect.sidecar_image": "envoyproxy/envoy:v${NOMAD_envoy_version}",
                         "connect.gateway_image": "envoyproxy/envoy:v${NOMAD_envoy_version}",
                         "connect.log_level": "info", "connect.proxy_concurrency": "1"}
    override = fingerprint_node(replace(spec, meta={"connect.log_level": "debug"}), node_id, secret, {}, {})
    assert override.meta["connect.log_level"] == "debug" and override.meta["connect.proxy_concurrency"] == "1"
    assert attrs["nomad.version"] == "1.0.18" and attrs["nomad.revision"] == "7eb2ad21"
    if Path("/proc/self/mountinfo").read_text().count(" - cgroup"):
        assert attrs["unique.cgroup.mountpoint"].startswith("/sys/fs/cgroup")
    assert node.host_volumes["data"].read_only and node.computed_class


# -- the raw_exec driver ------------------------------------------------------------------------------------


class Bench:
    """A raw_exec driver on a running loop, with the exits it reports."""

    def __init__(self, root: Path, loop: asyncio.AbstractEventLoop, enabled: bool = True):
        self.root = root
        self.woken = asyncio.Event()
        preparer = TaskPreparer(root, "global")
        context = DriverContext(loop, preparer, self.woken.set, {"enabled": enabled})
        self.driver = RawExecDriver(context)
        self.drivers = DriverSet([self.driver])

    def start(self, script: str, alloc_id: str = "0123abcd-0000-4000-8000-000000000000", **task: object) -> str:
        job = make_job({"Driver": "raw_exec", "Config": {"command": "/bin/sh", "args": ["-c", script]}, **task})
        return self.drivers.start(time.time(), make_alloc(job, alloc_id), job.task_groups[0].tasks[0])

    async def exit(self, timeout: float = 10.0):
        async with asyncio.timeout(timeout):
            while True:
                await self.woken.wait()
                self.woken.clear()
                exits = self.drivers.poll(time.time())
                if exits:
                    return exits[0]

    def logs(self, stream: str) -> bytes:
        return (self.root / "0123abcd-0000-4000-8000-000000000000/alloc/logs" / f"t.{stream}.0").read_bytes()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_raw_exec_runs_logs_and_reports_the_exit_code(tmp_path):
    async def run():
        bench = Bench(tmp_path, asyncio.get_running_loop())
        handle = bench.start('echo "out $NOMAD_TASK_NAME"; echo err >&2; sleep 3600 & echo $! > child; exit 3')
        assert handle.startswith("raw_exec:") and bench.drivers.next_deadline() is None
        result = await bench.exit()
        assert (result.handle, result.exit_code, result.signal, result.failed) == (handle, 3, 0, True)
        assert bench.logs("stdout") == b"out t\n" and bench.logs("stderr") == b"err\n"
        child = int((tmp_path / "0123abcd-0000-4000-8000-000000000000/t/child").read_text())
        await asyncio.sleep(0.05)
        assert not alive(child)  # what the task left in its process group went with it
        assert bench.drivers.fingerprint()[1] == {"driver.raw_exec": "1"}

    asyncio.run(run())


def test_raw_exec_stop_escalates_to_sigkill_after_the_kill_timeout(tmp_path):
    async def run():
        bench = Bench(tmp_path, asyncio.get_running_loop())
        handle = bench.start('trap "" INT; echo ready; while true; do sleep 0.05; done')
        await asyncio.sleep(0.2)
        started = time.monotonic()
        bench.drivers.stop(time.time(), handle, 0.5)
        result = await bench.exit()
        assert 0.45 < time.monotonic() - started < 2.0
        assert (result.exit_code, result.signal) == (137, signal.SIGKILL)
        assert bench.logs("stdout") == b"ready\n"

    asyncio.run(run())


def test_raw_exec_reattaches_after_a_client_restart_and_refuses_when_disabled(tmp_path):
    async def run():
        loop = asyncio.get_running_loop()
        first = Bench(tmp_path, loop)
        handle = first.start("echo one; sleep 0.3; echo two; sleep 3600")
        await asyncio.sleep(0.1)
        await first.drivers.shutdown(kill=False)  # the client goes away; the task runs on
        await asyncio.sleep(0.4)  # "two" is written while no client reads: it waits in the FIFO
        second = Bench(tmp_path, loop)
        assert second.drivers.recover(time.time(), handle)
        pid = second.driver.running()[0]
        other_run = json.dumps({**json.loads(handle.partition(":")[2]), "run": "0" * 16})
        assert alive(pid) and not second.drivers.recover(time.time(), f"raw_exec:{other_run}")
        second.drivers.stop(time.time(), handle, 1.0)
        result = await second.exit()
        assert result.failed and "unknown" in result.message and not alive(pid)
        assert second.logs("stdout") == b"one\ntwo\n"
        # A binary found nowhere: a launch failure, reported as the run's failed exit (checked off the loop);
        # an absolute path that does not exist is refused at once.
        for command, alloc_id in (("no-such-binary", "1"), ("/no/such/binary", "2")):
            job = make_job({"Driver": "raw_exec", "Config": {"command": command}})
            alloc = make_alloc(job, f"0123abcd-0000-4000-8000-00000000000{alloc_id}")
            if command.startswith("/"):
                with pytest.raises(DriverError, match="not found"):
                    second.drivers.start(time.time(), alloc, job.task_groups[0].tasks[0])
                continue
            missing = second.drivers.start(time.time(), alloc, job.task_groups[0].tasks[0])
            result = await second.exit()
            assert (result.handle, result.failed) == (missing, True)
            assert result.message == 'failed to launch command with executor: file "no-such-binary" not found'
        disabled = Bench(tmp_path / "off", loop, enabled=False)
        with pytest.raises(DriverError):
            disabled.start("true")
        assert not disabled.drivers.fingerprint()[0]["raw_exec"].detected

    asyncio.run(run())


def test_cgroup_mountpoint_is_the_first_v1_hierarchy_else_the_unified_one(tmp_path):
    from orchestrator.client.fingerprint import cgroup_mountpoint

    table = tmp_path / "mountinfo"
    table.write_text("31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
                     "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
                     "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
                     "33 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n")
    assert cgroup_mountpoint(str(table)) == "/sys/fs/cgroup/cpu"
    table.write_text("29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw\n")
    assert cgroup_mountpoint(str(table)) == "/sys/fs/cgroup"
    assert cgroup_mountpoint(str(tmp_path / "missing")) == ""
