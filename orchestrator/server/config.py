"""A server agent's tunables: Raft timing, heartbeats, scheduling and housekeeping intervals."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.scheduler.config import SchedulerConfig


@dataclass(slots=True, kw_only=True)
class ServerConfig:
    """Defaults follow Nomad's where Nomad has one; timings are seconds of the runtime's clock."""

    id: str
    bootstrap_expect: int = 1
    region: str = "global"
    datacenter: str = "dc1"
    # Raft: one tick every tick_interval; election timeout election_ticks ticks (randomised up to twice that).
    # 0.1 s x 10 = 1 s, Nomad's raft election timeout; heartbeats every tick.
    tick_interval: float = 0.1
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    snapshot_threshold: int = 8192  # applied entries between FSM snapshots (Nomad's raft snapshot_threshold)
    # ... and at least this long between them (hashicorp/raft's SnapshotInterval, randomised up to twice that):
    # under a burst of writes a snapshot of the whole store every few seconds would cost more than the writes.
    snapshot_interval: float = 120.0
    # Client heartbeats (Nomad's min_heartbeat_ttl, max_heartbeats_per_second, heartbeat_grace).
    min_heartbeat_ttl: float = 10.0
    max_heartbeats_per_second: float = 50.0
    heartbeat_grace: float = 10.0
    failover_policy: str = "bounded"  # "bounded" (yurt) or "nomad" (fixed 300 s after an election)
    failover_heartbeat_ttl: float = 300.0
    # Scheduling.
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    evals_per_advance: int = 64  # how many evaluations one advance() may schedule before yielding
    max_plans_in_flight: int = 2  # plans proposed but not applied before scheduling waits for Raft
    # RPC: a request forwarded to the leader is forgotten after this long (the caller times out by then).
    rpc_hold_timeout: float = 15.0
    max_query_time: float = 300.0
    # Housekeeping on the leader.
    drain_interval: float = 1.0
    deployment_interval: float = 1.0
    gc_interval: float = 300.0
