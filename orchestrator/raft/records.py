"""Raft's value types: roles, log entries, persistent state, configuration changes, config and errors."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import msgpack


class Rng(Protocol):
    """The seeded generator the runtime hands in (a `random.Random`): Raft's only source of randomness."""

    def randint(self, a: int, b: int, /) -> int: ...


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class EntryType(enum.Enum):
    NORMAL = "normal"
    CONF_CHANGE = "conf_change"


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One log entry. The leader appends an empty NORMAL entry when elected; appliers skip empty entries."""

    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class HardState:
    """What must be on disk before any message that depends on it is sent."""

    term: int = 0
    vote: str | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfState:
    """The voters, sorted, so equal configurations compare (and encode) equal everywhere."""

    voters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The application's state as of `index` (whose entry had `term`), with the configuration at that index."""

    index: int = 0
    term: int = 0
    conf: ConfState = ConfState()
    data: bytes = b""


class ConfChangeKind(enum.Enum):
    ADD_NODE = "add_node"
    REMOVE_NODE = "remove_node"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfChange:
    """A single-server membership change, carried as the data of a CONF_CHANGE entry."""

    kind: ConfChangeKind
    node_id: str

    def encode(self) -> bytes:
        return msgpack.packb([self.kind.value, self.node_id])

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        kind, node_id = msgpack.unpackb(data)
        return cls(kind=ConfChangeKind(kind), node_id=node_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadState:
    """A linearizable read may be served once the application has applied `index`."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SoftState:
    """Volatile state worth reporting: who leads, and in which role this node is."""

    leader_id: str | None
    role: Role


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftConfig:
    """A node's tunables. Times are ticks; `applied` is the index the state machine already holds at start."""

    id: str
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_msg: int = 512
    max_inflight_msgs: int = 256
    applied: int = 0

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("raft: config id must not be empty")
        if self.heartbeat_ticks < 1:
            raise ValueError("raft: heartbeat_ticks must be at least 1")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("raft: election_ticks must be greater than heartbeat_ticks")
        if self.max_entries_per_msg < 1 or self.max_inflight_msgs < 1:
            raise ValueError("raft: max_entries_per_msg and max_inflight_msgs must be at least 1")
        if self.applied < 0:
            raise ValueError("raft: applied must not be negative")


class RaftError(Exception):
    """Base of the errors Raft raises to its caller."""


class NotLeaderError(RaftError):
    """Only the leader accepts this call; `leader_id` is who this node believes leads (None if unknown)."""

    def __init__(self, leader_id: str | None) -> None:
        super().__init__(f"raft: not the leader (leader is {leader_id or 'unknown'})")
        self.leader_id = leader_id


class ProposalDroppedError(RaftError):
    """The leader refused the proposal for now (leadership transfer, or a conf change already pending)."""


class CompactedError(RaftError):
    """The requested entries were compacted away into a snapshot."""


class UnavailableError(RaftError):
    """The requested entries are not (yet) in the log."""


class SnapshotOutOfDateError(RaftError):
    """A snapshot older than the one storage already holds."""
