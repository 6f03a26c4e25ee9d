"""The job model round-trips through Nomad's API JSON, and Nomad's defaults are applied as documented."""

import json
from pathlib import Path

import pytest

from orchestrator.jobspec import parse_job_file
from orchestrator.structs import (
    HOUR,
    MINUTE,
    SECOND,
    Allocation,
    Deployment,
    Evaluation,
    Job,
    Node,
    decode,
    encode,
    format_errors,
    job_from_api,
    job_to_api,
    validate_job,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(p for p in (ROOT / "tests" / "fixtures" / "jobs").iterdir() if not p.name.startswith("bad"))
REFERENCE = Path("/work/shared/reference/nomad-1.0.18/api")
if not REFERENCE.exists():
    REFERENCE = ROOT.parent / "shared" / "reference" / "nomad-1.0.18" / "api"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_every_fixture_round_trips(path):
    job = job_from_api(parse_job_file(str(path)))
    assert decode(Job, json.loads(json.dumps(job_to_api(job)))) == job
    assert validate_job(job) == []


def test_reference_api_objects_round_trip_with_nomads_field_names():
    if not REFERENCE.exists():
        pytest.skip("the shared Nomad reference is not beside this checkout")
    job_json = json.loads((REFERENCE / "job-sleeper.json").read_text())
    encoded = encode(decode(Job, job_json))
    for task in encoded["TaskGroups"][0]["Tasks"]:
        # Fields newer than Nomad 1.0.18 (cores, memory oversubscription) are the only additions.
        assert (task["Resources"].pop("Cores"), task["Resources"].pop("MemoryMaxMB")) == (0, 0)
    assert encoded == job_json
    for name, cls in (("allocation-detail.json", Allocation), ("node-detail.json", Node)):
        data = json.loads((REFERENCE / name).read_text())
        assert decode(cls, encode(decode(cls, data))) == decode(cls, data)
    node = decode(Node, json.loads((REFERENCE / "node-detail.json").read_text()))
    assert node.node_resources.cpu.cpu_shares == 4890
    for data in json.loads((REFERENCE / "evaluations.json").read_text()):
        assert decode(Evaluation, data).job_id
    for data in json.loads((REFERENCE / "deployments.json").read_text()):
        assert decode(Deployment, data).status


def test_service_and_batch_defaults():
    service = job_from_api({"ID": "s", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "d"}]}]})
    group, task = service.task_groups[0], service.task_groups[0].tasks[0]
    assert service.datacenters == ["*"] and service.priority == 50 and service.type == "service"
    assert (group.restart_policy.attempts, group.restart_policy.interval, group.restart_policy.delay,
            group.restart_policy.mode) == (2, 30 * MINUTE, 15 * SECOND, "fail")
    assert (group.reschedule_policy.delay, group.reschedule_policy.delay_function,
            group.reschedule_policy.max_delay, group.reschedule_policy.unlimited) == (
        30 * SECOND, "exponential", HOUR, True)
    assert (group.update.max_parallel, group.update.min_healthy_time, group.update.healthy_deadline,
            group.update.progress_deadline) == (1, 10 * SECOND, 5 * MINUTE, 10 * MINUTE)
    assert (group.migrate.max_parallel, group.migrate.min_healthy_time) == (1, 10 * SECOND)
    assert task.kill_timeout == 5 * SECOND and task.restart_policy == group.restart_policy
    batch = job_from_api({"ID": "b", "Type": "batch",
                          "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "d"}]}]})
    group = batch.task_groups[0]
    assert (group.restart_policy.attempts, group.restart_policy.interval) == (3, 24 * HOUR)
    assert (group.reschedule_policy.attempts, group.reschedule_policy.interval, group.reschedule_policy.delay,
            group.reschedule_policy.delay_function) == (1, 24 * HOUR, 5 * SECOND, "constant")
    assert group.update is None and group.migrate is None
    system = job_from_api({"ID": "y", "Type": "system",
                           "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "d"}]}]})
    assert system.task_groups[0].reschedule_policy is None


def test_explicit_zero_is_not_overwritten_by_defaults():
    job = job_from_api({"ID": "s", "TaskGroups": [{"Name": "g", "RestartPolicy": {"Attempts": 0},
                                                   "Tasks": [{"Name": "t", "Driver": "d"}]}]})
    assert job.task_groups[0].restart_policy.attempts == 0
    assert job.task_groups[0].restart_policy.delay == 15 * SECOND


def test_semantic_validation_reports_every_error_like_nomad():
    job = job_from_api({"ID": "semantic-bad", "Type": "nonsense",
                        "TaskGroups": [{"Name": "g", "Count": -1, "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]})
    errors = validate_job(job)
    assert errors[0] == 'Invalid job type: "nonsense"'
    assert "Task group count can't be negative" in errors[1]
    assert format_errors(errors).startswith("2 errors occurred:\n\t* Invalid job type")
