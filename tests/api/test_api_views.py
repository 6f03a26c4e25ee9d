"""The API views give exactly the keys of real Nomad 1.0.18's answers (shared/reference/nomad-1.0.18/api)."""

from __future__ import annotations

import pytest

from orchestrator.api import views
from orchestrator.state import JobSummary
from orchestrator.structs import Allocation, Deployment, Evaluation, Job, Node, decode
from orchestrator.structs.node import DrainSpec, DrainStrategy
from tests.api.reference import REFERENCE, key_differences, load

pytestmark = pytest.mark.skipif(not REFERENCE.exists(), reason=f"no Nomad reference answers at {REFERENCE}")


def test_job_list_stub_and_summary_have_nomads_keys():
    job = decode(Job, load("job-sleeper.json"))
    summary = decode(JobSummary, load("job-sleeper-summary.json"))
    stub = views.job_list_stub(job, summary)
    reference = next(j for j in load("jobs.json") if j["ID"] == "sleeper")
    assert key_differences(stub, reference) == []
    assert list(stub) == list(reference)
    assert views.job_summary_view(summary) == load("job-sleeper-summary.json")
    assert stub["Namespace"] == "default"  # Nomad 1.0.18 printed "" here; current Nomad the namespace


def test_full_job_has_every_key_of_nomads():
    for name in ("job-sleeper.json", "job-hello-batch.json"):
        reference = load(name)
        assert key_differences(views.job_view(decode(Job, reference)), reference) == [], name


def test_evaluations_omit_empty_fields_as_nomad_does():
    for reference in load("evaluations.json"):
        view = views.eval_view(decode(Evaluation, reference))
        assert view == reference


def test_deployments_match_nomads_answer():
    for reference in load("deployments.json"):
        assert views.deployment_view(decode(Deployment, reference)) == reference


def test_allocation_list_stubs_have_nomads_keys():
    for reference in load("allocations.json"):
        stub = views.alloc_list_stub(decode(Allocation, reference))
        assert key_differences(stub, reference) == [], reference["ID"]
        assert list(stub) == list(reference)


def test_allocation_detail_has_nomads_keys_and_legacy_resources():
    reference = load("allocation-detail.json")
    view = views.alloc_view(decode(Allocation, reference))
    assert key_differences(view, reference) == []
    assert list(view) == list(reference)
    for key in ("Resources", "SharedResources", "TaskResources", "NetworkStatus"):
        assert view[key] == reference[key], key
    assert "Job" not in views.alloc_view(decode(Allocation, reference), with_job=False)


def test_nodes_list_stub_and_detail_have_nomads_keys():
    stub_reference = load("nodes.json")[0]
    detail_reference = load("node-detail.json")
    node = decode(Node, detail_reference)
    stub = views.node_list_stub(node)
    assert key_differences(stub, stub_reference) == []
    assert list(stub) == list(stub_reference)
    detail = views.node_view(node)
    assert key_differences(detail, detail_reference) == []
    assert list(detail) == list(detail_reference)
    for key in ("Resources", "Reserved"):
        assert detail[key] == detail_reference[key], key
    assert detail["NodeResources"]["NodeNetworks"] == detail_reference["NodeResources"]["NodeNetworks"]
    with_resources = views.node_list_stub(node, resources=True)
    assert with_resources["NodeResources"]["Cpu"]["CpuShares"] == 4890


def test_secret_id_is_never_shown_and_drain_strategy_is_flat_as_in_nomad():
    node = Node(id="n1", secret_id="s3cr3t", drain_strategy=DrainStrategy(
        drain_spec=DrainSpec(deadline=3_600_000_000_000), force_deadline=1_795_343_124_000_000_000))
    view = views.node_view(node)
    assert view["SecretID"] == "" and view["Drain"] is True
    assert view["DrainStrategy"] == {"Deadline": 3_600_000_000_000, "IgnoreSystemJobs": False,
                                     "ForceDeadline": "2026-11-22T10:25:24Z", "StartedAt": views.ZERO_TIME}


def test_agent_members_have_nomads_keys():
    reference = load("agent-members.json")["Members"][0]
    view = views.member_view(reference["Name"], reference["Addr"], reference["Port"], reference["Status"],
                             reference["Tags"])
    assert view == reference
