"""Following an evaluation and then its deployment to the end, printing what changes as `nomad job run` does."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .flags import err, out, q
from .format import format_kv, format_list, format_time, limit
from .resources import format_deployment_groups

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

EVAL_TERMINAL = ("complete", "failed", "canceled", "cancelled")
# Nomad 1.0 polls the evaluation once a second and waits up to 2 s per blocking query on the deployment.
POLL_SECONDS = 1.0
DEPLOYMENT_WAIT_SECONDS = 2.0
DEPLOYMENT_TERMINAL = ("successful", "failed", "cancelled", "blocked")


def format_alloc_metrics(metrics: dict, prefix: str, *, scores: bool = False) -> str:
    """Nomad's formatAllocMetrics: why nodes were filtered or exhausted, one "* ..." line each."""
    lines = []
    if not metrics.get("NodesEvaluated"):
        lines.append(f"{prefix}* No nodes were eligible for evaluation")
    for dc, available in sorted((metrics.get("NodesAvailable") or {}).items()):
        if available == 0:
            lines.append(f"{prefix}* No nodes are available in datacenter {q(dc)}")
    for cls, num in sorted((metrics.get("ClassFiltered") or {}).items()):
        lines.append(f"{prefix}* Class {q(cls)}: {num} nodes excluded by filter")
    for constraint, num in sorted((metrics.get("ConstraintFiltered") or {}).items()):
        lines.append(f"{prefix}* Constraint {q(constraint)}: {num} nodes excluded by filter")
    if metrics.get("NodesExhausted"):
        lines.append(f"{prefix}* Resources exhausted on {metrics['NodesExhausted']} nodes")
    for cls, num in sorted((metrics.get("ClassExhausted") or {}).items()):
        lines.append(f"{prefix}* Class {q(cls)} exhausted on {num} nodes")
    for dim, num in sorted((metrics.get("DimensionExhausted") or {}).items()):
        lines.append(f"{prefix}* Dimension {q(dim)} exhausted on {num} nodes")
    for dim in metrics.get("QuotaExhausted") or []:
        lines.append(f"{prefix}* Quota limit hit {q(dim)}")
    text = "\n".join(lines)
    score_meta = metrics.get("ScoreMetaData") or []
    if scores and score_meta:
        names = sorted({name for meta in score_meta for name in (meta.get("Scores") or {})})
        rows = ["Node|" + "|".join(names) + "|final score"]
        for meta in score_meta:
            values = [_go_g3((meta.get("Scores") or {}).get(name, 0)) for name in names]
            rows.append("|".join([meta.get("NodeID", ""), *values, _go_g3(meta.get("NormScore", 0))]))
        text = (text + "\n" if text else "") + format_list(rows)
    return text


def _go_g3(value: float) -> str:
    """Go's %.3g: three significant digits, no trailing zeros."""
    return f"{value:.3g}"


def format_deployment(deployment: dict | None, length: int, *, job_fields: bool = True) -> str:
    """Nomad's formatDeployment (deployment status) or, without `job_fields`, job status's short form."""
    if deployment is None:
        return "No deployment found"
    rows = [f"ID|{limit(deployment['ID'], length)}"]
    if job_fields:
        rows += [f"Job ID|{deployment.get('JobID', '')}", f"Job Version|{deployment.get('JobVersion', 0)}"]
    rows += [f"Status|{deployment.get('Status', '')}", f"Description|{deployment.get('StatusDescription', '')}"]
    text = format_kv(rows)
    if deployment.get("TaskGroups"):
        text += "\n\nDeployed\n" + format_deployment_groups(deployment)
    return text


@dataclass
class _EvalState:
    status: str = "pending"
    node: str = ""
    job: str = ""
    deployment: str = ""
    index: int = 0
    allocs: dict[str, dict] = field(default_factory=dict)


class EvalMonitor:
    """Polls an evaluation and its allocations once a second and prints each change, Nomad 1.0 style."""

    def __init__(self, client: ApiClient, length: int = 8) -> None:
        self.client = client
        self.length = length

    def monitor(self, eval_id: str, *, follow_deployment: bool = False) -> int:
        """0 when the evaluation (and deployment) succeeded, 2 when placements failed, 1 on errors."""
        from orchestrator.api.client import ApiError

        state = _EvalState()
        out(f"==> Monitoring evaluation {q(limit(eval_id, self.length))}")
        header_due = False
        while True:
            try:
                evaluation = self.client.evaluation(eval_id)
            except ApiError:
                err(f"==> No evaluation with id {q(eval_id)} found")
                return 1
            try:
                allocs = self.client.evaluation_allocations(eval_id)
            except ApiError as exc:
                err(f"==> Error reading allocations: {exc}")
                return 1
            update = _EvalState(status=evaluation.get("Status", ""), node=evaluation.get("NodeID", ""),
                                job=evaluation.get("JobID", ""), deployment=evaluation.get("DeploymentID", ""),
                                index=evaluation.get("CreateIndex", 0), allocs={a["ID"]: a for a in allocs})
            lines = self._changes(state, update)
            state = update
            if lines and header_due:
                # Nomad 1.0 announces the evaluation again when a later poll has news about it.
                out(f"==> Monitoring evaluation {q(limit(eval_id, self.length))}")
            for line in lines:
                out("    " + line)
            if evaluation.get("Status") not in EVAL_TERMINAL:
                header_due = True
                time.sleep(POLL_SECONDS)
                continue
            failed = self._finished(evaluation)
            if evaluation.get("NextEval"):
                return self._next(evaluation, follow_deployment)
            break
        # A placement failure ends the run with exit 2 at once: its deployment cannot finish until capacity
        # appears, and the operator needs to hear why now.
        if follow_deployment and state.deployment and not failed:
            out(f"==> Monitoring deployment {q(limit(state.deployment, self.length))}")
            status = DeploymentMonitor(self.client, self.length).monitor(state.deployment)
            if status != "successful":
                return 1
        return 2 if failed else 0

    def _changes(self, old: _EvalState, new: _EvalState) -> list[str]:
        lines = []
        if not old.node and new.node:
            lines.append(f"Evaluation triggered by node {q(limit(new.node, self.length))}")
        if not old.job and new.job:
            lines.append(f"Evaluation triggered by job {q(new.job)}")
        if not old.deployment and new.deployment:
            lines.append(f"Evaluation within deployment: {q(limit(new.deployment, self.length))}")
        for alloc_id, alloc in new.allocs.items():
            before = old.allocs.get(alloc_id)
            node, group = limit(alloc.get("NodeID"), self.length), alloc.get("TaskGroup", "")
            if before is None:
                if alloc.get("CreateIndex", 0) < new.index:
                    # An allocation older than the evaluation was updated in place, not created by it.
                    lines.append(f"Allocation {q(limit(alloc_id, self.length))} modified: node {q(node)}, "
                                 f"group {q(group)}")
                elif alloc.get("DesiredStatus") == "run":
                    lines.append(f"Allocation {q(limit(alloc_id, self.length))} created: node {q(node)}, "
                                 f"group {q(group)}")
            elif before.get("ClientStatus") != alloc.get("ClientStatus"):
                description = f" ({alloc['ClientDescription']})" if alloc.get("ClientDescription") else ""
                lines.append(f"Allocation {q(limit(alloc_id, self.length))} status changed: "
                             f"{q(before.get('ClientStatus'))} -> {q(alloc.get('ClientStatus'))}{description}")
        if old.status and new.status != "pending" and old.status != new.status:
            lines.append(f"Evaluation status changed: {q(old.status)} -> {q(new.status)}")
        return lines

    def _finished(self, evaluation: dict) -> bool:
        """Print how the evaluation ended; True when some allocations could not be placed."""
        eval_id, status = q(limit(evaluation["ID"], self.length)), q(evaluation.get("Status"))
        failed = evaluation.get("FailedTGAllocs") or {}
        if not failed:
            out(f"==> Evaluation {eval_id} finished with status {status}")
            return False
        out(f"==> Evaluation {eval_id} finished with status {status} but failed to place all allocations:")
        for group in sorted(failed):
            metrics = failed[group]
            coalesced = metrics.get("CoalescedFailures", 0)
            noun = "allocations" if coalesced else "allocation"
            out(f"    Task Group {q(group)} (failed to place {coalesced + 1} {noun}):")
            for line in format_alloc_metrics(metrics, "  ").split("\n"):
                out("    " + line)
        if evaluation.get("BlockedEval"):
            out(f"    Evaluation {q(limit(evaluation['BlockedEval'], self.length))} waiting for additional "
                "capacity to place remainder")
        return True

    def _next(self, evaluation: dict, follow_deployment: bool) -> int:
        wait = evaluation.get("Wait") or 0
        if wait:
            from .format import duration

            out(f"==> Monitoring next evaluation {q(limit(evaluation['NextEval'], self.length))} in {duration(wait)}")
            time.sleep(wait / 1e9)
        return self.monitor(evaluation["NextEval"], follow_deployment=follow_deployment)


class DeploymentMonitor:
    """Waits (blocking queries) for a deployment to end and prints its final state as Nomad's job run does."""

    def __init__(self, client: ApiClient, length: int = 8) -> None:
        self.client = client
        self.length = length

    def monitor(self, deployment_id: str, index: int = 0) -> str:
        from orchestrator.api.client import ApiError

        while True:
            started = time.monotonic()
            try:
                response = self.client.deployment(deployment_id, index=index, wait=DEPLOYMENT_WAIT_SECONDS)
            except ApiError as exc:
                err(f"    {format_time(time.time())}: Error fetching deployment: {exc}")
                return ""
            deployment = response.data or {}
            status = deployment.get("Status", "")
            if status in DEPLOYMENT_TERMINAL:
                break
            if response.index <= index and time.monotonic() - started < DEPLOYMENT_WAIT_SECONDS / 2:
                # An agent without blocking queries answers at once: do not spin on it.
                time.sleep(DEPLOYMENT_WAIT_SECONDS)
            index = max(index, response.index)
        mark = "✓" if status == "successful" else "!"
        out(f"  {mark} Deployment {q(limit(deployment_id, self.length))} {status}")
        out("")
        body = format_time(time.time()) + "\n" + format_deployment(deployment, self.length)
        for line in body.split("\n"):
            out(("    " + line) if line else "")
        out("")
        if status == "failed" and any(g.get("AutoRevert") for g in (deployment.get("TaskGroups") or {}).values()):
            # The job still failed to deploy the submitted version, whatever happens to the rollback.
            self._rollback(deployment)
        return status

    def _rollback(self, failed: dict) -> str:
        """After an auto-reverting failure, follow the deployment of the job version it rolled back to."""
        from orchestrator.api.client import ApiError

        time.sleep(1)
        try:
            rollback = self.client.job_latest_deployment(failed.get("JobID", ""))
        except ApiError as exc:
            err(f"    {format_time(time.time())}: Error fetching deployment of previous job version: {exc}")
            return ""
        if not rollback or rollback.get("ID") == failed.get("ID"):
            return ""
        out(f"==> Monitoring deployment {q(limit(rollback['ID'], self.length))}")
        return self.monitor(rollback["ID"])
