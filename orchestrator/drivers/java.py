"""The java driver: `java` with the task's jar or class, isolated as exec tasks are when the agent runs as root."""

from __future__ import annotations

import re
import shutil
import subprocess

from orchestrator.client.allocdir import PreparedTask
from orchestrator.client.task_driver import DriverError
from orchestrator.client.taskenv import interpolate, node_variables
from orchestrator.structs import Allocation, DriverInfo, Task

from . import isolation
from .exec import ExecDriver
from .raw_exec import LaunchError
from .registry import DriverContext

VERSION_TIMEOUT = 10.0
_VERSION = re.compile(r'version "([^"]+)"')


def parse_java_version(text: str) -> dict[str, str]:
    """Nomad's attributes from `java -version` (printed on stderr): its first three lines are the version,
    the runtime and the VM, e.g. `openjdk version "17.0.15" 2025-04-15`."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Picked up")]
    match = _VERSION.search(lines[0]) if lines else None
    if match is None:
        raise ValueError(f"unrecognised `java -version` output: {text[:200]!r}")
    return {"driver.java": "true", "driver.java.version": match.group(1),
            "driver.java.runtime": lines[1] if len(lines) > 1 else "",
            "driver.java.vm": lines[2] if len(lines) > 2 else ""}


class JavaDriver(ExecDriver):
    """Runs `java [jvm_options] [-cp class_path] (-jar jar_path | class) [args]` from the task dir.

    As root, each run gets exec's namespaces, chroot (the JDK under /usr is in Nomad's default chroot_env),
    cgroups and user; otherwise the JVM runs as a raw_exec process would, unisolated, as the agent's user.
    """

    name = "java"

    def __init__(self, context: DriverContext):
        super().__init__(context)
        self.isolated = self.unavailable is None
        self._java = shutil.which("java")
        self._attributes: dict[str, str] | None = None  # the JDK does not change under a running agent
        self._problem = "java not found" if self._java is None else ""

    def _validate(self, task: Task) -> None:
        if self._java is None:
            raise DriverError("java driver unavailable: java not found", recoverable=False)
        config = task.config or {}
        if not config.get("jar_path") and not config.get("class"):
            raise DriverError('java: the task config needs a "jar_path" or a "class"', recoverable=False)
        if self.isolated:
            try:
                isolation.resolve_user(task.user or isolation.DEFAULT_USER)
            except isolation.IsolationError as exc:
                raise DriverError(str(exc), recoverable=False) from None

    def _task_argv(self, prepared: PreparedTask, task: Task) -> list[str]:
        env, config = prepared.env, task.config or {}
        scope = node_variables(self.preparer.node, self.preparer.region)

        def expand(value: object) -> str:
            return interpolate(str(value), scope, env)

        argv = ["java", *(expand(o) for o in config.get("jvm_options") or [])]
        if config.get("class_path"):
            argv += ["-cp", expand(config["class_path"])]
        if config.get("jar_path"):
            argv += ["-jar", expand(config["jar_path"])]
        else:
            argv.append(expand(config["class"]))
        return argv + [expand(a) for a in config.get("args") or []]

    def _command(self, run: str, prepared: PreparedTask, alloc: Allocation, task: Task) -> tuple[list[str], dict]:
        argv = self._task_argv(prepared, task)
        if not self.isolated:
            return [self._java or "java", *argv[1:]], prepared.env  # relative paths: the cwd is the task dir
        try:
            return self._isolate(run, prepared, alloc, task, argv)
        except (isolation.IsolationError, OSError) as exc:
            raise LaunchError(f"failed to isolate the task: {exc}") from exc

    def fingerprint(self) -> DriverInfo:
        if self._attributes is None and not self._problem:
            try:
                done = subprocess.run([self._java or "java", "-version"], capture_output=True, text=True,
                                      timeout=VERSION_TIMEOUT, check=False)
                self._attributes = parse_java_version(done.stderr or done.stdout)
            except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
                self._problem = f"java -version failed: {exc}"
        if self._attributes is None:
            return DriverInfo(detected=False, healthy=False, health_description=self._problem,
                              update_time=self._detected_at)
        health = "Healthy" if self.isolated else f"Healthy (tasks not isolated: {self.unavailable})"
        return DriverInfo(attributes=dict(self._attributes), detected=True, healthy=True,
                          health_description=health, update_time=self._detected_at)
