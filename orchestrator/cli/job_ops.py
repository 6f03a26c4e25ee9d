"""`yurt job stop`, `job allocs`, `job inspect`, `job deployments`, `job history` and `job revert`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, Options, command, failing, out, q
from .format import FULL_ID, SHORT_ID, columnize, format_time, go_json
from .resources import find_job, format_alloc_stubs, format_deployments

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

STOP_HELP = """
Usage: yurt job stop [options] <job>
Alias: yurt stop

  Stop an existing job. This command is used to signal allocations to shut
  down for the given job ID. Upon successful deregistration, an interactive
  monitor session will start to display log lines as the job unwinds its
  allocations and completes shutting down. It is safe to exit the monitor
  early using ctrl+c.

{general}

Stop Options:

  -detach
    Return immediately instead of entering monitor mode. After the
    deregister command is submitted, a new evaluation ID is printed to the
    screen, which can be used to examine the evaluation using the eval-status
    command.

  -purge
    Purge is used to stop the job and purge it from the system. If not set, the
    job will still be queryable and will be purged by the garbage collector.

  -yes
    Automatic yes to prompts.

  -verbose
    Display full information.
"""

ALLOCS_HELP = """
Usage: yurt job allocs [options] <job>

  Display allocations for a particular job.

{general}

Allocs Options:

  -all
    Display all allocations matching the job ID, even those from an older
    instance of the job.

  -json
    Output the allocations in a JSON format.

  -t
    Format and display allocations using a Go template.

  -verbose
    Display full information.
"""

INSPECT_HELP = """
Usage: yurt job inspect [options] <job>
Alias: yurt inspect <job>

  Inspect is used to see the specification of a submitted job.

{general}

Inspect Options:

  -version <job version>
    Display the job at the given job version.

  -json
    Output the job in its JSON format.

  -t
    Format and display job using a Go template.
"""

DEPLOYMENTS_HELP = """
Usage: yurt job deployments [options] <job>

  Deployments is used to display the deployments for a particular job.

{general}

Deployments Options:

  -json
    Output the deployments in a JSON format.

  -t
    Format and display deployments using a Go template.

  -latest
    Display the latest deployment only.

  -verbose
    Display full information.
"""

HISTORY_HELP = """
Usage: yurt job history [options] <job>

  History is used to display the known versions of a particular job. The command
  can display the diff between job versions and can be useful for understanding
  the changes that occurred to the job as well as deciding job versions to revert
  to.

{general}

History Options:

  -p
    Display the difference between each job and its predecessor.

  -full
    Display the full job definition for each version.

  -version <job version>
    Display only the history for the given job version.

  -json
    Output the job versions in a JSON format.

  -t
    Format and display the job versions using a Go template.
"""

REVERT_HELP = """
Usage: yurt job revert [options] <job> <version>

  Revert is used to revert a job to a prior version of the job. The available
  versions to revert to can be found using "yurt job history" command.

{general}

Revert Options:

  -detach
    Return immediately instead of entering monitor mode. After job revert,
    the evaluation ID will be printed to the screen, which can be used to
    examine the evaluation using the eval-status command.

  -verbose
    Display full information.
"""


def confirm(question: str, cancelled: str) -> None:
    """Nomad's y/N prompt: only an exact "y" goes on; anything else ends the command (Exit via CommandError)."""
    from .flags import Exit

    try:
        answer = input(question + " ")
    except EOFError:
        raise CommandError("Failed to parse answer: EOF") from None
    if not answer or answer.lower().startswith("n"):
        out(cancelled)
        raise Exit(0)
    if answer.lower().startswith("y") and len(answer) > 1:
        out("For confirmation, an exact ‘y’ is required.")
        raise Exit(0)
    if answer != "y":
        out("No confirmation detected. For confirmation, an exact 'y' is required.")
        raise Exit(1)


def _print_formatted(opts: Options, data: object) -> None:
    if opts.t:
        from .template import render

        out(render(opts.t, data))
    else:
        out(go_json(data))


@command
def stop(args: list[str]) -> int:
    flags = FlagSet("job stop", STOP_HELP).bool("detach").bool("purge").bool("yes").bool("verbose").bool("global")
    flags.bool("no-shutdown-delay").int("eval-priority", 0)
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job>")
    client = flags.client(opts)
    prefix = opts.args[0].strip()
    stub = find_job(client, prefix, "Error deregistering job")
    with failing("Error deregistering job"):
        job = client.job(stub["ID"])
    if prefix != job["ID"] and not opts.yes:
        confirm(f"Are you sure you want to stop job {q(job['ID'])}? [y/N]", "Cancelling job stop")
    with failing("Error deregistering job"):
        response = client.deregister_job(job["ID"], purge=opts.purge)
    eval_id = response.get("EvalID", "")
    if not eval_id:
        # Stopping a periodic or parameterized job creates no evaluation.
        return 0
    if opts.detach:
        out(eval_id)
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(eval_id)


@command
def allocs(args: list[str]) -> int:
    flags = FlagSet("job allocs", ALLOCS_HELP).bool("all").bool("json").string("t").bool("verbose")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job>")
    client = flags.client(opts)
    stub = find_job(client, opts.args[0], "Error retrieving allocations")
    with failing("Error retrieving allocations"):
        stubs = client.job_allocations(stub["ID"], all_allocs=opts.all)
    if opts.json or opts.t:
        _print_formatted(opts, stubs)
        return 0
    out(format_alloc_stubs(stubs, opts.verbose))
    return 0


@command
def inspect(args: list[str]) -> int:
    flags = FlagSet("job inspect", INSPECT_HELP).string("version").bool("json").string("t")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job>")
    client = flags.client(opts)
    stub = find_job(client, opts.args[0], "Error inspecting job")
    with failing("Error inspecting job"):
        if opts.version:
            job = _version(client, stub["ID"], opts.version)
        else:
            job = client.job(stub["ID"])
    if opts.json or opts.t:
        _print_formatted(opts, job)
        return 0
    out(go_json({"Job": job}))
    return 0


def _version(client: ApiClient, job_id: str, text: str) -> dict:
    try:
        wanted = int(text)
    except ValueError:
        raise CommandError(f"Error parsing version value {q(text)}: invalid syntax") from None
    for job in (client.job_versions(job_id) or {}).get("Versions") or []:
        if job.get("Version") == wanted:
            return job
    raise CommandError(f"Error inspecting job: job {q(job_id)} at version {wanted} not found")


@command
def deployments(args: list[str]) -> int:
    flags = FlagSet("job deployments", DEPLOYMENTS_HELP).bool("json").string("t").bool("latest").bool("verbose")
    flags.bool("all")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job>")
    client = flags.client(opts)
    stub = find_job(client, opts.args[0], "Error retrieving deployments")
    length = FULL_ID if opts.verbose else SHORT_ID
    if opts.latest:
        from .monitor import format_deployment

        with failing("Error retrieving deployments"):
            latest = client.job_latest_deployment(stub["ID"])
        if opts.json or opts.t:
            _print_formatted(opts, latest)
        else:
            out(format_deployment(latest, length))
        return 0
    with failing("Error retrieving deployments"):
        found = client.job_deployments(stub["ID"])
    if opts.json or opts.t:
        _print_formatted(opts, found)
        return 0
    out(format_deployments(found, opts.verbose))
    return 0


@command
def history(args: list[str]) -> int:
    flags = FlagSet("job history", HISTORY_HELP).bool("p").bool("full").string("version").bool("json").string("t")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job>")
    client = flags.client(opts)
    stub = find_job(client, opts.args[0], "Error retrieving job versions")
    with failing("Error retrieving job versions"):
        answer = client.job_versions(stub["ID"], diffs=opts.p) or {}
    versions, diffs = answer.get("Versions") or [], answer.get("Diffs") or []
    if opts.json or opts.t:
        _print_formatted(opts, versions)
        return 0
    if diffs and len(versions) != len(diffs) + 1:
        raise CommandError(f"Number of job versions {len(versions)} doesn't match number of diffs {len(diffs)}")
    if opts.version:
        for i, job in enumerate(versions):
            if str(job.get("Version")) == opts.version:
                out(_format_version(job, diffs[i] if i < len(diffs) else None, opts.full))
                return 0
        raise CommandError(f"Job with version {opts.version} not found")
    for i, job in enumerate(versions):
        out(_format_version(job, diffs[i] if i < len(diffs) else None, opts.full))
        if i != len(versions) - 1:
            out("")
    return 0


def _format_version(job: dict, diff: dict | None, full: bool) -> str:
    rows = [f"Version|{job.get('Version', 0)}", f"Stable|{str(bool(job.get('Stable'))).lower()}",
            f"Submit Date|{format_time(job.get('SubmitTime'))}"]
    if diff is not None:
        from .job_plan import format_job_diff

        rows.append(f"Diff|\n{format_job_diff(diff, False).strip()}")
    if full:
        rows.append(f"Full|JSON Job:\n{go_json(job)}")
    # Nomad keeps the multi-line values untrimmed, so "Diff = " is followed by the diff on its own lines.
    return columnize(rows, glue=" = ", no_trim=True)


@command
def revert(args: list[str]) -> int:
    flags = FlagSet("job revert", REVERT_HELP).bool("detach").bool("verbose").string("consul-token")
    flags.string("vault-token")
    opts = flags.parse(args)
    if len(opts.args) != 2:
        raise flags.usage_error("This command takes two arguments: <job> <version>")
    try:
        version = int(opts.args[1])
    except ValueError:
        raise CommandError(f"Failed to parse job-version flag: strconv.ParseUint: parsing {q(opts.args[1])}: "
                           "invalid syntax") from None
    client = flags.client(opts)
    stub = find_job(client, opts.args[0], "Error retrieving job versions")
    with failing("Error retrieving job versions"):
        response = client.revert_job(stub["ID"], version)
    eval_id = response.get("EvalID", "")
    if not eval_id:
        return 0
    if opts.detach:
        out("Evaluation ID: " + eval_id)
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(eval_id, follow_deployment=True)
