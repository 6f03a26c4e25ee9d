"""Named scenarios from the seeds' walkthroughs, each a short story told to a SimCluster with timings.

Every scenario boots a cluster, runs a job, injects its fault, waits for the cluster to recover, and
checks the invariants. Timings are virtual seconds, measured the way LAB.md measured real Nomad.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.rpc import methods

from .cluster import ClusterSpec, SimCluster

SERVICE_JOB = """
job "web" {
  datacenters = ["dc1"]
  group "web" {
    count = %(count)d
    task "nginx" {
      driver = "docker"
      config { image = "nginx:1.25" }
      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
"""

# What LAB.md's failover measurement registers: a job of count 0.
PROBE_JOB = {"ID": "probe", "Name": "probe", "Type": "service", "Datacenters": ["dc1"],
             "TaskGroups": [{"Name": "g", "Count": 0, "Tasks": [{"Name": "t", "Driver": "docker",
                                                                  "Config": {"image": "busybox"}}]}]}


@dataclass(slots=True)
class ScenarioResult:
    scenario: str
    seed: int
    timings: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    trace_hash: str = ""
    virtual_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and all(v is not None for v in self.timings.values())

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "seed": self.seed, "ok": self.ok, "trace_hash": self.trace_hash,
                "violations": len(self.violations), "violation_details": self.violations,
                "virtual_seconds": round(self.virtual_seconds, 3),
                "timings": {k: (round(v, 3) if v is not None else None) for k, v in self.timings.items()},
                **self.notes}


def boot(cluster: SimCluster, timeout: float = 120.0) -> float | None:
    """Until a leader is established and every client's node is ready."""
    want = len(cluster.client_ids)
    return cluster.run_until(lambda: cluster.leader() is not None and
                             sum(1 for n in cluster.state().nodes() if n.status == "ready") == want, timeout)


def start_service(cluster: SimCluster, result: ScenarioResult, count: int = 3) -> None:
    call = cluster.run_job(SERVICE_JOB % {"count": count})
    if not call.ok:
        result.violations.append(f"job registration failed: {call.error}")
    result.timings["job_converged"] = cluster.run_until(lambda: cluster.converged("web"), 60)


def finish(cluster: SimCluster, result: ScenarioResult, jobs: list[str]) -> ScenarioResult:
    if cluster.checker is not None:
        result.violations.extend(str(v) for v in cluster.checker.check_all(jobs))
    result.trace_hash = cluster.trace.hexdigest()
    result.virtual_seconds = cluster.now
    return result


def register_until_accepted(cluster: SimCluster, timeout: float = 60.0) -> float | None:
    """LAB.md's method: retry `PUT /v1/jobs` (a count-0 job) every 20 ms on any server until one succeeds."""
    call = cluster.call(methods.JOB_REGISTER, {"Job": PROBE_JOB}, timeout=timeout)
    cluster.wait(call, timeout + 1)
    return call.latency if call.ok else None


# -- the scenarios ---------------------------------------------------------------------------------------


def _fail_leader(cluster: SimCluster, result: ScenarioResult, *, machine: bool = False,
                 graceful: bool = False) -> None:
    """Kill the leader (its process, or its whole host) or stop it gracefully, then time a new leader and the
    first write accepted by a survivor (retried every 20 ms, as LAB.md measured real Nomad); restart the old
    one and let it rejoin."""
    start_service(cluster, result)
    cluster.run(5.0)
    old = cluster.stop_leader() if graceful else cluster.kill_leader(machine=machine)
    killed_at = cluster.runtime.now  # unix seconds, as the operator's calls are stamped
    probe = cluster.call(methods.JOB_REGISTER, {"Job": PROBE_JOB}, timeout=60, avoid=(old,))
    result.timings["new_leader"] = cluster.run_until(lambda: cluster.leader_id() not in (None, old), 60, poll=0.001)
    cluster.wait(probe, 61)
    result.timings["first_write"] = probe.finished - killed_at if probe.ok and probe.finished else None
    result.notes["old_leader"] = old
    result.notes["terms_used"] = _terms_since(cluster, old)
    if graceful:
        cluster.run_until(lambda: not cluster.runtime.is_up(old), 5)
    cluster.restart(old)
    result.timings["rejoined"] = cluster.run_until(lambda: _applied_everywhere(cluster), 60)
    result.timings["job_reconverged"] = cluster.run_until(lambda: cluster.converged("web"), 60)


def leader_failover(cluster: SimCluster, result: ScenarioResult) -> None:
    """kill -9 the leader: its peers see its connections close and elect at once."""
    _fail_leader(cluster, result, machine=False)


def leader_machine_failure(cluster: SimCluster, result: ScenarioResult) -> None:
    """The leader's host dies without closing anything: survivors elect after Raft's election timeout."""
    _fail_leader(cluster, result, machine=True)


def leader_graceful_stop(cluster: SimCluster, result: ScenarioResult) -> None:
    """SIGTERM the leader's agent: it hands its leadership to the most caught-up follower before it exits."""
    _fail_leader(cluster, result, graceful=True)


def leader_minority_partition(cluster: SimCluster, result: ScenarioResult) -> None:
    """The leader alone on one side: the majority elects, the old leader steps down, the heal is quiet."""
    start_service(cluster, result)
    old = cluster.leader_id()
    assert old is not None
    others = [s for s in cluster.server_ids if s != old]
    old_server = cluster.servers()[old]
    cluster.partition([old], others)
    result.timings["majority_leader"] = cluster.run_until(
        lambda: any(cluster.servers()[s].is_leader for s in others if s in cluster.servers()), 60, poll=0.01)
    result.timings["old_leader_stepped_down"] = cluster.run_until(lambda: not old_server.is_leader, 60, poll=0.01)
    result.timings["write_on_majority"] = register_until_accepted(cluster)
    term_before_heal = max(s.raft.term for s in cluster.servers().values())
    cluster.heal()
    result.timings["healed_caught_up"] = cluster.run_until(lambda: _applied_everywhere(cluster), 60)
    term_after = max(s.raft.term for s in cluster.servers().values())
    result.notes["term_bumps_on_heal"] = term_after - term_before_heal
    if term_after != term_before_heal:
        result.violations.append(f"the rejoining server disrupted the leader (term {term_before_heal} -> "
                                 f"{term_after})")
    result.timings["job_reconverged"] = cluster.run_until(lambda: cluster.converged("web"), 60)


def client_loss(cluster: SimCluster, result: ScenarioResult) -> None:
    """A client machine dies: its node goes down after the heartbeat TTL and its work moves."""
    start_service(cluster, result)
    victim = _busiest_client(cluster)
    node_id = cluster.nodes[victim].id
    cluster.crash_machine(victim)
    result.notes["lost_client"] = victim
    result.timings["node_down"] = cluster.run_until(
        lambda: (n := cluster.state().node_by_id(node_id)) is not None and n.status == "down", 120)
    result.timings["rescheduled"] = cluster.run_until(
        lambda: cluster.converged("web") and all(a.node_id != node_id for a in cluster.running("web")), 120)


def node_drain(cluster: SimCluster, result: ScenarioResult) -> None:
    """`node drain -enable -deadline 1m`: allocations migrate, the node ends ineligible, drain complete."""
    start_service(cluster, result, count=4)
    victim = _busiest_client(cluster)
    node_id = cluster.nodes[victim].id
    call = cluster.drain(victim, deadline=60.0)
    if not call.ok:
        result.violations.append(f"drain refused: {call.error}")
    result.timings["migrated"] = cluster.run_until(
        lambda: cluster.converged("web") and all(a.node_id != node_id for a in cluster.running("web")), 120)
    result.timings["drain_complete"] = cluster.run_until(
        lambda: (n := cluster.state().node_by_id(node_id)) is not None and n.drain_strategy is None, 120)
    node = cluster.state().node_by_id(node_id)
    result.notes["eligibility_after"] = node.scheduling_eligibility if node else None


def task_kill(cluster: SimCluster, result: ScenarioResult) -> None:
    """kill -9 of a running task: the restart policy brings it back on the same node (seed 004's test)."""
    start_service(cluster, result)
    alloc_id = cluster.kill_task()
    if alloc_id is None:
        result.violations.append("no task to kill")
        return
    result.notes["killed_alloc"] = alloc_id

    def restarted() -> bool:
        alloc = cluster.state().alloc_by_id(alloc_id)
        return alloc is not None and alloc.client_status == "running" and \
            any(s.restarts >= 1 and s.state == "running" for s in alloc.task_states.values())
    result.timings["restarted"] = cluster.run_until(restarted, 120)
    result.timings["job_reconverged"] = cluster.run_until(lambda: cluster.converged("web"), 60)


def leader_and_client_loss(cluster: SimCluster, result: ScenarioResult) -> None:
    """The leader and a client die together (Nomad issue #1747): how long until the client's work moves.
    Nomad waits its 300 s failover heartbeat TTL; yurt's bounded grace is the longest TTL it handed out."""
    start_service(cluster, result)
    victim = _busiest_client(cluster)
    node_id = cluster.nodes[victim].id
    cluster.kill_leader()
    cluster.crash_machine(victim)
    result.notes["lost_client"] = victim
    result.timings["node_down"] = cluster.run_until(
        lambda: (n := cluster.state().node_by_id(node_id)) is not None and n.status == "down", 600)
    result.timings["rescheduled"] = cluster.run_until(
        lambda: cluster.converged("web") and all(a.node_id != node_id for a in cluster.running("web")), 600)


SCENARIOS: dict[str, Callable[[SimCluster, ScenarioResult], None]] = {
    "leader-failover": leader_failover,
    "leader-machine-failure": leader_machine_failure,
    "leader-graceful-stop": leader_graceful_stop,
    "leader-minority-partition": leader_minority_partition,
    "client-loss": client_loss,
    "node-drain": node_drain,
    "task-kill": task_kill,
    "leader-and-client-loss": leader_and_client_loss,
}


def run_scenario(name: str, seed: int = 0, *, on_progress: Callable[[float], None] | None = None,
                 **spec: Any) -> ScenarioResult:
    """Run scenario `name` on a fresh cluster (`spec`: ClusterSpec fields); `on_progress(virtual seconds)` is
    called as the run advances (a progress bar)."""
    if name not in SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    cluster = SimCluster(ClusterSpec(seed=seed, **spec))
    cluster.on_progress = on_progress
    result = ScenarioResult(name, seed)
    result.timings["boot"] = boot(cluster)
    if result.timings["boot"] is not None:
        SCENARIOS[name](cluster, result)
    return finish(cluster, result, ["web"])


# -- helpers ---------------------------------------------------------------------------------------------


def _busiest_client(cluster: SimCluster) -> str:
    counts = {cid: 0 for cid in cluster.client_ids}
    for alloc in cluster.running("web"):
        agent = cluster.node_agent.get(alloc.node_id)
        if agent is not None:
            counts[agent] += 1
    return max(sorted(counts), key=lambda cid: counts[cid])


def _applied_everywhere(cluster: SimCluster) -> bool:
    servers = cluster.servers()
    if len(servers) < len(cluster.server_ids):
        return False
    leader = cluster.leader()
    if leader is None:
        return False
    return all(s.raft.applied_index >= leader.raft.commit_index for s in servers.values())


def _terms_since(cluster: SimCluster, old_leader: str) -> int:
    """How many election terms the failover used (1 = elected in one round)."""
    checker = cluster.checker
    if checker is None:
        return 0
    old_terms = [t for t, s in checker.leaders.items() if s == old_leader]
    if not old_terms:
        return 0
    return max(checker.leaders) - max(old_terms)
