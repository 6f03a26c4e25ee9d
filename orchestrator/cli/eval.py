"""`yurt eval status` and `yurt eval list`: the scheduler's evaluations."""

from __future__ import annotations

from .flags import FlagSet, command, failing, group, out, q
from .format import FULL_ID, SHORT_ID, format_kv, format_list, format_time, limit, pretty_time_diff
from .monitor import format_alloc_metrics
from .resources import eval_failures, find_eval

EVAL_HELP = """
Usage: yurt eval <subcommand> [options] [args]

  This command groups subcommands for interacting with evaluations.
  Evaluations are used to trigger a scheduling event. As such, evaluations are
  an internal detail but can be useful for debugging placement failures when the
  cluster does not have the resources to run a given job.

  List evaluations:

      $ yurt eval list

  Examine an evaluations status:

      $ yurt eval status <eval-id>

Subcommands:
    list      List the set of evaluations processed by Nomad
    status    Display evaluation status and placement failure reasons
"""

STATUS_HELP = """
Usage: yurt eval status [options] <evaluation>

  Display information about evaluations. This command can be used to inspect the
  current status of an evaluation as well as determine the reason an evaluation
  did not place all allocations.

{general}

Eval Status Options:

  -monitor
    Monitor an outstanding evaluation

  -verbose
    Show full information.

  -json
    Output the evaluation in its JSON format.

  -t
    Format and display evaluation using a Go template.
"""

LIST_HELP = """
Usage: yurt eval list [options]

  List is used to list the set of evaluations processed by Nomad.

{general}

Eval List Options:

  -verbose
    Show full information.

  -job
    Only show evaluations for this job ID.

  -status
    Only show evaluations with this status.

  -json
    Output the evaluation in its JSON format.

  -t
    Format and display evaluation using a Go template.
"""

# Which object an evaluation was triggered for, by trigger.
_SUBJECT = {"job-register": ("Job ID", "JobID"), "job-deregister": ("Job ID", "JobID"),
            "periodic-job": ("Job ID", "JobID"), "rolling-update": ("Job ID", "JobID"),
            "deployment-watcher": ("Job ID", "JobID"), "node-update": ("Node ID", "NodeID"),
            "node-drain": ("Node ID", "NodeID"), "max-plan-attempts": ("Previous Eval", "PreviousEval")}


@command
def status(args: list[str]) -> int:
    flags = FlagSet("eval status", STATUS_HELP).bool("monitor").bool("verbose").bool("json").string("t")
    opts = flags.parse(args)
    client = flags.client(opts)
    if not opts.args and (opts.json or opts.t):
        from .job_status import _print_data

        with failing("Error querying evaluations"):
            return _print_data(opts, client.evaluations())
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument")
    length = FULL_ID if opts.verbose else SHORT_ID
    stub = find_eval(client, opts.args[0], opts.verbose)
    if opts.monitor:
        from .monitor import EvalMonitor

        return EvalMonitor(client, length).monitor(stub["ID"])
    with failing("Error querying evaluation"):
        evaluation = client.evaluation(stub["ID"])
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, evaluation)
    failures, failed = eval_failures(evaluation)
    when = format_time if opts.verbose else pretty_time_diff
    rows = [f"ID|{limit(evaluation['ID'], length)}", f"Create Time|{when(evaluation.get('CreateTime'))}",
            f"Modify Time|{when(evaluation.get('ModifyTime'))}", f"Status|{evaluation.get('Status', '')}",
            f"Status Description|{evaluation.get('StatusDescription') or evaluation.get('Status', '')}",
            f"Type|{evaluation.get('Type', '')}", f"TriggeredBy|{evaluation.get('TriggeredBy', '')}"]
    subject = _SUBJECT.get(evaluation.get("TriggeredBy", ""))
    if subject:
        rows.append(f"{subject[0]}|{evaluation.get(subject[1], '')}")
    rows += [f"Priority|{evaluation.get('Priority', 0)}", f"Placement Failures|{failures}"]
    if opts.verbose:
        rows += [f"Previous Eval|{evaluation.get('PreviousEval', '')}", f"Next Eval|{evaluation.get('NextEval', '')}",
                 f"Blocked Eval|{evaluation.get('BlockedEval', '')}"]
    out(format_kv(rows))
    if failed:
        out("\nFailed Placements")
        for name in sorted(evaluation["FailedTGAllocs"]):
            metrics = evaluation["FailedTGAllocs"][name]
            coalesced = metrics.get("CoalescedFailures", 0)
            noun = "allocations" if coalesced else "allocation"
            out(f"Task Group {q(name)} (failed to place {coalesced + 1} {noun}):")
            out(format_alloc_metrics(metrics, "  "))
            out("")
        if evaluation.get("BlockedEval"):
            out(f"Evaluation {q(limit(evaluation['BlockedEval'], length))} waiting for additional capacity to "
                "place remainder")
    return 0


@command
def list_evals(args: list[str]) -> int:
    flags = FlagSet("eval list", LIST_HELP).bool("verbose").string("job").string("status").bool("json").string("t")
    flags.int("per-page", 0).string("page-token").string("filter")
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    client = flags.client(opts)
    with failing("Error querying evaluations"):
        evals = client.evaluations(job=opts.job, status=opts.status)
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, evals)
    if not evals:
        out("No evals found")
        return 0
    length = FULL_ID if opts.verbose else SHORT_ID
    rows = ["ID|Priority|Triggered By|Job ID|Namespace|Node ID|Status|Placement Failures"]
    for e in evals:
        rows.append(f"{limit(e['ID'], length)}|{e.get('Priority', 0)}|{e.get('TriggeredBy', '')}|"
                    f"{e.get('JobID', '')}|{e.get('Namespace', '')}|{limit(e.get('NodeID'), length)}|"
                    f"{e.get('Status', '')}|{eval_failures(e)[0]}")
    out(format_list(rows))
    return 0


main = group("eval", EVAL_HELP, {
    "status": "orchestrator.cli.eval:status",
    "list": "orchestrator.cli.eval:list_evals",
})
