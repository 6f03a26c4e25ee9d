"""Nomad's defaults, filled into a job's API JSON wherever a key is absent (HCL or JSON alike).

Defaults are applied to the JSON form rather than the dataclasses because only there "absent" can be
told apart from an explicit zero (`restart { attempts = 0 }` must stay 0), as Nomad's API pointers do.
"""

from __future__ import annotations

import copy
from typing import Any

from .job import HOUR, MINUTE, SECOND

DEFAULT_CPU_MHZ = 100
DEFAULT_MEMORY_MB = 300
DEFAULT_KILL_TIMEOUT = 5 * SECOND
DEFAULT_EPHEMERAL_DISK_MB = 300


def default_restart_policy(job_type: str) -> dict[str, Any]:
    if job_type in ("batch", "sysbatch"):
        return {"Attempts": 3, "Interval": 24 * HOUR, "Delay": 15 * SECOND, "Mode": "fail"}
    return {"Attempts": 2, "Interval": 30 * MINUTE, "Delay": 15 * SECOND, "Mode": "fail"}


def default_reschedule_policy(job_type: str) -> dict[str, Any] | None:
    if job_type == "service":
        return {"Attempts": 0, "Interval": 0, "Delay": 30 * SECOND, "DelayFunction": "exponential",
                "MaxDelay": HOUR, "Unlimited": True}
    if job_type == "batch":
        return {"Attempts": 1, "Interval": 24 * HOUR, "Delay": 5 * SECOND, "DelayFunction": "constant",
                "MaxDelay": 0, "Unlimited": False}
    return None  # system and sysbatch allocations are never rescheduled elsewhere


def default_update_strategy() -> dict[str, Any]:
    return {"Stagger": 30 * SECOND, "MaxParallel": 1, "HealthCheck": "checks",
            "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE,
            "ProgressDeadline": 10 * MINUTE, "AutoRevert": False, "AutoPromote": False, "Canary": 0}


def default_migrate_strategy() -> dict[str, Any]:
    return {"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SECOND,
            "HealthyDeadline": 5 * MINUTE}


def _fill(target: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Keys the target leaves absent (or null) take the default's value."""
    for key, value in defaults.items():
        if target.get(key) is None:
            target[key] = value
    return target


def _merged(base: dict[str, Any] | None, override: dict[str, Any] | None) -> dict[str, Any] | None:
    if override is None:
        return dict(base) if base is not None else None
    return _fill(dict(override), base or {})


# Values copy.deepcopy returns as they are.
_ATOMS = frozenset({str, int, float, bool, type(None), bytes})


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    """copy.deepcopy for JSON-shaped data, several times faster: dicts and lists are copied here (an object
    met twice is copied once, as deepcopy does), anything else by deepcopy itself with the same memo."""
    cls = value.__class__
    if cls in _ATOMS:
        return value
    if cls is not dict and cls is not list:
        return copy.deepcopy(value, memo)
    done = memo.get(id(value))
    if done is not None:
        return done
    atoms = _ATOMS
    if cls is list:
        items: list[Any] = []
        memo[id(value)] = items  # before the items: a structure that contains itself is copied as one
        for item in value:
            items.append(item if item.__class__ in atoms else _copy(item, memo))
        return items
    out: dict[Any, Any] = {}
    memo[id(value)] = out
    for key, item in value.items():
        if key.__class__ not in atoms:
            key = copy.deepcopy(key, memo)
        out[key] = item if item.__class__ in atoms else _copy(item, memo)
    return out


def with_defaults(job: dict[str, Any]) -> dict[str, Any]:
    """A copy of the job's API JSON with every default Nomad fills. Applying it again changes nothing."""
    job = _copy(job, {})
    job_type = job.get("Type") or "service"
    _fill(job, {"Type": job_type, "Name": job.get("ID", ""), "Namespace": "default", "Region": "global",
                "Priority": 50, "Datacenters": ["*"]})
    if job.get("Update") is None:
        job["Update"] = {"Stagger": 30 * SECOND, "MaxParallel": 1} if job_type == "service" else {}
    if job.get("Periodic") is not None:
        _fill(job["Periodic"], {"Enabled": True, "SpecType": "cron", "TimeZone": "UTC",
                                "ProhibitOverlap": False})
    if job.get("ParameterizedJob") is not None:
        _fill(job["ParameterizedJob"], {"Payload": "optional"})
    for group in job.get("TaskGroups") or []:
        _group_defaults(job, job_type, group)
    return job


def _group_defaults(job: dict[str, Any], job_type: str, group: dict[str, Any]) -> None:
    _fill(group, {"Count": 1})
    group["RestartPolicy"] = _merged(default_restart_policy(job_type), group.get("RestartPolicy"))
    reschedule = default_reschedule_policy(job_type)
    group["ReschedulePolicy"] = (_merged(reschedule, group.get("ReschedulePolicy"))
                                 if reschedule is not None else None)
    if job_type == "service":
        # A job-level update block is the default for each group's, as in Nomad.
        job_update = {k: v for k, v in (job.get("Update") or {}).items() if v}
        base = _merged(default_update_strategy(), job_update)
        group["Update"] = _merged(base, group.get("Update"))
        group["Migrate"] = _merged(default_migrate_strategy(), group.get("Migrate"))
    else:
        group["Update"] = None
        group["Migrate"] = None
    group["EphemeralDisk"] = _merged({"Sticky": False, "SizeMB": DEFAULT_EPHEMERAL_DISK_MB, "Migrate": False},
                                     group.get("EphemeralDisk"))
    for task in group.get("Tasks") or []:
        _task_defaults(group, task)


def _task_defaults(group: dict[str, Any], task: dict[str, Any]) -> None:
    task["RestartPolicy"] = _merged(group["RestartPolicy"], task.get("RestartPolicy"))
    _fill(task, {"KillTimeout": DEFAULT_KILL_TIMEOUT})
    task["LogConfig"] = _merged({"MaxFiles": 10, "MaxFileSizeMB": 10}, task.get("LogConfig"))
    resources = task.setdefault("Resources", {}) or {}
    task["Resources"] = resources
    if not resources.get("Cores"):
        _fill(resources, {"CPU": DEFAULT_CPU_MHZ})
    _fill(resources, {"MemoryMB": DEFAULT_MEMORY_MB})
    for service in task.get("Services") or []:
        _fill(service, {"Provider": "consul"})
    for network in resources.get("Networks") or []:
        _fill(network, {"Mode": "host"})
