"""Raft consensus as a pure, sans-IO state machine in the style of etcd-io/raft: tick, step, propose, ready, advance."""

from .messages import TRANSFER_CONTEXT, Message, MessageType, Ready
from .node import RaftNode
from .progress import ProgressState
from .records import (
    CompactedError,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryType,
    HardState,
    NotLeaderError,
    ProposalDroppedError,
    RaftConfig,
    RaftError,
    ReadState,
    Rng,
    Role,
    Snapshot,
    SnapshotOutOfDateError,
    SoftState,
    UnavailableError,
)
from .storage import MemoryStorage, Storage, persist

__all__ = [
    "TRANSFER_CONTEXT",
    "CompactedError",
    "ConfChange",
    "ConfChangeKind",
    "ConfState",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "NotLeaderError",
    "ProgressState",
    "ProposalDroppedError",
    "RaftConfig",
    "RaftError",
    "RaftNode",
    "ReadState",
    "Ready",
    "Rng",
    "Role",
    "Snapshot",
    "SnapshotOutOfDateError",
    "SoftState",
    "Storage",
    "UnavailableError",
    "persist",
]
