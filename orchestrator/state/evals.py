"""Evaluation writes; a successful evaluation cancels its job's blocked ones and reports queued counts."""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.structs import Evaluation
from orchestrator.structs.codec import replace
from orchestrator.structs.evaluation import EVAL_BLOCKED, EVAL_CANCELED, EVAL_COMPLETE

from .core import Write
from .jobs import JobWrites
from .records import ALLOCS, EVALS


class EvalWrites(JobWrites):
    __slots__ = ()

    def upsert_evals(self, index: int, evals: Iterable[Evaluation]) -> None:
        with self._writing(index) as w:
            for evaluation in evals:
                self._upsert_eval(w, evaluation)

    def delete_evals(self, index: int, eval_ids: Iterable[str], alloc_ids: Iterable[str] = ()) -> None:
        """Garbage-collect evaluations (and, as Nomad's GC does in the same write, allocations)."""
        with self._writing(index) as w:
            w.eval_delete = True
            for table, ids in ((EVALS, eval_ids), (ALLOCS, alloc_ids)):
                for object_id in ids:
                    old = self._delete(w, table, object_id)
                    if old is not None and old.job_id:
                        w.job_checks[(old.namespace, old.job_id)] = None

    def _upsert_eval(self, w: Write, evaluation: Evaluation) -> None:
        table = self._tables[EVALS]
        stored = table.get(evaluation.id)
        create_index = stored.create_index if stored is not None else w.index
        new = replace(evaluation, create_index=create_index, modify_index=w.index)
        self._put(w, EVALS, new.id, new)
        if not new.job_id:
            return
        key = (new.namespace, new.job_id)
        w.job_checks[key] = None
        if new.queued_allocations:
            self._set_queued(w, key, new.queued_allocations)
        if new.status == EVAL_COMPLETE and not new.failed_tg_allocs:
            # Everything placed: the job's blocked evaluations waited for capacity it no longer needs.
            for other in table.members("job", key):
                if other.status == EVAL_BLOCKED and other.id != new.id:
                    self._put(w, EVALS, other.id, replace(
                        other, status=EVAL_CANCELED, status_description=f'evaluation "{new.id}" successful',
                        modify_index=w.index))
