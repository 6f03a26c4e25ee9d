"""The client's real drivers behind one TaskDriver: a DriverSet routes each task to the driver it names."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.client.allocdir import TaskPreparer
from orchestrator.client.task_driver import DriverError, TaskDriver, TaskExit
from orchestrator.structs import Allocation, DriverInfo, Task
from orchestrator.structs.timefmt import rfc3339

log = logging.getLogger(__name__)

_SEP = ":"
SHUTDOWN_GRACE = 5.0  # -dev shutdown of a driver without its own shutdown(): kill signal, then this long


@dataclass(slots=True)
class DriverContext:
    """What a real driver gets from the agent that runs it."""

    loop: asyncio.AbstractEventLoop
    preparer: TaskPreparer  # alloc/task directories, environment, dispatch payload
    wake: Callable[[], None]  # call after recording an exit (from any thread): the client ticks now and polls
    plugin_config: dict[str, Any] = field(default_factory=dict)  # `plugin "<name>" { config { ... } }`
    dev_mode: bool = False


class DriverSet:
    """Implements the TaskDriver port over several drivers, chosen by `task.driver`.

    Handles are the driver's own, prefixed with its name ("raw_exec:<handle>"), so `stop`, `recover` and
    exits route back to the driver that owns them, also after a client restart. Drivers may also have
    `fingerprint() -> DriverInfo` and `async shutdown(kill: bool)`; those without are taken as healthy.
    """

    def __init__(self, drivers: Iterable[TaskDriver] = ()):
        self.drivers: dict[str, TaskDriver] = {}
        for driver in drivers:
            self.add(driver)

    def add(self, driver: TaskDriver) -> None:
        """A driver loaded later than the others (its fingerprint was slow): the node is registered again."""
        self.drivers[getattr(driver, "name", type(driver).__name__)] = driver

    # -- the TaskDriver port --------------------------------------------------------------------------------

    def start(self, now: float, alloc: Allocation, task: Task) -> str:
        driver = self.drivers.get(task.driver)
        if driver is None:
            raise DriverError(f'driver "{task.driver}" is not available on this client', recoverable=False)
        return f"{task.driver}{_SEP}{driver.start(now, alloc, task)}"

    def stop(self, now: float, handle: str, kill_timeout: float) -> None:
        found = self._route(handle)
        if found is not None:
            found[0].stop(now, found[1], kill_timeout)

    def recover(self, now: float, handle: str) -> bool:
        found = self._route(handle)
        return found is not None and found[0].recover(now, found[1])

    def poll(self, now: float) -> list[TaskExit]:
        out = []
        for name, driver in self.drivers.items():
            out.extend(replace(e, handle=f"{name}{_SEP}{e.handle}") for e in driver.poll(now))
        return out

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (driver.next_deadline() for driver in self.drivers.values()) if d is not None]
        return min(deadlines) if deadlines else None

    # -- beyond the port: what the client's HTTP endpoints ask of a running task ----------------------------

    def pid(self, handle: str) -> int | None:
        """The task's main process, for drivers that run processes (raw_exec); None otherwise."""
        found = self._route(handle)
        lookup = getattr(found[0], "pid", None) if found is not None else None
        return lookup(found[1]) if lookup is not None and found is not None else None

    def main_pid(self, handle: str) -> int | None:
        """The host pid of the task's first process, also for drivers that run no process of ours (docker: the
        container's init); None when not running. Blocking for drivers that must ask an engine."""
        found = self._route(handle)
        if found is None:
            return None
        lookup = getattr(found[0], "main_pid", None) or getattr(found[0], "pid", None)
        return lookup(found[1]) if lookup is not None else None

    def stats(self, handle: str, ticks_per_core: float = 0.0) -> dict[str, Any] | None:
        """The task's ResourceUsage as its driver measures it (docker: the engine's stats API); None for drivers
        that measure nothing themselves (raw_exec, exec: their `pid` is read from /proc instead). Blocking."""
        found = self._route(handle)
        measure = getattr(found[0], "stats", None) if found is not None else None
        return measure(found[1], ticks_per_core) if measure is not None and found is not None else None

    def signal(self, handle: str, sig: int) -> bool:
        """Send a signal to the task (`alloc signal`); False when its driver cannot or it is not running."""
        found = self._route(handle)
        send = getattr(found[0], "signal", None) if found is not None else None
        return bool(send(found[1], sig)) if send is not None and found is not None else False

    # -- fingerprints and lifecycle -------------------------------------------------------------------------

    def fingerprint(self) -> tuple[dict[str, DriverInfo], dict[str, str]]:
        """Each driver's DriverInfo, and the node attributes they add (`driver.<name> = 1` when healthy)."""
        infos: dict[str, DriverInfo] = {}
        attributes: dict[str, str] = {}
        for name, driver in self.drivers.items():
            infos[name] = info = fingerprint_driver(name, driver)
            if info.detected:
                attributes[f"driver.{name}"] = "1"
                attributes.update((k, v) for k, v in info.attributes.items() if k != f"driver.{name}")
        return infos, attributes

    async def shutdown(self, *, kill: bool) -> None:
        """Stop every task (kill=True: -dev, nothing may be left behind) or let them run on (a client that
        restarts reattaches to them)."""
        for name, driver in self.drivers.items():
            try:
                await _shutdown(driver, kill)
            except Exception:
                log.exception("driver %s: shutdown failed", name)

    def _route(self, handle: str) -> tuple[TaskDriver, str] | None:
        name, sep, inner = handle.partition(_SEP)
        driver = self.drivers.get(name) if sep else None
        return (driver, inner) if driver is not None else None


def fingerprint_driver(name: str, driver: Any) -> DriverInfo:
    """The driver's own fingerprint (a DriverInfo, or a dict of its fields); healthy when it has none."""
    probe = getattr(driver, "fingerprint", None)
    now = rfc3339(time.time())
    try:
        info = probe() if probe is not None else DriverInfo(detected=True, healthy=True, health_description="Healthy")
    except Exception as exc:  # a broken driver makes itself unhealthy, never the client
        log.warning("driver %s: fingerprint failed: %s", name, exc)
        return DriverInfo(detected=False, healthy=False, health_description=f"fingerprint failed: {exc}",
                          update_time=now)
    if isinstance(info, dict):
        info = DriverInfo(attributes=dict(info.get("attributes") or {}), detected=bool(info.get("detected")),
                          healthy=bool(info.get("healthy")), health_description=str(info.get("health_description", "")))
    if not info.update_time:
        info.update_time = now
    return info


async def _shutdown(driver: Any, kill: bool) -> None:
    """The driver's `shutdown(kill=)`; else stop what `running_handles()` lists (when killing), then `close()`."""
    own = getattr(driver, "shutdown", None)
    if own is not None:
        await own(kill=kill)
        return
    running = getattr(driver, "running_handles", None)
    if kill and running is not None:
        for handle in running():
            driver.stop(0.0, handle, SHUTDOWN_GRACE)
        deadline = time.monotonic() + SHUTDOWN_GRACE + 5.0
        while running() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    close = getattr(driver, "close", None)
    if close is not None:
        close()


def _raw_exec(context: DriverContext) -> TaskDriver:
    from .raw_exec import RawExecDriver

    return RawExecDriver(context)


def _docker(context: DriverContext) -> TaskDriver:
    from orchestrator.client.taskenv import interpolate, node_variables

    from .docker import DockerDriver  # the docker SDK loads only when this driver does

    preparer = context.preparer
    # Containers get Nomad's task environment (paths as the container sees them: /alloc, /local, /secrets)
    # and `${...}` in their config filled in from it and the node, as raw_exec's processes do.
    return DockerDriver(context.plugin_config, wake=context.wake, alloc_dir_of=preparer.alloc_path,
                        env_of=lambda alloc, task: preparer.prepare(alloc, task, isolated=True).env,
                        interpolate=lambda text, env: interpolate(text, node_variables(preparer.node,
                                                                                       preparer.region), env))


def _exec(context: DriverContext) -> TaskDriver:
    from .exec import ExecDriver

    return ExecDriver(context)


def _java(context: DriverContext) -> TaskDriver:
    from .java import JavaDriver

    return JavaDriver(context)


# The drivers the agent knows. A driver whose module is missing or whose dependencies fail to import is left
# out: its tasks cannot be placed on this node. Slow ones are fingerprinted after the node registers.
FACTORIES: dict[str, Callable[[DriverContext], TaskDriver]] = {"raw_exec": _raw_exec, "docker": _docker,
                                                               "exec": _exec, "java": _java}
SLOW_DRIVERS = ("docker", "java")  # java: its fingerprint runs `java -version`


def load_driver(name: str, context: DriverContext) -> TaskDriver | None:
    try:
        return FACTORIES[name](context)
    except ImportError as exc:
        log.debug("driver %s not loaded: %s", name, exc)
    except Exception:
        log.exception("driver %s failed to load; it is left out", name)
    return None


def load_drivers(context: Callable[[str], DriverContext], names: Iterable[str] | None = None) -> DriverSet:
    """Build the known drivers (or `names`), each with `context(name)`; drivers that cannot load are skipped."""
    loaded = (load_driver(name, context(name)) for name in (names if names is not None else FACTORIES))
    return DriverSet(d for d in loaded if d is not None)
