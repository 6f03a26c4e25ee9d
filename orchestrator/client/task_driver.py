"""The task driver port: how the client starts, stops and watches tasks (simulated, raw_exec, docker...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestrator.structs import Allocation, Task


@dataclass(frozen=True, slots=True)
class TaskExit:
    """A task process that ended: on its own, after `stop`, or killed from outside."""

    handle: str
    exit_code: int = 0
    signal: int = 0
    failed: bool = False  # not successful in Nomad's sense: exit code or signal non-zero, or an error
    message: str = ""  # the driver's error text, shown as "Exit Message" in the Terminated event


class DriverError(Exception):
    """`start` failed; a recoverable error lets the restart policy try again, as in Nomad."""

    def __init__(self, message: str, recoverable: bool = True):
        super().__init__(message)
        self.recoverable = recoverable


class TaskDriver(Protocol):
    """What the client asks of a driver. Sans-IO as the client: exits are collected with `poll`.

    A runtime with real drivers implements `poll` over the exits its watchers recorded and
    `next_deadline` as None (it wakes the agent itself when a process exits); the simulated driver
    computes exits from the virtual clock.
    """

    def start(self, now: float, alloc: Allocation, task: Task) -> str:
        """Start the task; returns its handle id. Raises DriverError when the task cannot be started."""
        ...

    def stop(self, now: float, handle: str, kill_timeout: float) -> None:
        """Send the task its kill signal, then kill it if still running after `kill_timeout` seconds."""
        ...

    def recover(self, now: float, handle: str) -> bool:
        """Reattach to a task started before the client restarted; False when the driver lost it."""
        ...

    def poll(self, now: float) -> list[TaskExit]:
        """Tasks that exited since the last poll (each reported once)."""
        ...

    def next_deadline(self) -> float | None:
        """When the next known exit happens (for the client's own next_deadline); None if none is known."""
        ...
