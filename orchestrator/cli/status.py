"""`yurt status [id]`: the job list, or the status of whatever job, allocation, node, eval or deployment `id` names."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, command, err, q
from .resources import sanitize_uuid_prefix

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

STATUS_HELP = """
Usage: yurt status [options] <identifier>

  Display the status output for any Nomad resource matching the given
  identifier. When no identifier is given, the list of jobs is displayed.

{general}

Status Options:

  -verbose
    Display full information.
"""

# Search context -> the status command for it. Nomad names the deployment context in the singular;
# the plural is taken too.
STATUS_COMMANDS = {
    "jobs": "orchestrator.cli.job_status:status",
    "evals": "orchestrator.cli.eval:status",
    "allocs": "orchestrator.cli.alloc:status",
    "nodes": "orchestrator.cli.node:status",
    "deployment": "orchestrator.cli.deployment:status",
    "deployments": "orchestrator.cli.deployment:status",
}


def _run(target: str, args: list[str]) -> int:
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)(args)


def _matches(client: ApiClient, prefix: str) -> dict[str, list[str]]:
    """Search every context for IDs starting with `prefix`; without /v1/search, one prefix list per context."""
    from orchestrator.api.client import ApiError, TransportError

    try:
        return (client.search(prefix) or {}).get("Matches") or {}
    except TransportError:
        raise
    except ApiError as exc:
        if exc.status != 404:
            raise
    uuid = sanitize_uuid_prefix(prefix)
    return {"jobs": [j["ID"] for j in client.jobs(prefix)],
            "evals": [e["ID"] for e in client.evaluations(uuid)] if len(uuid) > 1 else [],
            "allocs": [a["ID"] for a in client.allocations(uuid)] if len(uuid) > 1 else [],
            "nodes": [n["ID"] for n in client.nodes(uuid)] if len(uuid) > 1 else [],
            "deployment": [d["ID"] for d in client.deployments(uuid)] if len(uuid) > 1 else []}


@command
def status(args: list[str]) -> int:
    flags = FlagSet("status", STATUS_HELP).bool("verbose")
    opts = flags.parse(args)
    if not opts.args:
        return _run(STATUS_COMMANDS["jobs"], args)
    if len(opts.args) > 1:
        raise flags.usage_error("This command takes either no arguments or one: <identifier>")
    identifier = opts.args[0]
    if len(identifier) == 1:
        raise CommandError("Identifier must contain at least two characters.")
    from orchestrator.api.client import ApiError

    try:
        matches = _matches(flags.client(opts), identifier)
    except ApiError as exc:
        raise CommandError(f"Error querying search with id: {q(str(exc))}") from exc
    found = {context: ids for context, ids in matches.items() if ids}
    exact = [(context, ids[0]) for context, ids in found.items() if ids[0] == identifier]
    if exact:
        context, full_id = exact[0]
    elif len(found) == 1 and len(next(iter(found.values()))) == 1:
        context, ids = next(iter(found.items()))
        full_id = ids[0]
    elif found:
        err(f"Multiple matches found for id {q(identifier)}")
        for context, ids in found.items():
            err(f"\n{context.title()}:")
            err(", ".join(ids))
        return 1
    else:
        raise CommandError(f"No matches returned for query: {q(identifier)}")
    target = STATUS_COMMANDS.get(context)
    if target is None:
        raise CommandError(f"Unable to resolve ID: {q(identifier)}")
    return _run(target, [*args[:-1], full_id])
