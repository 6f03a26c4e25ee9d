"""A real deployment over SSH onto the netns lab: healthy, idempotent, runs a job, stops and starts, tears down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from orchestrator.api.client import ApiClient
from remote import deploy
from remote.build import build_release
from remote.connect import HostKeyRefused, open_connection
from remote.inventory import load_inventory
from remote.lab import Lab, unavailable


def _skip_reason() -> str | None:
    return unavailable(firewall=False)


pytestmark = [pytest.mark.lab, pytest.mark.slow,
              pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")]

JOB = """job "tiny" {
  datacenters = ["dc1"]
  type        = "service"
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("deploylab"))
    lab.up()
    try:
        yield lab
    finally:
        try:
            # Agents and their tasks live in this machine's PID space: never leave them behind a failed test.
            deploy.teardown(load_inventory(lab.inventory_path))
        except Exception as exc:  # the lab goes down regardless
            print(f"teardown after the lab tests: {exc}")
        lab.down()


@pytest.fixture(scope="module")
def inventory(lab):
    return load_inventory(lab.inventory_path, check_files=True)


@pytest.fixture(scope="module")
def release():
    # Built once and pinned: a checkout edited between the two deploys would otherwise be a new release.
    return build_release(out=print)


@pytest.fixture(scope="module")
def first_deploy(inventory, release):
    lines: list[str] = []
    result = deploy.deploy(inventory, out=lines.append, timeout=90, release=release)
    print("\n".join(lines))
    return result


def test_first_deploy_is_healthy(lab, inventory, first_deploy):
    assert {h["status"] for h in first_deploy["hosts"].values()} == {"changed"}
    info = deploy.status(inventory)
    assert info["leader"]
    assert sorted(m["Addr"] for m in info["members"] if m["Status"] == "alive") == [lab.address(h) for h in lab.hosts]
    assert sorted(n["Name"] for n in info["nodes"] if n["Status"] == "ready") == ["s2", "s3"]
    for host in lab.hosts:
        assert deploy.agent_pid(inventory, host) is not None
        # Each host's /opt is private: the install landed in that host's directory of the lab.
        assert (lab.host_dir(host) / "opt" / "yurt" / "venv" / "bin" / "yurt").exists()
    assert deploy.http_address(inventory, "s1") == f"http://{lab.address('s1')}:4646"


def test_second_deploy_changes_nothing(lab, inventory, first_deploy, release):
    pids = {h: deploy.agent_pid(inventory, h) for h in lab.hosts}
    result = deploy.deploy(inventory, out=lambda line: None, release=release)
    assert {n: h["status"] for n, h in result["hosts"].items()} == dict.fromkeys(lab.hosts, "unchanged"), result
    assert {h: deploy.agent_pid(inventory, h) for h in lab.hosts} == pids  # nothing restarted
    assert result["seconds"] < 15


def test_run_job_gets_it_running(lab, inventory, first_deploy, tmp_path):
    job = tmp_path / "tiny.hcl"
    job.write_text(JOB)
    response = deploy.run_job(inventory, job)
    assert response["job"] == "tiny" and response.get("EvalID")
    api = ApiClient(deploy.http_address(inventory, "s1"), env={}, timeout=2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(a.get("ClientStatus") == "running" for a in api.job_allocations("tiny")):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"tiny never ran: {api.job_allocations('tiny')}")


def test_killed_agent_stays_down_until_started(lab, inventory, first_deploy):
    old = deploy.agent_pid(inventory, "s3")
    deploy.kill(inventory, "s3")
    time.sleep(1.0)
    assert deploy.agent_pid(inventory, "s3") is None  # daemon mode: no supervisor brings it back
    deploy.start(inventory, ["s3"])
    new = deploy.agent_pid(inventory, "s3")
    assert new is not None and new != old
    deploy.wait_healthy(inventory, timeout=60)


def test_stop_and_start_one_host(lab, inventory, first_deploy):
    deploy.stop(inventory, ["s2"])
    assert deploy.agent_pid(inventory, "s2") is None
    assert deploy.agent_pid(inventory, "s1") is not None
    deploy.start(inventory, ["s2"])
    assert deploy.wait_healthy(inventory, timeout=60) < 60
    assert "agent" in deploy.logs(inventory, "s2", lines=50).lower()


def test_unknown_host_key_is_refused(lab, inventory, tmp_path):
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["known_hosts"] = str(tmp_path / "empty_known_hosts")
    data["defaults"]["key"] = str(lab.key_path)
    (tmp_path / "empty_known_hosts").write_text("")
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    other = load_inventory(tmp_path / "inv.yml")
    with pytest.raises(HostKeyRefused, match="unknown host key"):
        open_connection(other, other.host("s1"))


def test_teardown_removes_everything(lab, inventory, first_deploy):
    pids = [p for p in (deploy.agent_pid(inventory, h) for h in lab.hosts) if p]
    deploy.teardown(inventory)
    for host in lab.hosts:
        assert not (lab.host_dir(host) / "opt" / "yurt").exists()
    time.sleep(0.2)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
