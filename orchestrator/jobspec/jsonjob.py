"""Nomad's JSON job format (`{"Job": {...}}` or a bare job object) with located syntax errors."""

from __future__ import annotations

import json
from typing import Any

from .diagnostics import Diagnostic, JobspecError


def looks_like_json(text: str) -> bool:
    return text.lstrip().startswith("{")


def parse_json_job(text: str, filename: str) -> dict[str, Any]:
    """The job dict from API-form JSON; errors name the line and column like the HCL path does."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JobspecError(
            [Diagnostic(filename, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]
        ) from None
    if not isinstance(data, dict):
        raise JobspecError([Diagnostic(filename, 1, 1, "", "a JSON job must be an object")])
    if set(data) == {"Job"}:
        data = data["Job"]
        if not isinstance(data, dict):
            raise JobspecError([Diagnostic(filename, 1, 1, "", '"Job" must hold an object')])
    elif "job" in data and not ({"ID", "Name", "TaskGroups"} & set(data)):
        # HCL's own JSON syntax ({"job": {"name": {...}}}) is not Nomad's API form.
        raise JobspecError(
            [
                Diagnostic(
                    filename,
                    1,
                    1,
                    "",
                    'this looks like HCL JSON syntax ({"job": ...}); '
                    'use Nomad\'s API form: {"Job": {"ID": ..., "TaskGroups": [...]}}',
                )
            ]
        )
    if "ID" not in data and isinstance(data.get("Name"), str):
        data = {"ID": data["Name"], **data}
    problems = _shape_problems(data)
    if problems:
        raise JobspecError([Diagnostic(filename, None, None, "", p) for p in problems])
    return data


def _shape_problems(job: dict[str, Any]) -> list[str]:
    """Light checks only: deeper validation of API-form jobs belongs to the structs layer."""
    problems = []
    if not isinstance(job.get("ID") or job.get("Name"), str):
        problems.append('the job has no "ID" (or "Name") string')
    groups = job.get("TaskGroups")
    if groups is not None and not isinstance(groups, list):
        problems.append('"TaskGroups" must be a list')
    for i, group in enumerate(groups or []):
        if not isinstance(group, dict):
            problems.append(f'"TaskGroups"[{i}] must be an object')
        elif group.get("Tasks") is not None and not isinstance(group["Tasks"], list):
            problems.append(f'"TaskGroups"[{i}].Tasks must be a list')
    return problems
