"""`yurt job plan`: the scheduler's dry run of a job file, with Nomad's annotated diff and exit codes 0/1/255."""

from __future__ import annotations

from .flags import FlagSet, command, failing, out, q
from .format import format_list, format_time
from .job import job_api_client, read_job_file, spec_flags
from .monitor import format_alloc_metrics

PLAN_HELP = """
Usage: yurt job plan [options] <path>
Alias: yurt plan

  Plan invokes a dry-run of the scheduler to determine the effects of submitting
  either a new or updated version of a job. The plan will not result in any
  changes to the cluster but gives insight into whether the job could be run
  successfully and how it would affect existing allocations.

  A job modify index is returned with the plan. This value can be used when
  submitting the job using "yurt job run -check-index", which will check that
  the job was not modified between the plan and run command before invoking the
  scheduler. This ensures the job has not been modified since the plan.

  A structured diff between the local and remote job is displayed to
  give insight into what the scheduler will attempt to do and why.

  Plan will return one of the following exit codes:
    * 0: No allocations created or destroyed.
    * 1: Allocations created or destroyed.
    * 255: Error determining plan results.

{general}

Plan Options:

  -diff
    Determines whether the diff between the remote job and planned job is shown.
    Defaults to true.

  -policy-override
    Sets the flag to force override any soft mandatory Sentinel policies.

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.

  -verbose
    Increase diff verbosity.
"""

MODIFY_INDEX_HELP = """To submit the job with version verification run:

yurt job run -check-index {index} {path}

When running the job with the check-index flag, the job will only be run if the
job modify index given matches the server-side version. If the index has
changed, another user has modified the job and the plan's results are
potentially invalid."""

_MARKERS = {"Added": "+ ", "Deleted": "- ", "Edited": "+/- "}


def _marker(kind: str) -> str:
    return _MARKERS.get(kind, "")


@command
def plan(args: list[str]) -> int:
    flags = spec_flags(FlagSet("job plan", PLAN_HELP)).bool("diff", True).bool("verbose").bool("policy-override")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <path>", code=255)
    from orchestrator.structs import job_to_api

    job = job_to_api(read_job_file(opts, code=255))
    client = job_api_client(flags, opts, job)
    with failing("Error during plan", code=255):
        response = client.plan_job(job, diff=opts.diff, policy_override=opts.policy_override)
    if opts.diff and response.get("Diff"):
        out(format_job_diff(response["Diff"], opts.verbose).strip() + "\n")
    out("Scheduler dry-run:")
    out(format_dry_run(response, job))
    out("")
    if response.get("Warnings"):
        out(f"Job Warnings:\n{response['Warnings']}\n")
    preempted = (response.get("Annotations") or {}).get("PreemptedAllocs") or []
    if preempted:
        out("Preemptions:\n")
        out(format_list(["Alloc ID|Job ID|Task Group",
                         *(f"{a['ID']}|{a.get('JobID', '')}|{a.get('TaskGroup', '')}" for a in preempted)]))
    index = response.get("JobModifyIndex", 0)
    out(f"Job Modify Index: {index}")
    out(MODIFY_INDEX_HELP.format(index=index, path=opts.args[0]))
    return plan_exit_code(response)


def plan_exit_code(response: dict) -> int:
    """1 when the plan creates, stops, migrates or destructively updates allocations (in-place is no change)."""
    updates = (response.get("Annotations") or {}).get("DesiredTGUpdates") or {}
    for group in updates.values():
        if sum(group.get(k, 0) for k in ("Stop", "Place", "Migrate", "DestructiveUpdate", "Canary")) > 0:
            return 1
    return 0


def format_dry_run(response: dict, job: dict) -> str:
    failed = response.get("FailedTGAllocs") or {}
    rolling = next((e for e in response.get("CreatedEvals") or [] if e.get("TriggeredBy") == "rolling-update"), None)
    if not failed:
        text = "- All tasks successfully allocated.\n"
    else:
        if job.get("Type") == "system":
            text = "- WARNING: Failed to place allocations on all nodes.\n"
        else:
            text = "- WARNING: Failed to place all allocations.\n"
        for group in sorted(failed):
            metrics = failed[group]
            coalesced = metrics.get("CoalescedFailures", 0)
            noun = "allocations" if coalesced else "allocation"
            text += f"  Task Group {q(group)} (failed to place {coalesced + 1} {noun}):\n"
            text += format_alloc_metrics(metrics, "    ") + "\n\n"
        if rolling is None:
            text = text.removesuffix("\n")
    if rolling is not None:
        from .format import duration

        text += f"- Rolling update, next evaluation will be in {duration(rolling.get('Wait'))}.\n"
    launch = response.get("NextPeriodicLaunch")
    if format_time(launch) and job.get("ParameterizedJob") is None:
        from .format import clock, time_difference, to_seconds

        now, seconds = clock(), to_seconds(launch) or 0.0
        text += (f"- If submitted now, next periodic launch would be at {format_time(launch)} "
                 f"({time_difference(now, seconds)} from now).\n")
    return text.removesuffix("\n")


# -- the annotated diff ---------------------------------------------------------------------------------


def format_job_diff(diff: dict, verbose: bool) -> str:
    text = f"{_marker(diff.get('Type', ''))}Job: {q(diff.get('ID'))}\n"
    fields, objects, groups = diff.get("Fields") or [], diff.get("Objects") or [], diff.get("TaskGroups") or []
    longest_field, longest_marker = _longest(fields, objects)
    longest_marker = max([longest_marker, *(len(_marker(g.get("Type", ""))) for g in groups)])
    if diff.get("Type") == "Edited" or verbose:
        block = _fields_and_objects(fields, objects, 0, longest_field, longest_marker)
        text += block + ("\n" if block else "")
    for tg in groups:
        text += _group_diff(tg, longest_marker - len(_marker(tg.get("Type", ""))), verbose) + "\n"
    return text


def _group_diff(tg: dict, tg_prefix: int, verbose: bool) -> str:
    text = f"{_marker(tg.get('Type', ''))}{' ' * tg_prefix}Task Group: {q(tg.get('Name'))}"
    updates = tg.get("Updates") or {}
    if updates:
        text += " (" + ", ".join(f"{updates[kind]} {kind}" for kind in sorted(updates)) + ")\n"
    else:
        text += "\n"
    fields, objects, tasks = tg.get("Fields") or [], tg.get("Objects") or [], tg.get("Tasks") or []
    longest_field, longest_marker = _longest(fields, objects)
    longest_marker = max([longest_marker, *(len(_marker(t.get("Type", ""))) for t in tasks)])
    start = tg_prefix + 2
    if tg.get("Type") == "Edited" or verbose:
        block = _fields_and_objects(fields, objects, start, longest_field, longest_marker)
        text += block + ("\n" if block else "")
    for task in tasks:
        text += _task_diff(task, start, longest_marker - len(_marker(task.get("Type", ""))), verbose) + "\n"
    return text


def _task_diff(task: dict, start: int, task_prefix: int, verbose: bool) -> str:
    kind = task.get("Type", "")
    text = f"{' ' * start}{_marker(kind)}{' ' * task_prefix}Task: {q(task.get('Name'))}"
    if task.get("Annotations"):
        text += f" ({', '.join(task['Annotations'])})"
    if kind == "None" or (kind in ("Added", "Deleted") and not verbose):
        return text
    fields, objects = task.get("Fields") or [], task.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    return text + "\n" + _fields_and_objects(fields, objects, start + 2, longest_field, longest_marker)


def _object_diff(obj: dict, start: int, key_prefix: int) -> str:
    marker = _marker(obj.get("Type", ""))
    text = f"{' ' * start}{marker}{' ' * key_prefix}{obj.get('Name', '')} {{\n"
    fields, objects = obj.get("Fields") or [], obj.get("Objects") or []
    longest_field, longest_marker = _longest(fields, objects)
    text += _fields_and_objects(fields, objects, start + key_prefix + 2, longest_field, longest_marker)
    return f"{text}\n{' ' * (start + len(marker) + key_prefix)}}}"


def _field_diff(field: dict, start: int, key_prefix: int, value_prefix: int) -> str:
    kind = field.get("Type", "")
    text = f"{' ' * start}{_marker(kind)}{' ' * key_prefix}{field.get('Name', '')}: {' ' * value_prefix}"
    if kind == "Edited":
        text += f"{q(field.get('Old'))} => {q(field.get('New'))}"
    elif kind == "Deleted":
        text += q(field.get("Old"))
    else:
        text += q(field.get("New"))
    if field.get("Annotations"):
        text += f" ({', '.join(field['Annotations'])})"
    return text


def _fields_and_objects(fields: list[dict], objects: list[dict], start: int, longest_field: int,
                        longest_marker: int) -> str:
    parts = []
    for field in fields:
        key_prefix = longest_marker - len(_marker(field.get("Type", "")))
        parts.append(_field_diff(field, start, key_prefix, longest_field - len(field.get("Name", ""))))
    for obj in objects:
        parts.append(_object_diff(obj, start, longest_marker - len(_marker(obj.get("Type", "")))))
    return "\n".join(parts)


def _longest(fields: list[dict], objects: list[dict]) -> tuple[int, int]:
    longest_field = max([0, *(len(f.get("Name", "")) for f in fields)])
    longest_marker = max([0, *(len(_marker(x.get("Type", ""))) for x in [*fields, *objects])])
    return longest_field, longest_marker

