"""MemoryStorage's contract, the persist step, config checks, and the exact msgpack round trip of messages."""

from __future__ import annotations

import msgpack
import pytest

from orchestrator.raft import (
    CompactedError,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    Ready,
    Snapshot,
    SnapshotOutOfDateError,
    UnavailableError,
    persist,
)


def ents(*terms: int, start: int = 1) -> list[Entry]:
    return [Entry(term=t, index=start + k, data=f"{start + k}".encode()) for k, t in enumerate(terms)]


def test_empty_storage():
    s = MemoryStorage()
    assert s.initial_state() == (HardState(), ConfState())
    assert (s.first_index(), s.last_index(), s.term(0), s.entries(1, 1)) == (1, 0, 0, [])
    assert s.snapshot() == Snapshot()


def test_append_truncates_only_from_the_first_conflict():
    s = MemoryStorage()
    s.append(ents(1, 1, 2, 2))
    s.append(ents(1, 2, start=2))  # 2@1 matches, 3@2 matches: nothing changes, 4 stays
    assert [e.term for e in s.entries(1, 5)] == [1, 1, 2, 2]
    s.append(ents(3, start=3))  # conflicts at 3: 3 and 4 go
    assert [e.term for e in s.entries(1, 4)] == [1, 1, 3] and s.last_index() == 3
    with pytest.raises(ValueError):
        s.append(ents(3, start=9))  # a gap


def test_terms_and_entries_around_compaction():
    s = MemoryStorage()
    s.append(ents(1, 1, 2, 2, 3))
    snap = s.create_snapshot(3, ConfState(voters=("a",)), b"state")
    assert snap == Snapshot(index=3, term=2, conf=ConfState(voters=("a",)), data=b"state")
    s.compact(2)
    assert (s.first_index(), s.last_index(), s.term(2), s.term(5)) == (3, 5, 1, 3)
    with pytest.raises(CompactedError):
        s.term(1)
    with pytest.raises(CompactedError):
        s.entries(2, 4)
    with pytest.raises(UnavailableError):
        s.entries(3, 7)
    with pytest.raises(UnavailableError):
        s.term(6)
    assert [e.index for e in s.entries(3, 6)] == [3, 4, 5]
    with pytest.raises(ValueError):
        s.compact(4)  # beyond the snapshot: entries 4 would be lost
    with pytest.raises(SnapshotOutOfDateError):
        s.create_snapshot(3, ConfState(), b"")
    s.append(ents(1, 1, start=1))  # already compacted and matching: ignored
    assert s.last_index() == 5


def test_apply_snapshot_replaces_everything():
    s = MemoryStorage()
    s.append(ents(1, 1, 2))
    snap = Snapshot(index=10, term=4, conf=ConfState(voters=("a", "b")), data=b"x")
    s.apply_snapshot(snap)
    assert (s.first_index(), s.last_index(), s.term(10), s.snapshot()) == (11, 10, 4, snap)
    assert s.initial_state()[1] == ConfState(voters=("a", "b"))
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(Snapshot(index=5, term=3))


def test_persist_writes_snapshot_then_entries_then_hard_state():
    s = MemoryStorage()
    snap = Snapshot(index=3, term=2, conf=ConfState(voters=("a",)))
    persist(s, Ready(snapshot=snap, entries=tuple(ents(2, 3, start=4)), hard_state=HardState(term=3, commit=5)))
    assert (s.first_index(), s.last_index(), s.hard_state) == (4, 5, HardState(term=3, commit=5))


def test_conf_change_encodes_with_msgpack():
    for kind in ConfChangeKind:
        cc = ConfChange(kind=kind, node_id="server-7")
        assert ConfChange.decode(cc.encode()) == cc
        assert msgpack.unpackb(cc.encode()) == [kind.value, "server-7"]


def test_config_is_checked():
    assert RaftConfig(id="a").election_ticks == 10
    for bad in ({"id": ""}, {"id": "a", "election_ticks": 1}, {"id": "a", "heartbeat_ticks": 0},
                {"id": "a", "max_inflight_msgs": 0}):
        with pytest.raises(ValueError):
            RaftConfig(**bad)


@pytest.mark.parametrize("message", [
    Message(type=MessageType.HEARTBEAT, src="a", dst="b", term=3),
    Message(type=MessageType.VOTE, src="a", dst="b", term=3, index=10, log_term=2, context=b"transfer"),
    Message(type=MessageType.APPEND, src="a", dst="b", term=3, index=10, log_term=2, commit=9,
            entries=(Entry(term=3, index=11, data=b"\x00\xff"),
                     Entry(term=3, index=12, type=EntryType.CONF_CHANGE,
                           data=ConfChange(kind=ConfChangeKind.ADD_NODE, node_id="d").encode()))),
    Message(type=MessageType.APPEND_RESP, src="b", dst="a", term=3, index=10, reject=True, reject_hint=7,
            log_term=2),
    Message(type=MessageType.SNAPSHOT, src="a", dst="b", term=3,
            snapshot=Snapshot(index=100, term=2, conf=ConfState(voters=("a", "b", "c")), data=b"state")),
    Message(type=MessageType.HEARTBEAT_RESP, src="b", dst="a", term=3, context=b"read-1"),
] + [Message(type=t, src="x", dst="y", term=1) for t in MessageType])
def test_messages_round_trip_exactly_through_msgpack(message: Message):
    wire = message.to_wire()
    assert Message.from_wire(wire) == message
    assert Message.from_wire(msgpack.unpackb(msgpack.packb(wire))) == message
