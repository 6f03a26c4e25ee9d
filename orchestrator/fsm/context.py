"""One command being applied: its checked payload fields, the single write it makes, and what it woke."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from orchestrator.state import StateStore
from orchestrator.state.core import Write
from orchestrator.structs import Allocation, Deployment, Evaluation, decode
from orchestrator.structs.evaluation import EVAL_CANCELED, EVAL_COMPLETE

from .result import ApplyResult, Rejected

T = TypeVar("T")

NS_PER_SECOND = 1_000_000_000


# -- payload fields, checked: a field of the wrong type rejects the command ---------------------------

def get_str(cmd: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = cmd.get(key)
    if value is None or value == "":
        if required:
            raise Rejected(f"missing {key}")
        return ""
    if not isinstance(value, str):
        raise Rejected(f"{key}: expected a string, got {value!r}")
    return value


def get_int(cmd: dict[str, Any], key: str) -> int:
    value = cmd.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise Rejected(f"{key}: expected an integer, got {value!r}")
    return value


def get_bool(cmd: dict[str, Any], key: str) -> bool:
    value = cmd.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise Rejected(f"{key}: expected a bool, got {value!r}")
    return value


def get_strs(cmd: dict[str, Any], key: str) -> list[str]:
    value = cmd.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Rejected(f"{key}: expected a list of strings, got {value!r}")
    return value


def get_dict(cmd: dict[str, Any], key: str) -> dict[str, Any]:
    value = cmd.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Rejected(f"{key}: expected a map, got {type(value).__name__}")
    return value


def get_struct(cls: type[T], cmd: dict[str, Any], key: str, *, required: bool = False) -> T | None:
    """A struct from its API-shaped map (structs.decode); None when absent unless required."""
    value = cmd.get(key)
    if value is None:
        if required:
            raise Rejected(f"missing {key}")
        return None
    return decode(cls, value, key)  # a DecodeError is a ValueError: the FSM rejects the command


def get_structs(cls: type[T], cmd: dict[str, Any], key: str) -> list[T]:
    value = cmd.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise Rejected(f"{key}: expected a list, got {type(value).__name__}")
    return [decode(cls, v, f"{key}[{i}]") for i, v in enumerate(value)]


def get_evals(cmd: dict[str, Any]) -> list[Evaluation]:
    """The evaluations a command carries, under `Eval` (one) and `Evals` (a list); each needs an ID."""
    evals = get_structs(Evaluation, cmd, "Evals")
    single = get_struct(Evaluation, cmd, "Eval")
    if single is not None:
        evals.append(single)
    for evaluation in evals:
        if not evaluation.id:
            raise Rejected("evaluation ID must be set")
    return evals


# -- the command being applied ------------------------------------------------------------------------

class _CommandWrite:
    """`with ctx.write():` (a class, not a generator: it is entered for every command on every server)."""

    __slots__ = ("batch", "ctx")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.batch = ctx.store.batch(ctx.index)

    def __enter__(self) -> None:
        self.ctx.write_state = self.batch.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.batch.__exit__(exc_type, exc, tb)


class Context:
    """The store and index a handler works at, and what the command changed that the leader must act on."""

    __slots__ = ("_alloc_watch", "_deployment_watch", "_eval_ids", "alloc_nodes", "deployments", "index",
                 "jobs", "nodes", "store", "unblock_classes", "unblock_nodes", "write_state")

    def __init__(self, store: StateStore, index: int) -> None:
        self.store = store
        self.index = index
        self.write_state: Write | None = None
        self.unblock_classes: set[str] = set()
        self.unblock_nodes: set[str] = set()
        self.alloc_nodes: set[str] = set()
        self.nodes: set[str] = set()
        self.jobs: set[tuple[str, str]] = set()
        self.deployments: set[str] = set()
        self._eval_ids: dict[str, None] = {}
        self._alloc_watch: dict[str, Allocation | None] = {}
        self._deployment_watch: dict[str, Deployment | None] = {}

    def write(self) -> _CommandWrite:
        """The command's one write: every store write inside is committed together, at the end."""
        return _CommandWrite(self)

    def wrote_anything(self) -> bool:
        return self.write_state is not None and bool(self.write_state.touched)

    # -- watching objects the write may change (call before the write) --------------------------------

    def watch_evals(self, evals: Iterable[Evaluation]) -> None:
        for evaluation in evals:
            self._eval_ids[evaluation.id] = None

    def watch_allocs(self, alloc_ids: Iterable[str]) -> None:
        """Allocations as they are before the write: those whose client must pull them again, whose
        deployment changes, or that stop holding resources are reported after it."""
        for alloc_id in alloc_ids:
            if alloc_id not in self._alloc_watch:
                alloc = self.store.alloc_by_id(alloc_id)
                self._alloc_watch[alloc_id] = alloc
                if alloc is not None and alloc.deployment_id:
                    self.watch_deployments([alloc.deployment_id])

    def watch_deployments(self, deployment_ids: Iterable[str]) -> None:
        for deployment_id in deployment_ids:
            if deployment_id and deployment_id not in self._deployment_watch:
                self._deployment_watch[deployment_id] = self.store.deployment_by_id(deployment_id)

    def unblock_node(self, node_id: str) -> None:
        """The node may take new work: blocked evaluations for its class, and system ones for it, retry."""
        node = self.store.node_by_id(node_id)
        if node is not None:
            self.unblock_classes.add(node.computed_class or node.compute_class())
            self.unblock_nodes.add(node_id)

    # -- the result ------------------------------------------------------------------------------------

    def _compare_allocs(self) -> None:
        store = self.store
        for alloc_id, old in self._alloc_watch.items():
            new = store.alloc_by_id(alloc_id)
            if new is old:
                continue
            if old is None or new is None or old.alloc_modify_index != new.alloc_modify_index:
                self.alloc_nodes.update(a.node_id for a in (old, new) if a is not None and a.node_id)
            elif old.node_id != new.node_id:
                self.alloc_nodes.update((old.node_id, new.node_id))
            if old is not None and not old.terminal() and (new is None or new.terminal()):
                # Its resources are free again (Nomad unblocks when a client reports an allocation done).
                node = store.node_by_id(old.node_id)
                if node is not None:
                    self.unblock_classes.add(node.computed_class or node.compute_class())

    def _stored_evals(self) -> tuple[Evaluation, ...]:
        store, seen = self.store, dict(self._eval_ids)
        evals = [e for e in map(store.eval_by_id, self._eval_ids) if e is not None]
        for evaluation in list(evals):
            if evaluation.status != EVAL_COMPLETE or evaluation.failed_tg_allocs or not evaluation.job_id:
                continue
            # The store cancelled the job's blocked evaluations: the leader must stop tracking them too.
            for other in store.evals_by_job(evaluation.namespace, evaluation.job_id):
                if other.status == EVAL_CANCELED and other.modify_index == self.index and other.id not in seen:
                    seen[other.id] = None
                    evals.append(other)
        return tuple(evals)

    def result(self, response: dict[str, Any] | None = None) -> ApplyResult:
        self._compare_allocs()
        for deployment_id, old in self._deployment_watch.items():
            if self.store.deployment_by_id(deployment_id) is not old:
                self.deployments.add(deployment_id)
        body = {"Index": self.index}
        body.update(response or {})
        return ApplyResult(response=body, evals=self._stored_evals(),
                           unblock_classes=tuple(sorted(self.unblock_classes)),
                           unblock_nodes=tuple(sorted(self.unblock_nodes)),
                           alloc_nodes=tuple(sorted(self.alloc_nodes)), nodes=tuple(sorted(self.nodes)),
                           jobs=tuple(sorted(self.jobs)), deployments=tuple(sorted(self.deployments)))

    def eval_response(self, evals: list[Evaluation]) -> dict[str, Any]:
        """Nomad's EvalID and EvalCreateIndex for a command carrying at most one evaluation."""
        if not evals:
            return {"EvalID": "", "EvalCreateIndex": 0}
        stored = self.store.eval_by_id(evals[-1].id)
        return {"EvalID": evals[-1].id, "EvalCreateIndex": stored.create_index if stored is not None else 0}
