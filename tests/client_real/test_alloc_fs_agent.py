"""`yurt alloc fs` against a real dev agent: directory listings, stat, cat, tail (-n, -c), follow (-f), -job,
Nomad's errors and exit codes; and `alloc status -stats` showing the CPU load the stats endpoint measures."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from tests.client_real.test_raw_exec_agent import YURT, Agent, eventually, running, service, start_agent, yurt

pytestmark = [pytest.mark.real]

LINES = "".join(f"line {i}\n" for i in range(1, 13))
# Twelve lines in local/hello.txt, then a line a fifth of a second in local/ticks.txt, burning a little CPU.
SCRIPT = ("printf '" + LINES.replace("\n", "\\n") + "' > \"$NOMAD_TASK_DIR/hello.txt\"; n=0; "
          "while true; do n=$((n+1)); echo \"tick $n\" >> \"$NOMAD_TASK_DIR/ticks.txt\"; "
          "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.2; done")


@pytest.fixture(scope="module")
def dev() -> Iterator[Agent]:
    with LocalCluster(dev=True) as cluster:
        yield start_agent(cluster, cluster.base / "data")


@pytest.fixture(scope="module")
def alloc_id(dev: Agent) -> str:
    job_id = dev.run(service("files", SCRIPT))
    alloc = eventually(lambda: running(dev, job_id), timeout=20)[0]
    assert eventually(lambda: dev.task_file(alloc["ID"], "t", "ticks.txt").exists(), timeout=10)
    return alloc["ID"]


def fs(dev: Agent, *args: str) -> subprocess.CompletedProcess:
    return yurt(dev, "alloc", "fs", *args)


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def test_the_root_and_a_task_dir_are_listed_as_nomad_lists_them(dev, alloc_id):
    root = fs(dev, alloc_id[:8])
    assert root.returncode == 0, root.stderr
    table = rows(root.stdout)
    assert table[0] == ["Mode", "Size", "Modified Time", "Name"]
    assert [r[-1] for r in table[1:]] == ["alloc/", "t/"]
    assert all(r[0].startswith("drwx") and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", r[2])
               for r in table[1:])
    # The columns line up (tabwriter-like): each header starts where its cells do.
    lines = root.stdout.splitlines()
    assert lines[1].index(table[1][1]) == lines[0].index("Size")
    local = rows(fs(dev, alloc_id, "t/local").stdout)
    hello = next(r for r in local if r[-1] == "hello.txt")
    assert hello[0] == "-rw-r--r--" and hello[1] == f"{len(LINES)} B"
    machine = rows(fs(dev, "-H", alloc_id, "t/local").stdout)
    assert next(r for r in machine if r[-1] == "hello.txt")[1] == str(len(LINES))


def test_a_file_is_printed_stated_and_tailed(dev, alloc_id):
    cat = fs(dev, alloc_id, "t/local/hello.txt")
    assert (cat.returncode, cat.stdout) == (0, LINES)
    stat = fs(dev, "-stat", alloc_id, "/t/local/hello.txt")
    assert stat.returncode == 0
    header, row = rows(stat.stdout)
    assert header == ["Mode", "Size", "Modified Time", "Content Type", "Name"]
    assert (row[0], row[1], row[3], row[4]) == ("-rw-r--r--", f"{len(LINES)} B", "text/plain; charset=utf-8",
                                                "hello.txt")
    assert rows(fs(dev, "-stat", "-H", alloc_id, "t/local").stdout)[1][-1] == "local/"
    assert fs(dev, "-tail", alloc_id, "t/local/hello.txt").stdout == "".join(LINES.splitlines(True)[-10:])
    assert fs(dev, "-tail", "-n", "3", alloc_id, "t/local/hello.txt").stdout == "line 10\nline 11\nline 12\n"
    assert fs(dev, "-tail", "-c", "8", alloc_id, "t/local/hello.txt").stdout == "line 12\n"
    assert fs(dev, "-n", "3", alloc_id, "t/local/hello.txt").stdout == LINES  # -n without -tail: ignored


def test_job_picks_an_allocation_of_the_job(dev, alloc_id):
    found = fs(dev, "-job", "files", "t/local/hello.txt")
    assert (found.returncode, found.stdout) == (0, LINES)
    missing = fs(dev, "-job", "nope", "/")
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error fetching allocations: job "nope" doesn\'t exist or it has no allocations'


def test_errors_and_exit_codes(dev, alloc_id):
    gone = fs(dev, alloc_id, "t/local/missing.txt")
    assert gone.returncode == 1
    assert gone.stderr.strip() == "Unexpected response code: 404 (stat t/local/missing.txt: no such file or directory)"
    escape = fs(dev, alloc_id, "../../etc/passwd")
    assert escape.returncode == 1 and "Path escapes the alloc directory" in escape.stderr
    for args, message in [((), "An allocation ID is required"), (("-job",), "A job ID is required"),
                          (("a", "b", "c"), "This command takes one or two arguments: <allocation> [<path>]")]:
        done = fs(dev, *args)
        assert done.returncode == 1 and done.stderr.splitlines() == [
            message, "For additional help try 'yurt alloc fs -help'"], done.stderr
    both = fs(dev, "-tail", "-n", "1", "-c", "1", alloc_id, "t/local/hello.txt")
    assert (both.returncode, both.stderr.strip()) == (1, "Both -n and -c are not allowed")
    bad = fs(dev, "-tail", "-n", "-5", alloc_id, "t/local/hello.txt")
    assert (bad.returncode, bad.stderr.strip()) == (1, "Invalid size is specified")
    short = fs(dev, alloc_id[0], "/")
    assert (short.returncode, short.stderr.strip()) == (1, "Alloc ID must contain at least two characters.")
    none = fs(dev, "ffffffff", "/")
    assert (none.returncode, none.stderr.strip()) == (1, 'No allocation(s) with prefix or id "ffffffff" found')
    assert fs(dev, "-help").returncode == 0
    alias = subprocess.run([*YURT, "fs", "-address", dev.address, alloc_id, "t/local/hello.txt"],
                           capture_output=True, text=True, timeout=60)
    assert (alias.returncode, alias.stdout) == (0, LINES)


def test_follow_streams_what_the_task_appends_until_interrupted(dev, alloc_id):
    argv = [*YURT, "alloc", "fs", "-address", dev.address, "-f", "-tail", "-n", "1", alloc_id, "t/local/ticks.txt"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline() for _ in range(4)]
    finally:
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=10)
    numbers = [int(line.split()[1]) for line in seen]
    assert all(line.startswith("tick ") for line in seen), seen
    assert numbers == list(range(numbers[0], numbers[0] + 4))  # one line of the tail, then each new one
    assert code == 0, proc.stderr.read()


def test_alloc_status_stats_shows_the_cpu_the_stats_endpoint_measures(dev, alloc_id):
    time.sleep(1.2)
    api = dev.api(f"/v1/client/allocation/{alloc_id}/stats")["Tasks"]["t"]["ResourceUsage"]["CpuStats"]["Percent"]
    status = yurt(dev, "alloc", "status", "-stats", alloc_id)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    header = lines.index("CPU Stats")
    cpu = dict(zip(rows(lines[header + 1])[0], rows(lines[header + 2])[0], strict=True))
    shown = float(cpu["Percent"].rstrip("%"))
    assert api > 0 and shown > 0, (api, status.stdout)
    assert shown < api * 4 + 1 and api < shown * 4 + 1  # the same load, measured a moment apart
