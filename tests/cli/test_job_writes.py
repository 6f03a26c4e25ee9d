"""`job run` (eval and deployment monitors), `job plan` (diff, exit codes 0/1/255), dispatch, stop, drain."""

from __future__ import annotations

import re
from pathlib import Path

from cli_fake_agent import NODE_ID, Reply

JOBS = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"
EVAL_ID = "7d70a11b-33a2-f1b3-3c96-c23f7df9ec02"
ALLOC_ID = "61b4612e-6250-f877-ccc4-8a793507a04d"


def evaluation(eval_id: str, job: str, status: str, **extra: object) -> dict:
    return {"ID": eval_id, "JobID": job, "Status": status, "Priority": 50, "TriggeredBy": "job-register",
            "CreateIndex": 11, **extra}


def alloc(alloc_id: str, status: str, description: str = "", create_index: int = 12) -> dict:
    return {"ID": alloc_id, "NodeID": NODE_ID, "TaskGroup": "g", "DesiredStatus": "run", "ClientStatus": status,
            "ClientDescription": description, "CreateIndex": create_index}


BATCH_RUN = """\
==> Monitoring evaluation "7d70a11b"
    Evaluation triggered by job "hello-batch"
    Allocation "61b4612e" created: node "cb6f504b", group "g"
==> Monitoring evaluation "7d70a11b"
    Allocation "61b4612e" status changed: "pending" -> "running" (Tasks are running)
    Evaluation status changed: "pending" -> "complete"
==> Evaluation "7d70a11b" finished with status "complete"
"""

SERVICE_RUN = """\
==> Monitoring evaluation "badcfcb2"
    Evaluation triggered by job "sleeper"
    Evaluation within deployment: "7232f7fd"
    Allocation "c7bb4329" created: node "cb6f504b", group "g"
    Evaluation status changed: "pending" -> "complete"
==> Evaluation "badcfcb2" finished with status "complete"
==> Monitoring deployment "7232f7fd"
  ✓ Deployment "7232f7fd" successful

    <time>
    ID          = 7232f7fd
    Job ID      = sleeper
    Job Version = 0
    Status      = successful
    Description = Deployment completed successfully

    Deployed
    Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline
    g           1        1       1        0          2026-11-22T10:34:51Z

"""

CHECK_INDEX_HINT = """
Job Modify Index: {index}
To submit the job with version verification run:

yurt job run -check-index {index} {path}

When running the job with the check-index flag, the job will only be run if the
job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid.
"""

DRY_RUN = "Scheduler dry-run:\n- All tasks successfully allocated.\n"


def test_job_run_monitors_the_evaluation(agent, yurt):
    agent.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID, "EvalCreateIndex": 11, "JobModifyIndex": 10})
    agent.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(EVAL_ID, "hello-batch", "pending"),
             evaluation(EVAL_ID, "hello-batch", "complete"))
    agent.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [alloc(ALLOC_ID, "pending")],
             [alloc(ALLOC_ID, "running", "Tasks are running")])
    assert yurt("job run", str(JOBS / "batch.nomad")) == (0, BATCH_RUN, "")
    (path, body), = agent.writes()
    assert path == "/v1/jobs" and body["Job"]["ID"] == "hello-batch" and "EnforceIndex" not in body


def test_job_run_then_monitors_the_deployment(agent, yurt):
    eval_id, deployment = "badcfcb2-0000-0000-0000-000000000000", agent.deployments[0]
    agent.on("PUT", "/v1/jobs", {"EvalID": eval_id})
    agent.on("GET", f"/v1/evaluation/{eval_id}",
             evaluation(eval_id, "sleeper", "complete", DeploymentID=deployment["ID"]))
    agent.on("GET", f"/v1/evaluation/{eval_id}/allocations", [alloc("c7bb4329-fa4e-c084-1ed4-25dea851c117",
                                                                    "pending")])
    agent.on("GET", f"/v1/deployment/{deployment['ID']}", {**deployment, "Status": "running"}, deployment)
    code, out, err = yurt("run", str(JOBS / "svc.nomad"))
    assert (code, err) == (0, "")
    assert re.sub(r"(?m)^    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$", "    <time>", out) == SERVICE_RUN
    # A deployment that fails makes the run fail (exit 1), as Nomad's monitor does.
    agent.on("GET", f"/v1/deployment/{deployment['ID']}", {**deployment, "Status": "failed",
                                                           "StatusDescription": "Failed due to unhealthy allocations"})
    code, out, _ = yurt("run", str(JOBS / "svc.nomad"))
    assert code == 1 and '  ! Deployment "7232f7fd" failed' in out.splitlines()


def test_job_run_placement_failure_exits_2(agent, yurt):
    agent.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID})
    failed = {"g": {"NodesEvaluated": 1, "NodesExhausted": 1, "DimensionExhausted": {"memory": 1},
                    "NodesAvailable": {"dc1": 1}, "CoalescedFailures": 2}}
    agent.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(EVAL_ID, "hello-batch", "complete", FailedTGAllocs=failed,
                                                            BlockedEval="0aa2e4a5-1111-2222-3333-444444444444"))
    agent.on("GET", f"/v1/evaluation/{EVAL_ID}/allocations", [])
    code, out, _ = yurt("job run", str(JOBS / "batch.nomad"))
    assert code == 2
    assert out.splitlines()[-5:] == [
        '==> Evaluation "7d70a11b" finished with status "complete" but failed to place all allocations:',
        '    Task Group "g" (failed to place 3 allocations):',
        "      * Resources exhausted on 1 nodes",
        '      * Dimension "memory" exhausted on 1 nodes',
        '    Evaluation "0aa2e4a5" waiting for additional capacity to place remainder']

    # A service job's evaluation within a deployment: the failure ends the run, the deployment is not waited on.
    agent.on("GET", f"/v1/evaluation/{EVAL_ID}", evaluation(EVAL_ID, "sleeper", "complete", FailedTGAllocs=failed,
                                                            DeploymentID="7232f7fd-0000-0000-0000-000000000000"))
    code, out, _ = yurt("job run", str(JOBS / "svc.nomad"))
    assert code == 2 and "Monitoring deployment" not in out


def test_job_run_check_index_and_registrations(agent, yurt, frozen):
    agent.on("PUT", "/v1/jobs", Reply(500, "Enforcing job modify index 1: job exists with conflicting job modify "
                                           "index: 23"))
    assert yurt("job run", "-check-index", "1", str(JOBS / "svc.nomad")) == (1, "", (
        "Enforcing job modify index 1: job exists with conflicting job modify index: 23\nJob not updated\n"))
    assert agent.writes()[-1][1]["EnforceIndex"] is True and agent.writes()[-1][1]["JobModifyIndex"] == 1
    agent.on("PUT", "/v1/jobs", {"EvalID": ""})
    frozen(1795343121.0)
    assert yurt("job run", str(JOBS / "periodic.nomad")) == (0, (
        "Job registration successful\nApproximate next launch time: 2026-11-22T10:30:00Z (4m39s from now)\n"), "")
    assert yurt("job run", str(JOBS / "param.nomad")) == (0, "Job registration successful\n", "")
    agent.on("PUT", "/v1/jobs", {"EvalID": EVAL_ID})
    assert yurt("job run", "-detach", str(JOBS / "batch.nomad")) == (
        0, f"Job registration successful\nEvaluation ID: {EVAL_ID}\n", "")


def _plan(updates: dict, diff: dict, index: int) -> dict:
    return {"Annotations": {"DesiredTGUpdates": updates}, "Diff": diff, "FailedTGAllocs": None,
            "JobModifyIndex": index, "CreatedEvals": None, "Warnings": ""}


def _field(kind: str, name: str, old: str, new: str, *notes: str) -> dict:
    return {"Type": kind, "Name": name, "Old": old, "New": new, "Annotations": list(notes) or None}


def test_job_plan_new_job_and_hint(agent, yurt):
    diff = {"Type": "Added", "ID": "example", "Fields": [_field("Added", "Type", "", "service")], "Objects": None,
            "TaskGroups": [{"Type": "Added", "Name": "cache", "Fields": [_field("Added", "Count", "", "1")],
                            "Objects": None, "Updates": {"create": 1},
                            "Tasks": [{"Type": "Added", "Name": "redis", "Fields": None, "Objects": None,
                                       "Annotations": ["forces create"]}]}]}
    agent.on("PUT", "/v1/job/example/plan", _plan({"cache": {"Place": 1}}, diff, 0))
    path = str(JOBS / "example.nomad")
    expected = ('+ Job: "example"\n+ Task Group: "cache" (1 create)\n  + Task: "redis" (forces create)\n\n'
                + DRY_RUN + CHECK_INDEX_HINT.format(index=0, path=path))
    assert yurt("job plan", path) == (1, expected, "")
    assert agent.writes()[-1][1]["Diff"] is True


def test_job_plan_diffs_and_exit_codes(agent, yurt):
    count = {"Type": "Edited", "ID": "sleeper", "Fields": None, "Objects": None, "TaskGroups": [
        {"Type": "Edited", "Name": "g", "Fields": [_field("Edited", "Count", "1", "3", "forces create")],
         "Objects": None, "Updates": {"create": 2, "in-place update": 1},
         "Tasks": [{"Type": "None", "Name": "sleep", "Fields": None, "Objects": None, "Annotations": None}]}]}
    agent.on("PUT", "/v1/job/sleeper/plan", _plan({"g": {"Place": 2, "InPlaceUpdate": 1}}, count, 15))
    path = str(JOBS / "svc-count3.nomad")
    hint = CHECK_INDEX_HINT.format(index=15, path=path)
    assert yurt("job plan", path) == (1, (
        '+/- Job: "sleeper"\n+/- Task Group: "g" (2 create, 1 in-place update)\n'
        '  +/- Count: "1" => "3" (forces create)\n      Task: "sleep"\n\n' + DRY_RUN + hint), "")
    assert yurt("job plan", "-diff=false", path) == (1, DRY_RUN + hint, "")

    same = {"Type": "None", "ID": "sleeper", "Fields": None, "Objects": None, "TaskGroups": [
        {"Type": "None", "Name": "g", "Fields": None, "Objects": None, "Updates": {"ignore": 1},
         "Tasks": [{"Type": "None", "Name": "sleep", "Fields": None, "Objects": None, "Annotations": None}]}]}
    agent.on("PUT", "/v1/job/sleeper/plan", _plan({"g": {"Ignore": 1}}, same, 15))
    assert yurt("job plan", path) == (0, 'Job: "sleeper"\nTask Group: "g" (1 ignore)\n  Task: "sleep"\n\n'
                                         + DRY_RUN + hint, "")

    config = {"Type": "Edited", "Name": "Config", "Objects": None, "Fields": [
        _field("Edited", "args[0]", "3600", "7200"), _field("None", "command", "/bin/sleep", "/bin/sleep")]}
    resources = {"Type": "Edited", "Name": "Resources", "Objects": None, "Fields": [
        _field("None", "CPU", "20", "20"), _field("None", "DiskMB", "0", "0"), _field("None", "IOPS", "0", "0"),
        _field("Edited", "MemoryMB", "16", "32")]}
    changed = {"Type": "Edited", "ID": "sleeper", "Fields": None, "Objects": None, "TaskGroups": [
        {"Type": "Edited", "Name": "g", "Fields": None, "Objects": None,
         "Updates": {"ignore": 2, "create/destroy update": 1},
         "Tasks": [{"Type": "Edited", "Name": "sleep", "Annotations": ["forces create/destroy update"],
                    "Fields": [_field("Added", "Env[GREETING]", "", "hi")], "Objects": [config, resources]}]}]}
    agent.on("PUT", "/v1/job/sleeper/plan", _plan({"g": {"DestructiveUpdate": 1, "Ignore": 2}}, changed, 23))
    path = str(JOBS / "svc-changed.nomad")
    assert yurt("job plan", path) == (1, """\
+/- Job: "sleeper"
+/- Task Group: "g" (1 create/destroy update, 2 ignore)
  +/- Task: "sleep" (forces create/destroy update)
    +   Env[GREETING]: "hi"
    +/- Config {
      +/- args[0]: "3600" => "7200"
          command: "/bin/sleep"
        }
    +/- Resources {
          CPU:      "20"
          DiskMB:   "0"
          IOPS:     "0"
      +/- MemoryMB: "16" => "32"
        }

""" + DRY_RUN + CHECK_INDEX_HINT.format(index=23, path=path), "")


def test_job_plan_errors_exit_255(agent, yurt):
    agent.on("PUT", "/v1/job/sleeper/plan", Reply(500, "rpc error: No cluster leader"))
    assert yurt("job plan", str(JOBS / "svc.nomad")) == (
        255, "", "Error during plan: Unexpected response code: 500 (rpc error: No cluster leader)\n")
    code, out, err = yurt("job plan", str(JOBS / "bad.nomad"))
    assert (code, out) == (255, "") and err.startswith("Error getting job struct: Error parsing job file from")
    code, _, err = yurt("job plan")
    assert code == 255 and err.startswith("This command takes one argument: <path>")


def test_job_dispatch_and_stop(agent, yurt):
    eval_id, child = "346e3f24-81f2-c70f-2ed9-f7bc84797401", "param-echo/dispatch-1795343117-9f61de25"
    agent.on("PUT", "/v1/job/param-echo/dispatch", {"DispatchedJobID": child, "EvalID": eval_id})
    agent.on("GET", f"/v1/evaluation/{eval_id}", evaluation(eval_id, child, "pending"),
             evaluation(eval_id, child, "complete"))
    dispatched = "92dce449-0000-0000-0000-000000000000"
    agent.on("GET", f"/v1/evaluation/{eval_id}/allocations", [alloc(dispatched, "pending")],
             [alloc(dispatched, "complete", "All tasks have completed")])
    assert yurt("job dispatch", "-meta", "k=v", "param-echo") == (0, f"""\
Dispatched Job ID = {child}
Evaluation ID     = 346e3f24

==> Monitoring evaluation "346e3f24"
    Evaluation triggered by job "{child}"
    Allocation "92dce449" created: node "cb6f504b", group "g"
==> Monitoring evaluation "346e3f24"
    Allocation "92dce449" status changed: "pending" -> "complete" (All tasks have completed)
    Evaluation status changed: "pending" -> "complete"
==> Evaluation "346e3f24" finished with status "complete"
""", "")
    assert agent.writes()[-1] == ("/v1/job/param-echo/dispatch",
                                  {"JobID": "param-echo", "Meta": {"k": "v"}, "Payload": None})
    agent.on("PUT", "/v1/job/param-echo/dispatch", Reply(500, "Dispatch did not provide required meta keys: [k]"))
    assert yurt("job dispatch", "param-echo") == (1, "", "Failed to dispatch job: Unexpected response code: 500 "
                                                         "(Dispatch did not provide required meta keys: [k])\n")

    stop_eval = "4467ce83-0000-0000-0000-000000000000"
    agent.on("DELETE", "/v1/job/sleeper", {"EvalID": stop_eval})
    agent.on("GET", f"/v1/evaluation/{stop_eval}", evaluation(
        stop_eval, "sleeper", "complete", DeploymentID="79185bb7-4204-d391-0f1c-d45fd5be485c"))
    assert yurt("job stop", "-purge", "sleeper") == (0, """\
==> Monitoring evaluation "4467ce83"
    Evaluation triggered by job "sleeper"
    Evaluation within deployment: "79185bb7"
    Evaluation status changed: "pending" -> "complete"
==> Evaluation "4467ce83" finished with status "complete"
""", "")
    assert agent.requests[-3][:3] == ("DELETE", "/v1/job/sleeper", {"purge": ["true"]})
    assert yurt("stop", "nonexistent") == (1, "", 'No job(s) with prefix or id "nonexistent" found\n')
    # A child job's "/" travels escaped, as Nomad's client sends it.
    agent.on("DELETE", f"/v1/job/{child}", {"EvalID": stop_eval})
    assert yurt("job stop", "-detach", child) == (0, stop_eval + "\n", "")
    assert agent.raw_paths[-1] == "/v1/job/param-echo%2Fdispatch-1795343117-9f61de25"


def test_node_drain_and_eligibility(agent, yurt):
    agent.on("PUT", f"/v1/node/{NODE_ID}/drain", {"NodeModifyIndex": 50})
    assert yurt("node drain", "-disable", "-yes", "cb6f504b") == (0, f'Node "{NODE_ID}" drain strategy unset\n', "")
    assert agent.writes()[-1][1] == {"NodeID": NODE_ID, "DrainSpec": None, "MarkEligible": True}
    running = {"ID": "5958c01c-447d-0399-fa51-523d563ff9f1", "ClientStatus": "running", "DesiredStatus": "run",
               "Job": {"Type": "service"}, "DesiredTransition": {"Migrate": None}, "CreateIndex": 24}
    marked = {**running, "DesiredTransition": {"Migrate": True}}
    stopping = {**marked, "DesiredStatus": "stop"}
    done = {**stopping, "ClientStatus": "complete"}
    agent.on("GET", f"/v1/node/{NODE_ID}/allocations", [running], [marked], [stopping], [done])
    detail = agent.node_details[NODE_ID]
    agent.on("GET", f"/v1/node/{NODE_ID}", detail, {**detail, "DrainStrategy": {"Deadline": 5_000_000_000}},
             detail)
    code, out, err = yurt("node drain", "-enable", "-yes", "-deadline", "5s", "cb6f504b")
    assert (code, err) == (0, "")
    messages = [line.split(": ", 1)[1] for line in out.splitlines()]
    alloc_id = running["ID"]
    assert messages[:2] == ["Ctrl-C to stop monitoring: will not cancel the node drain",
                            f'Node "{NODE_ID}" drain strategy set']
    assert sorted(messages[2:]) == sorted([
        f"Drain complete for node {NODE_ID}", f'Alloc "{alloc_id}" marked for migration',
        f'Alloc "{alloc_id}" draining', f'Alloc "{alloc_id}" status running -> complete',
        f'All allocations on node "{NODE_ID}" have stopped'])
    assert agent.writes()[-1][1]["DrainSpec"] == {"Deadline": 5_000_000_000, "IgnoreSystemJobs": False}

    # One answer carrying every transition at once (a fast drainer) still tells each of them, in order.
    agent.on("GET", f"/v1/node/{NODE_ID}/allocations", [running], [done])
    agent.on("GET", f"/v1/node/{NODE_ID}", detail, {**detail, "DrainStrategy": {"Deadline": 5_000_000_000}},
             detail)
    code, out, err = yurt("node drain", "-enable", "-yes", "-deadline", "5s", "cb6f504b")
    alloc_lines = [line.split(": ", 1)[1] for line in out.splitlines() if f'Alloc "{alloc_id}"' in line]
    assert alloc_lines == [f'Alloc "{alloc_id}" marked for migration', f'Alloc "{alloc_id}" draining',
                           f'Alloc "{alloc_id}" status running -> complete']
    agent.on("PUT", f"/v1/node/{NODE_ID}/eligibility", {})
    assert yurt("node eligibility", "-enable", "cb6f504b") == (
        0, f'Node "{NODE_ID}" scheduling eligibility set: eligible for scheduling\n', "")
