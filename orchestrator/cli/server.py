"""`yurt server members` and `yurt server join`: the servers' gossip membership."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .flags import CommandError, FlagSet, command, err, failing, group, out
from .format import format_list

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

SERVER_HELP = """
Usage: yurt server <subcommand> [options] [args]

  This command groups subcommands for interacting with Nomad servers. Users can
  list Servers, join a server to the cluster, and force leave a server.

  List Nomad servers:

      $ yurt server members

  Join a new server to another:

      $ yurt server join "IP:Port"

Subcommands:
    join       Join server nodes together
    members    Display a list of known servers and their status
"""

MEMBERS_HELP = """
Usage: yurt server members [options]

  Display a list of the known servers and their status. Only Nomad servers are
  able to service this command.

{general}

Server Members Options:

  -detailed
    Show detailed information about each member. This dumps a raw set of tags
    which shows more information than the default output format.

  -verbose
    Show detailed information about each member. This dumps a raw set of tags
    which shows more information than the default output format.
"""

JOIN_HELP = """
Usage: yurt server join [options] <addr> [<addr>...]

  Joins the local server to one or more Nomad servers. Joining is only required
  for server nodes, and only needs to succeed against one or more of the
  provided addresses. Once joined, the gossip layer will handle discovery of the
  other server nodes in the cluster.

{general}
"""


def _member_sort_key(member: dict) -> tuple[str, str, str]:
    tags = member.get("Tags") or {}
    return tags.get("region", ""), tags.get("dc", ""), member.get("Name", "")


def _region_leaders(client: ApiClient, members: list[dict]) -> tuple[dict[str, str], list[str]]:
    """The leader's RPC address in each region some member is alive in, and the regions that failed to say."""
    from orchestrator.api.client import ApiError

    leaders, errors = {}, []
    regions = sorted({(m.get("Tags") or {}).get("region", "") for m in members if m.get("Status") != "left"})
    for region in regions:
        try:
            leaders[region] = client.status_leader(region)
        except ApiError as exc:
            errors.append(f'Region "{region}": {exc}')
    return leaders, errors


@command
def members(args: list[str]) -> int:
    flags = FlagSet("server members", MEMBERS_HELP).bool("detailed").bool("verbose")
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    client = flags.client(opts)
    with failing("Error querying servers"):
        answer = client.agent_members()
    if not answer:
        raise CommandError("Agent doesn't know about server members", 0)
    found = sorted(answer.get("Members") or [], key=_member_sort_key)
    leaders, errors = _region_leaders(client, found)
    if opts.detailed or opts.verbose:
        rows = ["Name|Address|Port|Tags"]
        for m in found:
            tags = ",".join(f"{k}={v}" for k, v in sorted((m.get("Tags") or {}).items()))
            rows.append(f"{m.get('Name', '')}|{m.get('Addr', '')}|{m.get('Port', 0)}|{tags}")
    else:
        rows = ["Name|Address|Port|Status|Leader|Protocol|Build|Datacenter|Region"]
        for m in found:
            tags = m.get("Tags") or {}
            rpc = f"{m.get('Addr', '')}:{tags.get('port', '')}"
            if ":" in m.get("Addr", ""):
                rpc = f"[{m['Addr']}]:{tags.get('port', '')}"
            leader = str(leaders.get(tags.get("region", "")) == rpc).lower()
            rows.append(f"{m.get('Name', '')}|{m.get('Addr', '')}|{m.get('Port', 0)}|{m.get('Status', '')}|{leader}|"
                        f"{m.get('ProtocolCur', 0)}|{tags.get('build', '')}|{tags.get('dc', '')}|"
                        f"{tags.get('region', '')}")
    out(format_list(rows))
    if errors:
        err("Error determining leaders: " + "; ".join(errors))
        return 1
    return 0


@command
def join(args: list[str]) -> int:
    flags = FlagSet("server join", JOIN_HELP)
    opts = flags.parse(args)
    if not opts.args:
        raise flags.usage_error("One or more node addresses must be given as arguments")
    client = flags.client(opts)
    with failing("Error joining"):
        answer = client.agent_join(opts.args) or {}
    if answer.get("error"):
        raise CommandError(f"Error joining: {answer['error']}")
    out(f"Joined {answer.get('num_joined', 0)} servers successfully")
    return 0


main = group("server", SERVER_HELP, {
    "members": "orchestrator.cli.server:members",
    "join": "orchestrator.cli.server:join",
})
