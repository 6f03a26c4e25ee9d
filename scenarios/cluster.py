"""The Cluster interface every scenario is written against: one scenario, three runtimes (sim, local, lab)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class ClusterError(RuntimeError):
    """A fault or operation the cluster cannot perform (an unknown name, nothing to kill...)."""


class Unsupported(ClusterError):
    """A fault this runtime cannot inject here (partitions of local processes without root, say): the
    scenario skips with this reason."""


class Cluster(ABC):
    """A running cluster seen the way an operator sees it: through any live server, with Nomad's JSON shapes.

    Names: `servers` are the server agents' names, `clients` the client nodes' names (`Node.Name`). On a host
    that runs both roles in one agent (the lab's s2 and s3) the same name is in both lists, and a fault on the
    agent hits both roles, as it would on real hosts.

    Views answer what a live, reachable server reports (the sim reads the leader's state store, which is what
    a consistent read returns); they answer None or [] when no server answers, never raise for that.
    Times are seconds on this cluster's clock: virtual seconds in the simulator, wall seconds elsewhere.
    """

    kind: str = ""
    servers: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    # When the last fault took effect, on this cluster's clock: scenarios time recoveries from here, not from
    # when they asked, since on hosts a fault travels over SSH first (each fault method marks it).
    fault_at: float = 0.0

    def mark_fault(self, wall: float | None = None) -> None:
        """The fault took effect now, or at `wall` (seconds since the epoch, as a host's clock said it)."""
        self.fault_at = self.now() if wall is None else self.now() - max(0.0, time.time() - wall)

    # -- time -------------------------------------------------------------------------------------------

    @abstractmethod
    def now(self) -> float:
        """Seconds on this cluster's clock (monotonic)."""

    @abstractmethod
    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass on this cluster's clock (the simulator advances its virtual time)."""

    def wait_for(self, check: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
        """Poll `check()` until it answers something truthy (returned) or `timeout` passes (None)."""
        deadline = self.now() + timeout
        while True:
            answer = check()
            if answer:
                return answer
            if self.now() >= deadline:
                return None
            self.sleep(interval)

    def timed(self, check: Callable[[], Any], timeout: float, interval: float = 0.05) -> float | None:
        """Seconds until `check()` holds, or None when `timeout` passed first."""
        start = self.now()
        return self.now() - start if self.wait_for(check, timeout, interval) else None

    # -- views ------------------------------------------------------------------------------------------

    @abstractmethod
    def leader_views(self) -> dict[str, str | None]:
        """What each live, reachable server says the leader is (a server name, None when it knows none)."""

    def leader(self) -> str | None:
        """The leader the live servers agree on; None while none is known or they disagree."""
        views = {v for v in self.leader_views().values()}
        return views.pop() if len(views) == 1 else None

    @abstractmethod
    def nodes(self) -> list[dict[str, Any]]:
        """`GET /v1/nodes`: ID, Name, Status, SchedulingEligibility, Drain of each client node."""

    @abstractmethod
    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        """`GET /v1/job/:id/allocations`: ID, Name, NodeID, NodeName, JobVersion, ClientStatus, DesiredStatus,
        TaskStates {task: {State, Failed, Restarts}} of each allocation of the job."""

    @abstractmethod
    def job(self, job_id: str) -> dict[str, Any] | None:
        """`GET /v1/job/:id`: at least ID, Version, Status, Stop; None when the job is unknown."""

    @abstractmethod
    def jobs(self) -> list[str]:
        """The IDs of every registered job."""

    def running(self, job_id: str) -> list[dict[str, Any]]:
        """The job's allocations desired and reported running."""
        return [a for a in self.allocations(job_id) if a["DesiredStatus"] == "run" and a["ClientStatus"] == "running"]

    def node(self, name: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes() if n["Name"] == name), None)

    # -- writes (through any live server) ---------------------------------------------------------------

    @abstractmethod
    def run_job(self, hcl: str, *, timeout: float = 5.0, via: str | None = None) -> bool:
        """`yurt job run` of the HCL text without waiting for placement: True once a server accepted it (False
        after `timeout`). `via` names the only server to send it to (as `-address` of that agent would)."""

    @abstractmethod
    def drain(self, node: str, deadline: float) -> bool:
        """`yurt node drain -enable -deadline D` of the node named `node`: True once accepted."""

    # -- faults -----------------------------------------------------------------------------------------

    @abstractmethod
    def kill_server(self, name: str) -> None:
        """kill -9 of the server agent `name` (its data dir stays; `start_server` brings it back)."""

    @abstractmethod
    def start_server(self, name: str) -> None:
        """Start the agent `name` again from its data dir after a kill or a stop."""

    @abstractmethod
    def partition(self, *groups: tuple[str, ...] | list[str]) -> None:
        """Cut the network between the groups of agents (names); agents in no group stay connected to all."""

    @abstractmethod
    def heal(self) -> None:
        """Undo every partition."""

    @abstractmethod
    def kill_task(self, alloc_id: str, task: str) -> None:
        """kill -9 of the process (or container) running `task` of allocation `alloc_id`."""

    @abstractmethod
    def lose_client(self, name: str) -> None:
        """The client `name` disappears silently: its agent stops answering and heartbeating (its machine died
        or was cut off); the servers find out only by its missed heartbeats."""

    @abstractmethod
    def stop_all(self) -> None:
        """Stop every agent (servers and clients), keeping their data dirs."""

    @abstractmethod
    def start_all(self) -> None:
        """Start every agent again from its data dir."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything and remove what the cluster created (the lab's hosts stay for the next scenario)."""

    # -- shared helpers ---------------------------------------------------------------------------------

    def healthy(self) -> bool:
        """A leader every live server agrees on, and every client node `ready`."""
        if self.leader() is None:
            return False
        nodes = {n["Name"]: n["Status"] for n in self.nodes()}
        return all(nodes.get(c) == "ready" for c in self.clients)

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Seconds until healthy(); ClusterError when it is not within `timeout`."""
        took = self.timed(self.healthy, timeout, interval=0.1)
        if took is None:
            raise ClusterError(f"{self.kind} cluster not healthy after {timeout}s: leaders {self.leader_views()}, "
                               f"nodes {[(n['Name'], n['Status']) for n in self.nodes()]}")
        return took
