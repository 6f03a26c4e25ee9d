"""The client's durable state on disk: an append-only msgpack log of state batches, compacted atomically."""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import msgpack

from .state import ClientSnapshot, ClientStateBatch

log = logging.getLogger(__name__)

STATE_FILE = "client-state.msgpack"
_SNAPSHOT, _BATCH = "snapshot", "batch"
_COMPACT_MIN_BYTES = 1 << 20


class FileClientStateStore:
    """A ClientStateStore kept in `<state dir>/client-state.msgpack`.

    `write` (on the event loop) applies a batch to the in-memory copy and queues its record; `sync` (the
    runtime's fsync step, in a worker thread, never concurrent with `write`) appends the queued records and
    fsyncs. When the log outgrows a few times the live state, `sync` rewrites it as one snapshot record
    (temporary file, fsync, rename): a crash at any point leaves either the old or the new file whole. A
    torn last record (the crash came mid-append) is dropped when loading.
    """

    def __init__(self, state_dir: Path | str):
        self.dir = Path(state_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / STATE_FILE
        self.node: dict[str, Any] = {}
        self.allocs: dict[str, dict[str, Any]] = {}
        self.runners: dict[str, dict[str, Any]] = {}
        self._pending: list[bytes] = []
        self._size = 0
        self._live = 0  # bytes of the last snapshot: compaction is due once the log is much larger
        self.writes = 0
        self._read()

    # -- the ClientStateStore port --------------------------------------------------------------------------

    def write(self, batch: ClientStateBatch) -> None:
        self.writes += 1
        self._apply(batch.node, batch.allocs, batch.runners, batch.deleted)
        record = {"Kind": _BATCH, "Node": batch.node, "Allocs": batch.allocs, "Runners": batch.runners,
                  "Deleted": batch.deleted}
        self._pending.append(msgpack.packb(record, use_bin_type=True))

    def load(self) -> ClientSnapshot:
        return ClientSnapshot(node=dict(self.node), allocs=dict(self.allocs), runners=copy.deepcopy(self.runners))

    # -- durability ---------------------------------------------------------------------------------------

    def has_state(self) -> bool:
        return bool(self.node or self.allocs)

    def sync(self) -> None:
        """Make every batch written so far durable (the runtime calls it after `persist`)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self._size > max(_COMPACT_MIN_BYTES, 4 * self._live):
            self._compact()
            return
        data = b"".join(pending)
        with open(self.path, "ab") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        self._size += len(data)

    def _compact(self) -> None:
        record = msgpack.packb({"Kind": _SNAPSHOT, "Node": self.node, "Allocs": self.allocs,
                                "Runners": self.runners}, use_bin_type=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(record)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a crash
        finally:
            os.close(dir_fd)
        self._size = self._live = len(record)

    # -- internals ------------------------------------------------------------------------------------------

    def _apply(self, node: dict[str, Any] | None, allocs: dict[str, Any], runners: dict[str, Any],
               deleted: list[str]) -> None:
        if node is not None:
            self.node = dict(node)
        self.allocs.update(allocs)
        self.runners.update(runners)
        for alloc_id in deleted:
            self.allocs.pop(alloc_id, None)
            self.runners.pop(alloc_id, None)

    def _read(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(raw)
        good = 0
        try:
            for record in unpacker:
                if not isinstance(record, dict):
                    break
                if record.get("Kind") == _SNAPSHOT:
                    self.node, self.allocs, self.runners = {}, {}, {}
                    self._live = unpacker.tell() - good
                self._apply(record.get("Node"), record.get("Allocs") or {}, record.get("Runners") or {},
                            record.get("Deleted") or [])
                good = unpacker.tell()
        except (msgpack.UnpackException, ValueError) as exc:
            log.warning("client state: dropping a damaged record at byte %d of %s: %s", good, self.path, exc)
        if good < len(raw):
            # A torn tail: cut it off so later appends follow the last whole record.
            with open(self.path, "r+b") as out:
                out.truncate(good)
        self._size = good
