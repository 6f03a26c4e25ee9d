"""Prefix lookups of jobs, nodes, allocations, evaluations and deployments, and the tables Nomad lists them in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flags import CommandError, failing, q
from .format import format_list, format_time, limit, pretty_time_diff, short

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient


def sanitize_uuid_prefix(prefix: str) -> str:
    """Nomad's sanitizeUUIDPrefix: UUID indexes take whole bytes, so an odd trailing hex digit is dropped."""
    hex_digits = len(prefix) - prefix.count("-")
    if hex_digits == 1:
        return prefix
    return prefix[: len(prefix) - hex_digits % 2]


def _check_length(prefix: str) -> None:
    if len(prefix) == 1:
        raise CommandError("Identifier must contain at least two characters.")


# -- jobs ----------------------------------------------------------------------------------------------


def job_type(stub: dict) -> str:
    text = stub.get("Type", "")
    if stub.get("Periodic"):
        text += "/periodic"
    if stub.get("ParameterizedJob"):
        text += "/parameterized"
    return text


def job_status(status: str, stop: bool | None) -> str:
    return f"{status} (stopped)" if stop else status


def format_job_list(jobs: list[dict]) -> str:
    rows = ["ID|Type|Priority|Status|Submit Date"]
    for job in jobs:
        rows.append(f"{job['ID']}|{job_type(job)}|{job.get('Priority', 0)}|"
                    f"{job_status(job.get('Status', ''), job.get('Stop'))}|{format_time(job.get('SubmitTime'))}")
    return format_list(rows)


def find_job(client: ApiClient, prefix: str, context: str = "Error querying job") -> dict:
    """The one job `prefix` names (an exact ID wins over longer IDs it prefixes), as a list stub."""
    prefix = prefix.strip()
    with failing(context):
        jobs = client.jobs(prefix)
    if not jobs:
        raise CommandError(f"No job(s) with prefix or id {q(prefix)} found")
    if len(jobs) > 1 and prefix != jobs[0]["ID"]:
        raise CommandError(f"Prefix matched multiple jobs\n\n{format_job_list(jobs)}")
    return jobs[0]


# -- nodes ---------------------------------------------------------------------------------------------


def format_node_stubs(nodes: list[dict], verbose: bool) -> str:
    rows = ["ID|DC|Name|Class|Drain|Eligibility|Status"]
    for node in nodes:
        rows.append(f"{short(node['ID'], verbose)}|{node.get('Datacenter', '')}|{node.get('Name', '')}|"
                    f"{node.get('NodeClass', '')}|{str(bool(node.get('Drain'))).lower()}|"
                    f"{node.get('SchedulingEligibility', '')}|{node.get('Status', '')}")
    return format_list(rows)


def find_node(client: ApiClient, prefix: str, context: str, *, missing: str = "No node(s) with prefix or id {} found",
              verbose_matches: bool = True) -> dict:
    _check_length(prefix)
    prefix = sanitize_uuid_prefix(prefix)
    with failing(context):
        nodes = client.nodes(prefix)
    if not nodes:
        raise CommandError(missing.format(q(prefix)))
    if len(nodes) > 1:
        raise CommandError(f"Prefix matched multiple nodes\n\n{format_node_stubs(nodes, verbose_matches)}")
    return nodes[0]


def local_node_id(client: ApiClient) -> str:
    """The node of the agent the CLI talks to (`-self`), from /v1/agent/self's client stats."""
    with failing("Error querying agent info"):
        info = client.agent_self() or {}
    stats = (info.get("stats") or info.get("Stats") or {}).get("client")
    if not stats:
        raise CommandError("Nomad not running in client mode")
    node_id = stats.get("node_id")
    if not node_id:
        raise CommandError("Failed to determine node ID")
    return node_id


# -- allocations ---------------------------------------------------------------------------------------


def format_alloc_stubs(stubs: list[dict], verbose: bool) -> str:
    """Nomad's formatAllocListStubs: relative times, or absolute ones and full IDs when verbose."""
    if not stubs:
        return "No allocations placed"
    if verbose:
        rows = ["ID|Eval ID|Node ID|Node Name|Task Group|Version|Desired|Status|Created|Modified"]
        for a in stubs:
            rows.append(f"{a['ID']}|{a.get('EvalID', '')}|{a.get('NodeID', '')}|{a.get('NodeName', '')}|"
                        f"{a.get('TaskGroup', '')}|{a.get('JobVersion', 0)}|{a.get('DesiredStatus', '')}|"
                        f"{a.get('ClientStatus', '')}|{format_time(a.get('CreateTime'))}|"
                        f"{format_time(a.get('ModifyTime'))}")
    else:
        rows = ["ID|Node ID|Task Group|Version|Desired|Status|Created|Modified"]
        for a in stubs:
            rows.append(f"{limit(a['ID'], 8)}|{limit(a.get('NodeID'), 8)}|{a.get('TaskGroup', '')}|"
                        f"{a.get('JobVersion', 0)}|{a.get('DesiredStatus', '')}|{a.get('ClientStatus', '')}|"
                        f"{pretty_time_diff(a.get('CreateTime'))}|{pretty_time_diff(a.get('ModifyTime'))}")
    return format_list(rows)


def find_alloc(client: ApiClient, prefix: str, context: str = "Error querying allocation", *,
               verbose: bool = False) -> dict:
    _check_length(prefix)
    prefix = sanitize_uuid_prefix(prefix)
    with failing(context):
        allocs = client.allocations(prefix)
    if not allocs:
        raise CommandError(f"No allocation(s) with prefix or id {q(prefix)} found")
    if len(allocs) > 1:
        raise CommandError(f"Prefix matched multiple allocations\n\n{format_alloc_stubs(allocs, verbose)}")
    return allocs[0]


# -- evaluations ---------------------------------------------------------------------------------------


def eval_failures(evaluation: dict) -> tuple[str, bool]:
    """Nomad's evalFailureStatus: the Placement Failures cell and whether there are any."""
    failed = bool(evaluation.get("FailedTGAllocs"))
    if evaluation.get("Status") == "blocked":
        return "N/A - In Progress", failed
    return str(failed).lower(), failed


def format_evals(evals: list[dict], verbose: bool) -> str:
    rows = ["ID|Priority|Triggered By|Status|Placement Failures"]
    for e in evals:
        rows.append(f"{short(e['ID'], verbose)}|{e.get('Priority', 0)}|{e.get('TriggeredBy', '')}|"
                    f"{e.get('Status', '')}|{eval_failures(e)[0]}")
    return format_list(rows)


def find_eval(client: ApiClient, prefix: str, verbose: bool = False) -> dict:
    _check_length(prefix)
    prefix = sanitize_uuid_prefix(prefix)
    with failing("Error querying evaluation"):
        evals = client.evaluations(prefix)
    if not evals:
        raise CommandError(f"No evaluation(s) with prefix or id {q(prefix)} found")
    if len(evals) > 1:
        raise CommandError(f"Prefix matched multiple evaluations\n\n{format_evals(evals, verbose)}")
    return evals[0]


# -- deployments ---------------------------------------------------------------------------------------


def format_deployments(deployments: list[dict], verbose: bool) -> str:
    if not deployments:
        return "No deployments found"
    rows = ["ID|Job ID|Job Version|Status|Description"]
    for d in deployments:
        rows.append(f"{short(d['ID'], verbose)}|{d.get('JobID', '')}|{d.get('JobVersion', 0)}|"
                    f"{d.get('Status', '')}|{d.get('StatusDescription', '')}")
    return format_list(rows)


def format_deployment_groups(deployment: dict) -> str:
    """Nomad's formatDeploymentGroups: optional Auto Revert, Promoted, Canaries, Progress Deadline columns."""
    groups = deployment.get("TaskGroups") or {}
    autorevert = any(s.get("AutoRevert") for s in groups.values())
    canaries = any(s.get("DesiredCanaries") for s in groups.values())
    deadline = any(s.get("ProgressDeadline") for s in groups.values())
    header = ["Task Group"] + (["Auto Revert"] if autorevert else []) + (["Promoted"] if canaries else [])
    header += ["Desired"] + (["Canaries"] if canaries else []) + ["Placed", "Healthy", "Unhealthy"]
    header += ["Progress Deadline"] if deadline else []
    rows = ["|".join(header)]
    for name in sorted(groups):
        s = groups[name]
        row = [name]
        if autorevert:
            row.append(str(bool(s.get("AutoRevert"))).lower())
        if canaries:
            row.append(str(bool(s.get("Promoted"))).lower() if s.get("DesiredCanaries") else "N/A")
        row.append(str(s.get("DesiredTotal", 0)))
        if canaries:
            row.append(str(s.get("DesiredCanaries", 0)))
        row += [str(s.get("PlacedAllocs", 0)), str(s.get("HealthyAllocs", 0)), str(s.get("UnhealthyAllocs", 0))]
        if deadline:
            row.append(format_time(s.get("RequireProgressBy")) or "N/A")
        rows.append("|".join(row))
    return format_list(rows)


def find_deployment(client: ApiClient, prefix: str, verbose: bool = False) -> dict:
    """Nomad's getDeployment: a full ID is fetched directly, anything shorter is a prefix search."""
    with failing("Error retrieving deployment"):
        if len(prefix) == 36:
            return client.deployment(prefix).data
        if len(prefix) == 1:
            raise CommandError("Error retrieving deployment: Identifier must contain at least two characters.")
        prefix = sanitize_uuid_prefix(prefix)
        deployments = client.deployments(prefix)
    if not deployments:
        raise CommandError(f"Error retrieving deployment: Deployment ID {q(prefix)} matched no deployments")
    if len(deployments) > 1:
        raise CommandError(f"Prefix matched multiple deployments\n\n{format_deployments(deployments, verbose)}")
    return deployments[0]
