"""Job RPCs end to end on a real server: revert, stable, evaluate, dispatch, periodic force, scale."""

from __future__ import annotations

import base64

import pytest

from orchestrator.jobspec import parse_job
from orchestrator.rpc import methods
from orchestrator.structs import encode
from tests.scheduler.builders import make_node
from tests.server.loop import Loop

WEB = """
job "web" {
  datacenters = ["dc1"]
  type = "%s"
  group "g" {
    count = %d
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/sleep" }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""

PARAM = """
job "param" {
  datacenters = ["dc1"]
  type = "batch"
  parameterized {
    payload       = "%s"
    meta_required = ["k"]
    meta_optional = ["opt"]
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/true" }
    }
  }
}
"""

CRON = """
job "cron" {
  datacenters = ["dc1"]
  type = "batch"
  periodic {
    cron = "*/15 * * * *"
  }
  group "g" {
    task "t" {
      driver = "raw_exec"
      config { command = "/bin/true" }
    }
  }
}
"""


def web(count: int = 2, job_type: str = "service") -> dict:
    return parse_job(WEB % (job_type, count), "web.hcl")


@pytest.fixture
def loop() -> Loop:
    loop = Loop(1)
    loop.elect()
    for i in range(2):
        assert not call(loop, methods.NODE_REGISTER, {"Node": encode(make_node(i + 1))}).error
    return loop


def call(loop: Loop, method: str, args: dict):
    reply = loop.call("s1", method, args)
    assert reply is not None, f"{method} got no answer"
    return reply


def ok(loop: Loop, method: str, args: dict) -> dict:
    reply = call(loop, method, args)
    assert not reply.error, reply.error
    return reply.result


def store(loop: Loop):
    return loop.servers["s1"].store


# -- revert and stable -----------------------------------------------------------------------------------


def test_revert_registers_the_old_spec_as_a_new_version(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(2)})
    ok(loop, methods.JOB_REGISTER, {"Job": web(3)})
    assert store(loop).job_by_id("default", "web").version == 1
    result = ok(loop, methods.JOB_REVERT, {"JobID": "web", "JobVersion": 0})
    assert result["EvalID"] and result["JobModifyIndex"] == result["Index"]
    job = store(loop).job_by_id("default", "web")
    assert (job.version, job.task_groups[0].count) == (2, 2)
    loop.advance(0.5)
    assert len([a for a in store(loop).allocs_by_job("default", "web") if not a.terminal()]) == 2


def test_revert_refusals_use_nomads_words(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(2)})
    ok(loop, methods.JOB_REGISTER, {"Job": web(3)})
    cases = [({"JobID": "web", "JobVersion": 1}, "can't revert to current version"),
             ({"JobID": "web", "JobVersion": 7}, 'job "web" in namespace "default" at version 7 not found'),
             ({"JobID": "nope", "JobVersion": 0}, 'job "nope" not found'),
             ({"JobVersion": 0}, "missing job ID for revert"),
             ({"JobID": "web", "JobVersion": 0, "EnforcePriorVersion": 0},
              "Current job has version 1; enforcing version 0")]
    for args, error in cases:
        assert call(loop, methods.JOB_REVERT, args).error == error
    assert ok(loop, methods.JOB_REVERT, {"JobID": "web", "JobVersion": 0, "EnforcePriorVersion": 1})["EvalID"]


def test_stable_marks_one_version(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(2)})
    ok(loop, methods.JOB_REGISTER, {"Job": web(3)})
    result = ok(loop, methods.JOB_STABLE, {"JobID": "web", "JobVersion": 0, "Stable": True})
    assert result["Index"] > 0
    assert store(loop).job_by_id_and_version("default", "web", 0).stable
    assert not store(loop).job_by_id("default", "web").stable
    error = call(loop, methods.JOB_STABLE, {"JobID": "web", "JobVersion": 9, "Stable": True}).error
    assert error == 'job "web" in namespace "default" at version 9 not found'


# -- evaluate --------------------------------------------------------------------------------------------


def test_evaluate_creates_an_evaluation_and_can_force_rescheduling(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(2)})
    loop.advance(0.5)
    victim = store(loop).allocs_by_job("default", "web")[0]
    ok(loop, methods.NODE_UPDATE_ALLOC, {"Alloc": [{"ID": victim.id, "ClientStatus": "failed"}]})
    loop.advance(0.5)
    # The default service policy waits 30 s before replacing it; ForceReschedule does not wait.
    assert store(loop).alloc_by_id(victim.id).next_allocation == ""
    result = ok(loop, methods.JOB_EVALUATE, {"JobID": "web", "EvalOptions": {"ForceReschedule": True}})
    assert store(loop).eval_by_id(result["EvalID"]) is not None
    transition = store(loop).alloc_by_id(victim.id).desired_transition
    assert transition.reschedule and transition.force_reschedule


def test_evaluate_refuses_templates_and_unknown_jobs(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": parse_job(CRON, "cron.hcl")})
    ok(loop, methods.JOB_REGISTER, {"Job": parse_job(PARAM % "optional", "param.hcl")})
    assert call(loop, methods.JOB_EVALUATE, {"JobID": "cron"}).error == "can't evaluate periodic job"
    assert call(loop, methods.JOB_EVALUATE, {"JobID": "param"}).error == "can't evaluate parameterized job"
    assert call(loop, methods.JOB_EVALUATE, {"JobID": "nope"}).error == "job not found"
    assert call(loop, methods.JOB_EVALUATE, {}).error == "missing job ID for evaluation"


# -- dispatch --------------------------------------------------------------------------------------------


def test_dispatch_registers_a_child_with_payload_and_meta(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": parse_job(PARAM % "optional", "param.hcl")})
    payload = base64.b64encode(b"hello").decode()
    result = ok(loop, methods.JOB_DISPATCH, {"JobID": "param", "Meta": {"k": "v"}, "Payload": payload})
    child_id = result["DispatchedJobID"]
    assert child_id.startswith("param/dispatch-") and result["EvalID"]
    assert result["JobCreateIndex"] == result["EvalCreateIndex"] == result["Index"]
    child = store(loop).job_by_id("default", child_id)
    assert child.parent_id == "param" and child.dispatched and not child.is_parameterized()
    assert child.payload == payload and child.meta == {"k": "v"}
    assert encode(child)["Payload"] == payload
    loop.advance(0.5)
    assert len(store(loop).allocs_by_job("default", child_id)) == 1


@pytest.mark.parametrize(("mode", "args", "error"), [
    ("optional", {"Meta": {}}, "Dispatch did not provide required meta keys: [k]"),
    ("optional", {"Meta": {"k": "v", "bogus": "1"}}, "Dispatch request included unpermitted metadata keys: [bogus]"),
    ("forbidden", {"Meta": {"k": "v"}, "Payload": "aGk="}, "Payload provided but forbidden by parameterized job"),
    ("required", {"Meta": {"k": "v"}}, "Payload is not provided but required by parameterized job"),
    ("optional", {"Meta": {"k": "v"}, "Payload": "not base64!"}, "invalid payload"),
    ("optional", {"Meta": {"k": 1}}, "invalid dispatch meta"),
])
def test_dispatch_refusals(loop: Loop, mode: str, args: dict, error: str):
    ok(loop, methods.JOB_REGISTER, {"Job": parse_job(PARAM % mode, "param.hcl")})
    before = store(loop).latest_index()
    assert call(loop, methods.JOB_DISPATCH, {"JobID": "param", **args}).error.startswith(error)
    assert store(loop).latest_index() == before


def test_dispatch_of_a_job_that_is_not_parameterized(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(1, "batch")})
    error = call(loop, methods.JOB_DISPATCH, {"JobID": "web", "Meta": {"k": "v"}}).error
    assert error == 'Specified job "web" is not a parameterized job'
    assert call(loop, methods.JOB_DISPATCH, {"JobID": "nope"}).error == "parameterized job not found"


# -- periodic force --------------------------------------------------------------------------------------


def test_periodic_force_launches_a_child_now(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": parse_job(CRON, "cron.hcl")})
    result = ok(loop, methods.JOB_PERIODIC_FORCE, {"JobID": "cron"})
    evaluation = store(loop).eval_by_id(result["EvalID"])
    assert evaluation is not None and evaluation.triggered_by == "periodic-job"
    child = store(loop).job_by_id("default", evaluation.job_id)
    assert child.parent_id == "cron" and child.id == f"cron/periodic-{int(loop.now)}"
    loop.advance(0.5)
    launch = store(loop).periodic_launch("default", "cron")
    assert launch is not None and launch.launch // 1_000_000_000 == int(child.id.rsplit("-", 1)[1])
    assert len(store(loop).allocs_by_job("default", child.id)) == 1


def test_periodic_force_refuses_other_jobs(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(1, "batch")})
    assert call(loop, methods.JOB_PERIODIC_FORCE, {"JobID": "web"}).error == "can't force launch non-periodic job"
    assert call(loop, methods.JOB_PERIODIC_FORCE, {"JobID": "nope"}).error == "job not found"


# -- scale and alloc stop --------------------------------------------------------------------------------


def test_scale_changes_the_count_and_count_less_scaling_changes_nothing(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(1, "batch")})
    result = ok(loop, methods.JOB_SCALE, {"JobID": "web", "Group": "g", "Count": 3})
    assert result["EvalID"] and store(loop).job_by_id("default", "web").task_groups[0].count == 3
    before = store(loop).job_by_id("default", "web").job_modify_index
    quiet = ok(loop, methods.JOB_SCALE, {"JobID": "web", "Group": "g", "Message": "looked, did nothing"})
    assert quiet["EvalID"] == "" and quiet["JobModifyIndex"] == before
    target = ok(loop, methods.JOB_SCALE, {"Target": {"Job": "web", "Group": "g"}, "Count": 2})
    assert target["EvalID"] and store(loop).job_by_id("default", "web").task_groups[0].count == 2


def test_scale_refusals(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(1)})  # a service job: its first deployment is running
    cases = [({"JobID": "web", "Group": "g", "Count": -1}, "scaling action count can't be negative"),
             ({"JobID": "web", "Group": "x", "Count": 1},
              'task group "x" specified for scaling does not exist in job'),
             ({"JobID": "web", "Count": 1}, "missing task group name for scaling action"),
             ({"JobID": "web", "Group": "g", "Count": 2}, "job scaling blocked due to active deployment")]
    for args, error in cases:
        assert call(loop, methods.JOB_SCALE, args).error == error


def test_alloc_stop_replaces_the_allocation(loop: Loop):
    ok(loop, methods.JOB_REGISTER, {"Job": web(1, "batch")})
    loop.advance(0.5)
    alloc = store(loop).allocs_by_job("default", "web")[0]
    result = ok(loop, methods.ALLOC_STOP, {"AllocID": alloc.id})
    assert result["EvalID"]
    loop.advance(0.5)
    assert store(loop).alloc_by_id(alloc.id).desired_status == "stop"
    assert call(loop, methods.ALLOC_STOP, {"AllocID": "nope"}).error == 'Unknown allocation "nope"'
