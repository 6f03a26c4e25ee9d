"""Namespace writes; the `default` namespace always exists and cannot be deleted."""

from __future__ import annotations

from orchestrator.structs.codec import replace

from .core import StoreCore
from .records import (
    DEFAULT_NAMESPACE,
    JOB_STATUS_DEAD,
    JOBS,
    NAMESPACES,
    Namespace,
    NotFoundError,
    StateError,
)


class NamespaceWrites(StoreCore):
    __slots__ = ()

    def upsert_namespace(self, index: int, namespace: Namespace) -> None:
        existing = self._tables[NAMESPACES].get(namespace.name)
        create_index = existing.create_index if existing is not None else index
        with self._writing(index) as w:
            self._put(w, NAMESPACES, namespace.name,
                      replace(namespace, create_index=create_index, modify_index=index))

    def delete_namespace(self, index: int, name: str) -> None:
        if name == DEFAULT_NAMESPACE:
            raise StateError("default namespace can not be deleted")
        if self._tables[NAMESPACES].get(name) is None:
            raise NotFoundError(f"namespace not found: {name!r}")
        # Jobs that are dead may go with their namespace; live ones would be orphaned (as Nomad refuses).
        for job in self._tables[JOBS].iter_members("namespace", name):
            if job.status != JOB_STATUS_DEAD:
                raise StateError(f"namespace {name!r} contains at least one non-terminal job {job.id!r}")
        with self._writing(index) as w:
            self._delete(w, NAMESPACES, name)
