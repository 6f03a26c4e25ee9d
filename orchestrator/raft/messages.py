"""What crosses a node's boundary: the messages nodes exchange (and their wire form), and the Ready batch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .records import ConfState, Entry, EntryType, HardState, ReadState, Snapshot, SoftState


class MessageType(enum.Enum):
    PRE_VOTE = "pre_vote"  # "would you vote for me at term+1?"; changes no one's term
    PRE_VOTE_RESP = "pre_vote_resp"
    VOTE = "vote"
    VOTE_RESP = "vote_resp"
    APPEND = "append"  # index/log_term: the entry preceding `entries`
    APPEND_RESP = "append_resp"  # index: last matching index, or on reject the rejected prev index
    HEARTBEAT = "heartbeat"  # commit: min(follower's match, leader's commit); context: a pending read index
    HEARTBEAT_RESP = "heartbeat_resp"
    SNAPSHOT = "snapshot"  # install `snapshot`; answered by APPEND_RESP
    TIMEOUT_NOW = "timeout_now"  # leadership transfer: campaign now, ignoring leases


# A VOTE carrying this context comes from a leadership transfer, so voters skip their leader lease.
TRANSFER_CONTEXT = b"transfer"

_ENTRY_TYPE_CODE = {EntryType.NORMAL: 0, EntryType.CONF_CHANGE: 1}
_ENTRY_TYPE_OF = {code: kind for kind, code in _ENTRY_TYPE_CODE.items()}
_TYPE_OF = {kind.value: kind for kind in MessageType}


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One Raft message. Fields unused by a type keep their defaults (and are left out on the wire)."""

    type: MessageType
    src: str
    dst: str
    term: int
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    snapshot: Snapshot | None = None
    context: bytes = b""

    def to_wire(self) -> dict[str, Any]:
        """Plain dicts, lists, strings, ints and bytes; `from_wire` gives back an equal Message."""
        wire: dict[str, Any] = {"type": self.type.value, "src": self.src, "dst": self.dst, "term": self.term}
        # Defaults are left out: heartbeats and responses are most of the traffic and carry almost nothing.
        if self.log_term:
            wire["log_term"] = self.log_term
        if self.index:
            wire["index"] = self.index
        if self.entries:
            wire["entries"] = [[e.term, e.index, _ENTRY_TYPE_CODE[e.type], e.data] for e in self.entries]
        if self.commit:
            wire["commit"] = self.commit
        if self.reject:
            wire["reject"] = True
        if self.reject_hint:
            wire["reject_hint"] = self.reject_hint
        if self.snapshot is not None:
            snap = self.snapshot
            wire["snapshot"] = {"index": snap.index, "term": snap.term, "voters": list(snap.conf.voters),
                                "data": snap.data}
        if self.context:
            wire["context"] = self.context
        return wire

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Message:
        snap = wire.get("snapshot")
        return cls(
            type=_TYPE_OF[wire["type"]],
            src=wire["src"],
            dst=wire["dst"],
            term=wire["term"],
            log_term=wire.get("log_term", 0),
            index=wire.get("index", 0),
            entries=tuple(Entry(term=t, index=i, type=_ENTRY_TYPE_OF[k], data=bytes(d))
                          for t, i, k, d in wire.get("entries", ())),
            commit=wire.get("commit", 0),
            reject=wire.get("reject", False),
            reject_hint=wire.get("reject_hint", 0),
            snapshot=None if snap is None else Snapshot(
                index=snap["index"], term=snap["term"], conf=ConfState(voters=tuple(snap["voters"])),
                data=bytes(snap["data"])),
            context=bytes(wire.get("context", b"")),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """What the application must do next, in order: persist (snapshot, entries, hard state), send, apply.

    `soft_state` and `hard_state` are None when unchanged. `committed_entries` are applied after `snapshot`
    is restored into the state machine; `read_states` are served once applied reaches their index.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    committed_entries: tuple[Entry, ...] = ()
    messages: tuple[Message, ...] = ()
    read_states: tuple[ReadState, ...] = ()
