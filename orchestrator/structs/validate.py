"""Semantic validation of a job, as Nomad's `Job.Validate`, with every problem reported at once."""

from __future__ import annotations

import re

from .job import JOB_TYPES, Constraint, Job, Task, TaskGroup

CONSTRAINT_OPERANDS = frozenset({
    "=", "==", "is", "!=", "not", "<", "<=", ">", ">=", "regexp", "version", "semver",
    "set_contains", "set_contains_any", "set_contains_all", "is_set", "is_not_set",
    "distinct_hosts", "distinct_property",
})
_VALID_ID = re.compile(r"^[^\x00\s]+$")


def validate_job(job: Job) -> list[str]:
    """Every problem with the job, each a sentence naming where it is; empty when the job is valid."""
    errors: list[str] = []
    if not job.id:
        errors.append("Missing job ID")
    elif not _VALID_ID.match(job.id):
        errors.append("Job ID contains a space or null character")
    if not job.name:
        errors.append("Missing job name")
    if job.type not in JOB_TYPES:
        errors.append(f'Invalid job type: "{job.type}"')
    if not 1 <= job.priority <= 100:
        errors.append("Job priority must be between [1, 100]")
    if not job.datacenters:
        errors.append("Missing job datacenters")
    errors.extend(f"Constraint {i + 1} validation failed: {e}"
                  for i, c in enumerate(job.constraints) for e in validate_constraint(c))
    if not job.task_groups:
        errors.append("Missing job task groups")
    seen: set[str] = set()
    for index, group in enumerate(job.task_groups):
        label = group.name or str(index + 1)
        if group.name in seen:
            errors.append(f"Job task group {index + 1} redefines '{group.name}' from group {label}")
        seen.add(group.name)
        group_errors = validate_group(job, group)
        if group_errors:
            errors.append(f"Task group {label} validation failed: " + "; ".join(group_errors))
    if job.periodic is not None and job.periodic.enabled:
        if job.type not in ("batch", "sysbatch"):
            errors.append(f'Periodic can only be used with "batch" or "sysbatch" scheduler, not "{job.type}"')
        if not job.periodic.spec:
            errors.append("Must specify a spec")
    if job.parameterized_job is not None:
        if job.type not in ("batch", "sysbatch"):
            errors.append(f'Parameterized job can only be used with "batch" or "sysbatch" scheduler, '
                          f'not "{job.type}"')
        if job.parameterized_job.payload not in ("optional", "required", "forbidden"):
            errors.append(f"Unknown payload requirement: {job.parameterized_job.payload!r}")
        both = set(job.parameterized_job.meta_required) & set(job.parameterized_job.meta_optional)
        if both:
            errors.append(f"Meta keys {sorted(both)} are both required and optional")
    return errors


def validate_group(job: Job, group: TaskGroup) -> list[str]:
    errors: list[str] = []
    if not group.name:
        errors.append("Missing task group name")
    if group.count < 0:
        errors.append("Task group count can't be negative")
    if not group.tasks:
        errors.append("Missing tasks for task group")
    if group.restart_policy is not None and group.restart_policy.mode not in ("fail", "delay"):
        errors.append(f"Unsupported restart mode: {group.restart_policy.mode!r}")
    policy = group.reschedule_policy
    if policy is not None:
        if policy.delay_function not in ("", "constant", "exponential", "fibonacci"):
            errors.append(f"Invalid delay function {policy.delay_function!r}, must be one of "
                          "constant, exponential, fibonacci")
        if policy.unlimited and policy.attempts:
            errors.append("Reschedule policy cannot be unlimited and have a number of attempts")
    if group.update is not None and group.update.max_parallel < 0:
        errors.append("Max parallel can not be less than zero")
    errors.extend(f"Constraint validation failed: {e}" for c in group.constraints for e in validate_constraint(c))
    for spread in group.spreads:
        if not spread.attribute:
            errors.append("Missing spread attribute")
        if not 0 <= spread.weight <= 100:
            errors.append(f"Spread block must have a weight between 0 and 100, got {spread.weight}")
        total = sum(t.percent for t in spread.spread_target)
        if total > 100:
            errors.append(f"Sum of spread target percentages must not be greater than 100%; got {total}%")
    names: set[str] = set()
    leaders = 0
    for index, task in enumerate(group.tasks):
        if task.name in names:
            errors.append(f"Task {index + 1} redefines '{task.name}'")
        names.add(task.name)
        leaders += task.leader
        task_errors = validate_task(job, task)
        if task_errors:
            errors.append(f"Task {task.name or index + 1} validation failed: " + "; ".join(task_errors))
    if leaders > 1:
        errors.append("Only one task may be marked as leader")
    return errors


def validate_task(job: Job, task: Task) -> list[str]:
    errors: list[str] = []
    if not task.name:
        errors.append("Missing task name")
    elif "/" in task.name:
        errors.append("Task name cannot include slashes")
    if not task.driver:
        errors.append("Missing task driver")
    if task.kill_timeout < 0:
        errors.append("KillTimeout must be a positive value")
    resources = task.resources
    if resources.cpu < 0 or resources.memory_mb < 0:
        errors.append("Task resources must not be negative")
    if resources.memory_max_mb and resources.memory_max_mb < resources.memory_mb:
        errors.append("MemoryMaxMB value cannot be less than MemoryMB")
    if task.lifecycle is not None and task.lifecycle.hook not in ("prestart", "poststart", "poststop"):
        errors.append(f"invalid hook: {task.lifecycle.hook}")
    if task.dispatch_payload is not None and job.parameterized_job is None:
        errors.append("Dispatch payload can only be used with parameterized jobs")
    errors.extend(f"Constraint validation failed: {e}" for c in task.constraints for e in validate_constraint(c))
    return errors


def validate_constraint(constraint: Constraint) -> list[str]:
    operand = constraint.operand
    if operand not in CONSTRAINT_OPERANDS:
        return [f"Unknown constraint type {operand!r}"]
    if operand in ("distinct_hosts",):
        return []
    if operand in ("is_set", "is_not_set", "distinct_property"):
        return [] if constraint.l_target else ["No LTarget provided but is required"]
    if operand == "regexp":
        try:
            re.compile(constraint.r_target)
        except re.error as exc:
            return [f"Regular expression failed to compile: {exc}"]
    if not constraint.l_target:
        return ["No LTarget provided but is required"]
    return []


def format_errors(errors: list[str]) -> str:
    """Nomad's multierror text: `2 errors occurred:` then one tab-indented bullet per error."""
    noun = "error" if len(errors) == 1 else "errors"
    return f"{len(errors)} {noun} occurred:\n" + "".join(f"\t* {e}\n" for e in errors)
