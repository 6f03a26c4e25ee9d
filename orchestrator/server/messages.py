"""Messages servers exchange besides Raft's and RPC: discovery of fellow servers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerJoin:
    """The servers the sender knows of (itself included): discovery as gossip or `server join` provides it.

    A server that learns of `bootstrap_expect` servers, itself among them, bootstraps Raft with them; a
    leader that learns of a server outside its configuration adds it as a voter.
    """

    servers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerLost:
    """The runtime saw a fellow server's process go away: its connections were closed or refused.

    Not a guess from silence (Raft's timeouts handle that): a dead process's kernel closes its sockets at
    once, so this arrives within a round trip of a `kill -9`, where a timeout would take a second or more.
    """

    peer: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLeft:
    """Servers that left the cluster gracefully (membership status `left`, or `force-leave`): the leader
    removes them from the Raft configuration, as Nomad's leader reconciles serf members."""

    servers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PrepareShutdown:
    """The runtime is about to stop this server gracefully (SIGINT or SIGTERM of the agent).

    A leader first hands its leadership to the most up-to-date follower (Raft's leadership transfer), so the
    cluster has a new leader within a round trip instead of after an election timeout. The server answers
    the sender with ShutdownReady once it no longer leads, or after `timeout` seconds whatever happened; a
    server that does not lead answers at once and does nothing else.
    """

    timeout: float = 2.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownReady:
    """The answer to PrepareShutdown: the server may stop now. `transferred_to` names the server it handed
    its leadership to ("" when it did not lead, or the transfer did not finish in time)."""

    transferred_to: str = ""
