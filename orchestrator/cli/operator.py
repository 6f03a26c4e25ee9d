"""`yurt operator raft list-peers|remove-peer` and `yurt system gc`: cluster-level tools for operators."""

from __future__ import annotations

from .flags import CommandError, FlagSet, command, failing, group, out, q
from .format import columnize

OPERATOR_HELP = """
Usage: yurt operator <subcommand> [options]

  Provides cluster-level tools for Nomad operators, such as interacting with
  the Raft subsystem. NOTE: Use this command with extreme caution, as improper
  use could lead to a Nomad outage and even loss of data.

  Run yurt operator <subcommand> with no arguments for help on that subcommand.

Subcommands:
    raft    Provides access to the Raft subsystem
"""

RAFT_HELP = """
Usage: yurt operator raft <subcommand> [options]

  This command groups subcommands for interacting with Nomad's Raft subsystem.
  The command can be used to verify Raft peers or in rare cases to recover
  quorum by removing invalid peers.

  List Raft peers:

      $ yurt operator raft list-peers

  Remove a Raft peer:

      $ yurt operator raft remove-peer -peer-address "IP:Port"

Subcommands:
    list-peers     Display the current Raft peer configuration
    remove-peer    Remove a Nomad server from the Raft configuration
"""

LIST_PEERS_HELP = """
Usage: yurt operator raft list-peers [options]

  Displays the current Raft peer configuration.

{general}

List Peers Options:

  -stale=[true|false]
    The -stale argument defaults to "false" which means the leader provides the
    result. If the cluster is in an outage state without a leader, you may need
    to set -stale to "true" to get the configuration from a non-leader server.
"""

REMOVE_PEER_HELP = """
Usage: yurt operator raft remove-peer [options]

  Remove the Nomad server with given -peer-address from the Raft configuration.

  There are rare cases where a peer may be left behind in the Raft quorum even
  though the server is no longer present and known to the cluster. This command
  can be used to remove the failed server so that it is no longer affects the
  Raft quorum. If the server still shows in the output of the "yurt server
  members" command, it is preferable to clean up by simply running "yurt
  server force-leave" instead of this command.

{general}

Remove Peer Options:

  -peer-address="IP:port"
    Remove a Nomad server with given address from the Raft configuration.

  -peer-id="id"
    Remove a Nomad server with the given ID from the Raft configuration.
"""

SYSTEM_HELP = """
Usage: yurt system <subcommand> [options]

  This command groups subcommands for interacting with the system API. Users
  can perform system maintenance tasks such as trigger the garbage collector or
  perform job summary reconciliation.

Subcommands:
    gc    Run the system garbage collection process
"""

GC_HELP = """
Usage: yurt system gc [options]

  Initializes a garbage collection of jobs, evaluations, allocations, and nodes.

{general}
"""


@command
def list_peers(args: list[str]) -> int:
    flags = FlagSet("operator raft list-peers", LIST_PEERS_HELP).bool("stale")
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    client = flags.client(opts)
    with failing("Failed to retrieve raft configuration"):
        configuration = client.raft_configuration(stale=opts.stale) or {}
    rows = ["Node|ID|Address|State|Voter|RaftProtocol"]
    for server in configuration.get("Servers") or []:
        state = "leader" if server.get("Leader") else "follower"
        rows.append(f"{server.get('Node', '')}|{server.get('ID', '')}|{server.get('Address', '')}|{state}|"
                    f"{str(bool(server.get('Voter'))).lower()}|{server.get('RaftProtocol', '')}")
    # columnize.SimpleFormat: no "<none>" for empty cells, unlike most Nomad tables.
    out(columnize(rows))
    return 0


@command
def remove_peer(args: list[str]) -> int:
    flags = FlagSet("operator raft remove-peer", REMOVE_PEER_HELP).string("peer-address").string("peer-id")
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    if not opts.peer_address and not opts.peer_id:
        raise CommandError("Error removing peer: an address or id is required for the peer to remove")
    if opts.peer_address and opts.peer_id:
        raise CommandError("Error removing peer: cannot give both an address and id")
    client = flags.client(opts)
    with failing("Error removing peer"):
        client.raft_remove_peer(address=opts.peer_address, peer_id=opts.peer_id)
    if opts.peer_address:
        out(f"Removed peer with address {q(opts.peer_address)}")
    else:
        out(f"Removed peer with id {q(opts.peer_id)}")
    return 0


@command
def gc(args: list[str]) -> int:
    flags = FlagSet("system gc", GC_HELP)
    opts = flags.parse(args)
    if opts.args:
        raise flags.usage_error("This command takes no arguments")
    with failing("Error running system garbage-collection"):
        flags.client(opts).system_gc()
    return 0


main = group("operator", OPERATOR_HELP, {
    "raft list-peers": "orchestrator.cli.operator:list_peers",
    "raft remove-peer": "orchestrator.cli.operator:remove_peer",
    "raft": "orchestrator.cli.operator:raft",
})

raft = group("operator raft", RAFT_HELP, {})

system = group("system", SYSTEM_HELP, {"gc": "orchestrator.cli.operator:gc"})
