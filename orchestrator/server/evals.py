"""Evaluations the server creates itself: for a job's registration, a node's change, a failed allocation."""

from __future__ import annotations

from orchestrator.scheduler.ids import new_id
from orchestrator.scheduler.ports import Rng
from orchestrator.state import StateReader
from orchestrator.structs import Evaluation, Job


def new_eval(rng: Rng, job: Job, triggered_by: str, now_ns: int, **fields: object) -> Evaluation:
    """A pending evaluation of `job`, stamped with the leader's time."""
    return Evaluation(id=new_id(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                      triggered_by=triggered_by, job_id=job.id, job_modify_index=job.job_modify_index,
                      create_time=now_ns, modify_time=now_ns, **fields)  # type: ignore[arg-type]


def node_evals(state: StateReader, node_id: str, node_modify_index: int, triggered_by: str, rng: Rng,
               now_ns: int) -> list[Evaluation]:
    """One evaluation per job with allocations on the node, plus every system job, as Nomad's
    createNodeEvals: the schedulers then mark lost work and place it elsewhere (or here, once ready)."""
    jobs: dict[tuple[str, str], Job] = {}
    for alloc in state.allocs_by_node(node_id):
        if alloc.terminal():
            continue
        job = state.job_by_id(alloc.namespace, alloc.job_id)
        if job is not None:
            jobs[(job.namespace, job.id)] = job
    for job_type in ("system", "sysbatch"):
        for job in state.jobs_by_type(job_type):
            if not job.stop:
                jobs[(job.namespace, job.id)] = job
    return [new_eval(rng, job, triggered_by, now_ns, node_id=node_id, node_modify_index=node_modify_index)
            for _, job in sorted(jobs.items())]


def job_evals(state: StateReader, job_keys: set[tuple[str, str]], triggered_by: str, rng: Rng,
              now_ns: int) -> list[Evaluation]:
    """One evaluation per still-registered job among `job_keys`."""
    out = []
    for namespace, job_id in sorted(job_keys):
        job = state.job_by_id(namespace, job_id)
        if job is not None and not job.stop:
            out.append(new_eval(rng, job, triggered_by, now_ns))
    return out
