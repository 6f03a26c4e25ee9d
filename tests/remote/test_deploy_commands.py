"""What deployment runs on a host, recorded by a fake Connection (no SSH): check first, act only on a difference;
plus the pid-file daemon's shell run for real in a local shell."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import paramiko
import pytest

from remote import deploy, hostctl
from remote.build import Release
from remote.connect import connection, fan_out
from remote.inventory import Cluster, parse_inventory
from remote.render import AGENT_FILE, Layout, layout, render_config_files, render_unit, sha256_text

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = """
cluster: {agent_config: {log_level: INFO}}
defaults: {user: root}
hosts:
  - {name: s1, address: 10.250.0.11, roles: [server]}
  - {name: s2, address: 10.250.0.12, roles: [server, client], host_volumes: {v: {path: /opt/yurt/volumes/v}}}
  - {name: s3, address: 10.250.0.13, roles: [server, client]}
"""


class FakeConnection:
    """Records run/put; answers the probe with `facts` and the wheel listing with `wheels`."""

    def __init__(self, facts: str = "", wheels: str = "") -> None:
        self.facts, self.wheels = facts, wheels
        self.log: list[tuple[str, str]] = []

    def run(self, command: str, **kwargs: Any) -> SimpleNamespace:
        assert kwargs.get("in_stream") is False  # never read the local stdin from host threads
        self.log.append(("run", command))
        out = self.facts if 'echo "release=' in command else self.wheels if "sha256sum -- *.whl" in command else ""
        return SimpleNamespace(stdout=out, stderr="", exited=0)

    def put(self, local: Any, remote: str | None = None, **kwargs: Any) -> None:
        self.log.append(("put", remote or ""))

    def close(self) -> None:
        pass

    def steps(self) -> list[str]:
        """The log as step names, to compare sequences."""
        names = []
        for kind, text in self.log:
            if kind == "put":
                names.append("put:" + ("wheel" if text.endswith(".whl") else Path(text).name))
                continue
            for marker, name in (('echo "release=', "probe"), ("sha256sum -- *.whl", "list-wheels"),
                                 ("--without-pip", "install"), ("systemctl daemon-reload", "enable-unit"),
                                 ("/config && for f", "config-dirs"), ("chmod 600", "protect-configs"),
                                 ("/state/mode", "mode"),
                                 ("kill -TERM", "stop"), ("nohup setsid", "start"), ("systemctl start", "start"),
                                 ("systemctl stop", "stop"), ("kill -KILL $pid", "kill"), ("rm -rf", "remove")):
                if marker in text:
                    names.append(name)
                    break
            else:
                names.append("other")
        return names


@pytest.fixture
def inventory(tmp_path):
    return parse_inventory(INVENTORY, str(tmp_path / "inv.yml"), base_dir=str(tmp_path))


@pytest.fixture
def release(tmp_path):
    wheels = []
    for name in ("dep-1.0-py3-none-any.whl", "pip-26.3-py3-none-any.whl", "yurt-0.1.0-py3-none-any.whl"):
        (tmp_path / name).write_bytes(name.encode())
        wheels.append(tmp_path / name)
    return Release("f" * 64, wheels[-1], wheels, {w.name: sha256_text(w.name) for w in wheels})


def facts_of(inventory, host: str, release: Release, pid: str = "4242", mode: str = "daemon",
             systemd: str = "no", config: str | None = None) -> str:
    text = render_config_files(inventory, inventory.host(host), "eth0")[AGENT_FILE]
    digest = config if config is not None else sha256_text(text)
    return (f"release={release.id}\nmode={mode}\npid={pid}\nconfig={digest}  /opt/yurt/config/{AGENT_FILE}\n"
            f"interface=eth0\nsystemd={systemd}\npython={hostctl.local_python_tag()}\n")


def _deploy(monkeypatch, inventory, release, conn: FakeConnection, host: str = "s2") -> deploy.HostResult:
    monkeypatch.setattr(deploy, "open_connection", lambda inv, h: conn)
    return deploy.deploy_host(inventory, inventory.host(host), release)


def test_fresh_host_gets_everything_in_order(monkeypatch, inventory, release):
    tag = hostctl.local_python_tag()
    conn = FakeConnection(facts=f"release=\nmode=\npid=\ninterface=eth0\nsystemd=no\npython={tag}\n")
    result = _deploy(monkeypatch, inventory, release, conn)
    assert conn.steps() == ["probe", "list-wheels", "put:wheel", "put:wheel", "put:wheel", "install",
                            "config-dirs", f"put:{AGENT_FILE}", "protect-configs", "mode", "start"]
    assert result.status == "changed" and result.actions[-1] == "started"
    install = next(t for k, t in conn.log if "--without-pip" in t)
    assert "--no-index" in install and "PIP_CONFIG_FILE=/dev/null" in install and release.id in install
    dirs = next(t for k, t in conn.log if "/config && for f" in t)
    assert "/opt/yurt/volumes/v" in dirs and "/opt/yurt/data" in dirs


def test_unchanged_host_only_probes(monkeypatch, inventory, release):
    conn = FakeConnection(facts=facts_of(inventory, "s2", release))
    result = _deploy(monkeypatch, inventory, release, conn)
    assert conn.steps() == ["probe"]
    assert result.status == "unchanged" and result.actions == []


def test_only_missing_wheels_are_uploaded(monkeypatch, inventory, release):
    digests = release.digests
    listing = "".join(f"{digests[n]}  {n}\n" for n in ("dep-1.0-py3-none-any.whl", "pip-26.3-py3-none-any.whl"))
    listing += "0000  old-0.1-py3-none-any.whl\n"
    conn = FakeConnection(facts=facts_of(inventory, "s2", release).replace(release.id, "old"), wheels=listing)
    result = _deploy(monkeypatch, inventory, release, conn)
    assert [t for k, t in conn.log if k == "put"] == ["/opt/yurt/wheels/yurt-0.1.0-py3-none-any.whl"]
    assert any("rm -f -- /opt/yurt/wheels/old-0.1-py3-none-any.whl" in t for _, t in conn.log)
    # The running agent is stopped before its venv changes, started again on the new release.
    steps = conn.steps()
    assert steps.index("stop") < steps.index("install") < steps.index("start") and steps[-1] == "start"
    assert "stopped" in result.actions and "started" in result.actions


def test_changed_config_rewrites_and_restarts_without_reinstall(monkeypatch, inventory, release):
    conn = FakeConnection(facts=facts_of(inventory, "s2", release, config="stale"))
    result = _deploy(monkeypatch, inventory, release, conn)
    assert conn.steps() == ["probe", "config-dirs", f"put:{AGENT_FILE}", "protect-configs", "stop", "start"]
    assert result.actions == ["config written", "restarted"]


def test_stopped_agent_is_started_only(monkeypatch, inventory, release):
    conn = FakeConnection(facts=facts_of(inventory, "s1", release, pid=""))
    result = _deploy(monkeypatch, inventory, release, conn, host="s1")
    assert conn.steps() == ["probe", "start"] and result.actions == ["started"]


def test_systemd_host_gets_the_unit(monkeypatch, inventory, release):
    conn = FakeConnection(facts=facts_of(inventory, "s1", release, pid="", mode="", systemd="yes"))
    result = _deploy(monkeypatch, inventory, release, conn, host="s1")
    assert conn.steps() == ["probe", "put:yurt.service", "enable-unit", "mode", "start"]
    assert "systemctl start yurt" in conn.log[-1][1]
    assert result.actions == ["systemd unit installed", "service mode systemd", "started"]


def test_inventory_can_forbid_systemd(monkeypatch, inventory, release):
    class WithService(Cluster):  # what remote/inventory.py gains once `cluster.service` is in its schema
        pass

    cluster = WithService()
    cluster.service = "daemon"  # type: ignore[attr-defined]
    inventory.cluster = cluster
    facts = facts_of(inventory, "s1", release, pid="", systemd="yes")
    assert deploy.service_mode(inventory, hostctl.parse_facts(facts)) == "daemon"
    conn = FakeConnection(facts=facts)
    _deploy(monkeypatch, inventory, release, conn, host="s1")
    assert conn.steps() == ["probe", "start"] and "nohup setsid" in conn.log[-1][1]


def test_parse_facts():
    facts = hostctl.parse_facts("release=abc\nmode=daemon\npid=12\nconfig=d1  /opt/yurt/config/00-agent.hcl\n"
                                "unit=u1\ninterface=eth0\nsystemd=no\n")
    assert (facts.release, facts.mode, facts.pid, facts.unit, facts.interface, facts.systemd) == (
        "abc", "daemon", 12, "u1", "eth0", False)
    assert facts.configs == {"00-agent.hcl": "d1"}
    assert hostctl.parse_facts("pid=\n").pid is None


def test_whole_deploy_reports_each_host(monkeypatch, inventory, release):
    conns = {h.name: FakeConnection(facts=facts_of(inventory, h.name, release)) for h in inventory.hosts}
    conns["s3"].facts = conns["s3"].facts.replace("pid=4242", "pid=")
    monkeypatch.setattr(deploy, "open_connection", lambda inv, h: conns[h.name])
    monkeypatch.setattr(deploy, "build_release", lambda *a, **k: release)
    monkeypatch.setattr(deploy.health, "wait_healthy", lambda inv, timeout: 0.25)
    monkeypatch.setattr(deploy.health, "status", lambda inv: {"leader": "10.250.0.11:4647"})
    lines: list[str] = []
    result = deploy.deploy(inventory, out=lines.append)
    assert {n: h["status"] for n, h in result["hosts"].items()} == {"s1": "unchanged", "s2": "unchanged",
                                                                     "s3": "changed"}
    assert result["healthy_seconds"] == 0.25
    assert any(line.startswith("deploy: 1 changed, 2 unchanged") for line in lines)


def test_failed_host_is_reported_and_raises(monkeypatch, inventory, release):
    def connect(inv, host):
        if host.name == "s2":
            raise ConnectionRefusedError("no route")
        return FakeConnection(facts=facts_of(inventory, host.name, release))

    monkeypatch.setattr(deploy, "open_connection", connect)
    monkeypatch.setattr(deploy, "build_release", lambda *a, **k: release)
    with pytest.raises(deploy.DeployError) as info:
        deploy.deploy(inventory, out=lambda line: None)
    assert info.value.result["hosts"]["s2"]["status"] == "failed"
    assert info.value.result["hosts"]["s1"]["status"] == "unchanged"


def test_kill_and_teardown_commands(monkeypatch, inventory):
    conn = FakeConnection()
    monkeypatch.setattr(deploy, "open_connection", lambda inv, h: conn)
    deploy.kill(inventory, "s1")
    assert conn.steps() == ["mode", "kill"]  # reads the mode file, then kill -9 by pid file; no start
    conn.log.clear()
    deploy.teardown(inventory)
    assert conn.steps().count("remove") == 3 and "rm -rf -- /opt/yurt /opt/yurt/data" in conn.log[-1][1]
    with pytest.raises(hostctl.RemoteError, match="refusing"):
        hostctl.teardown(conn, Layout("/opt", "/opt/yurt/data"), "daemon")


def test_host_keys_are_checked(inventory, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    inventory.known_hosts = str(known)
    conn = connection(inventory, inventory.host("s1"))
    assert isinstance(conn.client._policy, paramiko.RejectPolicy)
    inventory.accept_unknown_host_keys = True
    conn = connection(inventory, inventory.host("s1"))
    policy = conn.client._policy
    assert not isinstance(policy, paramiko.RejectPolicy)
    # Trust on first use: the new key is kept for this connection and appended to known_hosts, once per host
    # (many threads connecting at once each append their own line; none rewrites the file).
    key = paramiko.RSAKey.generate(1024)
    policy.missing_host_key(conn.client, "10.250.0.11", key)
    assert conn.client.get_host_keys().lookup("10.250.0.11") is not None
    assert known.read_text() == f"10.250.0.11 {key.get_name()} {key.get_base64()}\n"


def test_fan_out_keeps_each_hosts_outcome(inventory):
    def act(host):
        if host.name == "s2":
            raise RuntimeError("boom")
        return host.address

    out = fan_out(inventory.hosts, act)
    assert out["s1"] == "10.250.0.11" and isinstance(out["s2"], RuntimeError)


def test_fab_validate_prints_located_errors(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("cluster:\n  regoin: x\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [sever]}\n")
    proc = subprocess.run([sys.executable, "-m", "fabric", "-r", str(ROOT), "validate", "--inventory", str(bad)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode != 0
    assert f"{bad}:2:3: cluster.regoin" in proc.stderr and f"{bad}:4:" in proc.stderr


# -- the daemon's shell, run for real in a local shell -------------------------------------------------------


class LocalShell:
    """Runs the same commands through bash on this machine; put() writes files."""

    def run(self, command: str, **kwargs: Any) -> SimpleNamespace:
        proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
        return SimpleNamespace(stdout=proc.stdout, stderr=proc.stderr, exited=proc.returncode)

    def put(self, local: Any, remote: str | None = None, **kwargs: Any) -> None:
        data = local.read() if hasattr(local, "read") else Path(local).read_bytes()
        Path(remote or "").write_bytes(data)


def test_daemon_start_kill_stop_teardown_locally(tmp_path):
    lay = Layout(str(tmp_path / "opt" / "yurt"), str(tmp_path / "opt" / "yurt" / "data"))
    agent = Path(lay.agent)
    agent.parent.mkdir(parents=True)
    # A stand-in agent: its command line names the config dir, which is how running_pid recognises it.
    agent.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(120)\n")
    agent.chmod(0o755)
    sh = LocalShell()
    hostctl.write_configs(sh, lay, {AGENT_FILE: "name = \"x\"\n"}, [str(tmp_path / "opt" / "yurt" / "vol")])
    started: list[int] = []
    try:
        assert hostctl.pid(sh, lay, "daemon") is None
        begin = time.monotonic()
        hostctl.start(sh, lay, "daemon")
        assert time.monotonic() - begin < 5  # returns at once: the session does not wait for the daemon
        pid = _eventually(lambda: hostctl.pid(sh, lay, "daemon"))
        started.append(pid)
        hostctl.start(sh, lay, "daemon")  # already running: left alone
        assert hostctl.pid(sh, lay, "daemon") == pid
        before = time.time()
        killed_at = hostctl.kill(sh, lay, "daemon")  # the host's clock at the kill, for scenario timings
        assert killed_at is not None and before <= killed_at <= time.time()
        assert _eventually(lambda: hostctl.pid(sh, lay, "daemon") is None)
        time.sleep(0.3)
        assert hostctl.pid(sh, lay, "daemon") is None  # not supervised: a killed agent stays down
        hostctl.start(sh, lay, "daemon")
        started.append(_eventually(lambda: hostctl.pid(sh, lay, "daemon")))
        hostctl.stop(sh, lay, "daemon")
        assert hostctl.pid(sh, lay, "daemon") is None and not Path(lay.pid_file).exists()
        # A task left behind in the data dir is killed by teardown, and everything is removed.
        task_dir = Path(lay.data_dir) / "alloc"
        task_dir.mkdir(parents=True)
        task = subprocess.Popen(["sleep", "120"], cwd=task_dir, start_new_session=True)
        started.append(task.pid)
        hostctl.teardown(sh, lay, "daemon")
        assert task.wait(timeout=5) == -signal.SIGKILL
        assert not Path(lay.install_dir).exists()
    finally:
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _eventually(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_layout_follows_the_inventory(inventory):
    lay = layout(inventory)
    assert lay.pid_file == "/opt/yurt/run/agent.pid" and lay.command().endswith("-config /opt/yurt/config")
    assert "ExecStart=/opt/yurt/venv/bin/yurt" in render_unit(lay)


def test_upgrade_rolls_servers_one_at_a_time_leader_last(monkeypatch, inventory, release):
    order: list[str] = []
    waits: list[str] = []

    def fake_deploy_host(inv, host, rel, restart=True):
        order.append(host.name)
        return deploy.HostResult(host.name, "changed", ["restarted"])

    monkeypatch.setattr(deploy, "deploy_host", fake_deploy_host)
    monkeypatch.setattr(deploy.health, "wait_healthy", lambda inv, timeout: waits.append(",".join(order)) or 0.1)
    monkeypatch.setattr(deploy.health, "wait_answering",
                        lambda inv, host, timeout: waits.append(f"{host.name} answers") or 0.1)
    monkeypatch.setattr(deploy, "check_health", lambda inv: deploy.health.Health(leader="10.250.0.12:4647"))
    result = deploy.upgrade(inventory, out=lambda line: None, release=release)
    assert order == ["s1", "s3", "s2"]  # followers first, the leader (s2) last
    # Healthy before the first host is touched; after each one, its agent answers and the cluster is healthy.
    assert waits == ["", "s1 answers", "s1", "s3 answers", "s1,s3", "s2 answers", "s1,s3,s2"]
    assert set(result["hosts"]) == {"s1", "s2", "s3"}


def test_a_host_whose_python_cannot_take_the_wheelhouse_is_refused_with_the_reason(monkeypatch, inventory, release):
    other = "cpython-39-" + hostctl.local_python_tag().rsplit("-", 1)[1]
    conn = FakeConnection(facts=f"release=\nmode=\npid=\ninterface=eth0\nsystemd=no\npython={other}\n")
    with pytest.raises(hostctl.RemoteError, match=r"cpython-39.*wheelhouse is built for"):
        _deploy(monkeypatch, inventory, release, conn)
    assert conn.steps() == ["probe"]  # nothing uploaded or installed
    conn = FakeConnection(facts="release=\nmode=\npid=\ninterface=eth0\nsystemd=no\npython=\n")
    with pytest.raises(hostctl.RemoteError, match="does not run on this host"):
        _deploy(monkeypatch, inventory, release, conn)
