"""`fab` tasks deploying and operating a yurt cluster on an inventory's hosts (see remote/deploy.py for the API)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

import paramiko
from fabric import task
from invoke.context import Context
from invoke.exceptions import Exit

from orchestrator.api.client import ApiError
from remote import deploy as ops
from remote.build import BuildError
from remote.connect import HostKeyRefused
from remote.inventory import Inventory, InventoryError, format_diagnostic, load_inventory, summary

DEFAULT_INVENTORY = os.environ.get("YURT_INVENTORY", "inventory/lab.yml")
HELP = {"inventory": f"inventory file (default {DEFAULT_INVENTORY}, or $YURT_INVENTORY)"}
HOST_HELP = {**HELP, "host": "comma-separated host names (default: every host)"}


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _inventory(path: str) -> Inventory:
    """Every task starts here: all problems printed as file:line, non-zero exit when there are errors."""
    try:
        inventory = load_inventory(path, check_files=True)
    except InventoryError as exc:
        for diagnostic in exc.diagnostics:
            _err(format_diagnostic(diagnostic, "error"))
        raise Exit(f"{path}: {len(exc.diagnostics)} error(s)", code=1) from None
    for warning in inventory.warnings:
        _err(format_diagnostic(warning, "warning"))
    return inventory


def _hosts(host: str) -> list[str] | None:
    return [h.strip() for h in host.split(",") if h.strip()] or None


def _guard(call: Callable[[], Any]) -> Any:
    # Operational failures end the task with a message and exit 1, not a traceback.
    try:
        return call()
    except (ops.DeployError, ops.RemoteError, BuildError, ApiError, HostKeyRefused, paramiko.SSHException,
            TimeoutError, ConnectionError, KeyError, ValueError, OSError) as exc:
        raise Exit(f"error: {exc}", code=1) from None


def _say(line: str) -> None:
    print(line, flush=True)


@task(help=HELP)
def validate(c: Context, inventory: str = DEFAULT_INVENTORY) -> None:
    """Check the inventory (key and known_hosts files included); every problem with its file:line."""
    print(summary(_inventory(inventory)))


@task(help=HELP)
def deploy(c: Context, inventory: str = DEFAULT_INVENTORY) -> None:
    """Build, install, configure and start yurt on every host; wait until healthy; a no-op when nothing changed."""
    inv = _inventory(inventory)
    _guard(lambda: ops.deploy(inv, out=_say))


@task(help={**HELP, "as_json": "print the raw status as JSON"})
def status(c: Context, inventory: str = DEFAULT_INVENTORY, as_json: bool = False) -> None:
    """Members, leader, nodes and jobs as a server reports them."""
    inv = _inventory(inventory)
    info = _guard(lambda: ops.status(inv))
    print(json.dumps(info, indent=2) if as_json else ops.format_status(info))


@task(help={**HOST_HELP, "lines": "lines from the end of each agent log (default 100)"})
def logs(c: Context, inventory: str = DEFAULT_INVENTORY, host: str = "", lines: int = 100) -> None:
    """The agents' logs (the last --lines lines of each)."""
    inv = _inventory(inventory)
    for name in _hosts(host) or [h.name for h in inv.hosts]:
        print(f"==> {name}")
        print(_guard(lambda name=name: ops.logs(inv, name, lines)), end="", flush=True)


@task(help=HOST_HELP)
def stop(c: Context, inventory: str = DEFAULT_INVENTORY, host: str = "") -> None:
    """Stop agents (SIGTERM, then SIGKILL after a grace period)."""
    inv = _inventory(inventory)
    _guard(lambda: ops.stop(inv, _hosts(host), out=_say))


@task(help=HOST_HELP)
def start(c: Context, inventory: str = DEFAULT_INVENTORY, host: str = "") -> None:
    """Start agents that are not running."""
    inv = _inventory(inventory)
    _guard(lambda: ops.start(inv, _hosts(host), out=_say))


@task(help=HOST_HELP)
def restart(c: Context, inventory: str = DEFAULT_INVENTORY, host: str = "") -> None:
    """Stop and start agents."""
    inv = _inventory(inventory)
    _guard(lambda: ops.restart(inv, _hosts(host), out=_say))


@task(help=HELP)
def upgrade(c: Context, inventory: str = DEFAULT_INVENTORY) -> None:
    """Rolling upgrade: one server at a time with a health wait between, then the clients."""
    inv = _inventory(inventory)
    _guard(lambda: ops.upgrade(inv, out=_say))


@task(help=HELP)
def teardown(c: Context, inventory: str = DEFAULT_INVENTORY) -> None:
    """Stop every agent and remove install_dir and data_dir from every host."""
    inv = _inventory(inventory)
    _guard(lambda: ops.teardown(inv, out=_say))


@task(help={**HELP, "file": "the jobspec (HCL) to submit"})
def run_job(c: Context, file: str, inventory: str = DEFAULT_INVENTORY) -> None:
    """Submit a jobspec through any server (parsed by /v1/jobs/parse, registered by PUT /v1/jobs)."""
    inv = _inventory(inventory)
    response = _guard(lambda: ops.run_job(inv, file))
    print(f"job {response.get('job')} registered through {response.get('server')}; "
          f"evaluation {response.get('EvalID', '')}")
