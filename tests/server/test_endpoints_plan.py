"""Job.Plan end to end: the scheduler's dry run and Nomad's annotated diff, with nothing committed."""

from __future__ import annotations

import pytest

from orchestrator.jobspec import parse_job
from orchestrator.rpc import methods
from orchestrator.structs import encode
from tests.scheduler.builders import make_node
from tests.server.loop import Loop

JOB = """
job "web" {
  datacenters = ["dc1"]
  type = "%(type)s"
  %(meta)s
  group "g" {
    count = %(count)d
    task "t" {
      driver = "docker"
      kill_timeout = "%(kill)s"
      config { image = "%(image)s" }
      resources {
        cpu    = 100
        memory = %(memory)d
      }
    }
  }
}
"""


def job(count: int = 1, *, image: str = "redis:3.2", memory: int = 64, meta: str = "", kill: str = "5s",
        job_type: str = "service") -> dict:
    return parse_job(JOB % {"type": job_type, "meta": meta, "count": count, "image": image, "memory": memory,
                            "kill": kill}, "web.hcl")


@pytest.fixture
def loop() -> Loop:
    loop = Loop(1)
    loop.elect()
    for i in range(2):
        assert not call(loop, methods.NODE_REGISTER, {"Node": encode(make_node(i + 1, memory=1024))}).error
    return loop


def call(loop: Loop, method: str, args: dict, sid: str = "s1"):
    reply = loop.call(sid, method, args)
    assert reply is not None, f"{method} got no answer"
    return reply


def ok(loop: Loop, method: str, args: dict, sid: str = "s1") -> dict:
    reply = call(loop, method, args, sid)
    assert not reply.error, reply.error
    return reply.result


def plan(loop: Loop, spec: dict, sid: str = "s1") -> dict:
    store = loop.servers["s1"].store
    before = (store.latest_index(), len(store.evals()), len(store.allocs()), len(store.deployments()))
    result = ok(loop, methods.JOB_PLAN, {"Job": spec, "Diff": True}, sid)
    loop.advance(0.2)
    # A dry run: whatever it decided, nothing reached the state.
    assert (store.latest_index(), len(store.evals()), len(store.allocs()), len(store.deployments())) == before
    return result


def register(loop: Loop, spec: dict) -> int:
    result = ok(loop, methods.JOB_REGISTER, {"Job": spec})
    loop.advance(0.5)
    return result["JobModifyIndex"]


def group(result: dict) -> dict:
    (only,) = result["Diff"]["TaskGroups"]
    return only


def updates(result: dict) -> dict:
    counts = result["Annotations"]["DesiredTGUpdates"]["g"]
    return {k: v for k, v in counts.items() if v}


def test_a_new_job_is_all_added_and_creates_its_count(loop: Loop):
    result = plan(loop, job(3))
    diff = result["Diff"]
    assert (diff["Type"], diff["ID"]) == ("Added", "web")
    assert {f["Name"]: f["New"] for f in diff["Fields"]}["Type"] == "service"
    assert all(f["Type"] == "Added" for f in diff["Fields"])
    tg = group(result)
    assert (tg["Type"], tg["Updates"]) == ("Added", {"create": 3})
    assert [(t["Name"], t["Type"], t["Annotations"]) for t in tg["Tasks"]] == [("t", "Added", ["forces create"])]
    assert updates(result) == {"Place": 3}
    assert (result["JobModifyIndex"], result["FailedTGAllocs"], result["CreatedEvals"]) == (0, None, None)
    assert result["NextPeriodicLaunch"] == "0001-01-01T00:00:00Z" and result["Warnings"] == ""
    assert loop.servers["s1"].store.job_by_id("default", "web") is None


def test_a_count_change_edits_count_and_places_the_difference(loop: Loop):
    index = register(loop, job(1))
    result = plan(loop, job(3))
    assert result["JobModifyIndex"] == index and result["Diff"]["Type"] == "Edited"
    tg = group(result)
    assert tg["Type"] == "Edited" and tg["Updates"] == {"create": 2, "in-place update": 1}
    assert tg["Fields"] == [{"Type": "Edited", "Name": "Count", "Old": "1", "New": "3",
                             "Annotations": ["forces create"]}]
    assert [(t["Type"], t["Annotations"]) for t in tg["Tasks"]] == [("None", None)]
    down = plan(loop, job(0))
    assert group(down)["Fields"][0]["Annotations"] == ["forces destroy"]
    assert group(down)["Updates"] == {"destroy": 1}


def test_an_image_change_is_a_destructive_update(loop: Loop):
    register(loop, job(1))
    result = plan(loop, job(1, image="redis:4.0"))
    tg = group(result)
    assert tg["Updates"] == {"create/destroy update": 1}
    (task,) = tg["Tasks"]
    assert (task["Type"], task["Annotations"]) == ("Edited", ["forces create/destroy update"])
    (config,) = [o for o in task["Objects"] if o["Name"] == "Config"]
    assert config["Type"] == "Edited"
    assert config["Fields"] == [{"Type": "Edited", "Name": "image", "Old": "redis:3.2", "New": "redis:4.0",
                                 "Annotations": None}]


def test_in_place_changes(loop: Loop):
    register(loop, job(2))
    meta = plan(loop, job(2, meta='meta { owner = "ops" }'))
    assert meta["Diff"]["Fields"] == [{"Type": "Added", "Name": "Meta[owner]", "Old": "", "New": "ops",
                                       "Annotations": None}]
    assert group(meta)["Type"] == "None" and group(meta)["Updates"] == {"in-place update": 2}
    kill = plan(loop, job(2, kill="30s"))
    (task,) = group(kill)["Tasks"]
    assert task["Annotations"] == ["forces in-place update"]
    assert task["Fields"] == [{"Type": "Edited", "Name": "KillTimeout", "Old": "5000000000", "New": "30000000000",
                               "Annotations": None}]


def test_no_change_is_type_none_and_only_ignores(loop: Loop):
    index = register(loop, job(2))
    result = plan(loop, job(2))
    assert result["Diff"]["Type"] == "None" and result["Diff"]["Fields"] is None
    assert group(result)["Type"] == "None" and group(result)["Updates"] == {"ignore": 2}
    assert updates(result) == {"Ignore": 2}
    assert result["JobModifyIndex"] == result["Index"] == index


def test_a_full_cluster_reports_failed_allocations_and_the_blocked_eval(loop: Loop):
    result = plan(loop, job(3, memory=900))
    failed = result["FailedTGAllocs"]["g"]
    assert failed["DimensionExhausted"] == {"memory": 2} and failed["CoalescedFailures"] == 0
    assert updates(result) == {"Place": 3}
    (blocked,) = result["CreatedEvals"]
    assert (blocked["Status"], blocked["TriggeredBy"], blocked["JobID"]) == ("blocked", "queued-allocs", "web")


def test_plan_without_diff_and_from_a_follower():
    loop = Loop(3)
    leader = loop.elect()
    follower = next(sid for sid in loop.ids if sid != leader.id)
    assert not call(loop, methods.NODE_REGISTER, {"Node": encode(make_node(1))}, follower).error
    reply = call(loop, methods.JOB_PLAN, {"Job": job(2)}, follower)
    assert not reply.error and reply.leader == leader.id
    assert reply.result["Diff"] is None and reply.result["Annotations"]["DesiredTGUpdates"]["g"]["Place"] == 2


def test_periodic_jobs_answer_their_next_launch(loop: Loop):
    spec = parse_job("""
job "cron" {
  datacenters = ["dc1"]
  type = "batch"
  periodic { cron = "0 * * * *" }
  group "g" {
    task "t" {
      driver = "docker"
      config { image = "busybox:1" }
    }
  }
}
""", "cron.hcl")
    result = plan(loop, spec)
    assert result["NextPeriodicLaunch"].endswith(":00:00Z")
    assert result["NextPeriodicLaunch"] != "0001-01-01T00:00:00Z"


def test_a_system_job_with_nothing_to_do_ignores_what_runs(loop: Loop):
    system = job(1, job_type="system")
    register(loop, system)
    result = plan(loop, system)
    assert updates(result) == {"Ignore": 2} and group(result)["Updates"] == {"ignore": 2}


def test_plan_refusals(loop: Loop):
    assert call(loop, methods.JOB_PLAN, {}).error == "missing job for plan"
    assert call(loop, methods.JOB_PLAN, {"Job": {"ID": "x", "TaskGroups": "nope"}}).error.startswith("invalid job")
    error = call(loop, methods.JOB_PLAN, {"Job": {"ID": "x", "Name": "x", "Type": "service"}}).error
    assert error == "1 error occurred:\n\t* Missing job task groups\n"
    spec = {**job(1), "Namespace": "nope"}
    assert call(loop, methods.JOB_PLAN, {"Job": spec}).error == 'job "web" is in nonexistent namespace "nope"'
