"""`yurt job dispatch`, `job periodic force` and `job scale`: starting work from an already registered job."""

from __future__ import annotations

import sys

from .flags import CommandError, FlagSet, command, failing, out, q
from .format import FULL_ID, SHORT_ID, format_kv, limit
from .resources import format_job_list

DISPATCH_HELP = """
Usage: yurt job dispatch [options] <parameterized job> [input source]

  Dispatch creates an instance of a parameterized job. A data payload to the
  dispatched instance can be provided via stdin by using "-" or by specifying a
  path to a file. Metadata can be supplied by using the meta flag one or more
  times.

  Upon successful creation, the dispatched job ID will be printed and the
  triggered evaluation will be monitored. This can be disabled by supplying the
  detach flag.

{general}

Dispatch Options:

  -meta <key>=<value>
    Meta takes a key/value pair separated by "=". The metadata key will be
    merged into the job's metadata. The job may define a default value for the
    key which is overridden when dispatching. The flag can be provided more than
    once to inject multiple metadata key/value pairs. Arbitrary keys are not
    allowed. The parameterized job must allow the key to be merged.

  -detach
    Return immediately instead of entering monitor mode. After job dispatch,
    the evaluation ID will be printed to the screen, which can be used to
    examine the evaluation using the eval-status command.

  -verbose
    Display full information.
"""

PERIODIC_FORCE_HELP = """
Usage: yurt job periodic force <job id>

  This command is used to force the creation of a new instance of a periodic job.
  This is used to immediately run a periodic job, even if it violates the job's
  prohibit_overlap setting.

{general}

Periodic Force Options:

  -detach
    Return immediately instead of entering monitor mode. After the force,
    the evaluation ID will be printed to the screen, which can be used to
    examine the evaluation using the eval-status command.

  -verbose
    Display full information.
"""

SCALE_HELP = """
Usage: yurt job scale [options] <job> [<group>] <count>

  Perform a scaling action by altering the count within a job group.

  Upon successful job submission, this command will immediately
  enter an interactive monitor. This is useful to watch Nomad's
  internals make scheduling decisions and place the submitted work
  onto nodes. The monitor will end once job placement is done. It
  is safe to exit the monitor early using ctrl+c.

{general}

Scale Options:

  -detach
    Return immediately instead of entering monitor mode. After job scaling,
    the evaluation ID will be printed to the screen, which can be used to
    examine the evaluation using the eval-status command.

  -verbose
    Display full information.
"""


@command
def dispatch(args: list[str]) -> int:
    flags = FlagSet("job dispatch", DISPATCH_HELP).strings("meta").bool("detach").bool("verbose")
    flags.string("idempotency-token").string("id-prefix-template")
    opts = flags.parse(args)
    if not 1 <= len(opts.args) <= 2:
        raise flags.usage_error("This command takes one or two argument: <parameterized job> [input source]")
    payload = None
    if len(opts.args) == 2:
        source = opts.args[1]
        try:
            if source == "-":
                payload = sys.stdin.buffer.read()
            else:
                with open(source, "rb") as handle:
                    payload = handle.read()
        except OSError as exc:
            raise CommandError(f"Error reading input data: open {source}: {exc.strerror.lower()}") from None
    meta = {}
    for pair in opts.meta:
        key, sep, value = pair.partition("=")
        if not sep:
            raise CommandError(f"Error parsing meta value: {pair}")
        meta[key] = value
    client = flags.client(opts)
    with failing("Failed to dispatch job"):
        response = client.dispatch_job(opts.args[0].strip(), meta, payload)
    length = FULL_ID if opts.verbose else SHORT_ID
    rows = [f"Dispatched Job ID|{response.get('DispatchedJobID', '')}"]
    eval_id = response.get("EvalID", "")
    if eval_id:
        rows.append(f"Evaluation ID|{limit(eval_id, length)}")
    out(format_kv(rows))
    if opts.detach or not eval_id:
        return 0
    out("")
    from .monitor import EvalMonitor

    return EvalMonitor(client, length).monitor(eval_id)


@command
def periodic_force(args: list[str]) -> int:
    flags = FlagSet("job periodic force", PERIODIC_FORCE_HELP).bool("detach").bool("verbose")
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <job id>")
    client = flags.client(opts)
    prefix = opts.args[0].strip()
    with failing("Error forcing periodic job"):
        jobs = [j for j in client.jobs(prefix) if j.get("Periodic") and not j.get("ParameterizedJob")]
    if not jobs:
        raise CommandError(f"No periodic job(s) with prefix or id {q(prefix)} found")
    if len(jobs) > 1 and prefix != jobs[0]["ID"]:
        raise CommandError(f"Prefix matched multiple periodic jobs\n\n{format_job_list(jobs)}")
    with failing(f"Error forcing periodic job {q(jobs[0]['ID'])}"):
        response = client.force_periodic(jobs[0]["ID"])
    eval_id = response.get("EvalID", "")
    if opts.detach:
        out("Force periodic successful")
        out("Evaluation ID: " + eval_id)
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(eval_id)


@command
def scale(args: list[str]) -> int:
    flags = FlagSet("job scale", SCALE_HELP).bool("detach").bool("verbose")
    opts = flags.parse(args)
    if len(opts.args) not in (2, 3):
        raise flags.usage_error("This command takes two or three arguments: <job> [<group>] <count>")
    job_id, count_text = opts.args[0], opts.args[-1]
    try:
        count = int(count_text)
    except ValueError:
        raise CommandError(f"Failed to convert count string to int: strconv.Atoi: parsing {q(count_text)}: "
                           "invalid syntax") from None
    client = flags.client(opts)
    group_name = opts.args[1] if len(opts.args) == 3 else ""
    if not group_name:
        # Without a group the job must have exactly one, which is then the one scaled.
        with failing("Error querying job"):
            job = client.job(job_id)
        groups = job.get("TaskGroups") or []
        if len(groups) != 1:
            raise CommandError("Group name required")
        group_name = groups[0]["Name"]
    with failing("Error submitting scaling request"):
        response = client.scale_job(job_id, group_name, count, "submitted using the Nomad CLI")
    if response.get("Warnings"):
        out(f"Job Warnings:\n{response['Warnings']}\n")
    eval_id = response.get("EvalID", "")
    if opts.detach:
        out("Evaluation ID: " + eval_id)
        return 0
    if not eval_id:
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(eval_id, follow_deployment=True)
