"""Deployment operations on an inventory's hosts (deploy, start/stop, upgrade, teardown...): the API `fab` calls."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from remote import health, hostctl
from remote.build import Release, build_release
from remote.connect import fan_out, open_connection
from remote.health import check_health, format_status
from remote.hostctl import DAEMON, SYSTEMD, Facts, RemoteError, q, sh
from remote.inventory import SERVICE_MODES, Host, Inventory, format_diagnostic, hostport, load_inventory
from remote.render import layout, render_config_files, render_unit, sha256_text

__all__ = ["DeployError", "HostResult", "agent_pid", "check_health", "deploy", "format_status", "http_address",
           "kill", "load", "logs", "restart", "run_job", "start", "status", "stop", "teardown", "upgrade",
           "wait_healthy"]

Out = Callable[[str], None]
InventoryLike = Inventory | str | os.PathLike[str]
HEALTH_TIMEOUT = 90.0


class DeployError(RuntimeError):
    """A host failed or the cluster did not become healthy; `result` holds what deploy() would have returned."""

    def __init__(self, message: str, result: dict[str, Any]):
        super().__init__(message)
        self.result = result


@dataclass(slots=True)
class HostResult:
    name: str
    status: str = "unchanged"  # changed | unchanged | failed
    actions: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    def line(self) -> str:
        detail = self.error if self.status == "failed" else ", ".join(self.actions)
        took = f" in {self.seconds:.1f}s" if self.seconds else ""
        return f"{self.name}: {self.status}{took}" + (f" ({detail})" if detail else "")


def load(inventory: InventoryLike, out: Out | None = None) -> Inventory:
    """An Inventory as given, or loaded from a path with key and known_hosts files required; warnings to `out`."""
    if isinstance(inventory, Inventory):
        return inventory
    loaded = load_inventory(inventory, check_files=True)
    for warning in loaded.warnings:
        (out or print)(format_diagnostic(warning, "warning"))
    return loaded


def _hosts(inventory: Inventory, names: Iterable[str] | None) -> list[Host]:
    if names is None:
        return list(inventory.hosts)
    wanted = list(names)
    unknown = [n for n in wanted if n not in {h.name for h in inventory.hosts}]
    if unknown:
        raise KeyError(f"unknown host(s): {', '.join(unknown)}")
    return [inventory.host(n) for n in wanted]


def service_mode(inventory: Inventory, facts: Facts) -> str:
    """systemd where the inventory allows it (cluster.service: auto|systemd|daemon, default auto) and it is usable
    from the host's SSH session (see hostctl.systemd_usable); else a pid-file daemon."""
    setting = inventory.cluster.service or "auto"
    if setting not in SERVICE_MODES:  # validated on load; an Inventory built in code may still say anything
        raise RemoteError(f"cluster.service is {setting!r}; expected one of {', '.join(SERVICE_MODES)}")
    if setting == SYSTEMD and not facts.systemd:
        raise RemoteError("cluster.service is systemd, but systemd does not run in this host's namespaces")
    return SYSTEMD if setting != DAEMON and facts.systemd else DAEMON


# -- one host -----------------------------------------------------------------------------------------------


def deploy_host(inventory: Inventory, host: Host, release: Release, restart: bool = True) -> HostResult:
    """Check, then act: install only a different release, write only a different config, (re)start only when
    either changed or the agent is not running."""
    lay = layout(inventory)
    result = HostResult(host.name)
    begin = time.monotonic()
    conn = open_connection(inventory, host)
    try:
        facts = hostctl.probe(conn, lay, host.ip(), inventory.cluster.python)
        mode = service_mode(inventory, facts)
        changed = False
        running = facts.pid is not None
        if facts.release != release.id:
            _check_python(inventory, facts)
            uploaded = hostctl.sync_wheels(conn, lay, release)  # while the agent still runs: it is only a copy
            if running and facts.mode:
                # Never replace the venv under a running agent: a module it imports later could be half new, and
                # a failed install would leave it on a broken venv. It starts again below, on the new release.
                hostctl.stop(conn, lay, facts.mode)
                running = False
                result.actions.append("stopped")
            hostctl.install(conn, lay, inventory.cluster.python, release)
            result.actions.append(f"release {release.short_id} installed ({len(uploaded)} wheels uploaded)")
            changed = True
        files = render_config_files(inventory, host, facts.interface)
        if {name: sha256_text(text) for name, text in files.items()} != facts.configs:
            volumes = [v.path for v in host.host_volumes.values()] if host.is_client else []
            hostctl.write_configs(conn, lay, files, volumes)
            result.actions.append("config written")
            changed = True
        if mode == SYSTEMD and sha256_text(render_unit(lay)) != facts.unit:
            hostctl.install_unit(conn, lay, render_unit(lay))
            result.actions.append("systemd unit installed")
            changed = True
        if facts.mode != mode:
            if running and facts.mode:
                hostctl.stop(conn, lay, facts.mode)  # switching service manager: the old one lets go first
                running = False
            hostctl.write_mode(conn, lay, mode)
            result.actions.append(f"service mode {mode}")
        if restart and running and changed:
            hostctl.stop(conn, lay, mode)
            hostctl.start(conn, lay, mode)
            result.actions.append("restarted")
        elif restart and not running:
            hostctl.start(conn, lay, mode)
            result.actions.append("started")
        result.status = "changed" if result.actions else "unchanged"
    finally:
        conn.close()
    result.seconds = time.monotonic() - begin
    return result


def _check_python(inventory: Inventory, facts: Facts) -> None:
    """The wheelhouse holds wheels built for this machine's interpreter: refuse, saying so, where they would not
    install (pip --no-index would only say "no matching distribution")."""
    python, ours = inventory.cluster.python, hostctl.local_python_tag()
    if not facts.python:
        raise RemoteError(f"cluster.python {python!r} does not run on this host")
    if facts.python != ours:
        raise RemoteError(f"cluster.python {python!r} is {facts.python} on this host, but the wheelhouse is built "
                          f"for {ours} (this machine): point cluster.python at a matching interpreter")


def _mode(conn: hostctl.Runner, inventory: Inventory) -> str:
    lay = layout(inventory)
    mode = sh(conn, f"cat {q(lay.mode_file)} 2>/dev/null; true").strip()
    return mode if mode in (SYSTEMD, DAEMON) else DAEMON


def _on_host(inventory: Inventory, host: Host, action: Callable[[Any, Any, str], Any],
             need_install: bool = False) -> Any:
    lay = layout(inventory)
    conn = open_connection(inventory, host)
    try:
        if need_install and not sh(conn, f"test -x {q(lay.agent)} && echo yes; true").strip():
            raise RemoteError(f"yurt is not installed at {lay.agent} (run deploy first)")
        return action(conn, lay, _mode(conn, inventory))
    finally:
        conn.close()


def _each(inventory: Inventory, hosts: Iterable[str] | None, verb: str, action: Callable[[Any, Any, str], Any],
          need_install: bool = False, out: Out | None = None) -> dict[str, HostResult]:
    """`action` on every chosen host in parallel; per-host results; DeployError if any host failed."""
    outcomes = fan_out(_hosts(inventory, hosts), lambda h: _on_host(inventory, h, action, need_install))
    results = {}
    for name, outcome in outcomes.items():
        failed = isinstance(outcome, BaseException)
        results[name] = HostResult(name, "failed" if failed else "changed", [] if failed else [verb],
                                   f"{type(outcome).__name__}: {outcome}" if failed else "")
        if out:
            out(results[name].line())
    failures = [r for r in results.values() if r.status == "failed"]
    if failures:
        raise DeployError(f"{verb}: failed on " + ", ".join(r.name for r in failures),
                          {"hosts": {n: asdict(r) for n, r in results.items()}})
    return results


# -- the API ------------------------------------------------------------------------------------------------


def _summary(results: dict[str, HostResult]) -> str:
    counts = {s: sum(r.status == s for r in results.values()) for s in ("changed", "unchanged", "failed")}
    return ", ".join(f"{n} {s}" for s, n in counts.items())


def _release(release: Release | None, root: Path | None, out: Out) -> Release:
    if release is not None:
        return release
    return build_release(root, out=out) if root else build_release(out=out)


def deploy(inventory: InventoryLike, out: Out = print, timeout: float = HEALTH_TIMEOUT,
           root: Path | None = None, release: Release | None = None) -> dict[str, Any]:
    """Build (cached), install, configure and start every host in parallel, wait until healthy, print status.
    Returns {"hosts": {name: {status, actions, error, seconds}}, "release", "seconds", "healthy_seconds"}.
    `release` (from remote.build.build_release) pins what is installed, e.g. while the checkout is being edited."""
    begin = time.monotonic()
    inv = load(inventory, out)
    release = _release(release, root, out)
    out(f"release {release.short_id} ({len(release.wheels)} wheels); deploying to {len(inv.hosts)} hosts")
    outcomes = fan_out(inv.hosts, lambda h: deploy_host(inv, h, release))
    results = {name: o if isinstance(o, HostResult) else HostResult(name, "failed", error=f"{type(o).__name__}: {o}")
               for name, o in outcomes.items()}
    for r in results.values():
        out(r.line())
    result: dict[str, Any] = {"hosts": {n: asdict(r) for n, r in results.items()}, "release": release.id}
    if any(r.status == "failed" for r in results.values()):
        result["seconds"] = time.monotonic() - begin
        raise DeployError(f"deploy failed ({_summary(results)})", result)
    try:
        result["healthy_seconds"] = health.wait_healthy(inv, timeout)
    except TimeoutError as exc:
        result["seconds"] = time.monotonic() - begin
        raise DeployError(str(exc), result) from None
    result["seconds"] = time.monotonic() - begin
    out(format_status(health.status(inv)))
    out(f"deploy: {_summary(results)} in {result['seconds']:.1f}s (healthy {result['healthy_seconds']:.1f}s after "
        "the hosts were done)")
    return result


def upgrade(inventory: InventoryLike, out: Out = print, timeout: float = HEALTH_TIMEOUT,
            root: Path | None = None, release: Release | None = None) -> dict[str, Any]:
    """Rolling: one server at a time (followers first, the leader last), each followed by a wait until the
    cluster is healthy with quorum; then client-only hosts, one at a time."""
    begin = time.monotonic()
    inv = load(inventory, out)
    release = _release(release, root, out)
    health.wait_healthy(inv, timeout)  # never start taking servers down from a cluster that is already degraded
    leader = check_health(inv).leader
    servers = sorted(inv.servers, key=lambda h: hostport(h.ip(), inv.cluster.ports.rpc) == leader)
    results: dict[str, HostResult] = {}
    for host in [*servers, *(h for h in inv.hosts if not h.is_server)]:
        try:
            results[host.name] = deploy_host(inv, host, release)
        except Exception as exc:
            results[host.name] = HostResult(host.name, "failed", error=f"{type(exc).__name__}: {exc}")
        out(results[host.name].line())
        partial = {"hosts": {n: asdict(r) for n, r in results.items()}, "release": release.id}
        if results[host.name].status == "failed":
            raise DeployError(f"upgrade stopped at {host.name}", partial)
        if results[host.name].status == "changed":
            try:
                health.wait_answering(inv, host, timeout)  # up again, not just still `ready` on the servers
                health.wait_healthy(inv, timeout)
            except TimeoutError as exc:
                raise DeployError(f"upgrade stopped after {host.name}: {exc}", partial) from None
    seconds = time.monotonic() - begin
    out(f"upgrade: {_summary(results)} in {seconds:.1f}s")
    return {"hosts": {n: asdict(r) for n, r in results.items()}, "release": release.id, "seconds": seconds}


def start(inventory: InventoryLike, hosts: Iterable[str] | None = None, out: Out | None = None) -> dict[str, Any]:
    """Start stopped agents (running ones are left alone); does not wait for health (see wait_healthy)."""
    return _each(load(inventory, out), hosts, "started", hostctl.start, need_install=True, out=out)


def stop(inventory: InventoryLike, hosts: Iterable[str] | None = None, out: Out | None = None) -> dict[str, Any]:
    return _each(load(inventory, out), hosts, "stopped", hostctl.stop, out=out)


def restart(inventory: InventoryLike, hosts: Iterable[str] | None = None, out: Out | None = None) -> dict[str, Any]:
    def again(conn: Any, lay: Any, mode: str) -> None:
        hostctl.stop(conn, lay, mode)
        hostctl.start(conn, lay, mode)

    return _each(load(inventory, out), hosts, "restarted", again, need_install=True, out=out)


def kill(inventory: InventoryLike, host: str) -> float | None:
    """kill -9 the agent by its pid file, as a crash. In daemon mode nothing restarts it until start().
    Returns the host's wall clock just after the kill (scenarios time failovers from it), None if unknown."""
    inv = load(inventory)
    return _on_host(inv, inv.host(host), hostctl.kill)


def agent_pid(inventory: InventoryLike, host: str) -> int | None:
    """The running agent's pid on `host` (lab hosts share this machine's PID space), or None."""
    inv = load(inventory)
    return _on_host(inv, inv.host(host), hostctl.pid)


def logs(inventory: InventoryLike, host: str, lines: int = 100) -> str:
    inv = load(inventory)
    return _on_host(inv, inv.host(host), lambda conn, lay, _mode: hostctl.logs(conn, lay, lines))


def teardown(inventory: InventoryLike, out: Out | None = None) -> dict[str, Any]:
    """Stop every agent, kill the tasks it left, remove the unit, install_dir and data_dir on every host."""
    return _each(load(inventory, out), None, "removed", hostctl.teardown, out=out)


def status(inventory: InventoryLike) -> dict[str, Any]:
    """{"leader", "members", "nodes", "jobs", "source"} from the first server that answers."""
    return health.status(load(inventory))


def wait_healthy(inventory: InventoryLike, timeout: float = 60, hosts: Iterable[str] | None = None) -> float:
    """Seconds until a leader is elected, servers are alive and client nodes ready (only `hosts`, if given)."""
    return health.wait_healthy(load(inventory), timeout, hosts)


def http_address(inventory: InventoryLike, host: str) -> str:
    """e.g. "http://10.250.0.11:4646"; reachable from this machine (the lab's bridge routes to every host)."""
    return health.http_address(load(inventory), host)


def run_job(inventory: InventoryLike, path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a jobspec through any server and register it; the register response plus "job" and "server"."""
    return health.run_job(load(inventory), Path(path))
