"""FileStorage against the in-memory models: op by op on random sequences, across syncs, reopens and crashes."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.raft import (
    CompactedError,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Snapshot,
    SnapshotOutOfDateError,
    UnavailableError,
)
from orchestrator.runtime.aio.storage import FileStorage
from sim.disk import SimDisk


def view(s: Any) -> tuple[Any, ...]:
    """Everything a reader can observe of a storage."""
    first, last = s.first_index(), s.last_index()
    return (
        s.initial_state(),
        s.hard_state,
        s.snapshot(),
        first,
        last,
        s.entries(first, last + 1),
        [s.term(i) for i in range(first - 1, last + 1)],
    )


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except (CompactedError, UnavailableError, SnapshotOutOfDateError, ValueError) as exc:
        return ("error", type(exc))


def random_op(rng: random.Random, model: MemoryStorage) -> tuple[str, tuple[Any, ...]]:
    first, last = model.first_index(), model.last_index()
    snap_index = model.snapshot().index
    roll = rng.random()
    if roll < 0.55:
        start = rng.randint(max(1, first - 3), last + 2)  # overlaps, conflicts, and now and then a gap
        prev = model.term(start - 1) if first - 1 <= start - 1 <= last else 1
        term = prev + rng.choice((0, 0, 0, 1, 2))
        ents = []
        for k in range(rng.randint(0, 6)):
            term += rng.random() < 0.15
            kind = EntryType.CONF_CHANGE if rng.random() < 0.1 else EntryType.NORMAL
            ents.append(Entry(term=term, index=start + k, type=kind, data=rng.randbytes(rng.randint(0, 40))))
        return "append", (ents,)
    if roll < 0.7:
        vote = rng.choice((None, "a", "b:4647"))
        return "set_hard_state", (HardState(term=rng.randint(0, 9), vote=vote, commit=rng.randint(0, last)),)
    if roll < 0.8:
        index = rng.randint(min(max(0, snap_index - 1), last), last + 1)
        return "create_snapshot", (index, ConfState(voters=("a", "b")), rng.randbytes(rng.randint(0, 64)))
    if roll < 0.93:
        return "compact", (rng.randint(max(0, first - 2), max(first, snap_index) + 1),)
    index = rng.randint(min(max(0, snap_index - 1), last), last + 4)
    snap = Snapshot(index=index, term=rng.randint(1, 9), conf=ConfState(voters=("c",)), data=rng.randbytes(16))
    return "apply_snapshot", (snap,)


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_match_the_models(tmp_path: Path, seed: int) -> None:
    """Every op gives FileStorage's result (or error); a reopen after close recovers everything, a crash
    exactly what was synced (SimDisk's durable copy)."""
    rng = random.Random(seed)
    segment_bytes = rng.choice((200, 1000, 1 << 20))  # tiny segments roll over and get deleted often
    disk = SimDisk()
    fs = FileStorage(tmp_path, segment_bytes=segment_bytes)
    for step in range(400):
        name, args = random_op(rng, disk.live)
        expected = outcome(getattr(disk, name), *args)
        assert outcome(getattr(fs, name), *args) == expected, (step, name, args)
        roll = rng.random()
        if roll < 0.2:
            disk.sync()
            fs.sync()
        elif roll < 0.23:
            disk.sync()
            fs.close()
            fs = FileStorage(tmp_path, segment_bytes=segment_bytes)
        elif roll < 0.26:
            disk.crash()
            fs.abandon()
            fs = FileStorage(tmp_path, segment_bytes=segment_bytes)
        assert view(fs) == view(disk.live), (step, name, args)
    fs.close()


def test_errors_and_edges_are_memory_storage_s(tmp_path: Path) -> None:
    mem = MemoryStorage()
    with FileStorage(tmp_path) as fs:
        for s in (mem, fs):
            s.append([Entry(term=1, index=i) for i in range(1, 6)])
            s.create_snapshot(3, ConfState(voters=("a",)), b"s")
            s.compact(2)
        assert view(fs) == view(mem)
        for fn, args, exc in [
            ("entries", (2, 4), CompactedError),
            ("entries", (3, 7), UnavailableError),
            ("term", (1,), CompactedError),
            ("term", (6,), UnavailableError),
            ("compact", (2,), CompactedError),
            ("compact", (4,), ValueError),
            ("compact", (9,), UnavailableError),
            ("create_snapshot", (3, ConfState(), b""), SnapshotOutOfDateError),
            ("apply_snapshot", (Snapshot(index=1, term=1),), SnapshotOutOfDateError),
            ("append", ([Entry(term=1, index=8)],), ValueError),
        ]:
            with pytest.raises(exc):
                getattr(mem, fn)(*args)
            with pytest.raises(exc):
                getattr(fs, fn)(*args)
        assert view(fs) == view(mem)


def test_reopen_after_close_recovers_everything(tmp_path: Path) -> None:
    with FileStorage(tmp_path, segment_bytes=512) as fs:
        fs.append([Entry(term=1, index=i, data=b"%d" % i) for i in range(1, 101)])
        fs.append([Entry(term=2, index=i, data=b"new") for i in range(60, 71)])  # truncates 60..100
        fs.create_snapshot(50, ConfState(voters=("a:1", "b:1")), b"fsm")
        fs.compact(40)
        fs.set_hard_state(HardState(term=2, vote="a:1", commit=65))
        before = view(fs)
    with FileStorage(tmp_path, segment_bytes=512) as fs:
        assert view(fs) == before
        assert (fs.first_index(), fs.last_index(), fs.term(60), fs.term(59)) == (41, 70, 2, 1)


def test_unsynced_writes_are_lost_in_a_crash(tmp_path: Path) -> None:
    fs = FileStorage(tmp_path)
    fs.append([Entry(term=1, index=1)])
    fs.set_hard_state(HardState(term=1, commit=1))
    fs.sync()
    fs.append([Entry(term=1, index=2)])
    fs.set_hard_state(HardState(term=1, commit=2))
    fs.abandon()
    with FileStorage(tmp_path) as fs:
        assert (fs.last_index(), fs.hard_state) == (1, HardState(term=1, commit=1))


def test_compaction_deletes_whole_segments_and_snapshots(tmp_path: Path) -> None:
    with FileStorage(tmp_path, segment_bytes=1024) as fs:
        fs.append([Entry(term=1, index=i, data=bytes(100)) for i in range(1, 201)])
        fs.sync()
        segments = sorted(tmp_path.glob("log-*.seg"))
        assert len(segments) > 10
        fs.create_snapshot(100, ConfState(), b"a")
        fs.sync()
        fs.create_snapshot(150, ConfState(), b"b")
        fs.compact(150)
        fs.sync()
        remaining = sorted(tmp_path.glob("log-*.seg"))
        assert remaining == segments[-len(remaining):] and len(remaining) < len(segments) // 3
        assert [p.name for p in tmp_path.glob("snap-*")] == [f"snap-{2:020d}.snap"]  # the second one written
    with FileStorage(tmp_path, segment_bytes=1024) as fs:
        assert (fs.first_index(), fs.last_index(), fs.snapshot().data) == (151, 200, b"b")


def test_applied_snapshot_makes_the_old_log_garbage(tmp_path: Path) -> None:
    with FileStorage(tmp_path) as fs:
        fs.append([Entry(term=1, index=i) for i in range(1, 51)])
        fs.sync()
        fs.apply_snapshot(Snapshot(index=30, term=3, conf=ConfState(voters=("x",)), data=b"leader's"))
        fs.append([Entry(term=3, index=31)])
        fs.sync()
        assert len(list(tmp_path.glob("log-*.seg"))) == 1
    with FileStorage(tmp_path) as fs:
        assert (fs.first_index(), fs.last_index(), fs.term(30), fs.snapshot().data) == (31, 31, 3, b"leader's")


def test_a_second_opener_is_refused(tmp_path: Path) -> None:
    with FileStorage(tmp_path), pytest.raises(RuntimeError, match="in use"):
        FileStorage(tmp_path)


def test_appending_ten_thousand_entries_with_a_sync_every_hundred_is_fast(tmp_path: Path) -> None:
    # About 0.06 s on the development machine (ext4); the bound only catches a sync per entry or worse.
    data = bytes(256)
    with FileStorage(tmp_path) as fs:
        began = time.perf_counter()
        for i in range(1, 10_001):
            fs.append([Entry(term=1, index=i, data=data)])
            if i % 100 == 0:
                fs.sync()
        elapsed = time.perf_counter() - began
    assert elapsed < 2.0, elapsed
