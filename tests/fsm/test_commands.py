"""Commands: every builder round-trips, the envelope, unknown and malformed entries, bad payloads."""

from dataclasses import replace

import msgpack
import pytest
from builders import make_job, make_node
from fsm_helpers import Log, tables_of
from state_builders import make_alloc, make_deployment, make_eval

from orchestrator.fsm import (
    COMMAND_TYPES,
    FSM,
    HANDLERS,
    MalformedCommandError,
    UnknownCommandError,
    decode_command,
    encode_command,
)
from orchestrator.fsm import commands as c
from orchestrator.state import StateStore
from orchestrator.structs import (
    Allocation,
    Deployment,
    DesiredTransition,
    DrainSpec,
    DrainStrategy,
    Evaluation,
    Job,
    Node,
    NodeEvent,
    PlanResult,
    TaskState,
    decode,
)

JOB = make_job("web", count=2)
EVAL = make_eval("e1", "web", triggered_by="job-register")
NODE = make_node(1)


def _plan_result() -> PlanResult:
    placed = make_alloc("a1", JOB, NODE.id, eval_id="e1", deployment_id="d1")
    stopped = make_alloc("a0", JOB, NODE.id, desired_status="stop", desired_description="updating",
                         followup_eval_id="f1")
    return PlanResult(node_allocation={NODE.id: [placed]}, node_update={NODE.id: [stopped]},
                      deployment=make_deployment("d1", JOB),
                      deployment_updates=[{"DeploymentID": "d0", "Status": "cancelled", "StatusDescription": "x"}])


BUILT = {
    c.JOB_REGISTER: c.job_register(job=JOB, evaluation=EVAL, enforce_index=True, job_modify_index=7,
                                   submit_time=5),
    c.JOB_DEREGISTER: c.job_deregister(namespace="default", job_id="web", purge=True, evaluation=EVAL,
                                       submit_time=6),
    c.JOB_STABILITY: c.job_stability(namespace="default", job_id="web", version=2, stable=True),
    c.EVAL_UPDATE: c.eval_update(evals=[EVAL]),
    c.EVAL_DELETE: c.eval_delete(evals=["e1"], allocs=["a1"]),
    c.APPLY_PLAN_RESULTS: c.apply_plan_results(result=_plan_result(), job=JOB, eval_id="e1", evals=[EVAL],
                                               updated_at=9),
    c.ALLOC_CLIENT_UPDATE: c.alloc_client_update(
        allocs=[make_alloc("a1", JOB, NODE.id, client_status="running",
                           task_states={"t": TaskState(state="running")})], evals=[EVAL], update_time=3),
    c.ALLOC_DESIRED_TRANSITION: c.alloc_desired_transition(allocs={"a1": DesiredTransition(migrate=True)},
                                                           evals=[EVAL]),
    c.ALLOC_STOP: c.alloc_stop(alloc_id="a1", evaluation=EVAL),
    c.NODE_REGISTER: c.node_register(node=NODE, update_time=4, evals=[EVAL]),
    c.NODE_DEREGISTER: c.node_deregister(node_ids=[NODE.id]),
    c.NODE_STATUS_UPDATE: c.node_status_update(node_id=NODE.id, status="down", updated_at=8, evals=[EVAL],
                                               node_event=NodeEvent(message="down")),
    c.NODE_DRAIN_UPDATE: c.node_drain_update(node_id=NODE.id, drain_strategy=DrainStrategy(DrainSpec(deadline=5)),
                                             mark_eligible=True, evals=[EVAL], updated_at=2),
    c.NODE_ELIGIBILITY_UPDATE: c.node_eligibility_update(node_id=NODE.id, eligibility="ineligible", updated_at=1),
    c.DEPLOYMENT_STATUS_UPDATE: c.deployment_status_update(deployment_id="d1", status="failed",
                                                           status_description="no", job=JOB, evaluation=EVAL),
    c.DEPLOYMENT_PROMOTE: c.deployment_promote(deployment_id="d1", all_groups=True, groups=["g"], evaluation=EVAL,
                                               updated_at=3),
    c.DEPLOYMENT_ALLOC_HEALTH: c.deployment_alloc_health(deployment_id="d1", healthy_ids=["a1"],
                                                         unhealthy_ids=["a2"], evaluation=EVAL, timestamp=4,
                                                         status="failed", status_description="bad", job=JOB),
    c.DEPLOYMENT_DELETE: c.deployment_delete(deployment_ids=["d1"]),
    c.PERIODIC_LAUNCH: c.periodic_launch(namespace="default", job_id="cron", launch=11),
    c.SCHEDULER_CONFIG: c.scheduler_config(config={"SchedulerAlgorithm": "spread", "ModifyIndex": 3}, cas=True),
}


def test_every_command_type_has_a_builder_and_a_handler():
    assert set(BUILT) == COMMAND_TYPES == set(HANDLERS)


@pytest.mark.parametrize("type_name", sorted(BUILT))
def test_each_built_command_decodes_to_its_type(type_name):
    cmd = decode_command(BUILT[type_name])
    assert cmd["Type"] == type_name and cmd["IgnoreUnknown"] is False


def test_builders_carry_structs_in_api_shape():
    cmd = decode_command(BUILT[c.JOB_REGISTER])
    assert decode(Job, cmd["Job"]) == JOB and decode(Evaluation, cmd["Eval"]) == EVAL
    assert (cmd["EnforceIndex"], cmd["JobModifyIndex"], cmd["SubmitTime"]) == (True, 7, 5)
    cmd = decode_command(BUILT[c.NODE_REGISTER])
    assert decode(Node, cmd["Node"]) == NODE and cmd["UpdateTime"] == 4
    assert [decode(Evaluation, e) for e in cmd["Evals"]] == [EVAL]
    cmd = decode_command(BUILT[c.NODE_DRAIN_UPDATE])
    assert decode(DrainStrategy, cmd["DrainStrategy"]).deadline == 5 and cmd["MarkEligible"] is True
    cmd = decode_command(BUILT[c.DEPLOYMENT_ALLOC_HEALTH])
    assert cmd["DeploymentUpdate"] == {"DeploymentID": "d1", "Status": "failed", "StatusDescription": "bad"}
    assert (cmd["HealthyAllocationIDs"], cmd["UnhealthyAllocationIDs"], cmd["Timestamp"]) == (["a1"], ["a2"], 4)
    cmd = decode_command(BUILT[c.ALLOC_DESIRED_TRANSITION])
    assert decode(DesiredTransition, cmd["Allocs"]["a1"]) == DesiredTransition(migrate=True)
    cmd = decode_command(BUILT[c.SCHEDULER_CONFIG])
    assert cmd["Config"] == {"SchedulerAlgorithm": "spread", "ModifyIndex": 3} and cmd["CAS"] is True
    cmd = decode_command(c.node_drain_update(node_id="n", drain_strategy=None))
    assert cmd["DrainStrategy"] is None


def test_plan_results_carry_the_job_once_and_stops_as_diffs():
    cmd = decode_command(BUILT[c.APPLY_PLAN_RESULTS])
    assert decode(Job, cmd["Job"]) == JOB
    placed = cmd["NodeAllocation"][NODE.id][0]
    assert placed["Job"] is None and decode(Allocation, placed).id == "a1"
    assert cmd["AllocJobVersions"] == {}  # placed for the plan's own job
    stop = cmd["NodeUpdate"][NODE.id][0]
    assert "Job" not in stop and "AllocatedResources" not in stop
    assert (stop["ID"], stop["DesiredStatus"], stop["DesiredDescription"], stop["FollowupEvalID"]) == (
        "a0", "stop", "updating", "f1")
    assert decode(Deployment, cmd["Deployment"]).id == "d1"
    assert cmd["DeploymentUpdates"][0]["Status"] == "cancelled" and cmd["UpdatedAt"] == 9
    assert [decode(Evaluation, e) for e in cmd["Evals"]] == [EVAL]


def test_placements_of_another_job_version_name_that_version():
    old = make_alloc("old", JOB, NODE.id)  # state_builders' make_alloc embeds its job
    other = replace(make_job("web", count=5), version=1, job_modify_index=9)
    result = PlanResult(node_allocation={NODE.id: [old, Allocation(id="bare", job_id="web")]})
    cmd = decode_command(c.apply_plan_results(result=result, job=other))
    assert cmd["AllocJobVersions"] == {"old": JOB.version, "bare": None}


def test_client_updates_carry_only_client_fields():
    cmd = decode_command(BUILT[c.ALLOC_CLIENT_UPDATE])
    update = cmd["Allocs"][0]
    assert set(update) == {"ID", "NodeID", "ClientStatus", "ClientDescription", "TaskStates", "DeploymentStatus",
                           "ModifyTime"}
    assert update["TaskStates"]["t"]["State"] == "running" and cmd["UpdateTime"] == 3


def test_node_register_fills_in_the_computed_class():
    node = Node(id="n1", status="ready", attributes={"kernel.name": "linux"})
    cmd = decode_command(c.node_register(node=node))
    assert cmd["Node"]["ComputedClass"] == node.compute_class()


def test_envelope_and_generic_encoding():
    data = encode_command("Future", {"X": 1}, ignore_unknown=True)
    assert decode_command(data) == {"Type": "Future", "IgnoreUnknown": True, "X": 1}
    with pytest.raises(ValueError):
        encode_command("JobRegister", {"Type": "other"})


def test_unknown_types_are_skipped_only_when_allowed():
    store = StateStore()
    fsm = FSM(store)
    before = tables_of(store)
    result = fsm.apply(5, encode_command("SomethingNew", {"X": 1}, ignore_unknown=True))
    assert result.skipped and result.ok and result.response == {"Index": 5}
    assert tables_of(store) == before
    with pytest.raises(UnknownCommandError):
        fsm.apply(6, encode_command("SomethingNew", {"X": 1}))


@pytest.mark.parametrize("data", [b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"NoType": 1}),
                                  msgpack.packb({"Type": 5})])
def test_entries_that_are_no_command_are_fatal(data):
    with pytest.raises(MalformedCommandError):
        FSM(StateStore()).apply(1, data)


@pytest.mark.parametrize("type_name, payload", [
    (c.JOB_REGISTER, {"Job": {"ID": "x", "Priority": "high"}}),
    (c.JOB_REGISTER, {"Job": "not a map"}),
    (c.JOB_REGISTER, {}),
    (c.EVAL_UPDATE, {"Evals": [{"JobID": "no id"}]}),
    (c.EVAL_DELETE, {"Evals": "e1"}),
    (c.APPLY_PLAN_RESULTS, {"NodeAllocation": {"n1": [{"NodeID": "n1"}]}}),
    (c.APPLY_PLAN_RESULTS, {"DeploymentUpdates": [{"Status": "failed"}]}),
    (c.ALLOC_CLIENT_UPDATE, {"Allocs": {"a1": {}}}),
    (c.NODE_STATUS_UPDATE, {"NodeID": 5, "Status": "down"}),
    (c.NODE_DEREGISTER, {"NodeIDs": []}),
    (c.DEPLOYMENT_ALLOC_HEALTH, {"DeploymentID": "d1", "DeploymentUpdate": {"DeploymentID": "other"}}),
    (c.SCHEDULER_CONFIG, {"Config": {"ModifyIndex": "3"}, "CAS": True}),
])
def test_payloads_of_the_wrong_shape_are_refused_without_change(type_name, payload):
    log = Log()
    log.ok(c.node_register(node=NODE))
    before = tables_of(log.store)
    result = log.apply(encode_command(type_name, payload))
    assert result.error and not result.evals
    assert tables_of(log.store) == before


def test_a_failure_halfway_through_a_write_is_fatal_not_a_refusal(monkeypatch):
    def broken(self, index, evals):
        raise ValueError("bug")

    # The job is written, then storing its evaluation fails: half a command must never pass as a refusal.
    monkeypatch.setattr(StateStore, "upsert_evals", broken)
    with pytest.raises(ValueError, match="bug"):
        FSM(StateStore()).apply(1, c.job_register(job=JOB, evaluation=EVAL))
