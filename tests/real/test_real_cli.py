"""The `yurt` CLI as users run it (one subprocess per command, Go-style flags before arguments) against real
agent processes: the seeds' workflows on a lone server with no client, and `server members` / `raft list-peers`
on three servers. With no client every placement fails, so the assertions are on what Nomad prints then:
the plan's diff, the placement-failure explanation, exit codes 1/2, the blocked evaluations."""

from __future__ import annotations

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

import pytest

from orchestrator.testing.local_cluster import LocalCluster
from orchestrator.testing.local_cluster import eventually as poll_until

pytestmark = [pytest.mark.real]

# Copies of /work/shared/reference/nomad-1.0.18/jobs and of the seeds' job files.
JOBS = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"
YURT = [sys.executable, "-m", "orchestrator.cli.main"]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
SHORT = r"[0-9a-f]{8}"

# cronexpr (Nomad's cron library) reads six fields as minute..day-of-week plus a *year*: a seconds field
# needs all seven (second minute hour day-of-month month day-of-week year).
PERIODIC_JOB = """job "{id}" {{
  datacenters = ["dc1"]
  type        = "batch"

  periodic {{
    cron             = "{cron}"
    prohibit_overlap = {overlap}
  }}

  group "g" {{
    task "echo" {{
      driver = "raw_exec"

      config {{
        command = "/bin/echo"
        args    = ["tick"]
      }}
    }}
  }}
}}
"""

SERVICE_JOB = """job "{id}" {{
  datacenters = ["dc1"]
  type        = "{type}"

  group "g" {{
    count = {count}

    task "t" {{
      driver = "raw_exec"

      config {{
        command = "/bin/sleep"
        args    = ["600"]
      }}
    }}
  }}
}}
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without an outer NOMAD_*/YURT_* setting that would redirect the CLI."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOMAD_", "YURT_"))}
    env.update(extra)
    return env


def yurt(address: str | None, command: str, *args: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`yurt <command words> [-address A] <args...>`: the general flag first, as Go's flag package needs."""
    argv = [*YURT, *command.split(), *(["-address", address] if address else []), *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60, env=env or _clean_env())


def api(address: str, path: str, method: str = "GET", body: bytes | None = None) -> object:
    request = urllib.request.Request(address + path, data=body, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


eventually = partial(poll_until, timeout=15.0, interval=0.1)


def eval_done(address: str, eval_id: str) -> bool:
    return eventually(lambda: api(address, f"/v1/evaluation/{eval_id}")["Status"] == "complete") is True


def children(address: str, parent: str, kind: str) -> list[dict]:
    return api(address, f"/v1/jobs?prefix={parent}/{kind}-")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def agent() -> Iterator[str]:
    """One server for the tests below; each uses its own job IDs, so they do not interfere. Not a dev agent:
    that runs a client too, and these tests want every placement to fail."""
    with LocalCluster(servers=1) as cluster:
        cluster.start()
        ready = cluster.wait(lambda: cluster.leader(0) != "", timeout=30)
        assert ready is not None, cluster.agents[0].log.read_text()[-3000:]
        yield cluster.agents[0].address


# -- job init / validate / run / status / plan / check-index / stop -purge ----------------------------------


def test_init_validate_run_status_plan_check_index_and_purge(agent, tmp_path):
    init = yurt(None, "job init", cwd=tmp_path)
    assert (init.returncode, init.stdout) == (0, "Example job file written to example.nomad\n"), init
    spec = (tmp_path / "example.nomad").read_text()
    assert spec.startswith('job "example" {\n') and 'image = "redis:3.2"' in spec
    again = yurt(None, "job init", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (1, "Job 'example.nomad' already exists\n")
    for address in (None, agent):  # validate takes the general options too (Nomad's FlagSetClient)
        valid = yurt(address, "job validate", "example.nomad", cwd=tmp_path)
        assert (valid.returncode, valid.stdout) == (0, "Job validation successful\n"), valid

    # A plan of a job the cluster does not know: everything is added.
    new = yurt(agent, "job plan", "example.nomad", cwd=tmp_path)
    assert new.returncode == 1, new
    assert new.stdout.startswith('+ Job: "example"\n+ Task Group: "cache" (1 create)\n'
                                 '  + Task: "redis" (forces create)\n\nScheduler dry-run:\n'), new.stdout
    assert "Job Modify Index: 0\n" in new.stdout and "yurt job run -check-index 0 example.nomad\n" in new.stdout

    run = yurt(agent, "job run", "-detach", "example.nomad", cwd=tmp_path)
    assert run.returncode == 0, run
    match = re.fullmatch(rf"Job registration successful\nEvaluation ID: ({UUID})\n", run.stdout)
    assert match, run.stdout
    assert eval_done(agent, match.group(1))
    index = api(agent, "/v1/job/example")["JobModifyIndex"]

    listing = yurt(agent, "job status")
    assert listing.returncode == 0, listing
    assert listing.stdout.splitlines()[0].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]
    assert ["example", "service", "50", "pending"] in [line.split()[:4] for line in listing.stdout.splitlines()]

    detail = yurt(agent, "job status", "example")
    assert detail.returncode == 0, detail
    for line in ("ID            = example", "Type          = service", "Status        = pending",
                 "Periodic      = false", "Parameterized = false"):
        assert line + "\n" in detail.stdout, detail.stdout
    assert re.search(r"\nSummary\nTask Group +Queued +Starting +Running +Failed +Complete +Lost\n"
                     r"cache +1 +0 +0 +0 +0 +0\n", detail.stdout), detail.stdout
    assert 'Placement Failure\nTask Group "cache":\n  * No nodes were eligible for evaluation\n' in detail.stdout
    assert detail.stdout.endswith("Allocations\nNo allocations placed\n"), detail.stdout

    # count 1 -> 3: Nomad's annotated diff, and exit 1 (allocations would be created).
    (tmp_path / "count3.nomad").write_text(spec.replace('group "cache" {\n', 'group "cache" {\n    count = 3\n'))
    count3 = yurt(agent, "job plan", "count3.nomad", cwd=tmp_path)
    assert count3.returncode == 1, count3
    assert count3.stdout.startswith('+/- Job: "example"\n+/- Task Group: "cache" (3 create)\n'
                                    '  +/- Count: "1" => "3" (forces create)\n      Task: "redis"\n\n'
                                    "Scheduler dry-run:\n"), count3.stdout
    assert ('- WARNING: Failed to place all allocations.\n  Task Group "cache" (failed to place 3 allocations):\n'
            "    * No nodes were eligible for evaluation\n") in count3.stdout
    assert f"Job Modify Index: {index}\n" in count3.stdout
    assert f"yurt job run -check-index {index} count3.nomad\n" in count3.stdout

    # An image change: a destructive update of the task, with the config diff.
    (tmp_path / "image.nomad").write_text(spec.replace('"redis:3.2"', '"redis:7"'))
    image = yurt(agent, "job plan", "image.nomad", cwd=tmp_path)
    assert image.returncode == 1, image
    assert ('+/- Task Group: "cache" (1 create)\n  +/- Task: "redis" (forces create/destroy update)\n'
            '    +/- Config {\n      +/- image:    "redis:3.2" => "redis:7"\n          ports[0]: "db"\n'
            "        }\n") in image.stdout, image.stdout

    # The unchanged file: no diff markers; still exit 1, since the one allocation is still to be placed.
    same = yurt(agent, "job plan", "example.nomad", cwd=tmp_path)
    assert same.returncode == 1, same
    assert same.stdout.startswith('Job: "example"\nTask Group: "cache" (1 create)\n  Task: "redis"\n\n'), same.stdout

    # A stale -check-index is refused and the job is left as it was.
    stale = yurt(agent, "job run", "-check-index", "1", "count3.nomad", cwd=tmp_path)
    assert stale.returncode == 1, stale
    assert stale.stderr == (f"Enforcing job modify index 1: job exists with conflicting job modify index: {index}\n"
                            "Job not updated\n")
    exists = yurt(agent, "job run", "-check-index", "0", "count3.nomad", cwd=tmp_path)
    assert (exists.returncode, exists.stderr) == (1, "Enforcing job modify index 0: job already exists\n"
                                                     "Job not updated\n")
    assert api(agent, "/v1/job/example")["TaskGroups"][0]["Count"] == 1
    # The index the plan printed is accepted.
    checked = yurt(agent, "job run", "-detach", "-check-index", str(index), "count3.nomad", cwd=tmp_path)
    assert checked.returncode == 0, checked
    job = api(agent, "/v1/job/example")
    assert (job["TaskGroups"][0]["Count"], job["Version"]) == (3, 1)

    history = yurt(agent, "job history", "example")
    assert history.returncode == 0, history
    assert re.match(r"Version     = 1\nStable      = false\nSubmit Date = \S+\n\n"
                    r"Version     = 0\nStable      = false\nSubmit Date = \S+\n$", history.stdout), history.stdout
    inspect = yurt(agent, "job inspect", "example")
    assert inspect.returncode == 0, inspect
    inspected = json.loads(inspect.stdout)["Job"]
    assert (inspected["ID"], inspected["TaskGroups"][0]["Count"], inspected["Version"]) == ("example", 3, 1)

    stop = yurt(agent, "job stop", "-purge", "-detach", "example")
    assert stop.returncode == 0, stop
    assert re.fullmatch(rf"{UUID}\n", stop.stdout), stop.stdout
    gone = yurt(agent, "job status", "example")
    assert (gone.returncode, gone.stdout, gone.stderr) == (1, "", 'No job(s) with prefix or id "example" found\n')
    assert "example" not in [j["ID"] for j in api(agent, "/v1/jobs")]


def test_run_with_no_client_exits_2_and_explains_the_placement_failure(agent):
    run = yurt(agent, "job run", str(JOBS / "svc.nomad"))
    assert run.returncode == 2, run
    lines = run.stdout.splitlines()
    assert re.fullmatch(rf'==> Monitoring evaluation "({SHORT})"', lines[0]), run.stdout
    eval_short = lines[0].split('"')[1]
    assert '    Evaluation triggered by job "sleeper"' in lines
    assert re.search(rf'==> Evaluation "{eval_short}" finished with status "complete" but failed to place all '
                     r'allocations:\n    Task Group "g" \(failed to place 1 allocation\):\n'
                     r"      \* No nodes were eligible for evaluation\n"
                     rf'    Evaluation "({SHORT})" waiting for additional capacity to place remainder\n$',
                     run.stdout), run.stdout
    blocked_short = lines[-1].split('"')[1]
    evals = {e["ID"][:8]: e for e in api(agent, "/v1/job/sleeper/evaluations")}
    assert evals[eval_short]["TriggeredBy"] == "job-register" and evals[eval_short]["BlockedEval"][:8] == blocked_short
    assert evals[blocked_short]["Status"] == "blocked"

    status = yurt(agent, "eval status", blocked_short)
    assert status.returncode == 0, status
    assert "Status             = blocked\n" in status.stdout and "TriggeredBy        = queued-allocs\n" in status.stdout
    assert ('Failed Placements\nTask Group "g" (failed to place 1 allocation):\n'
            "  * No nodes were eligible for evaluation\n") in status.stdout

    # The same job through Nomad's top-level alias, with -detach: registered, exit 0.
    again = yurt(agent, "run", "-detach", str(JOBS / "svc.nomad"))
    assert again.returncode == 0 and again.stdout.startswith("Job registration successful\nEvaluation ID: "), again
    stop = yurt(agent, "job stop", "-purge", "sleeper")
    assert stop.returncode == 0, stop
    assert stop.stdout.splitlines()[-1].endswith('finished with status "complete"'), stop.stdout


def test_a_plan_that_changes_nothing_exits_0(agent, tmp_path):
    (tmp_path / "idle.nomad").write_text(SERVICE_JOB.format(id="idle", type="service", count=0))
    (tmp_path / "idle2.nomad").write_text(SERVICE_JOB.format(id="idle", type="service", count=2))
    run = yurt(agent, "job run", "idle.nomad", cwd=tmp_path)
    assert run.returncode == 0, run  # nothing to place: the evaluation completes without failures
    assert run.stdout.splitlines()[-1].endswith('finished with status "complete"'), run.stdout
    same = yurt(agent, "job plan", "idle.nomad", cwd=tmp_path)
    assert same.returncode == 0, same
    assert same.stdout.startswith('Job: "idle"\nTask Group: "g"\n  Task: "t"\n\nScheduler dry-run:\n'
                                  "- All tasks successfully allocated.\n\nJob Modify Index: "), same.stdout
    grow = yurt(agent, "job plan", "idle2.nomad", cwd=tmp_path)
    assert grow.returncode == 1, grow
    assert grow.stdout.startswith('+/- Job: "idle"\n+/- Task Group: "g" (2 create)\n'
                                  '  +/- Count: "0" => "2" (forces create)\n'), grow.stdout
    assert yurt(agent, "job stop", "-purge", "-detach", "idle").returncode == 0


def test_stopping_a_job_whose_placements_failed_clears_its_queued_count(agent, tmp_path):
    (tmp_path / "queued.nomad").write_text(SERVICE_JOB.format(id="queued", type="batch", count=1))
    assert yurt(agent, "job run", "queued.nomad", cwd=tmp_path).returncode == 2
    stop = yurt(agent, "job stop", "queued")
    assert stop.returncode == 0, stop
    summary = eventually(lambda: api(agent, "/v1/job/queued/summary")["Summary"]["g"]["Queued"] == 0, timeout=1.5)
    status = yurt(agent, "job status", "queued")
    assert "Status        = dead (stopped)\n" in status.stdout
    assert summary, status.stdout


# -- parameterized and periodic jobs ------------------------------------------------------------------------


def test_dispatch_a_parameterized_job(agent):
    run = yurt(agent, "job run", str(JOBS / "param.nomad"))
    assert (run.returncode, run.stdout) == (0, "Job registration successful\n"), run

    dispatch = yurt(agent, "job dispatch", "-meta", "k=v", "param-echo")
    # The dispatched child cannot be placed without a client: the monitor ends with exit 2.
    assert dispatch.returncode == 2, dispatch
    match = re.match(rf"Dispatched Job ID = (param-echo/dispatch-\d+-{SHORT})\nEvaluation ID     = ({SHORT})\n\n"
                     rf'==> Monitoring evaluation "({SHORT})"\n', dispatch.stdout)
    assert match and match.group(2) == match.group(3), dispatch.stdout
    first = match.group(1)
    assert f'    Evaluation triggered by job "{first}"\n' in dispatch.stdout
    child = api(agent, f"/v1/job/{first}")
    assert (child["ParentID"], child["Dispatched"], child["Meta"]) == ("param-echo", True, {"k": "v"})

    detached = yurt(agent, "job dispatch", "-detach", "-meta", "k=second", "param-echo")
    assert detached.returncode == 0, detached
    match = re.fullmatch(rf"Dispatched Job ID = (param-echo/dispatch-\d+-{SHORT})\nEvaluation ID     = {SHORT}\n",
                         detached.stdout)
    assert match, detached.stdout
    second = match.group(1)

    # Refusals: Nomad's messages (yurt answers these RPC refusals 400 where Nomad 1.0 says 500).
    missing = yurt(agent, "job dispatch", "param-echo")
    assert missing.returncode == 1 and missing.stdout == "", missing
    assert re.fullmatch(r"Failed to dispatch job: Unexpected response code: (400|500) "
                        r"\(Dispatch did not provide required meta keys: \[k\]\)\n", missing.stderr), missing.stderr
    bogus = yurt(agent, "job dispatch", "-meta", "k=v", "-meta", "bogus=1", "param-echo")
    assert bogus.returncode == 1 and re.fullmatch(
        r"Failed to dispatch job: Unexpected response code: (400|500) "
        r"\(Dispatch request included unpermitted metadata keys: \[bogus\]\)\n", bogus.stderr), bogus.stderr
    assert len(children(agent, "param-echo", "dispatch")) == 2

    status = yurt(agent, "job status", "param-echo")
    assert status.returncode == 0, status
    assert "Parameterized = true\n" in status.stdout
    assert ("Parameterized Job\nPayload           = optional\nRequired Metadata = k\n"
            "Optional Metadata = opt\n") in status.stdout, status.stdout
    dispatched = status.stdout.split("Dispatched Jobs\n", 1)[1].splitlines()
    assert dispatched[0].split() == ["ID", "Status"]
    assert sorted(row.split()[0] for row in dispatched[1:]) == sorted([first, second])
    listing = yurt(agent, "job status").stdout
    assert ["param-echo", "batch/parameterized", "50", "running"] in [row.split()[:4] for row in listing.splitlines()]


def test_a_periodic_job_launches_on_its_own_and_on_force(agent, tmp_path):
    (tmp_path / "tick.nomad").write_text(PERIODIC_JOB.format(id="tick", cron="* * * * * * *", overlap="false"))
    run = yurt(agent, "job run", "tick.nomad", cwd=tmp_path)
    assert run.returncode == 0, run
    assert re.fullmatch(r"Job registration successful\nApproximate next launch time: \S+ \(\d+s from now\)\n",
                        run.stdout), run.stdout
    launched = eventually(lambda: len(children(agent, "tick", "periodic")) >= 2, timeout=10)
    assert launched, children(agent, "tick", "periodic")
    status = yurt(agent, "job status", "tick")
    assert status.returncode == 0, status
    assert "Periodic             = true\n" in status.stdout and "Next Periodic Launch = " in status.stdout
    previous = status.stdout.split("Previously Launched Jobs\n", 1)[1].splitlines()
    assert previous[0].split() == ["ID", "Status"] and len(previous) >= 3, status.stdout
    assert all(re.fullmatch(r"tick/periodic-\d+ +\w+", row) for row in previous[1:]), status.stdout
    purging = time.time()
    purge = yurt(agent, "job stop", "-purge", "-detach", "tick")
    assert (purge.returncode, purge.stdout) == (0, ""), purge  # a periodic job has no evaluation to show

    # Forcing a launch of a job whose cron is far away: exactly one more child, named by the monitor.
    (tmp_path / "cron.nomad").write_text(PERIODIC_JOB.format(id="cron-echo", cron="0 0 1 1 *", overlap="true"))
    assert yurt(agent, "job run", "cron.nomad", cwd=tmp_path).returncode == 0
    before = yurt(agent, "job status", "cron-echo")
    assert "Children Job Summary\nPending  Running  Dead\n0        0        0\n" in before.stdout, before.stdout
    assert before.stdout.endswith("\nNo instances of periodic job found\n"), before.stdout
    force = yurt(agent, "job periodic force", "cron-echo")
    assert force.returncode == 2, force  # the child's allocation cannot be placed without a client
    match = re.search(r'\n    Evaluation triggered by job "(cron-echo/periodic-\d+)"\n', force.stdout)
    assert match, force.stdout
    assert [j["ID"] for j in children(agent, "cron-echo", "periodic")] == [match.group(1)]
    after = yurt(agent, "job status", "cron-echo")
    launched_rows = after.stdout.split("Previously Launched Jobs\n", 1)[1].splitlines()
    assert [row.split() for row in launched_rows] == [["ID", "Status"], [match.group(1), "pending"]], after.stdout
    detached = yurt(agent, "job periodic force", "-detach", "cron-echo")
    assert re.fullmatch(rf"Force periodic successful\nEvaluation ID: {UUID}\n", detached.stdout), detached
    missing = yurt(agent, "job periodic force", "param-echo-nope")
    assert (missing.returncode, missing.stderr) == (1, 'No periodic job(s) with prefix or id "param-echo-nope" found\n')
    assert yurt(agent, "job stop", "-purge", "-detach", "cron-echo").returncode == 0

    # The purged parent launches nothing more: no child is named after a second later than the purge's (a
    # launch already under way when the purge was asked for may still land). Its cron fires every second.
    time.sleep(max(0.0, purging + 2.5 - time.time()))
    launch_times = [int(j["ID"].rsplit("-", 1)[1]) for j in children(agent, "tick", "periodic")]
    assert max(launch_times) <= purging + 1, (purging, launch_times)


# -- malformed input ----------------------------------------------------------------------------------------


def test_bad_hcl_is_located_and_bad_json_gets_go_s_error(agent, tmp_path):
    (tmp_path / "bad.nomad").write_text((JOBS / "bad.nomad").read_text())
    header = "Error getting job struct: Error parsing job file from bad.nomad:\nbad.nomad:3,3"
    for command, address, code in (("job validate", None, 1), ("job run", agent, 1), ("job plan", agent, 255)):
        result = yurt(address, command, "bad.nomad", cwd=tmp_path)
        assert result.returncode == code, result
        assert result.stderr.startswith(header) and "Missing item separator" in result.stderr, result.stderr
    (tmp_path / "open.nomad").write_text('job "open" {\n  group "g" {\n    count = 1\n')
    unclosed = yurt(agent, "job run", "open.nomad", cwd=tmp_path)
    assert unclosed.returncode == 1, unclosed
    assert re.match(r"Error getting job struct: Error parsing job file from open\.nomad:\nopen\.nomad:\d+,\d+",
                    unclosed.stderr), unclosed.stderr
    missing = yurt(agent, "job run", "does-not-exist.nomad", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stderr.startswith(
        'Error getting job struct: Error getting jobfile from "does-not-exist.nomad": source path error: '), missing
    assert "broken" not in [j["ID"] for j in api(agent, "/v1/jobs")]

    for body, message in ((b"{not json", "invalid character 'n' looking for beginning of object key string"),
                          (b'{"Job": {"ID": 5}}', "json: cannot unmarshal number into Go struct field ")):
        with pytest.raises(urllib.error.HTTPError) as caught:
            api(agent, "/v1/jobs", "PUT", body)
        assert caught.value.code == 400
        assert caught.value.read().decode().startswith(message)

    unreachable = yurt("http://127.0.0.1:1", "job run", str(JOBS / "batch.nomad"))
    assert unreachable.returncode == 1, unreachable
    assert unreachable.stderr == ('Error submitting job: Put "http://127.0.0.1:1/v1/jobs": '
                                  "dial tcp 127.0.0.1:1: connect: connection refused\n")


# -- the seeds' other verbs ---------------------------------------------------------------------------------


def test_the_seeds_verbs_answer_with_nomad_shaped_output(agent, tmp_path):
    env = _clean_env(NOMAD_ADDR=agent)  # as the seeds do: export NOMAD_ADDR=http://...

    def seed(command: str, *args: str) -> subprocess.CompletedProcess:
        return yurt(None, command, *args, cwd=tmp_path, env=env)

    nodes = seed("node status")
    assert (nodes.returncode, nodes.stdout) == (0, "No nodes registered\n")
    assert seed("node status", "-verbose").stdout == "No nodes registered\n"
    assert seed("node-status").stdout == "No nodes registered\n"
    members = seed("server members")
    assert members.returncode == 0, members
    rows = [line.split() for line in members.stdout.splitlines()]
    assert rows[0] == ["Name", "Address", "Port", "Status", "Leader", "Protocol", "Build", "Datacenter", "Region"]
    assert len(rows) == 2 and rows[1][3:5] == ["alive", "true"] and rows[1][7:] == ["dc1", "global"]

    (tmp_path / "seed.nomad").write_text(SERVICE_JOB.format(id="seed", type="batch", count=1))
    run = seed("run", "-detach", "seed.nomad")
    assert run.returncode == 0, run
    eval_id = run.stdout.rsplit(" ", 1)[1].strip()
    assert eval_done(agent, eval_id)

    evals = seed("eval list")
    assert evals.returncode == 0, evals
    header, *rest = evals.stdout.splitlines()
    assert header.split() == ["ID", "Priority", "Triggered", "By", "Job", "ID", "Namespace", "Node", "ID", "Status",
                              "Placement", "Failures"]
    assert [eval_id[:8], "50", "job-register", "seed", "default", "<none>", "complete", "true"] in [
        r.split() for r in rest]
    history = seed("job history", "seed")
    assert history.returncode == 0 and history.stdout.startswith("Version     = 0\nStable      = false\n"), history
    inspect = seed("inspect", "seed")
    assert inspect.returncode == 0 and json.loads(inspect.stdout)["Job"]["Type"] == "batch", inspect
    top = seed("status")
    assert top.returncode == 0, top
    assert ["seed", "batch", "50", "pending"] in [row.split()[:4] for row in top.stdout.splitlines()]
    detail = seed("status", "seed")
    assert detail.returncode == 0 and detail.stdout.startswith("ID            = seed\nName          = seed\n"), detail
    allocs = seed("job allocs", "seed")
    assert allocs.returncode == 0, allocs
    gc = seed("system gc")
    assert (gc.returncode, gc.stdout, gc.stderr) == (0, "", "")
    version = seed("version")
    assert version.returncode == 0 and version.stdout.startswith("yurt v"), version

    stop = seed("stop", "seed")
    assert stop.returncode == 0, stop
    assert stop.stdout.startswith('==> Monitoring evaluation "') and \
        stop.stdout.splitlines()[-1].endswith('finished with status "complete"'), stop.stdout
    stopped = seed("job status", "seed")
    assert "Status        = dead (stopped)\n" in stopped.stdout, stopped.stdout
    assert seed("stop", "-purge", "-detach", "seed").returncode == 0
    nothing = seed("job stop", "seed")
    assert (nothing.returncode, nothing.stderr) == (1, 'No job(s) with prefix or id "seed" found\n')


def test_the_getting_started_seed_registers_its_four_jobs_and_dispatches_the_setup(agent):
    """Seed 001 (learn-nomad-getting-started): redis and web services, a parameterized setup job dispatched with
    -meta budget=200, and an employee job whose 7-field cron fires every 3 seconds."""
    files = {"pytechco-redis": "service", "pytechco-web": "service", "pytechco-setup": "batch/parameterized",
             "pytechco-employee": "batch/periodic"}
    for job_id in files:
        run = yurt(agent, "job run", "-detach", str(JOBS / f"seed-001-{job_id}.nomad.hcl"))
        assert run.returncode == 0 and run.stdout.startswith("Job registration successful\n"), run
    listing = yurt(agent, "job status")
    rows = {row.split()[0]: row.split()[1] for row in listing.stdout.splitlines()[1:]}
    assert {job_id: rows.get(job_id) for job_id in files} == files, listing.stdout

    dispatch = yurt(agent, "job dispatch", "-detach", "-meta", "budget=200", "pytechco-setup")
    assert dispatch.returncode == 0, dispatch
    child = re.match(rf"Dispatched Job ID = (pytechco-setup/dispatch-\d+-{SHORT})\n", dispatch.stdout)
    assert child and api(agent, f"/v1/job/{child.group(1)}")["Meta"] == {"budget": "200"}, dispatch.stdout
    refused = yurt(agent, "job dispatch", "-meta", "budget=200", "pytechco-web")
    assert refused.returncode == 1 and refused.stderr.endswith(
        '(Specified job "pytechco-web" is not a parameterized job)\n'), refused.stderr

    for job_id in files:
        stop = yurt(agent, "job stop", "-purge", "-detach", job_id)
        assert stop.returncode == 0, stop
    assert not {j["ID"] for j in api(agent, "/v1/jobs")} & set(files)


# -- three servers ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_server_members_and_raft_peers_on_three_servers():
    with LocalCluster(servers=3) as cluster:
        cluster.start()
        healthy = cluster.wait(cluster.healthy, timeout=45, interval=0.1)
        assert healthy is not None, [a.log.read_text()[-2000:] for a in cluster.agents]
        leader = cluster.leader_index()
        assert leader is not None
        names = {f"s{i + 1}.global" for i in range(3)}

        def members_agree(address: str) -> list[list[str]] | None:
            result = yurt(address, "server members")
            rows = [line.split() for line in result.stdout.splitlines()]
            body = rows[1:]
            ok = (result.returncode == 0 and len(body) == 3 and all(r[3] == "alive" for r in body)
                  and [r[4] for r in body].count("true") == 1)
            return rows if ok else None

        for i, agent in enumerate(cluster.agents):  # every server, the followers too, answers alike
            rows = eventually(lambda address=agent.address: members_agree(address), timeout=15, interval=0.3)
            assert rows, (i, yurt(agent.address, "server members"))
            body = rows[1:]
            assert {r[0] for r in body} == names
            assert {int(r[2]) for r in body} == {a.serf for a in cluster.agents}
            assert [r[0] for r in body if r[4] == "true"] == [f"s{leader + 1}.global"]
            assert [r[4] for r in body].count("false") == 2

        peers = yurt(cluster.agents[(leader + 1) % 3].address, "operator raft list-peers")
        assert peers.returncode == 0, peers
        rows = [line.split() for line in peers.stdout.splitlines()]
        assert rows[0] == ["Node", "ID", "Address", "State", "Voter", "RaftProtocol"]
        body = rows[1:]
        assert len(body) == 3 and {r[0] for r in body} == names
        assert sorted(r[3] for r in body) == ["follower", "follower", "leader"]
        assert all(r[4] == "true" for r in body)
        leader_row = next(r for r in body if r[3] == "leader")
        assert leader_row[0] == f"s{leader + 1}.global"
        assert leader_row[2] == f"127.0.0.1:{cluster.agents[leader].rpc}"
        assert {r[2] for r in body} == set(api(cluster.agents[0].address, "/v1/status/peers"))

        # The client-less verbs through a follower, on a cluster with nothing registered yet.
        follower = cluster.agents[(leader + 2) % 3].address
        assert yurt(follower, "node status").stdout == "No nodes registered\n"
        status = yurt(follower, "status")
        assert (status.returncode, status.stdout) == (0, "No running jobs\n")
