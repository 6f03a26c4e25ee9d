"""FileStorage across crashes: torn tails, corruption, crashes inside sync, and a writer killed with SIGKILL."""

from __future__ import annotations

import copy
import logging
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from test_file_storage import random_op, view

from orchestrator.raft import ConfState, Entry, HardState, Snapshot
from orchestrator.runtime.aio import storage
from orchestrator.runtime.aio.storage import FileStorage, StorageCorruptError
from sim.disk import SimDisk


def entries(lo: int, hi: int, term: int = 1) -> list[Entry]:
    return [Entry(term=term, index=i, data=b"entry %d" % i) for i in range(lo, hi + 1)]


def only_segment(path: Path) -> Path:
    (segment,) = path.glob("log-*.seg")
    return segment


def written(path: Path, n: int) -> Path:
    with FileStorage(path) as fs:
        fs.append(entries(1, n))
    return only_segment(path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[:-3], id="cut-short"),
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]), id="bad-checksum"),
        pytest.param(lambda b: b + b"\x07\x00", id="partial-header"),
        pytest.param(lambda b: b + bytes(4096), id="zero-filled"),
        pytest.param(lambda b: b + b"\x40\x00\x00\x00\x11\x22\x33\x44abc", id="half-written"),
    ],
)
def test_a_torn_tail_is_discarded_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: Callable[[bytes], bytes]
) -> None:
    segment = written(tmp_path, 10)
    segment.write_bytes(damage(segment.read_bytes()))
    with caplog.at_level(logging.WARNING), FileStorage(tmp_path) as fs:
        assert fs.last_index() in (9, 10)
        assert fs.entries(1, fs.last_index() + 1) == entries(1, fs.last_index())
        fs.append(entries(fs.last_index() + 1, 12))  # appends go after the last good record
    assert "torn record" in caplog.text and str(segment) in caplog.text
    with FileStorage(tmp_path) as fs:
        assert fs.entries(1, 13) == entries(1, 12)


def test_corruption_in_the_middle_names_the_file_and_offset(tmp_path: Path) -> None:
    segment = written(tmp_path, 10)
    data = bytearray(segment.read_bytes())
    data[20] ^= 0x01  # inside the first record's payload
    segment.write_bytes(bytes(data))
    with pytest.raises(StorageCorruptError, match=rf"{segment} at offset 0: checksum mismatch") as err:
        FileStorage(tmp_path)
    assert (err.value.path, err.value.offset) == (segment, 0)


def test_a_damaged_segment_that_is_not_the_last_is_corruption(tmp_path: Path) -> None:
    with FileStorage(tmp_path, segment_bytes=256) as fs:
        fs.append(entries(1, 40))
    first, *_ = sorted(tmp_path.glob("log-*.seg"))
    first.write_bytes(first.read_bytes()[:-2])
    with pytest.raises(StorageCorruptError, match=str(first)):
        FileStorage(tmp_path, segment_bytes=256)


class Crash(Exception):
    pass


def crash_at(fs: FileStorage, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make fs.sync() die at `point`: before the log, before the hard-state file, or before deletions."""

    def boom(*args: object, **kwargs: object) -> None:
        raise Crash(point)

    if point == "before-log":
        monkeypatch.setattr(fs, "_flush_log", boom)
    elif point == "before-hard-state":
        original = fs._write_file

        def write_file(path: Path, data: bytes) -> None:
            if path.name == "hardstate":
                raise Crash(point)
            original(path, data)

        monkeypatch.setattr(fs, "_write_file", write_file)
    else:
        monkeypatch.setattr(fs, "_drop_dead_segments", boom)
    with pytest.raises(Crash):
        fs.sync()
    fs.abandon()


POINTS = ["before-log", "before-hard-state", "before-deletions"]


@pytest.mark.parametrize("point", POINTS)
def test_crash_inside_sync_after_an_applied_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    with FileStorage(tmp_path) as fs:
        fs.append(entries(1, 20))
        fs.set_hard_state(HardState(term=1, vote="a", commit=10))
    fs = FileStorage(tmp_path)
    snap = Snapshot(index=30, term=2, conf=ConfState(voters=("b",)), data=b"from the leader")
    fs.apply_snapshot(snap)
    fs.append(entries(31, 35, term=2))
    fs.set_hard_state(HardState(term=2, vote=None, commit=32))
    crash_at(fs, monkeypatch, point)
    with FileStorage(tmp_path) as fs:
        got = (fs.snapshot(), fs.first_index(), fs.last_index(), fs.hard_state)
    old_hs, new_hs = HardState(term=1, vote="a", commit=10), HardState(term=2, commit=32)
    expected = {
        "before-log": (Snapshot(), 1, 20, old_hs),  # the snapshot file is not named by anything durable
        "before-hard-state": (snap, 31, 35, old_hs),  # the reset record names it
        "before-deletions": (snap, 31, 35, new_hs),
    }[point]
    assert got == expected


@pytest.mark.parametrize("point", POINTS)
def test_crash_inside_sync_after_a_created_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    with FileStorage(tmp_path, segment_bytes=200) as fs:
        fs.append(entries(1, 20))
    fs = FileStorage(tmp_path, segment_bytes=200)
    fs.append(entries(21, 25))
    snap = fs.create_snapshot(25, ConfState(voters=("a",)), b"fsm")
    fs.compact(22)
    fs.set_hard_state(HardState(term=1, commit=25))
    crash_at(fs, monkeypatch, point)
    with FileStorage(tmp_path, segment_bytes=200) as fs:
        got = (fs.snapshot(), fs.first_index(), fs.last_index(), fs.hard_state.commit)
        assert fs.entries(fs.first_index(), fs.last_index() + 1) == entries(fs.first_index(), fs.last_index())
    expected = {
        "before-log": (Snapshot(), 1, 20, 0),
        "before-hard-state": (Snapshot(), 1, 25, 0),
        "before-deletions": (snap, 23, 25, 25),
    }[point]
    assert got == expected


WRITER = textwrap.dedent(
    """
    import sys
    from orchestrator.raft import ConfState, Entry, HardState
    from orchestrator.runtime.aio.storage import FileStorage

    fs = FileStorage(sys.argv[1], segment_bytes=32 * 1024)
    i = fs.last_index()
    while True:
        fs.append([Entry(term=1, index=k, data=b"%d" % k * 20) for k in range(i + 1, i + 21)])
        i += 20
        fs.set_hard_state(HardState(term=1, vote="w", commit=i))
        if i % 1000 == 0:
            fs.create_snapshot(i - 100, ConfState(voters=("w",)), b"snapshot %d" % (i - 100))
            if i - 300 >= fs.first_index():
                fs.compact(i - 300)
        fs.sync()
        print(i, flush=True)
    """
)


@pytest.mark.parametrize("round_", range(3))
def test_a_writer_killed_with_sigkill_keeps_everything_it_synced(tmp_path: Path, round_: int) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    data = tmp_path / "raft"
    synced = 0
    for life in range(3):  # each life resumes the previous one's log after its kill
        child = subprocess.Popen([sys.executable, str(script), str(data)], stdout=subprocess.PIPE, text=True)
        assert child.stdout is not None
        stop_after = 20 + 37 * life + 11 * round_  # syncs: vary where in its loop the kill lands
        for _ in range(stop_after):
            line = child.stdout.readline()
            assert line, "the writer died"
            synced = int(line)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        synced = max([synced, *(int(line) for line in child.stdout)])  # printed before the kill landed
        with FileStorage(data, segment_bytes=32 * 1024) as fs:
            first, last = fs.first_index(), fs.last_index()
            assert last >= synced and fs.hard_state.commit >= synced
            assert fs.entries(first, last + 1) == [
                Entry(term=1, index=k, data=b"%d" % k * 20) for k in range(first, last + 1)
            ]
            snap = fs.snapshot()
            if snap.index:
                assert snap.data == b"snapshot %d" % snap.index and first - 1 <= snap.index <= last


def test_segments_a_crash_undeletes_come_back_as_a_suffix_and_replay_the_same(tmp_path: Path) -> None:
    """sync deletes oldest first, each unlink durable before the next: a crash can only leave the newest of
    the files it was deleting, and any such suffix must replay to the state the sync made durable."""
    data = tmp_path / "raft"
    fs = FileStorage(data, segment_bytes=300)
    fs.append(entries(1, 40))
    fs.sync()
    steps: list[Callable[[FileStorage], object]] = [
        lambda fs: (fs.apply_snapshot(Snapshot(index=30, term=2, data=b"s")), fs.append(entries(31, 60, term=2))),
        lambda fs: (fs.create_snapshot(50, ConfState(), b"t"), fs.compact(45)),
        lambda fs: (fs.append(entries(61, 90, term=2)), fs.create_snapshot(85, ConfState(), b"u"), fs.compact(85)),
    ]
    for step in steps:
        before = {p.name: p.read_bytes() for p in data.glob("log-*.seg")}
        step(fs)
        fs.sync()
        expected = (fs.snapshot(), fs.first_index(), fs.last_index(), fs.entries(fs.first_index(), fs.last_index() + 1))
        deleted = sorted(set(before) - {p.name for p in data.glob("log-*.seg")})
        assert deleted
        for k in range(len(deleted)):
            scratch = tmp_path / f"scratch-{k}"
            scratch.mkdir()
            for p in data.iterdir():
                if p.name != "LOCK":
                    (scratch / p.name).write_bytes(p.read_bytes())
            for name in deleted[k:]:
                (scratch / name).write_bytes(before[name])
            with FileStorage(scratch, segment_bytes=300) as again:
                got = (again.snapshot(), again.first_index(), again.last_index())
                assert (*got, again.entries(got[1], got[2] + 1)) == expected, (deleted, k)
            for p in scratch.iterdir():
                p.unlink()
            scratch.rmdir()
    fs.close()


class FailingOs:
    """The os module as storage sees it, but the `fail_at`-th write, fsync, open, rename or unlink raises."""

    def __init__(self) -> None:
        self.fail_at = 0  # 0: never
        self.calls = 0

    def tick(self) -> None:
        if self.fail_at:
            self.calls += 1
            if self.calls == self.fail_at:
                raise Crash(self.calls)

    def __getattr__(self, name: str) -> object:
        real = getattr(os, name)
        if name not in ("write", "fsync", "fdatasync", "open", "replace", "unlink"):
            return real

        def call(*args: object, **kwargs: object) -> object:
            self.tick()
            return real(*args, **kwargs)

        return call


@pytest.mark.parametrize("seed", range(6))
def test_a_crash_at_any_io_call_inside_sync_leaves_a_state_that_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Whatever I/O call a crash interrupts, the directory opens; the hard state is the old or the new one (and
    if new, so is the log); the snapshot is the old, the new, or one applied in between."""
    failing = FailingOs()
    monkeypatch.setattr(storage, "os", failing)
    monkeypatch.setattr(storage, "_datasync", lambda fd: failing.fdatasync(fd))  # type: ignore[attr-defined]
    real_unlink = Path.unlink

    def unlink(path: Path, missing_ok: bool = False) -> None:
        failing.tick()
        real_unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    rng = random.Random(seed)
    disk, fs = SimDisk(), FileStorage(tmp_path, segment_bytes=300)
    crashes = 0
    for _ in range(300):
        name, args = random_op(rng, disk.live)
        try:
            getattr(disk, name)(*args)
        except Exception:
            continue
        getattr(fs, name)(*args)
        if rng.random() > 0.25:
            continue
        applied = [a[0] for n, a in disk._journal if n == "apply_snapshot"]
        before = view(disk.durable)
        disk.sync()
        after = view(disk.durable)
        failing.fail_at, failing.calls = rng.randint(1, 25), 0
        try:
            fs.sync()
        except Crash:
            crashes += 1
            failing.fail_at = 0
            fs.abandon()
            fs = FileStorage(tmp_path, segment_bytes=300)
            got = view(fs)
            assert got[1] in (before[1], after[1]) and got[2] in (before[2], after[2], *applied)
            assert got[1] == before[1] or got[3:] == after[3:]
            disk = SimDisk()  # go on from what was recovered
            disk.live.apply_snapshot(Snapshot(index=fs.first_index() - 1, term=fs.term(fs.first_index() - 1)))
            disk.live.append(fs.entries(fs.first_index(), fs.last_index() + 1))
            disk.live._snapshot, disk.live._hard = fs.snapshot(), fs.hard_state
            disk.durable = copy.deepcopy(disk.live)
        failing.fail_at = 0
        assert view(fs) == view(disk.live)
    assert crashes > 10
    fs.close()
