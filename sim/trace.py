"""A running hash over a simulation's deliveries and faults: equal hashes mean the runs did the same."""

from __future__ import annotations

import hashlib
from typing import Any

from sim.runtime import SimRuntime

SUMMARY_FIELDS = ("type", "method", "id", "term", "index")


def _fields_of(message: Any) -> tuple[str, ...]:
    # A method named like a field would summarise as its bound repr, which holds a memory address.
    return tuple(name for name in SUMMARY_FIELDS
                 if hasattr(message, name) and not callable(getattr(message, name)))


class Trace:
    """Hashes (time in µs, src, dst, message summary) for every delivery, plus fault events and state.

    The summary is the message's class name and its type/method/id/term/index attributes (or keys, for
    dicts): cheap, since the trace sees every message, yet enough that two runs which diverge almost
    always differ within a few messages. Only str() of those values goes in, so nothing depends on the
    process (no id() or default hash()), and the hash of a seeded run is the same in every process.
    """

    def __init__(self, *, keep: int = 0):
        self._hash = hashlib.blake2b(digest_size=16)
        self._fields: dict[type, tuple[str, ...]] = {}
        self.deliveries = 0
        self.faults = 0
        self.keep = keep  # how many recent lines to keep for debugging a divergence (0: none)
        self.recent: list[str] = []

    def attach(self, runtime: SimRuntime) -> Trace:
        runtime.on_deliver.append(self.record_delivery)
        runtime.on_fault.append(self.record_fault)
        return self

    def summary(self, message: Any) -> str:
        cls = type(message)
        if cls is dict:
            return "dict" + "".join(f"|{message[k]}" for k in SUMMARY_FIELDS if k in message)
        fields = self._fields.get(cls)
        if fields is None:
            fields = self._fields[cls] = _fields_of(message)
        return cls.__name__ + "".join(f"|{getattr(message, name, None)}" for name in fields)

    def record_delivery(self, time: float, src: str, dst: str, message: Any) -> None:
        self.deliveries += 1
        self._update(f"D{round(time * 1e6)} {src}>{dst} {self.summary(message)}")

    def record_fault(self, time: float, kind: str, target: Any, details: dict[str, Any]) -> None:
        self.faults += 1
        extra = "".join(f" {k}={details[k]}" for k in sorted(details))
        self._update(f"F{round(time * 1e6)} {kind} {target}{extra}")

    def add_state(self, digest: str | bytes) -> None:
        """Fold in the caller's digest of the final state (e.g. each server's FSM at the end)."""
        self._update("S" + (digest.hex() if isinstance(digest, bytes) else digest))

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def _update(self, line: str) -> None:
        self._hash.update(line.encode() + b"\n")
        if self.keep:
            self.recent.append(line)
            if len(self.recent) > 2 * self.keep:
                del self.recent[:-self.keep]
