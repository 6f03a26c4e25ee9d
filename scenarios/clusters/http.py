"""What the real clusters (local processes, hosts) share: views, writes and task kills through the HTTP API."""

from __future__ import annotations

import time
import urllib.parse
from abc import abstractmethod
from typing import Any

from orchestrator.api.client import ApiClient, ApiError, TransportError
from scenarios.cluster import Cluster, ClusterError

# What `request` raises when an agent did not answer: try the next one.
UNANSWERED = (OSError,)


class HttpError(ClusterError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body.strip()[:300]}")
        self.status = status


class HttpCluster(Cluster):
    """A Cluster whose agents answer Nomad's HTTP API; subclasses say where the agents are and how a process
    is killed on their host."""

    # -- where the agents are (subclasses) --------------------------------------------------------------

    @abstractmethod
    def http_address(self, name: str) -> str:
        """http://host:port of agent `name`."""

    @abstractmethod
    def live_servers(self) -> list[str]:
        """Server names worth asking (not known to be stopped)."""

    @abstractmethod
    def server_name(self, rpc_address: str) -> str | None:
        """The server whose RPC address ("host:port") this is."""

    @abstractmethod
    def kill_pid(self, name: str, pid: int) -> None:
        """kill -9 of process `pid` on the host of agent `name`."""

    # -- time: the wall clock -------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    # -- HTTP -------------------------------------------------------------------------------------------

    def request(self, name: str, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
        """One call to agent `name` through the CLI's own API client: the decoded JSON; HttpError for an error
        answer, ConnectionError when the agent did not answer at all."""
        api = ApiClient(self.http_address(name), env={}, timeout=timeout)  # env={}: not whoever runs pytest's
        try:
            return api.request(method, path, body=body).data
        except TransportError as exc:
            raise ConnectionError(str(exc)) from None
        except ApiError as exc:
            raise HttpError(exc.status, exc.body) from None

    def ask(self, method: str, path: str, body: Any = None, timeout: float = 2.0) -> Any:
        """The first live server's answer; the last error when none answered well."""
        error: Exception = ClusterError("no live server")
        for name in self.live_servers():
            try:
                return self.request(name, method, path, body, timeout)
            except HttpError as exc:
                if exc.status == 404:
                    raise
                error = exc  # "No cluster leader" on this one: another may know better
            except UNANSWERED as exc:
                error = exc
        raise error

    def _read(self, path: str, default: Any) -> Any:
        try:
            return self.ask("GET", path)
        except (ClusterError, *UNANSWERED):
            return default

    # -- views ------------------------------------------------------------------------------------------

    def leader_views(self) -> dict[str, str | None]:
        views: dict[str, str | None] = {}
        for name in self.live_servers():
            try:
                address = self.request(name, "GET", "/v1/status/leader", timeout=1.0)
            except HttpError:
                views[name] = None
            except UNANSWERED:
                continue  # unreachable: no view to report
            else:
                views[name] = self.server_name(address) if address else None
        return views

    def nodes(self) -> list[dict[str, Any]]:
        return self._read("/v1/nodes", [])

    def allocations(self, job_id: str) -> list[dict[str, Any]]:
        return self._read(f"/v1/job/{urllib.parse.quote(job_id)}/allocations", [])

    def job(self, job_id: str) -> dict[str, Any] | None:
        return self._read(f"/v1/job/{urllib.parse.quote(job_id)}", None)  # unknown: 404, an HttpError

    def jobs(self) -> list[str]:
        return [j["ID"] for j in self._read("/v1/jobs", [])]

    # -- writes -----------------------------------------------------------------------------------------

    def run_job(self, hcl: str, *, timeout: float = 5.0, via: str | None = None) -> bool:
        deadline = self.now() + timeout
        while self.now() < deadline:
            for name in [via] if via is not None else self.live_servers():
                left = max(0.2, deadline - self.now())
                try:
                    job = self.request(name, "POST", "/v1/jobs/parse", {"JobHCL": hcl, "Canonicalize": True},
                                       timeout=left)
                    self.request(name, "PUT", "/v1/jobs", {"Job": job}, timeout=left)
                except HttpError as exc:
                    if exc.status == 400:
                        raise  # the job itself is wrong: no other server will take it
                    continue
                except UNANSWERED:
                    continue
                return True
            self.sleep(0.05)
        return False

    def drain(self, node: str, deadline: float) -> bool:
        found = self.node(node)
        if found is None:
            raise ClusterError(f"no node named {node!r}")
        body = {"DrainSpec": {"Deadline": int(deadline * 1e9), "IgnoreSystemJobs": False}, "MarkEligible": False}
        try:
            self.ask("POST", f"/v1/node/{found['ID']}/drain", body)
        except (ClusterError, *UNANSWERED):
            return False
        return True

    def kill_task(self, alloc_id: str, task: str) -> None:
        """Find the task's process through the allocation's stats (Pids; servers forward to the client) and
        kill -9 it on the client's host."""
        alloc = self.ask("GET", f"/v1/allocation/{alloc_id}")
        stats = self.ask("GET", f"/v1/client/allocation/{alloc_id}/stats", timeout=5.0)
        pids = ((stats or {}).get("Tasks") or {}).get(task, {}).get("Pids") or {}
        if not pids:
            raise ClusterError(f"task {task!r} of allocation {alloc_id[:8]} has no running process")
        for pid in pids:
            self.kill_pid(alloc["NodeName"], int(pid))

    # -- names ------------------------------------------------------------------------------------------

    def _check(self, name: str, names: tuple[str, ...]) -> None:
        if name not in names:
            raise ClusterError(f"unknown agent {name!r}; this cluster has {', '.join(names)}")
