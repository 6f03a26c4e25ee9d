"""The deployed cluster seen over its HTTP API: health (leader, members, nodes), status, job submission."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from orchestrator.api.client import ApiClient, ApiError
from remote.inventory import Host, Inventory, hostport

HTTP_TIMEOUT = 2.0
POLL_INTERVAL = 0.25


def http_address(inventory: Inventory, host: str | Host) -> str:
    """The agent's HTTP API, e.g. "http://10.250.0.11:4646". Health checks go from this machine straight to
    that address (the lab's bridge routes to every host), not through SSH."""
    ip = (inventory.host(host) if isinstance(host, str) else host).ip()
    return f"http://{hostport(ip, inventory.cluster.ports.http)}"


def client_for(inventory: Inventory, host: str | Host, timeout: float = HTTP_TIMEOUT) -> ApiClient:
    # env={}: NOMAD_ADDR / NOMAD_REGION of whoever runs `fab` must not redirect these calls.
    return ApiClient(http_address(inventory, host), env={}, timeout=timeout)


def _try(call: Any) -> Any:
    try:
        return call()
    except (ApiError, OSError, ValueError):
        return None


@dataclass(slots=True)
class Health:
    leader: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_health(inventory: Inventory, hosts: Iterable[str] | None = None) -> Health:
    """A leader every expected server agrees on, each expected server `alive` in members, each expected client
    node `ready`. `hosts` limits what is expected (e.g. while one host is deliberately down)."""
    names = set(hosts) if hosts is not None else {h.name for h in inventory.hosts}
    servers = [h for h in inventory.servers if h.name in names]
    clients = [h for h in inventory.clients if h.name in names]
    health = Health()
    leaders = {s.name: _try(lambda s=s: client_for(inventory, s).status_leader()) for s in servers}
    for name, leader in leaders.items():
        if not leader:
            health.problems.append(f"{name}: no leader known" if leader is not None else f"{name}: HTTP unreachable")
    distinct = {v for v in leaders.values() if v}
    if len(distinct) > 1:
        health.problems.append(f"servers disagree on the leader: {sorted(distinct)}")
    health.leader = next(iter(distinct), "")
    asked = next((s for s in servers if leaders.get(s.name)), None)
    if asked is None:
        return health
    api = client_for(inventory, asked)
    members = (_try(api.agent_members) or {}).get("Members") or []
    alive = {m.get("Addr") for m in members if m.get("Status") == "alive"}
    health.problems += [f"{s.name}: not alive in members" for s in servers if s.ip() not in alive]
    if clients:
        nodes = _try(api.nodes) or []
        ready = {n.get("Name") for n in nodes if n.get("Status") == "ready"}
        health.problems += [f"{c.name}: node not ready" for c in clients if c.name not in ready]
    return health


def wait_healthy(inventory: Inventory, timeout: float = 60, hosts: Iterable[str] | None = None) -> float:
    """Seconds until check_health passes; TimeoutError naming what is still wrong after `timeout`."""
    expected = list(hosts) if hosts is not None else None
    start = time.monotonic()
    retrying = Retrying(retry=retry_if_result(lambda h: not h.ok), stop=stop_after_delay(timeout),
                        wait=wait_fixed(POLL_INTERVAL))
    try:
        retrying(check_health, inventory, expected)
    except RetryError as exc:
        last = exc.last_attempt.result()
        raise TimeoutError(f"cluster not healthy after {timeout:.0f}s: " + "; ".join(last.problems)) from None
    return time.monotonic() - start


def wait_answering(inventory: Inventory, host: str | Host, timeout: float = 60) -> float:
    """Seconds until the agent on `host` answers its own HTTP API: after a restart, the servers' view of a
    client node stays `ready` for its whole heartbeat TTL, so cluster health alone cannot tell it came back."""
    start = time.monotonic()
    api = client_for(inventory, host)
    retrying = Retrying(retry=retry_if_result(lambda answer: answer is None), stop=stop_after_delay(timeout),
                        wait=wait_fixed(POLL_INTERVAL))
    try:
        retrying(_try, api.agent_self)
    except RetryError:
        name = host if isinstance(host, str) else host.name
        raise TimeoutError(f"the agent on {name} did not answer within {timeout:.0f}s") from None
    return time.monotonic() - start


def any_server(inventory: Inventory) -> ApiClient:
    """A client of the first server whose HTTP API answers (a request may land on any: followers forward)."""
    for server in inventory.servers:
        api = client_for(inventory, server)
        if _try(api.status_leader) is not None:
            return api
    raise ConnectionError("no server's HTTP API answers: " + ", ".join(http_address(inventory, s)
                                                                          for s in inventory.servers))


def status(inventory: Inventory) -> dict[str, Any]:
    """Members, leader, nodes and jobs as one server reports them (address of that server under "source")."""
    api = any_server(inventory)
    return {"source": api.address, "leader": _try(api.status_leader) or "",
            "members": (_try(api.agent_members) or {}).get("Members") or [],
            "nodes": _try(api.nodes) or [], "jobs": _try(api.jobs) or []}


def format_status(info: dict[str, Any]) -> str:
    """`server members`, `node status` and `job status` tables, in the shape nomad prints them."""
    leader = info.get("leader", "")
    rows = [["Name", "Address", "Port", "Status", "Leader"]]
    for m in sorted(info.get("members", []), key=lambda m: m.get("Name", "")):
        is_leader = bool(leader) and leader.rsplit(":", 1)[0] == m.get("Addr")
        rows.append([m.get("Name", ""), m.get("Addr", ""), str(m.get("Port", "")), m.get("Status", ""),
                     str(is_leader).lower()])
    out = [f"Leader: {leader or '(none)'}", "", _table(rows), ""]
    rows = [["ID", "DC", "Name", "Class", "Status"]]
    for n in sorted(info.get("nodes", []), key=lambda n: n.get("Name", "")):
        rows.append([n.get("ID", "")[:8], n.get("Datacenter", ""), n.get("Name", ""), n.get("NodeClass") or "<none>",
                     n.get("Status", "")])
    out += [_table(rows) if len(rows) > 1 else "No nodes registered", ""]
    rows = [["ID", "Type", "Priority", "Status"]]
    for j in sorted(info.get("jobs", []), key=lambda j: j.get("ID", "")):
        rows.append([j.get("ID", ""), j.get("Type", ""), str(j.get("Priority", "")), j.get("Status", "")])
    out.append(_table(rows) if len(rows) > 1 else "No running jobs")
    return "\n".join(out)


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def run_job(inventory: Inventory, path: str | Path) -> dict[str, Any]:
    """Parse a jobspec file through a server (`/v1/jobs/parse`) and register it (`PUT /v1/jobs`)."""
    text = Path(path).read_text(encoding="utf-8")
    api = any_server(inventory)
    job = api.request("POST", "/v1/jobs/parse", body={"JobHCL": text, "Canonicalize": True}).data
    response = api.register_job(job)
    return {"job": job.get("ID"), "server": api.address, **(response or {})}
