"""/v1/client on a real dev agent: a raw_exec task's logs, files, stats, signals and restarts, through `yurt alloc`."""

from __future__ import annotations

import base64
import json
import os
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import YURT, Agent, eventually, start_agent, yurt

pytestmark = [pytest.mark.real]

# Five lines out, one line err; then a line each time `more` appears in the task dir, and one per SIGUSR1.
SCRIPT = """trap 'echo got-usr1' USR1
echo $$ > "$NOMAD_TASK_DIR/pid"
for i in 1 2 3 4 5; do echo "line $i"; done
echo "oops" >&2
while true; do
  if [ -f "$NOMAD_TASK_DIR/more" ]; then rm -f "$NOMAD_TASK_DIR/more"; echo "after"; fi
  sleep 0.05
done"""

JOB = f"""job "chatty" {{
  datacenters = ["dc1"]
  group "g" {{
    restart {{
      attempts = 3
      interval = "1m"
      delay    = "100ms"
      mode     = "fail"
    }}
    task "t" {{
      driver = "raw_exec"
      config {{
        command = "/bin/sh"
        args    = ["-c", {json.dumps(SCRIPT)}]
      }}
      resources {{
        cpu    = 20
        memory = 16
      }}
    }}
  }}
}}
"""


def raw(agent: Agent, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(agent.address + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def chatty() -> Iterator[tuple[Agent, str]]:
    with LocalCluster(dev=True) as cluster:
        agent = start_agent(cluster, cluster.base / "data")
        agent.run(JOB)

        def started() -> str | None:
            allocs = [a for a in agent.allocs("chatty") if a["ClientStatus"] == "running"]
            if not allocs:
                return None
            log = agent.data_dir / "alloc" / allocs[0]["ID"] / "alloc/logs/t.stdout.0"
            return allocs[0]["ID"] if log.exists() and b"line 5" in log.read_bytes() else None

        alloc_id = eventually(started, timeout=15)
        assert alloc_id, agent.allocs("chatty")
        yield agent, alloc_id


def test_alloc_logs_stdout_stderr_and_tail(chatty):
    agent, alloc_id = chatty
    run = yurt(agent, "alloc", "logs", alloc_id[:8])
    assert (run.returncode, run.stdout) == (0, "".join(f"line {i}\n" for i in range(1, 6))), run
    run = yurt(agent, "alloc", "logs", "-stderr", alloc_id, "t")
    assert (run.returncode, run.stdout) == (0, "oops\n"), run
    run = yurt(agent, "alloc", "logs", "-tail", "-n", "2", alloc_id)
    assert (run.returncode, run.stdout) == (0, "line 4\nline 5\n"), run
    run = yurt(agent, "alloc", "logs", "-tail", "-c", "7", alloc_id)
    assert (run.returncode, run.stdout) == (0, "line 5\n"), run
    run = yurt(agent, "alloc", "logs", "-job", "chatty")
    assert run.returncode == 0 and run.stdout.startswith("line 1\n"), run
    run = yurt(agent, "alloc", "logs", alloc_id, "nope")  # as Nomad, the client refuses an unknown task
    assert (run.returncode, run.stderr) == (1, 'Error reading file: Unexpected response code: 400 (task group "g" '
                                               'does not have task with name "nope")\n'), run


def test_logs_api_frames_plain_and_errors(chatty):
    agent, alloc_id = chatty
    status, body = raw(agent, f"/v1/client/fs/logs/{alloc_id}?task=t&type=stdout")
    frames = [json.loads(line) for line in body.splitlines()]
    assert status == 200 and {f["File"] for f in frames} == {"alloc/logs/t.stdout.0"}
    assert b"".join(base64.b64decode(f["Data"]) for f in frames).startswith(b"line 1\nline 2\n")
    status, body = raw(agent, f"/v1/client/fs/logs/{alloc_id}?task=t&type=stderr&origin=end&offset=3&plain=true")
    assert (status, body) == (200, b"ps\n")
    assert raw(agent, f"/v1/client/fs/logs/{alloc_id}?type=stdout") == (400, b"must provide task name")
    assert raw(agent, f"/v1/client/fs/logs/{alloc_id}?task=t&type=x") == (400, b"must provide log type (stdout/stderr)")
    assert raw(agent, f"/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&origin=middle") == (
        400, b"origin must be start or end")
    unknown = "00000000-0000-0000-0000-000000000000"
    assert raw(agent, f"/v1/client/fs/logs/{unknown}?task=t&type=stdout") == (
        404, f'Unknown allocation "{unknown}"'.encode())


def test_alloc_logs_follow_prints_new_lines_until_stopped(chatty):
    agent, alloc_id = chatty
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "YURT_"))}
    follower = subprocess.Popen([*YURT, "alloc", "logs", "-address", agent.address, "-f", alloc_id, "t"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        seen = b""
        deadline = time.monotonic() + 15
        more = agent.task_file(alloc_id, "t", "more")
        while b"after\n" not in seen and time.monotonic() < deadline:
            if b"line 5\n" in seen and not more.exists():
                more.write_text("")  # the task prints "after" for it, after the follower started
            ready, _, _ = select.select([follower.stdout], [], [], 0.2)
            if ready:
                seen += os.read(follower.stdout.fileno(), 65536)
        assert seen.startswith(b"line 1\n") and b"after\n" in seen, seen
    finally:
        follower.send_signal(signal.SIGTERM)
        code = follower.wait(timeout=10)
    assert code == 0, follower.stderr.read()


def test_fs_ls_cat_stat_readat_and_escapes(chatty):
    agent, alloc_id = chatty
    names = {e["Name"]: e for e in agent.api(f"/v1/client/fs/ls/{alloc_id}")}
    assert {"alloc", "t"} <= set(names) and names["alloc"]["IsDir"] and names["alloc"]["FileMode"].startswith("d")
    logs = {e["Name"]: e for e in agent.api(f"/v1/client/fs/ls/{alloc_id}?path=/alloc/logs")}
    assert logs["t.stderr.0"]["Size"] == 5 and logs["t.stderr.0"]["FileMode"].startswith("-rw-")
    assert set(logs["t.stderr.0"]) == {"Name", "IsDir", "Size", "FileMode", "ModTime"}
    fifo = next(name for name, e in logs.items() if e["FileMode"].startswith("p"))  # the logs' FIFOs are listed
    assert raw(agent, f"/v1/client/fs/cat/{alloc_id}?path=alloc/logs/{fifo}")[0] == 400  # but never read
    assert raw(agent, f"/v1/client/fs/cat/{alloc_id}?path=alloc/logs/t.stderr.0") == (200, b"oops\n")
    info = agent.api(f"/v1/client/fs/stat/{alloc_id}?path=alloc/logs/t.stderr.0")
    assert (info["Name"], info["IsDir"], info["Size"], info["ContentType"]) == (
        "t.stderr.0", False, 5, "text/plain; charset=utf-8")
    assert raw(agent, f"/v1/client/fs/readat/{alloc_id}?path=alloc/logs/t.stdout.0&offset=7&limit=6") == (
        200, b"line 2")
    for path in ("../../..", "alloc/../../x", "/t/../../", "t/local/../../../etc/passwd"):
        assert raw(agent, f"/v1/client/fs/ls/{alloc_id}?path={path}") == (400, b"Path escapes the alloc directory")
    (agent.task_file(alloc_id, "t", "etc")).symlink_to("/etc")  # a task's link out of its directory
    assert raw(agent, f"/v1/client/fs/cat/{alloc_id}?path=t/local/etc/passwd") == (
        400, b"Path escapes the alloc directory")
    assert raw(agent, f"/v1/client/fs/stat/{alloc_id}?path=nope")[0] == 404
    assert raw(agent, f"/v1/client/fs/cat/{alloc_id}?path=alloc")[0] == 400


def test_stats_shapes_and_alloc_status_stats(chatty):
    agent, alloc_id = chatty
    stats = agent.api(f"/v1/client/allocation/{alloc_id}/stats")
    usage = stats["Tasks"]["t"]["ResourceUsage"]
    assert set(stats) == {"ResourceUsage", "Tasks", "Timestamp"} and usage["MemoryStats"]["RSS"] > 0
    assert usage["MemoryStats"]["Measured"] == ["RSS", "Swap"]
    assert set(usage["CpuStats"]) == {"SystemMode", "UserMode", "TotalTicks", "ThrottledPeriods", "ThrottledTime",
                                      "Percent", "Measured"}
    assert stats["ResourceUsage"]["MemoryStats"]["RSS"] == usage["MemoryStats"]["RSS"]
    host = agent.api("/v1/client/stats")
    assert {"Memory", "CPU", "DiskStats", "AllocDirStats", "Uptime", "Timestamp", "CPUTicksConsumed"} <= set(host)
    assert host["Memory"]["Total"] > host["Memory"]["Free"] > 0 and host["CPU"] and host["Uptime"] > 0
    assert set(host["CPU"][0]) == {"CPU", "User", "System", "Idle", "Total"}
    assert host["AllocDirStats"]["Size"] > 0
    node_id = agent.api("/v1/nodes")[0]["ID"]
    assert agent.api(f"/v1/client/stats?node_id={node_id}")["Uptime"] > 0
    run = yurt(agent, "alloc", "status", "-stats", alloc_id)
    assert run.returncode == 0, run
    assert "Memory Stats\nRSS" in run.stdout and "CPU Stats\nPercent  System Mode  User Mode" in run.stdout, run.stdout
    assert "Couldn't retrieve stats" not in run.stderr


def test_signal_and_restart(chatty):
    agent, alloc_id = chatty
    run = yurt(agent, "alloc", "signal", "-s", "SIGUSR1", alloc_id, "t")
    assert run.returncode == 0, run
    log = agent.data_dir / "alloc" / alloc_id / "alloc/logs/t.stdout.0"
    assert eventually(lambda: b"got-usr1\n" in log.read_bytes(), timeout=5)
    run = yurt(agent, "alloc", "signal", "-s", "SIGNOPE", alloc_id)
    assert run.returncode == 1 and 'unknown signal "SIGNOPE"' in run.stderr, run
    pid = agent.pid(alloc_id)
    run = yurt(agent, "alloc", "restart", alloc_id)
    assert (run.returncode, run.stdout) == (0, ""), run

    def restarted() -> bool:
        state = agent.alloc(alloc_id)["TaskStates"]["t"]
        return state["State"] == "running" and state["Restarts"] == 1 and agent.pid(alloc_id) not in (None, pid)

    assert eventually(restarted, timeout=5), agent.alloc(alloc_id)["TaskStates"]["t"]
    run = yurt(agent, "alloc", "restart", alloc_id, "nope")
    assert run.returncode == 1 and "Could not find task named: nope" in run.stderr, run
