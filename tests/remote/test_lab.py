"""The netns lab: hosts answer SSH with their own names and keys, partitions cut and heal, down leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from remote.inventory import load_inventory
from remote.lab import BRIDGE, Lab, LabError, alive, unavailable

paramiko = pytest.importorskip("paramiko")


def _skip_reason() -> str | None:
    return unavailable(firewall=True)


pytestmark = [pytest.mark.lab, pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("lab"))
    start = time.monotonic()
    lab.up()
    print(f"lab up in {time.monotonic() - start:.2f}s")
    yield lab
    lab.down()


def _ssh(lab: Lab, host: str, command: str) -> str:
    client = paramiko.SSHClient()
    client.load_host_keys(str(lab.known_hosts_path))
    # Strict checking: a key not in the lab's known_hosts must fail the connection.
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(lab.address(host), username="root", key_filename=str(lab.key_path), timeout=5,
                       allow_agent=False, look_for_keys=False)
        _, stdout, _ = client.exec_command(command, timeout=5)
        return stdout.read().decode().strip()
    finally:
        client.close()


def test_hosts_answer_ssh_with_their_own_name_and_opt(lab):
    for host in lab.hosts:
        (lab.host_dir(host) / "opt" / "marker").write_text(host)
    for host in lab.hosts:
        assert _ssh(lab, host, "hostname; cat /opt/marker") == f"{host}\n{host}"


def test_unknown_host_key_is_rejected(lab, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    client = paramiko.SSHClient()
    client.load_host_keys(str(empty))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.SSHException):
        client.connect(lab.address("s1"), username="root", key_filename=str(lab.key_path), timeout=5,
                       allow_agent=False, look_for_keys=False)
    client.close()


def test_written_inventory_loads_and_matches(lab):
    inv = load_inventory(lab.inventory_path, check_files=True)
    assert [(h.name, h.address) for h in inv.hosts] == [(h, lab.address(h)) for h in lab.hosts]
    assert inv.known_hosts == str(lab.known_hosts_path)
    assert not inv.accept_unknown_host_keys


def test_partition_blocks_tcp_and_heal_restores(lab):
    assert lab.can_connect("s1", "s2")
    lab.partition([["s1"], ["s2", "s3"]])
    try:
        assert not lab.can_connect("s1", "s2")
        assert not lab.can_connect("s2", "s1")
        assert lab.can_connect("s2", "s3")
    finally:
        lab.heal()
    assert lab.can_connect("s1", "s2")
    assert lab.can_connect("s2", "s1")


def test_isolate_and_pause(lab):
    lab.isolate("s3")
    try:
        assert not lab.can_connect("s3", "s1")
        assert lab.can_connect("s1", "s2")
    finally:
        lab.heal()
    assert lab.can_connect("s3", "s1")
    paused = lab.pause("s2")
    try:
        assert lab.status()["hosts"]["s2"]["sshd_pid"] in paused
    finally:
        lab.resume("s2")
    assert _ssh(lab, "s2", "hostname") == "s2"


def test_latency_where_the_kernel_has_netem_else_a_clear_reason(lab):
    try:
        lab.add_latency("s1", 200)
    except LabError as exc:
        # LAB.md: these kernels have no netem; the fault says so, and nothing is left half-applied.
        assert "netem" in str(exc) or "tc" in str(exc)
        assert lab.can_connect("s1", "s2")
        pytest.skip(str(exc))
    try:
        start = time.monotonic()
        assert lab.can_connect("s1", "s2", timeout=5)
        assert time.monotonic() - start >= 0.2  # the SYN waited
    finally:
        lab.clear_latency("s1")


def _entered(lab, host: str, proc: subprocess.Popen) -> None:
    """Wait until a process started with nsenter is in the host's network namespace (just after it starts)."""
    deadline = time.monotonic() + 5
    while proc.pid not in lab.host_pids(host):
        assert time.monotonic() < deadline, f"{proc.args} never entered {host}"
        time.sleep(0.01)


def test_kill_by_pid_file_only_hits_the_hosts_own_process(lab):
    pid_file = "/opt/yurt-test/sleeper.pid"
    path = lab.host_path("s1", pid_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    stranger = subprocess.Popen(["sleep", "30"])  # this machine's, not s1's: a stale pid file must spare it
    try:
        path.write_text(f"{stranger.pid}\n")
        assert lab.kill("s1", pid_file) is None and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    proc = subprocess.Popen(["nsenter", f"--net={lab.netns_path('s1')}", "sleep", "30"])
    try:
        _entered(lab, "s1", proc)
        path.write_text(f"{proc.pid}\n")
        assert lab.kill("s1", pid_file) == proc.pid
        assert proc.wait(timeout=5) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_host_gets_its_own_docker_engine_in_its_network(lab):
    docker = pytest.importorskip("docker")
    from orchestrator.testing.dockerd import DockerUnavailable, ensure_busybox_image

    try:
        endpoint = lab.start_docker("s3")
    except LabError as exc:
        pytest.skip(str(exc))
    assert endpoint == "unix:///opt/docker/docker.sock"  # the same path on every host, each its own engine
    client = docker.DockerClient(base_url=lab.docker_url("s3"))
    try:
        try:
            ensure_busybox_image(client)
        except DockerUnavailable as exc:
            pytest.skip(str(exc))
        # The engine lives in the host's network namespace: its bridge is made there.
        assert lab.exec_in("s3", "ip", "link", "show", "docker0").returncode == 0
        out = client.containers.run("yurt/busybox:1", ["echo", "hi"], remove=True)
        assert out.strip() == b"hi"
        engine = lab._engine_pid("s3")
        assert engine is not None and engine not in lab.workload_pids("s3")  # a service, not a deployment's
    finally:
        client.close()


def test_down_leaves_nothing_and_is_idempotent(lab):
    # Last in the module: it takes the shared lab down (the fixture's own down then checks idempotence).
    pids = [lab.status()["hosts"][h]["sshd_pid"] for h in lab.hosts]
    assert all(pids)
    # A daemon a deployment left on a host (re-parented away from sshd, as `nohup setsid` leaves agents).
    daemon = subprocess.Popen(["nsenter", f"--net={lab.netns_path('s2')}", "setsid", "sleep", "60"])
    _entered(lab, "s2", daemon)
    pids.append(daemon.pid)
    start = time.monotonic()
    lab.down()
    daemon.wait(timeout=5)
    print(f"lab down in {time.monotonic() - start:.2f}s")
    lab.down()
    assert not any(alive(p) for p in pids)
    assert not Path(f"/sys/class/net/{BRIDGE}").exists()
    for host in lab.hosts:
        assert not os.path.exists(lab.netns_path(host))
        assert not Path(f"/sys/class/net/yv-{host}").exists()
