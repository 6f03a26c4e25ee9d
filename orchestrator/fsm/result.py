"""What applying one command gives back (ApplyResult), and the errors the FSM raises or reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.structs import Evaluation


class CommandError(Exception):
    """A log entry the FSM cannot apply at all. Fatal to the server, as Nomad panics: every server holds
    the same log, so skipping it on one would make the servers' states differ."""


class UnknownCommandError(CommandError):
    """An entry of a type this server does not know, without IgnoreUnknown (written by a newer server)."""


class MalformedCommandError(CommandError):
    """An entry that is not a msgpack map with a string `Type`."""


class Rejected(Exception):
    """A handler refuses a command before changing anything; the message is the error the caller sees."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """The outcome of one command, identical on every server (the leader acts on it, followers drop it).

    `error` non-empty means the command was refused and the store left unchanged. The id collections (sorted
    tuples, never sets: the leader acts on them in order, and a set's order of strings changes with
    PYTHONHASHSEED, so one seed would not replay the same run in another process) tell the leader what to
    wake: `evals` (as stored) go to the eval broker when pending and to blocked-evals tracking when
    blocked (a complete one without failures lets the tracker drop its job's blocked evals);
    `unblock_classes`/`unblock_nodes` are Nomad's blockedEvals.Unblock(class) / UnblockNode(node);
    `alloc_nodes` are nodes whose clients must pull allocations again; `nodes` are nodes registered,
    status-changed, drain-changed or deregistered (heartbeat timers, the drainer); `jobs` are jobs
    registered or deregistered (the periodic dispatcher); `deployments` are deployments created, changed or
    deleted (the watcher).
    """

    response: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    skipped: bool = False
    evals: tuple[Evaluation, ...] = ()
    unblock_classes: tuple[str, ...] = ()
    unblock_nodes: tuple[str, ...] = ()
    alloc_nodes: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    jobs: tuple[tuple[str, str], ...] = ()
    deployments: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error
