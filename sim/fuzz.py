"""Fuzzing: random fault campaigns against a simulated cluster, with every invariant checked per seed."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any

from orchestrator.rpc import methods

from .cluster import ClusterSpec, SimCluster
from .faults import FaultCampaign, apply
from .scenarios import SERVICE_JOB, boot

BATCH_JOB = """
job "crunch" {
  datacenters = ["dc1"]
  type = "batch"
  group "work" {
    count = 3
    task "crunch" {
      driver = "raw_exec"
      config { command = "/bin/true" }
      meta { sim_run_for = "uniform:5s:40s" }
      resources {
        cpu    = 300
        memory = 256
      }
    }
  }
}
"""


# Registered while the faults run (acknowledged or not, a registration that committed must converge too).
API_JOB = """
job "api" {
  datacenters = ["dc1"]
  group "api" {
    count = 2
    task "api" {
      driver = "docker"
      config { image = "api:%(version)d" }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"""


@dataclass(slots=True, kw_only=True)
class FuzzOptions:
    servers: int = 3
    clients: int = 4
    horizon: float = 90.0  # virtual seconds of faults
    intensity: float = 3.0  # faults per virtual minute
    settle: float = 300.0  # virtual seconds allowed to converge after everything is healed
    check_every: float = 5.0  # virtual seconds between state checks during the campaign
    # Job registrations sent at random times during the faults: a new service job, its updates, and web
    # scaled up (each retried across servers for up to 60 s; those acknowledged must never be lost).
    jobs_during_faults: int = 3
    # Servers' fsyncs take 0.1-1 ms: a crash inside one loses that step's writes, as a real disk would.
    disk_sync_latency: tuple = ("uniform", 0.0001, 0.001)


@dataclass(slots=True)
class FuzzResult:
    seed: int
    violations: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    trace_hash: str = ""
    virtual_seconds: float = 0.0
    converged_after: float | None = None
    acknowledged_writes: int = 0  # job registrations the operator saw succeed, during the faults or before

    @property
    def ok(self) -> bool:
        return not self.violations

    def replay_command(self, options: FuzzOptions) -> str:
        return (f"yurt sim fuzz --seeds 1 --start {self.seed} --servers {options.servers} "
                f"--clients {options.clients} --horizon {options.horizon:g} --intensity {options.intensity:g}")


def fuzz_seed(seed: int, options: FuzzOptions | None = None) -> FuzzResult:
    """One campaign: boot, run a service and a batch job, inject faults, heal, converge, check."""
    options = options or FuzzOptions()
    result = FuzzResult(seed)
    cluster = SimCluster(ClusterSpec(seed=seed, servers=options.servers, clients=options.clients,
                                     disk_sync_latency=options.disk_sync_latency))
    if boot(cluster) is None:
        result.violations.append("cluster did not form")
        return _finish(cluster, result)
    for source in (SERVICE_JOB % {"count": 4}, BATCH_JOB):
        call = cluster.run_job(source)
        if not call.ok:
            result.violations.append(f"job registration failed: {call.error}")
    checker = cluster.checker
    assert checker is not None
    writes = _writes_during_faults(Random(f"writes/{seed}"), options)
    campaign = FaultCampaign.random(Random(f"campaign/{seed}"), cluster.server_ids, cluster.client_ids,
                                    options.horizon, options.intensity)
    start = cluster.now
    shifted = FaultCampaign([replace(e, at=e.at + start) for e in campaign.events], campaign.horizon + start,
                            campaign.servers)
    result.faults = campaign.describe()
    apply(shifted, cluster.runtime, cluster.network)
    end = start + options.horizon
    next_check = start + options.check_every
    while cluster.now < end:
        while writes and writes[0][0] + start <= cluster.now + 1e-9:
            cluster.run_job(writes.pop(0)[1], wait=False)
        until = min(next_check, end, writes[0][0] + start if writes else end)
        if until > cluster.now:
            cluster.run(until - cluster.now)
        if cluster.now >= next_check - 1e-9:
            checker.check_state()
            next_check += options.check_every
    checker.check_state()
    _heal_everything(cluster)
    result.converged_after = cluster.run_until(lambda: all(cluster.converged(j) for j in _services(cluster))
                                               and _batch_done(cluster), options.settle, poll=0.5)
    checker.check_all(_services(cluster))
    if result.converged_after is None and not any(v.rule == "convergence" for v in checker.violations):
        checker._violate("convergence", "batch job crunch did not complete")
    return _finish(cluster, result)


def _writes_during_faults(rng: Random, options: FuzzOptions) -> list[tuple[float, str]]:
    """(offset into the campaign, job source) for each registration sent during the faults, in time order."""
    times = sorted(rng.uniform(0, options.horizon) for _ in range(options.jobs_during_faults))
    sources = []
    for i in range(len(times)):
        if i % 3 == 2:
            sources.append(SERVICE_JOB % {"count": 5})  # web scaled up
        else:
            sources.append(API_JOB % {"version": i})  # api registered, then updated (a new image)
    return list(zip(times, sources, strict=True))


def _services(cluster: SimCluster) -> list[str]:
    """The service jobs that must run at their count: web, and api when its registration committed."""
    return ["web"] + (["api"] if cluster.state().job_by_id("default", "api") is not None else [])


def _batch_done(cluster: SimCluster) -> bool:
    allocs = cluster.allocs("crunch")
    complete = {a.name for a in allocs if a.client_status == "complete"}
    return len(complete) >= 3


def _heal_everything(cluster: SimCluster) -> None:
    cluster.heal()
    runtime = cluster.runtime
    for agent_id in runtime.ids:
        if not runtime.is_up(agent_id):
            runtime.restart(agent_id)
        elif runtime.is_paused(agent_id):
            runtime.resume(agent_id)
        if runtime.skew(agent_id):
            runtime.skew_clock(agent_id, 0.0)


def _finish(cluster: SimCluster, result: FuzzResult) -> FuzzResult:
    if cluster.checker is not None:
        result.violations.extend(str(v) for v in cluster.checker.violations)
    result.trace_hash = cluster.trace.hexdigest()
    result.virtual_seconds = cluster.now
    result.acknowledged_writes = sum(1 for c in cluster.operator.calls if c.ok and c.method == methods.JOB_REGISTER)
    return result


def fuzz(seeds: Iterable[int], options: FuzzOptions | None = None, *, workers: int = 1,
         on_result: Callable[[FuzzResult], None] | None = None) -> list[FuzzResult]:
    """Run every seed (in `workers` processes when > 1); results in seed order."""
    options = options or FuzzOptions()
    seeds = list(seeds)
    results: list[FuzzResult] = []
    if workers <= 1:
        for seed in seeds:
            outcome = fuzz_seed(seed, options)
            results.append(outcome)
            if on_result is not None:
                on_result(outcome)
        return results
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for outcome in pool.map(fuzz_seed, seeds, [options] * len(seeds), chunksize=4):
            results.append(outcome)
            if on_result is not None:
                on_result(outcome)
    return results


def summary(results: list[FuzzResult], options: FuzzOptions) -> dict[str, Any]:
    failing = [r.seed for r in results if not r.ok]
    return {"seeds": len(results), "violations": sum(len(r.violations) for r in results),
            "failing_seeds": failing, "replay": [r.replay_command(options) for r in results if not r.ok][:5],
            "virtual_seconds": round(sum(r.virtual_seconds for r in results), 1)}


def dumps(results: list[FuzzResult], options: FuzzOptions) -> str:
    return json.dumps(summary(results, options))
