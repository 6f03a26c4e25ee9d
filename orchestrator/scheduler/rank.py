"""Ranking and selecting nodes for one task group: binpack or spread fit, job anti-affinity, affinities,
spread blocks and reschedule penalties, scored over every feasible node at once and updated per placement.

Nomad scores a random sample of log2(N) nodes per placement (its candidate limit) to keep Go loops
cheap; with whole-cluster arrays yurt scores every feasible node in less time, so placements are at
least as good as Nomad's best case. Ties are broken by a seeded jitter, never by global randomness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from orchestrator.structs import Allocation, AllocMetric, Job, NodeScoreMeta, TaskGroup

from .cluster import ClusterView
from .config import SchedulerConfig
from .constraints import check_operand, resolve_target
from .feasibility import constraint_reason
from .ports import Rng
from .resources import GroupAsk, assign_devices, assign_ports


@dataclass(slots=True)
class Selection:
    node_index: int
    ask_result: dict = field(default_factory=dict)  # ports and devices assigned on the node
    score: float = 0.0


def fit_scores(free_cpu: np.ndarray, free_mem: np.ndarray, algorithm: str) -> np.ndarray:
    """Nomad's ScoreFitBinPack/ScoreFitSpread on the fraction of each node left free after placing."""
    total = np.power(10.0, free_cpu) + np.power(10.0, free_mem)
    if algorithm == "spread":
        return np.clip((total - 2.0) / 18.0, 0.0, 1.0)
    return np.clip((20.0 - total) / 18.0, 0.0, 1.0)


class GroupPlacer:
    """Places the allocations of one task group, one at a time, keeping every score current."""

    def __init__(self, view: ClusterView, job: Job, group: TaskGroup, feasible: np.ndarray,
                 job_allocs: list[Allocation], config: SchedulerConfig, rng: Rng, metrics: AllocMetric):
        self.view, self.job, self.group, self.config, self.rng = view, job, group, config, rng
        self.metrics = metrics
        self.ask = GroupAsk.of(group)
        self.feasible = feasible.copy()
        n = len(view)
        np_rng = np.random.default_rng(rng.getrandbits(64))
        self.jitter = np_rng.random(n) * 1e-9
        self.collisions = np.zeros(n)
        self.desired = max(group.count, 1)
        self.penalty = np.zeros(n)
        for alloc in job_allocs:
            i = view.index.get(alloc.node_id)
            if i is not None and alloc.task_group == group.name:
                self.collisions[i] += 1
        self._distinct_hosts = any(c.operand == "distinct_hosts" for c in [*job.constraints, *group.constraints])
        if self._distinct_hosts:
            self.feasible &= self.collisions_all(job_allocs) == 0
        self._affinity = self._affinity_scores()
        self._spreads = [self._spread_state(s, job_allocs) for s in [*job.spreads, *group.spreads]]
        self._distinct_props = [self._distinct_property_state(c, job_allocs)
                                for c in [*job.constraints, *group.constraints]
                                if c.operand == "distinct_property"]
        self.scores = np.full(n, -np.inf)
        self._rescore(slice(None))

    # -- setup ------------------------------------------------------------------------------------

    def collisions_all(self, job_allocs: list[Allocation]) -> np.ndarray:
        counts = np.zeros(len(self.view))
        for alloc in job_allocs:
            i = self.view.index.get(alloc.node_id)
            if i is not None:
                counts[i] += 1
        return counts

    def _affinity_scores(self) -> np.ndarray | None:
        affinities = [*self.job.affinities, *self.group.affinities]
        for task in self.group.tasks:
            affinities.extend(task.affinities)
        if not affinities:
            return None
        total_weight = sum(abs(a.weight) for a in affinities) or 1
        scores = np.zeros(len(self.view))
        for affinity in affinities:
            values = np.fromiter(
                (check_operand(affinity.operand, *_targets(affinity, node)) for node in self.view.nodes),
                bool, len(self.view))
            scores += values * (affinity.weight / total_weight)
        return scores

    def _spread_state(self, spread, job_allocs: list[Allocation]) -> dict:
        value_ids, values = self.view.value_ids(spread.attribute)
        counts = np.zeros(len(values) + 1)  # the last slot counts allocs on nodes lacking the attribute
        for alloc in job_allocs:
            if alloc.task_group != self.group.name:
                continue
            i = self.view.index.get(alloc.node_id)
            if i is not None:
                counts[value_ids[i]] += 1
        desired = None
        if spread.spread_target:
            percents = {t.value: t.percent for t in spread.spread_target}
            rest = max(0, 100 - sum(percents.values()))
            unlisted = [v for v in values if str(v) not in percents]
            desired = np.zeros(len(values) + 1)
            for k, value in enumerate(values):
                pct = percents.get(str(value), percents.get("*", rest / len(unlisted) if unlisted else 0))
                desired[k] = pct / 100.0 * self.desired
        return {"weight": spread.weight, "ids": value_ids, "counts": counts, "desired": desired}

    def _distinct_property_state(self, constraint, job_allocs: list[Allocation]) -> dict:
        value_ids, values = self.view.value_ids(constraint.l_target)
        limit = int(constraint.r_target) if constraint.r_target.isdigit() else 1
        counts = np.zeros(len(values) + 1)
        for alloc in job_allocs:
            i = self.view.index.get(alloc.node_id)
            if i is not None:
                counts[value_ids[i]] += 1
        return {"ids": value_ids, "counts": counts, "limit": limit, "reason": constraint_reason(constraint)}

    # -- scoring ----------------------------------------------------------------------------------

    def _rescore(self, where) -> None:
        view, ask = self.view, self.ask
        cpu_after = view.cpu_used[where] + ask.cpu
        mem_after = view.mem_used[where] + ask.memory_mb
        disk_after = view.disk_used[where] + ask.disk_mb
        cpu_total, mem_total = view.cpu_total[where], view.mem_total[where]
        fits = ((cpu_after <= cpu_total) & (mem_after <= mem_total) & (disk_after <= view.disk_total[where])
                & self.feasible[where])
        with np.errstate(divide="ignore", invalid="ignore"):
            free_cpu = np.where(cpu_total > 0, 1.0 - cpu_after / cpu_total, 0.0)
            free_mem = np.where(mem_total > 0, 1.0 - mem_after / mem_total, 0.0)
        total = fit_scores(free_cpu, free_mem, self.config.algorithm)
        scorers = np.ones_like(total)
        collisions = self.collisions[where]
        anti = np.where(collisions > 0, -(collisions + 1) / self.desired, 0.0)
        total = total + anti
        scorers += collisions > 0
        penalty = self.penalty[where]
        total = total + penalty
        scorers += penalty != 0
        if self._affinity is not None:
            total = total + self._affinity[where]
            scorers += 1
        if self._spreads:
            total = total + self._spread_boost(where)
            scorers += 1
        score = total / scorers + self.jitter[where]
        self.scores[where] = np.where(fits, score, -np.inf)
        for prop in self._distinct_props:
            ids = prop["ids"][where]
            full = prop["counts"][ids] >= prop["limit"]
            self.scores[where] = np.where(full, -np.inf, self.scores[where])

    def _spread_boost(self, where) -> np.ndarray:
        total_weight = sum(s["weight"] for s in self._spreads) or 1
        boost = 0.0
        for s in self._spreads:
            ids = s["ids"][where]
            counts = s["counts"]
            current = counts[ids]
            if s["desired"] is not None:
                desired = s["desired"][ids]
                # The allocation being placed counts as used, as in Nomad, so a value already at
                # its target scores below one still under it.
                with np.errstate(divide="ignore", invalid="ignore"):
                    b = np.where(desired > 0, (desired - current - 1) / desired, -1.0)
            else:
                known = counts[:-1]
                low, high = (known.min(), known.max()) if len(known) else (0.0, 0.0)
                if high == low:
                    b = np.zeros_like(current)
                else:
                    b = (high - current) / high - (current - low) / high
            b = np.where(ids < 0, -1.0, np.clip(b, -1.0, 1.0))
            boost = boost + b * (s["weight"] / total_weight)
        return boost

    # -- selection --------------------------------------------------------------------------------

    def select(self, penalty_nodes: frozenset[str] = frozenset()) -> Selection | None:
        """The best node for one more allocation of the group, or None with the metrics filled."""
        touched = [self.view.index[n] for n in penalty_nodes if n in self.view.index]
        for i in touched:
            self.penalty[i] = -1.0
        if touched:
            self._rescore(np.array(touched))
        try:
            while True:
                best = int(np.argmax(self.scores)) if len(self.scores) else -1
                if best < 0 or self.scores[best] == -np.inf:
                    self._record_exhaustion()
                    return None
                result = self._assign_on(best)
                if result is not None:
                    self._record_score(best)
                    return Selection(best, result, float(self.scores[best]))
                self.scores[best] = -np.inf  # its ports or devices are taken: try the next best
        finally:
            for i in touched:
                self.penalty[i] = 0.0
            if touched:
                self._rescore(np.array(touched))

    def _assign_on(self, i: int) -> dict | None:
        usage = self.view.node_usage(i) if (self.ask.has_ports or self.ask.has_devices) else None
        result: dict = {}
        if self.ask.has_ports:
            assert usage is not None
            node = self.view.nodes[i]
            ports = assign_ports(self.ask, node, usage.ports, self.rng)
            if ports is None:
                self.metrics.exhaust_node(node.node_class, "network: port collision")
                return None
            result["ports"] = ports
        if self.ask.has_devices:
            assert usage is not None
            devices = assign_devices(self.ask, self.view.nodes[i], usage.device_ids)
            if devices is None:
                self.metrics.exhaust_node(self.view.nodes[i].node_class, "devices")
                return None
            result["devices"] = devices
        return result

    def commit(self, selection: Selection, alloc: Allocation) -> None:
        """Account for an allocation placed on the selected node before choosing the next one."""
        i = selection.node_index
        self.view.add_alloc(i, alloc)
        self.collisions[i] += 1
        if self._distinct_hosts:
            self.feasible[i] = False
        for s in self._spreads:
            s["counts"][s["ids"][i]] += 1
        for prop in self._distinct_props:
            prop["counts"][prop["ids"][i]] += 1
        if self._spreads or self._distinct_props:
            self._rescore(slice(None))
        else:
            self._rescore(slice(i, i + 1))

    def release(self, node_id: str, alloc: Allocation) -> None:
        """An allocation of the job on this node is being stopped: its resources become free."""
        i = self.view.index.get(node_id)
        if i is None:
            return
        self.view.remove_alloc(i, alloc)
        if alloc.task_group == self.group.name and self.collisions[i] > 0:
            self.collisions[i] -= 1
        self._rescore(slice(i, i + 1))

    # -- metrics ----------------------------------------------------------------------------------

    def _record_score(self, i: int) -> None:
        metrics = self.metrics
        metrics.nodes_evaluated = len(self.view)
        if len(metrics.score_meta_data) < 5:
            metrics.score_meta_data.append(NodeScoreMeta(node_id=self.view.nodes[i].id,
                                                         scores={"final": float(self.scores[i])},
                                                         norm_score=float(self.scores[i])))

    def _record_exhaustion(self) -> None:
        """Count, per dimension, the feasible nodes that lack room, as Nomad's DimensionExhausted."""
        view, ask, metrics = self.view, self.ask, self.metrics
        metrics.nodes_evaluated = len(view)
        live = self.feasible.copy()
        for dimension, used, total, need in (("cpu", view.cpu_used, view.cpu_total, ask.cpu),
                                             ("memory", view.mem_used, view.mem_total, ask.memory_mb),
                                             ("disk", view.disk_used, view.disk_total, ask.disk_mb)):
            short = live & (used + need > total)
            count = int(short.sum())
            if count:
                metrics.exhaust_node("", dimension, count)
                for i in np.flatnonzero(short)[:64]:
                    node_class = view.nodes[i].node_class
                    if node_class:
                        metrics.class_exhausted[node_class] = metrics.class_exhausted.get(node_class, 0) + 1
            live &= ~short
        for prop in self._distinct_props:
            blocked = live & (prop["counts"][prop["ids"]] >= prop["limit"])
            count = int(blocked.sum())
            if count:
                metrics.filter_node("", prop["reason"], count)
            live &= ~blocked


def _targets(affinity, node) -> tuple[object, object, bool, bool]:
    lval, lfound = resolve_target(affinity.l_target, node)
    rval, rfound = resolve_target(affinity.r_target, node)
    return lval, rval, lfound, rfound
