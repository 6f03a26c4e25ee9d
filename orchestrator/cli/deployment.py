"""`yurt deployment status|list|promote|fail|pause|resume`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .flags import FlagSet, Options, command, failing, group, out, q
from .format import FULL_ID, SHORT_ID, format_time
from .monitor import DeploymentMonitor, EvalMonitor, format_deployment
from .resources import find_deployment, format_alloc_stubs, format_deployments

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

DEPLOYMENT_HELP = """
Usage: yurt deployment <subcommand> [options] [args]

  This command groups subcommands for interacting with deployments. Deployments
  are used to manage a transition between two versions of a Nomad job. Users
  can inspect an ongoing deployment, promote canary allocations, force fail
  deployments, and more.

  Examine a deployments status:

      $ yurt deployment status <deployment-id>

  Promote the canaries to allow the remaining allocations to be updated in a
  rolling deployment fashion:

      $ yurt deployment promote <deployment-id>

Subcommands:
    fail       Manually fail a deployment
    list       List all deployments
    pause      Pause a deployment
    promote    Promote canaries in a deployment
    resume     Resume a paused deployment
    status     Display the status of a deployment
"""

_GENERIC = """
Usage: yurt deployment {verb} [options] <deployment id>

  {text}

{{general}}

{title} Options:
{options}
  -verbose
    Display full information.
"""

_DETACH = """
  -detach
    Return immediately instead of entering monitor mode. After deployment
    {verb}, the evaluation ID will be printed to the screen, which can be used
    to examine the evaluation using the eval-status command.
"""

STATUS_HELP = _GENERIC.format(verb="status", title="Status", text="""Status is used to display the status of a \
deployment. The status will display
  the number of desired changes as well as the currently applied changes.""", options="""
  -json
    Output the deployment in its JSON format.

  -monitor
    Enter monitor mode to poll for updates to the deployment status.

  -t
    Format and display deployment using a Go template.
""")
LIST_HELP = """
Usage: yurt deployment list [options]

  List is used to list the set of deployments tracked by Nomad.

{general}

List Options:

  -json
    Output the deployments in a JSON format.

  -t
    Format and display the deployments using a Go template.

  -verbose
    Display full information.
"""
PROMOTE_HELP = _GENERIC.format(verb="promote", title="Promote", text="""Promote is used to promote task groups in \
a deployment. Promotion should occur
  when the deployment has placed canaries for a task group and those canaries
  have been deemed healthy.""", options="""
  -group
    Group may be specified many times and is used to promote that particular
    group. If no specific groups are specified, all groups are promoted.
""" + _DETACH.format(verb="promotion"))
FAIL_HELP = _GENERIC.format(verb="fail", title="Fail", text="""Fail is used to mark a deployment as failed. \
Failing a deployment will
  stop the placement of new allocations as part of rolling deployment and
  if the job is configured to auto revert, the job will attempt to roll back to a
  stable version.""", options=_DETACH.format(verb="fail"))
PAUSE_HELP = _GENERIC.format(verb="pause", title="Pause", text="""Pause is used to pause a deployment. Pausing a \
deployment will pause the
  placement of new allocations as part of rolling deployment.""", options="")
RESUME_HELP = _GENERIC.format(verb="resume", title="Resume", text="""Resume is used to unpause a paused deployment. \
Resuming a deployment will
  resume the placement of new allocations as part of rolling deployment.""", options=_DETACH.format(verb="resume"))


def _one_deployment(flags: FlagSet, args: list[str]) -> tuple[Options, ApiClient, dict]:
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <deployment id>")
    client = flags.client(opts)
    return opts, client, find_deployment(client, opts.args[0], opts.verbose)


def _follow(client: ApiClient, opts: Options, eval_id: str, *, blank: bool = True) -> int:
    if opts.detach or not eval_id:
        return 0
    if blank:
        out("")
    return EvalMonitor(client, FULL_ID if opts.verbose else SHORT_ID).monitor(eval_id)


@command
def status(args: list[str]) -> int:
    flags = FlagSet("deployment status", STATUS_HELP).bool("verbose").bool("json").string("t").bool("monitor")
    flags.string("wait", "2s")
    opts = flags.parse(args)
    if opts.monitor and (opts.json or opts.t):
        raise flags.usage_error("The monitor flag cannot be used with the '-json' or '-t' flags")
    if len(opts.args) > 1:
        raise flags.usage_error("This command takes one argument: <deployment id>")
    client = flags.client(opts)
    if not opts.args:
        return list_deployments(args)
    deployment = find_deployment(client, opts.args[0], opts.verbose)
    length = FULL_ID if opts.verbose else SHORT_ID
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, deployment)
    if opts.monitor:
        out(f"{format_time(time.time())}: Monitoring deployment {q(deployment['ID'][:length])}")
        DeploymentMonitor(client, length).monitor(deployment["ID"])
        return 0
    out(format_deployment(deployment, length))
    if opts.verbose:
        with failing("Error retrieving allocations"):
            allocs = client.deployment_allocations(deployment["ID"])
        out("\nAllocations")
        out(format_alloc_stubs(allocs, True))
    return 0


@command
def list_deployments(args: list[str]) -> int:
    flags = FlagSet("deployment list", LIST_HELP).bool("json").string("t").bool("verbose")
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    client = flags.client(opts)
    with failing("Error retrieving deployments"):
        found = client.deployments()
    if opts.json or opts.t:
        from .job_status import _print_data

        return _print_data(opts, found)
    out(format_deployments(found, opts.verbose))
    return 0


@command
def promote(args: list[str]) -> int:
    flags = FlagSet("deployment promote", PROMOTE_HELP).strings("group").bool("detach").bool("verbose")
    opts, client, deployment = _one_deployment(flags, args)
    with failing("Error promoting deployment"):
        response = client.promote_deployment(deployment["ID"], opts.group)
    return _follow(client, opts, response.get("EvalID", ""), blank=False)


@command
def fail(args: list[str]) -> int:
    flags = FlagSet("deployment fail", FAIL_HELP).bool("detach").bool("verbose")
    opts, client, deployment = _one_deployment(flags, args)
    with failing("Error failing deployment"):
        response = client.fail_deployment(deployment["ID"])
    if response.get("RevertedJobVersion") is not None:
        out(f"Deployment {q(deployment['ID'])} failed. Auto-reverted to job version "
            f"{response['RevertedJobVersion']}.\n")
    else:
        out(f"Deployment {q(deployment['ID'])} failed")
    return _follow(client, opts, response.get("EvalID", ""))


@command
def pause(args: list[str]) -> int:
    flags = FlagSet("deployment pause", PAUSE_HELP).bool("verbose")
    _opts, client, deployment = _one_deployment(flags, args)
    with failing("Error pausing deployment"):
        client.pause_deployment(deployment["ID"], True)
    out(f"Deployment {q(deployment['ID'])} paused")
    return 0


@command
def resume(args: list[str]) -> int:
    flags = FlagSet("deployment resume", RESUME_HELP).bool("detach").bool("verbose")
    opts, client, deployment = _one_deployment(flags, args)
    with failing("Error resuming deployment"):
        response = client.pause_deployment(deployment["ID"], False)
    out(f"Deployment {q(deployment['ID'])} resumed")
    return _follow(client, opts, response.get("EvalID", ""))


main = group("deployment", DEPLOYMENT_HELP, {
    "status": "orchestrator.cli.deployment:status",
    "list": "orchestrator.cli.deployment:list_deployments",
    "promote": "orchestrator.cli.deployment:promote",
    "fail": "orchestrator.cli.deployment:fail",
    "pause": "orchestrator.cli.deployment:pause",
    "resume": "orchestrator.cli.deployment:resume",
})
