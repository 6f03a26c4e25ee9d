"""Pure functions from yurt's structs to Nomad's HTTP API JSON, shared by the API, the simulator and the CLI."""

# Keys follow real Nomad 1.0.18's answers (shared/reference/nomad-1.0.18/api); where yurt keeps no such field,
# Nomad's zero value is given. Full objects may carry a few fields newer Nomad versions added (Cores,
# MemoryMaxMB, MinDynamicPort...): yurt supports them, and a client that does not know them ignores them.

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from orchestrator.state import JobSummary
from orchestrator.structs import Allocation, Deployment, Evaluation, Job, Node, TaskEvent, TaskState, encode
from orchestrator.structs.alloc import AllocDeploymentStatus
from orchestrator.structs.timefmt import rfc3339_ns

# How Go prints a zero time.Time: what Nomad's API shows for a timestamp never set.
ZERO_TIME = "0001-01-01T00:00:00Z"


def _time(text: str | None) -> str:
    return text or ZERO_TIME


def _empty(value: Any) -> bool:
    """Go codec's `omitempty`: zero numbers, false, "", nil, and maps or lists without elements."""
    if value is None or value is False or value == "":
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, dict | list) and not value


# Fields that are struct values (not pointers) in Nomad: go-codec omits them when every field is empty.
_STRUCT_VALUES = frozenset({"DesiredTransition"})


def _omit_empty(data: dict[str, Any]) -> dict[str, Any]:
    # Nomad's Evaluation and Allocation carry `_struct bool codec:",omitempty"`: their zero-valued top-level
    # fields are left out of every API answer (see evaluations.json and allocation-detail.json).
    out = {}
    for key, value in data.items():
        if _empty(value):
            continue
        if key in _STRUCT_VALUES and isinstance(value, dict) and all(_empty(v) for v in value.values()):
            continue
        out[key] = value
    return out


# -- jobs ------------------------------------------------------------------------------------------------


def job_view(job: Job) -> dict[str, Any]:
    """`GET /v1/job/:id`: the whole job."""
    return encode(job)


def job_summary_view(summary: JobSummary | None) -> dict[str, Any] | None:
    """`GET /v1/job/:id/summary`, and the JobSummary inside each job list stub."""
    if summary is None:
        return None
    out = encode(summary)
    out["Summary"] = out["Summary"] or {}  # Go prints an empty (non-nil) map as {}
    return out


def job_list_stub(job: Job, summary: JobSummary | None) -> dict[str, Any]:
    """One row of `GET /v1/jobs`."""
    return {
        "ID": job.id,
        "ParentID": job.parent_id,
        "Name": job.name,
        # Nomad 1.0.18 left this "" (a bug fixed later); current Nomad gives the job's namespace.
        "Namespace": job.namespace,
        "Datacenters": list(job.datacenters) or None,
        "Multiregion": job.multiregion,
        "Type": job.type,
        "Priority": job.priority,
        "Periodic": job.periodic is not None,
        "ParameterizedJob": job.is_parameterized(),
        "Stop": job.stop,
        "Status": job.status,
        "StatusDescription": job.status_description,
        "JobSummary": job_summary_view(summary),
        "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index,
        "SubmitTime": job.submit_time,
    }


def scale_status_view(job: Job, allocs: Iterable[Allocation]) -> dict[str, Any]:
    """`GET /v1/job/:id/scale`: desired, placed, running and healthy counts per task group."""
    groups: dict[str, dict[str, Any]] = {
        tg.name: {"Desired": tg.count, "Placed": 0, "Running": 0, "Healthy": 0, "Unhealthy": 0, "Events": None}
        for tg in job.task_groups
    }
    for alloc in allocs:
        counts = groups.get(alloc.task_group)
        if counts is None or alloc.terminal():
            continue
        counts["Placed"] += 1
        if alloc.client_status == "running":
            counts["Running"] += 1
        status = alloc.deployment_status
        if status is not None and status.healthy is not None:
            counts["Healthy" if status.healthy else "Unhealthy"] += 1
    return {"JobID": job.id, "Namespace": job.namespace, "JobCreateIndex": job.create_index,
            "JobModifyIndex": job.job_modify_index, "JobStopped": job.stop, "TaskGroups": groups}


# -- allocations -----------------------------------------------------------------------------------------


def task_event_view(event: TaskEvent) -> dict[str, Any]:
    """A task event with every key Nomad 1.0 prints; the ones yurt does not record are zero."""
    return {
        "Type": event.type, "Time": event.time, "Message": event.message,
        "DisplayMessage": event.display_message or event.message,
        "Details": dict(event.details),  # Nomad's clients always make this map, so it prints {} not null
        "FailsTask": False, "RestartReason": event.restart_reason, "SetupError": "",
        "DriverError": event.driver_error, "ExitCode": event.exit_code, "Signal": event.signal,
        "KillTimeout": event.kill_timeout, "KillError": "", "KillReason": event.kill_reason,
        "StartDelay": event.start_delay,
        "DownloadError": "", "ValidationError": "", "DiskLimit": 0, "FailedSibling": event.failed_sibling,
        "VaultError": "", "TaskSignalReason": "", "TaskSignal": "", "DriverMessage": "", "GenericSource": "",
    }


def task_state_view(state: TaskState) -> dict[str, Any]:
    return {"State": state.state, "Failed": state.failed, "Restarts": state.restarts,
            "LastRestart": state.last_restart, "StartedAt": state.started_at, "FinishedAt": state.finished_at,
            "Events": [task_event_view(e) for e in state.events] or None}


def _task_states(alloc: Allocation) -> dict[str, Any] | None:
    return {name: task_state_view(s) for name, s in alloc.task_states.items()} or None


def _deployment_status(status: AllocDeploymentStatus | None) -> dict[str, Any] | None:
    if status is None:
        return None
    return {"Healthy": status.healthy, "Timestamp": _time(status.timestamp), "Canary": status.canary,
            "ModifyIndex": status.modify_index}


def alloc_list_stub(alloc: Allocation, *, resources: bool = False) -> dict[str, Any]:
    """One row of `GET /v1/allocations` (and of a job's, node-less lists); `resources` as `?resources=true`."""
    job = alloc.job
    return {
        "ID": alloc.id,
        "EvalID": alloc.eval_id,
        "Name": alloc.name,
        "Namespace": alloc.namespace,
        "NodeID": alloc.node_id,
        "NodeName": alloc.node_name,
        "JobID": alloc.job_id,
        "JobType": job.type if job is not None else "",
        "JobVersion": job.version if job is not None else 0,
        "TaskGroup": alloc.task_group,
        "AllocatedResources": encode(alloc.allocated_resources) if resources else None,
        "DesiredStatus": alloc.desired_status,
        "DesiredDescription": alloc.desired_description,
        "ClientStatus": alloc.client_status,
        "ClientDescription": alloc.client_description,
        "DesiredTransition": encode(alloc.desired_transition),
        "TaskStates": _task_states(alloc),
        "DeploymentStatus": _deployment_status(alloc.deployment_status),
        "FollowupEvalID": alloc.followup_eval_id,
        "RescheduleTracker": encode(alloc.reschedule_tracker),
        "PreemptedAllocations": list(alloc.preempted_allocations) or None,
        "PreemptedByAllocation": alloc.preempted_by_allocation,
        "CreateIndex": alloc.create_index,
        "ModifyIndex": alloc.modify_index,
        "CreateTime": alloc.create_time,
        "ModifyTime": alloc.modify_time,
    }


def _legacy_resources(cpu: int, memory_mb: int, disk_mb: int, networks: Any) -> dict[str, Any]:
    """Nomad's pre-0.9 `Resources` shape, which 1.0 still prints next to the structured one."""
    return {"CPU": cpu, "MemoryMB": memory_mb, "DiskMB": disk_mb, "IOPS": 0, "Networks": networks or None,
            "Devices": None}


def alloc_view(alloc: Allocation, *, with_job: bool = True) -> dict[str, Any]:
    """`GET /v1/allocation/:id`: the whole allocation. The event stream leaves the job out, as Nomad does."""
    allocated = alloc.allocated_resources
    task_resources = {
        name: _legacy_resources(t.cpu.get("CpuShares", 0), t.memory.get("MemoryMB", 0), 0, encode(t.networks))
        for name, t in allocated.tasks.items()
    }
    cpu, memory, disk = allocated.totals()
    metrics = encode(alloc.metrics)
    if metrics is not None:
        metrics = {**metrics, "Scores": None}  # a deprecated map Nomad 1.0 still prints, always nil
        metrics = {k: metrics.get(k) for k in _METRIC_KEYS}  # Nomad 1.0's keys, in its order
    out = {
        "ID": alloc.id,
        "Namespace": alloc.namespace,
        "EvalID": alloc.eval_id,
        "Name": alloc.name,
        "NodeID": alloc.node_id,
        "NodeName": alloc.node_name,
        "JobID": alloc.job_id,
        "Job": job_view(alloc.job) if with_job and alloc.job is not None else None,
        "TaskGroup": alloc.task_group,
        "Resources": _legacy_resources(cpu, memory, disk, encode(allocated.shared.networks)),
        "SharedResources": _legacy_resources(0, 0, allocated.shared.disk_mb, encode(allocated.shared.networks)),
        "TaskResources": task_resources or None,
        "AllocatedResources": encode(allocated),
        "Metrics": metrics,
        "DesiredStatus": alloc.desired_status,
        "DesiredDescription": alloc.desired_description,
        "DesiredTransition": encode(alloc.desired_transition),
        "ClientStatus": alloc.client_status,
        "ClientDescription": alloc.client_description,
        "TaskStates": _task_states(alloc),
        "PreviousAllocation": alloc.previous_allocation,
        "NextAllocation": alloc.next_allocation,
        "DeploymentID": alloc.deployment_id,
        "DeploymentStatus": _deployment_status(alloc.deployment_status),
        "RescheduleTracker": encode(alloc.reschedule_tracker),
        # Set by real clients once the allocation's network is up; yurt's clients run host networking only.
        "NetworkStatus": {"InterfaceName": "", "Address": "", "DNS": None},
        "FollowupEvalID": alloc.followup_eval_id,
        "PreemptedAllocations": list(alloc.preempted_allocations) or None,
        "PreemptedByAllocation": alloc.preempted_by_allocation,
        "CreateIndex": alloc.create_index,
        "ModifyIndex": alloc.modify_index,
        "AllocModifyIndex": alloc.alloc_modify_index,
        "CreateTime": alloc.create_time,
        "ModifyTime": alloc.modify_time,
    }
    result = _omit_empty(out)
    result["NetworkStatus"] = out["NetworkStatus"]  # a non-nil pointer in Nomad: printed although all zero
    return result


_METRIC_KEYS = ("NodesEvaluated", "NodesFiltered", "NodesAvailable", "ClassFiltered", "ConstraintFiltered",
                "NodesExhausted", "ClassExhausted", "DimensionExhausted", "QuotaExhausted", "Scores",
                "ScoreMetaData", "AllocationTime", "CoalescedFailures")


# -- evaluations and deployments -------------------------------------------------------------------------


def eval_view(evaluation: Evaluation) -> dict[str, Any]:
    """`GET /v1/evaluation/:id` and each row of `GET /v1/evaluations`."""
    return _omit_empty(encode(evaluation))


def deployment_view(deployment: Deployment) -> dict[str, Any]:
    """`GET /v1/deployment/:id` and each row of `GET /v1/deployments`."""
    out = encode(deployment)
    for state in (out["TaskGroups"] or {}).values():
        state["RequireProgressBy"] = _time(state["RequireProgressBy"])
    return out


# -- nodes -----------------------------------------------------------------------------------------------


def _drivers(node: Node) -> dict[str, Any] | None:
    out = {}
    for name, info in node.drivers.items():
        out[name] = {"Attributes": dict(info.attributes) or None, "Detected": info.detected,
                     "Healthy": info.healthy, "HealthDescription": info.health_description,
                     "UpdateTime": _time(info.update_time)}
    return out or None


def _drain_strategy(node: Node) -> dict[str, Any] | None:
    strategy = node.drain_strategy
    if strategy is None:
        return None
    # Nomad's DrainStrategy embeds its DrainSpec (so Deadline sits at the top) and its times are RFC 3339.
    return {"Deadline": strategy.deadline, "IgnoreSystemJobs": strategy.ignore_system_jobs,
            "ForceDeadline": rfc3339_ns(strategy.force_deadline) if strategy.force_deadline > 0 else ZERO_TIME,
            "StartedAt": rfc3339_ns(strategy.started_at) if strategy.started_at else ZERO_TIME}


def node_list_stub(node: Node, *, resources: bool = False) -> dict[str, Any]:
    """One row of `GET /v1/nodes`; `resources` as `?resources=true`."""
    return {
        "Address": node.attributes.get("unique.network.ip-address", ""),
        "ID": node.id,
        "Datacenter": node.datacenter,
        "Name": node.name,
        "NodeClass": node.node_class,
        "Version": node.attributes.get("nomad.version", ""),
        "Drain": node.drain or node.drain_strategy is not None,
        "SchedulingEligibility": node.scheduling_eligibility,
        "Status": node.status,
        "StatusDescription": node.status_description,
        "Drivers": _drivers(node),
        "HostVolumes": encode(node.host_volumes),
        "NodeResources": encode(node.node_resources) if resources else None,
        "ReservedResources": encode(node.reserved_resources) if resources else None,
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }


def _node_networks(networks: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Nomad 1.0's NodeNetworks (one per device, its addresses listed) from the flat host networks."""
    by_device: dict[str, dict[str, Any]] = {}
    for net in networks:
        entry = by_device.setdefault(net.get("Device") or "", {
            "Mode": net.get("Mode") or "host", "Device": net.get("Device") or "", "MacAddress": "",
            "Speed": net.get("MBits") or 0, "Addresses": []})
        if net.get("IP"):
            family = "ipv6" if ":" in net["IP"] else "ipv4"
            entry["Addresses"].append({"Family": family, "Alias": "default", "Address": net["IP"],
                                       "ReservedPorts": "", "Gateway": ""})
    for entry in by_device.values():
        entry["Addresses"] = entry["Addresses"] or None
    return list(by_device.values()) or None


def node_view(node: Node) -> dict[str, Any]:
    """`GET /v1/node/:id`: the whole node, its secret left out as Nomad's API does."""
    node_resources = encode(node.node_resources)
    node_resources["NodeNetworks"] = _node_networks(node_resources["Networks"] or [])
    reserved = node.reserved_resources
    return {
        "ID": node.id,
        "SecretID": "",
        "Datacenter": node.datacenter,
        "Name": node.name,
        "HTTPAddr": node.http_addr,
        "TLSEnabled": node.tls_enabled,
        "Attributes": dict(node.attributes) or None,
        "NodeResources": node_resources,
        "ReservedResources": encode(reserved),
        "Resources": _legacy_resources(node.node_resources.cpu.cpu_shares, node.node_resources.memory.memory_mb,
                                       node.node_resources.disk.disk_mb, node_resources["Networks"]),
        "Reserved": _legacy_resources(reserved.cpu.cpu_shares, reserved.memory.memory_mb, reserved.disk.disk_mb,
                                      None),
        "Links": dict(node.links) or None,
        "Meta": dict(node.meta) or None,
        "NodeClass": node.node_class,
        "ComputedClass": node.computed_class,
        "Drain": node.drain or node.drain_strategy is not None,
        "DrainStrategy": _drain_strategy(node),
        "SchedulingEligibility": node.scheduling_eligibility,
        "Status": node.status,
        "StatusDescription": node.status_description,
        "StatusUpdatedAt": node.status_updated_at,
        "Events": encode(node.events),
        "Drivers": _drivers(node),
        "CSIControllerPlugins": None,
        "CSINodePlugins": None,
        "HostVolumes": encode(node.host_volumes),
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }


# -- agent -----------------------------------------------------------------------------------------------


def member_view(name: str, addr: str, port: int, status: str, tags: dict[str, str]) -> dict[str, Any]:
    """One serf member of `GET /v1/agent/members`; the protocol numbers are those Nomad 1.0 reports."""
    return {"Name": name, "Addr": addr, "Port": port, "Tags": dict(tags), "Status": status,
            "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2, "DelegateMin": 2, "DelegateMax": 5,
            "DelegateCur": 4}
