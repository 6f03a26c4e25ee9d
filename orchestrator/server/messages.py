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
