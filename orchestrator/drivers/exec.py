"""The exec driver: raw_exec's process handling, with each task in namespaces, a chroot and cgroups of its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import time
from pathlib import Path

from orchestrator.client.allocdir import PreparedTask
from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.client.taskenv import interpolate, node_variables
from orchestrator.structs import Allocation, DriverInfo, Task

from . import isolation
from .raw_exec import LaunchError, RawExecDriver
from .registry import DriverContext

OOM_MESSAGE = "OOM Killed"  # Nomad's exit message for a task its memory limit killed
RELEASE_RETRY = 0.05  # cgroups still busy while the namespace's last processes exit: retry this often
RELEASE_ATTEMPTS = 100
SHUTDOWN_RELEASE_WAIT = 2.0


class ExecDriver(RawExecDriver):
    """Implements the TaskDriver port with isolated processes, as Nomad's exec driver.

    Everything about a running process (log FIFOs, the pidfd exit watch, kill signal then SIGKILL to the
    group, the run file a restarted client reattaches with) is raw_exec's. What differs is what gets forked:
    a launcher (isolation.py) that unshares PID, mount, IPC and UTS namespaces and forks their PID 1, which
    joins the run's cgroups, mounts the chroot (the task dir, `chroot_env` bound read-only, /alloc, /proc,
    /dev), drops to `user` and execs the task, which is then PID 1 itself; the launcher waits and exits as
    the task did. The mounts live only in the task's namespace:
    they go when it does, also if the agent dies. The cgroups are removed when the run ends.

    A task that is PID 1 gets its kill signal only if it handles it (the kernel's rule for a namespace's
    init, as with Nomad's exec); otherwise it is killed at the end of `kill_timeout`.
    """

    name = "exec"
    isolated = True

    def __init__(self, context: DriverContext):
        super().__init__(context)
        self.enabled = True  # exec needs no opt-in, only root: see _validate
        config = context.plugin_config
        self.chroot_env = dict(config.get("chroot_env") or isolation.DEFAULT_CHROOT_ENV)
        self.cgroup_parent = str(config.get("cgroup_parent") or isolation.DEFAULT_CGROUP_PARENT)
        self.unavailable = isolation.unavailable_reason()
        self._specs: dict[str, Path] = {}  # run -> its spec file, removed if the launcher never read it
        self._busy: dict[str, int] = {}  # run -> removal attempts, for cgroups not empty yet

    # -- what raw_exec forks -----------------------------------------------------------------------------------

    def _validate(self, task: Task) -> None:
        if self.unavailable:
            raise DriverError(f"{self.name} driver unavailable: {self.unavailable}", recoverable=False)
        self._check_config(task)
        try:
            isolation.resolve_user(task.user or isolation.DEFAULT_USER)
        except isolation.IsolationError as exc:
            raise DriverError(str(exc), recoverable=False) from None

    def _check_config(self, task: Task) -> None:
        command = (task.config or {}).get("command")
        if not isinstance(command, str) or not command:
            raise DriverError(f'{self.name}: the task config needs a "command"', recoverable=False)

    def _task_argv(self, prepared: PreparedTask, task: Task) -> list[str]:
        """The task's argv as seen inside its chroot: a relative command found in local/ or the task dir is
        named from the chroot's root; others are looked up on the chroot's PATH by the launcher."""
        env, config = prepared.env, task.config or {}
        scope = node_variables(self.preparer.node, self.preparer.region)
        command = interpolate(str(config["command"]), scope, env)
        args = [interpolate(str(arg), scope, env) for arg in config.get("args") or []]
        if not os.path.isabs(command):
            for base in (prepared.task_dir.local_dir, prepared.task_dir.dir):
                if (base / command).is_file():
                    command = "/" + str((base / command).relative_to(prepared.task_dir.dir))
                    break
        return [command, *args]

    def _command(self, run: str, prepared: PreparedTask, alloc: Allocation, task: Task) -> tuple[list[str], dict]:
        argv = self._task_argv(prepared, task)
        try:
            return self._isolate(run, prepared, alloc, task, argv)
        except (isolation.IsolationError, OSError) as exc:
            raise LaunchError(f"failed to isolate the task: {exc}") from exc

    def _isolate(self, run: str, prepared: PreparedTask, alloc: Allocation, task: Task,
                 argv: list[str]) -> tuple[list[str], dict]:
        uid, gid, groups = isolation.resolve_user(task.user or isolation.DEFAULT_USER)
        env = dict(prepared.env)
        env.setdefault("PATH", isolation.DEFAULT_PATH)
        root = prepared.task_dir.dir
        mounts = isolation.build_root(root, prepared.task_dir.shared_dir, self.chroot_env)
        res = task.resources
        dirs = isolation.create_cgroups(self.cgroup_parent, run, res.memory_mb, res.memory_max_mb, res.cpu)
        spec = {"root": str(root), "cwd": "/", "hostname": hostname_of(alloc, task), "mounts": mounts,
                "cgroups": [str(d / "cgroup.procs") for d in dirs], "uid": uid, "gid": gid,
                "groups": groups, "argv": argv, "env": env}
        try:
            self._specs[run] = path = isolation.write_spec(root, spec)
        except OSError:
            isolation.remove_cgroups(dirs)
            raise
        return isolation.launch_argv(path), dict(isolation.LAUNCHER_ENV)

    # -- when a run ends ---------------------------------------------------------------------------------------

    def _ended(self, run: str, result: TaskExit) -> TaskExit:
        if not self.isolated:
            return result  # java without root: nothing was set up
        spec = self._specs.pop(run, None)
        if spec is not None:
            with contextlib.suppress(OSError):
                spec.unlink()  # already gone when the launcher ran
        dirs = isolation.cgroup_dirs(self.cgroup_parent, run)
        if result.signal == signal.SIGKILL and isolation.oom_killed(dirs):
            result = dataclasses.replace(result, message=OOM_MESSAGE)
        self._release(run)
        return result

    def _release(self, run: str) -> None:
        """Remove the run's cgroups; while the namespace's last processes are still exiting, retry shortly."""
        try:
            done = isolation.remove_cgroups(isolation.cgroup_dirs(self.cgroup_parent, run))
        except OSError:
            done = True  # not ours to fix (a controller unmounted): give up rather than retry forever
        attempts = self._busy.pop(run, 0) + 1
        if not done and attempts < RELEASE_ATTEMPTS:
            self._busy[run] = attempts
            self.loop.call_later(RELEASE_RETRY, self._release, run)

    def recover(self, now: float, handle: str) -> bool:
        if super().recover(now, handle):
            return True
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if self.isolated:
                self._release(str(json.loads(handle)["run"]))  # the run ended while no client watched it
        return False

    async def shutdown(self, *, kill: bool, grace: float = 5.0) -> None:
        await super().shutdown(kill=kill, grace=grace)
        deadline = time.monotonic() + SHUTDOWN_RELEASE_WAIT
        while self._busy and time.monotonic() < deadline:
            await asyncio.sleep(RELEASE_RETRY)  # the retries run on the loop: let them finish

    # -- fingerprint -------------------------------------------------------------------------------------------

    def fingerprint(self) -> DriverInfo:
        if self.unavailable:
            return DriverInfo(detected=True, healthy=False, health_description=self.unavailable,
                              update_time=self._detected_at)
        return DriverInfo(attributes={f"driver.{self.name}": "true"}, detected=True, healthy=True,
                          health_description="Healthy", update_time=self._detected_at)


def hostname_of(alloc: Allocation, task: Task) -> str:
    """The task's hostname in its UTS namespace: the task name and short alloc id, as a valid DNS label."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in f"{task.name}-{alloc.id[:8]}")
    return name.strip("-")[:63] or "task"
