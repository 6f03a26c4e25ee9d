"""SSH connections to inventory hosts: host keys checked against the inventory's known_hosts, retries, fan-out."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import paramiko
from fabric import Config, Connection, ThreadingGroup
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from remote.inventory import Host, Inventory

T = TypeVar("T")
CONNECT_TIMEOUT = 10
CONNECT_ATTEMPTS = 4


class HostKeyRefused(RuntimeError):
    """The host's key is not in the inventory's known_hosts (or differs from it): never retried."""


class _AcceptAndRecord(paramiko.MissingHostKeyPolicy):
    """`accept_unknown_host_keys: true`: trust a new key on first use and append it to known_hosts once, under
    a lock. paramiko's AutoAddPolicy rewrites the whole file from every connecting thread, losing entries."""

    _lock = threading.Lock()

    def __init__(self, known_hosts: str | None) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.known_hosts:
            with self._lock, open(self.known_hosts, "a", encoding="ascii") as known:
                known.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def connection(inventory: Inventory, host: Host) -> Connection:
    """A (not yet opened) Fabric Connection whose host key must be in the inventory's known_hosts file."""
    connect_kwargs: dict[str, Any] = {"banner_timeout": CONNECT_TIMEOUT, "auth_timeout": CONNECT_TIMEOUT}
    if host.key:
        # Only the inventory's key: an agent or ~/.ssh keys would make the result depend on who runs `fab`.
        connect_kwargs.update(key_filename=host.key, allow_agent=False, look_for_keys=False)
    # No ~/.ssh/config either (IdentityFile, ProxyJump...): what connects is what the inventory says.
    config = Config(overrides={"load_ssh_configs": False})
    conn = Connection(host.address, user=host.user, port=host.port, connect_timeout=CONNECT_TIMEOUT,
                      connect_kwargs=connect_kwargs, config=config)
    # Fabric's default is AutoAddPolicy (any key accepted); replace it before anything connects.
    if inventory.known_hosts:
        conn.client.load_host_keys(inventory.known_hosts)
    policy = (_AcceptAndRecord(inventory.known_hosts) if inventory.accept_unknown_host_keys
              else paramiko.RejectPolicy())
    conn.client.set_missing_host_key_policy(policy)
    return conn


# Refused connections, resets and timeouts are worth another try (an sshd still starting, a flaky link);
# authentication and host-key failures are not.
_TRANSIENT = (socket.timeout, ConnectionError, EOFError, paramiko.ssh_exception.NoValidConnectionsError)


@retry(retry=retry_if_exception_type(_TRANSIENT), stop=stop_after_attempt(CONNECT_ATTEMPTS),
       wait=wait_exponential(multiplier=0.3, max=3), reraise=True)
def _open(conn: Connection) -> None:
    conn.open()


def open_connection(inventory: Inventory, host: Host) -> Connection:
    """A connected Connection, retried on transient network errors; HostKeyRefused for an unknown or changed key."""
    conn = connection(inventory, host)
    try:
        _open(conn)
    except paramiko.BadHostKeyException as exc:
        conn.close()
        raise HostKeyRefused(f"{host.name} ({host.address}): host key differs from known_hosts: {exc}") from None
    except paramiko.SSHException as exc:
        conn.close()
        if "known_hosts" in str(exc):
            where = inventory.known_hosts or "no known_hosts file in the inventory"
            raise HostKeyRefused(f"{host.name} ({host.address}): unknown host key (checked against {where}; "
                                 "set accept_unknown_host_keys: true to trust on first use)") from None
        raise
    return conn


def threading_group(inventory: Inventory, hosts: Iterable[Host]) -> ThreadingGroup:
    """One command on many hosts at once (Fabric runs each Connection in its own thread)."""
    return ThreadingGroup.from_connections([open_connection(inventory, h) for h in hosts])


def fan_out(hosts: Iterable[Host], action: Callable[[Host], T]) -> dict[str, T | BaseException]:
    """`action` on every host in parallel threads; each host's result, or the exception it raised, by name.
    Threads rather than ThreadingGroup.run because deployment runs a different sequence on each host."""
    hosts = list(hosts)
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=min(16, len(hosts)), thread_name_prefix="yurt-host") as pool:
        futures = {h.name: pool.submit(action, h) for h in hosts}
    out: dict[str, T | BaseException] = {}
    for name, future in futures.items():
        exc = future.exception()
        out[name] = exc if exc is not None else future.result()
    return out
