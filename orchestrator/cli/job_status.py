"""`yurt job status` (and `yurt status` with no argument): the job list, or one job's detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .flags import FlagSet, command, failing, out
from .format import FULL_ID, SHORT_ID, clock, format_kv, format_list, format_time, go_json, limit, pretty_time_diff
from .monitor import format_alloc_metrics, format_deployment
from .resources import find_job, format_alloc_stubs, format_evals, format_job_list, job_status

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

STATUS_HELP = """
Usage: yurt job status [options] <job>

  Display status information about a job. If no job ID is given, a list of all
  known jobs will be displayed.

{general}

Status Options:

  -short
    Display short output. Used only when a single job is being
    queried, and drops verbose information about allocations.

  -evals
    Display the evaluations associated with the job.

  -all-allocs
    Display all allocations matching the job ID, including those from an older
    instance of the job.

  -json
    Output the job in its JSON format.

  -t
    Format and display job using a Go template.

  -verbose
    Display full information.
"""

MAX_FAILED_GROUPS = 5


def next_launch_text(job: dict, now: float) -> str:
    """ "2026-11-22T10:30:00Z (4m39s from now)" for a periodic job, "" when it never launches again."""
    from orchestrator.scheduler.periodic import next_launch

    from .format import time_difference

    periodic = job.get("Periodic") or {}
    try:
        launch = next_launch(periodic.get("Spec", ""), datetime.fromtimestamp(now, tz=UTC),
                             periodic.get("TimeZone") or "UTC")
    except ValueError:
        return ""
    if launch is None:
        return ""
    return f"{format_time(launch.timestamp())} ({time_difference(now, launch.timestamp())} from now)"


@command
def status(args: list[str]) -> int:
    flags = FlagSet("job status", STATUS_HELP).bool("short").bool("evals").bool("all-allocs").bool("verbose")
    flags.bool("json").string("t")
    opts = flags.parse(args)
    if len(opts.args) > 1:
        raise flags.usage_error("This command takes either no arguments or one: <job>")
    client = flags.client(opts)
    if not opts.args:
        with failing("Error querying jobs"):
            jobs = client.jobs()
        if opts.json or opts.t:
            return _print_data(opts, [_job_json(client, j["ID"], opts.all_allocs) for j in jobs])
        out(format_job_list(jobs) if jobs else "No running jobs")
        return 0
    stub = find_job(client, opts.args[0])
    with failing("Error querying job"):
        job = client.job(stub["ID"])
    if opts.json or opts.t:
        return _print_data(opts, [_job_json(client, job["ID"], opts.all_allocs)])
    JobStatus(client, job, verbose=opts.verbose, evals=opts.evals, all_allocs=opts.all_allocs).show(opts.short)
    return 0


def _print_data(opts: object, data: object) -> int:
    if getattr(opts, "t", ""):
        from .template import render

        out(render(opts.t, data))
    else:
        out(go_json(data))
    return 0


def _job_json(client: ApiClient, job_id: str, all_allocs: bool) -> dict:
    with failing("Error querying job"):
        return {"Summary": client.job_summary(job_id),
                "Allocations": client.job_allocations(job_id, all_allocs=all_allocs),
                "LatestDeployment": client.job_latest_deployment(job_id),
                "Evaluations": client.job_evaluations(job_id)}


class JobStatus:
    """The detail view of one job: header, summary, then the sections its kind of job has."""

    def __init__(self, client: ApiClient, job: dict, *, verbose: bool, evals: bool, all_allocs: bool) -> None:
        self.client = client
        self.job = job
        self.verbose = verbose
        self.evals = evals
        self.all_allocs = all_allocs
        self.length = FULL_ID if verbose else SHORT_ID
        self.periodic = bool((job.get("Periodic") or {}).get("Enabled"))
        self.parameterized = job.get("ParameterizedJob") is not None

    def show(self, short: bool) -> None:
        job = self.job
        rows = [f"ID|{job['ID']}", f"Name|{job.get('Name', '')}", f"Submit Date|{format_time(job.get('SubmitTime'))}",
                f"Type|{job.get('Type', '')}", f"Priority|{job.get('Priority', 0)}",
                f"Datacenters|{','.join(job.get('Datacenters') or [])}", f"Namespace|{job.get('Namespace', '')}",
                f"Status|{job_status(job.get('Status', ''), job.get('Stop'))}",
                f"Periodic|{str(self.periodic).lower()}", f"Parameterized|{str(self.parameterized).lower()}"]
        if self.periodic and not self.parameterized:
            launch = "none (job stopped)" if job.get("Stop") else next_launch_text(job, clock())
            if launch:
                rows.append(f"Next Periodic Launch|{launch}")
        out(format_kv(rows))
        if short:
            return
        if self.periodic and not self.parameterized:
            self._summary()
            self._children("/periodic-", "Previously Launched Jobs", "No instances of periodic job found")
        elif self.parameterized:
            spec = job["ParameterizedJob"] or {}
            out("\nParameterized Job")
            out(format_kv([f"Payload|{spec.get('Payload', '')}",
                           f"Required Metadata|{', '.join(spec.get('MetaRequired') or [])}",
                           f"Optional Metadata|{', '.join(spec.get('MetaOptional') or [])}"]))
            self._summary()
            self._children("/dispatch-", "Dispatched Jobs", "No dispatched instances of parameterized job found")
        else:
            self._job_info()

    def _summary(self) -> None:
        with failing("Error querying job summary"):
            summary = self.client.job_summary(self.job["ID"])
        if not summary:
            return
        if not self.periodic and not self.parameterized:
            rows = ["Task Group|Queued|Starting|Running|Failed|Complete|Lost"]
            for name in sorted(summary.get("Summary") or {}):
                s = summary["Summary"][name]
                rows.append(f"{name}|{s.get('Queued', 0)}|{s.get('Starting', 0)}|{s.get('Running', 0)}|"
                            f"{s.get('Failed', 0)}|{s.get('Complete', 0)}|{s.get('Lost', 0)}")
            out("\nSummary")
            out(format_list(rows))
        children = summary.get("Children")
        counts = [children.get(k, 0) for k in ("Pending", "Running", "Dead")] if children else []
        if children is not None and (self.parameterized or self.periodic or sum(counts) > 0):
            out("\nParameterized Job Summary" if self.parameterized else "\nChildren Job Summary")
            out(format_list(["Pending|Running|Dead", "|".join(str(c) for c in counts)]))

    def _children(self, suffix: str, title: str, none: str) -> None:
        with failing("Error querying job"):
            children = [c for c in self.client.jobs(self.job["ID"] + suffix) if c.get("ParentID") == self.job["ID"]]
        if not children:
            out("\n" + none)
            return
        out("\n" + title)
        out(format_list(["ID|Status"] + [f"{c['ID']}|{c.get('Status', '')}" for c in children]))

    def _job_info(self) -> None:
        job_id = self.job["ID"]
        with failing("Error querying job allocations"):
            allocs = self.client.job_allocations(job_id, all_allocs=self.all_allocs)
        with failing("Error querying job evaluations"):
            evals = self.client.job_evaluations(job_id)
        with failing("Error querying latest job deployment"):
            latest = self.client.job_latest_deployment(job_id)
        self._summary()
        if self.verbose or self.evals:
            out("\nEvaluations")
            out(format_evals(evals, self.verbose))
        blocked = any(e.get("Status") == "blocked" for e in evals)
        failed = [e for e in evals if e.get("FailedTGAllocs")]
        if blocked and failed:
            self._failed_placements(max(failed, key=lambda e: e.get("CreateIndex", 0)))
        self._rescheduling(allocs)
        if latest:
            out("\nLatest Deployment")
            out(format_deployment(latest, self.length, job_fields=False))
        out("\nAllocations")
        out(format_alloc_stubs(allocs, self.verbose))

    def _failed_placements(self, evaluation: dict) -> None:
        out("\nPlacement Failure")
        groups = sorted(evaluation["FailedTGAllocs"])
        for i, name in enumerate(groups[:MAX_FAILED_GROUPS]):
            out(f'Task Group "{name}":')
            out(format_alloc_metrics(evaluation["FailedTGAllocs"][name], "  "))
            if i != len(groups) - 1:
                out("")
        if len(groups) > MAX_FAILED_GROUPS:
            out(f"\nPlacement failures truncated. To see remainder run:\nyurt eval status {evaluation['ID']}")

    def _rescheduling(self, allocs: list[dict]) -> None:
        """Future Rescheduling Attempts: the delayed follow-up evaluation of each group's newest allocation."""
        newest: dict[str, dict] = {}
        for alloc in allocs:
            group = alloc.get("TaskGroup", "")
            if group not in newest or alloc.get("ModifyTime", 0) > newest[group].get("ModifyTime", 0):
                newest[group] = alloc
        rows = []
        for group in sorted(newest):
            eval_id = newest[group].get("FollowupEvalID")
            if not eval_id:
                continue
            from orchestrator.api.client import ApiError

            try:
                evaluation = self.client.evaluation(eval_id)
            except ApiError:
                continue
            from .format import to_seconds

            wait_until = to_seconds(evaluation.get("WaitUntil"))
            if wait_until is None or wait_until < clock():
                continue
            rows.append(f"{group}|{limit(eval_id, self.length)}|{pretty_time_diff(wait_until)}")
        if rows:
            out("\nFuture Rescheduling Attempts")
            out(format_list(["Task Group|Eval ID|Eval Time", *rows]))

