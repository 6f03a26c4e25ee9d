"""The raw_exec driver: tasks run as plain processes of the agent's user, each in its own process group."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.client.allocdir import PreparedTask, TaskDir
from orchestrator.client.logs import (
    DEFAULT_MAX_FILE_SIZE_MB,
    DEFAULT_MAX_FILES,
    STREAMS,
    FifoPump,
    RotatingLogWriter,
    fifo_path,
    make_fifo,
    open_reader,
    open_task_end,
)
from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.client.taskenv import interpolate, node_variables
from orchestrator.structs import Allocation, DriverInfo, Task
from orchestrator.structs.timefmt import rfc3339

from .registry import DriverContext

log = logging.getLogger(__name__)

DEFAULT_KILL_SIGNAL = "SIGINT"  # Nomad's default kill_signal
SHUTDOWN_GRACE = 5.0  # -dev shutdown: how long tasks get to exit on their kill signal before SIGKILL
LAUNCH_WORKERS = 8  # directories, FIFOs and fork/exec run off the event loop, this many tasks at a time
RUN_FILE = ".raw_exec.json"  # in the task dir: the current run's pid, for a restarted client to reattach
UNKNOWN_EXIT = "exit status unknown: the task was reattached after a client restart"
_POLL_INTERVAL = 0.25  # exit checks when the kernel has no pidfd_open


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): with the pid it names one process for good."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie has exited already
    return int(fields[19])


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def kill_signal_of(task: Task) -> int:
    name = (task.kill_signal or DEFAULT_KILL_SIGNAL).upper()
    try:
        return int(signal.Signals[name if name.startswith("SIG") else f"SIG{name}"])
    except KeyError:
        raise DriverError(f"invalid kill_signal {task.kill_signal!r}", recoverable=False) from None


def lookup_binary(task_dir: TaskDir, command: str, path: str | None) -> str | None:
    """Nomad's lookupBin: an absolute path as is; else the task's local/, then the task dir, then $PATH."""
    if os.path.isabs(command):
        return command if os.path.isfile(command) else None
    for base in (task_dir.local_dir, task_dir.dir):
        candidate = base / command
        if candidate.is_file():
            return str(candidate)
    if "/" in command:
        return None
    return shutil.which(command, path=path)


def log_limits(task: Task) -> tuple[int, int]:
    """(max_files, max bytes per file) of the task's `logs` block, Nomad's defaults when unset."""
    config = task.log_config
    max_files = config.max_files if config is not None and config.max_files > 0 else DEFAULT_MAX_FILES
    size_mb = (config.max_file_size_mb if config is not None and config.max_file_size_mb > 0
               else DEFAULT_MAX_FILE_SIZE_MB)
    return max_files, size_mb * 1024 * 1024


class LaunchError(Exception):
    """A run could not be started; reported to the client as the run's failed exit, with this message."""


@dataclass(slots=True)
class _Launched:
    """What a worker thread made for one run: the process and its log writers (pumped from the loop)."""

    popen: subprocess.Popen
    writers: list[RotatingLogWriter]
    fifos: list[Path]
    readers: list[int]  # the FIFOs' read ends, opened before the task's: nothing it writes is lost


@dataclass(slots=True)
class _Process:
    handle: str
    run: str
    kill_signal: int
    pid: int = 0
    popen: subprocess.Popen | None = None  # None when reattached after a client restart (not our child)
    pidfd: int = -1
    pumps: list[FifoPump] = field(default_factory=list)
    kill_timer: asyncio.TimerHandle | None = None
    launching: bool = False
    stopping: bool = False
    stop_timeout: float = 0.0  # asked to stop while launching: applied once the process exists


class RawExecDriver:
    """Implements the TaskDriver port with real processes.

    `start` checks the task and returns at once; a worker thread builds the directories, the environment
    and the log FIFOs and forks the process (a slow disk never stalls the event loop, and many tasks start
    in parallel); a run that cannot be launched is reported as a failed exit with the reason. stdout and
    stderr go into FIFOs in the alloc's log directory, copied into rotated log files from the loop. Exits are
    noticed at once through a pidfd watched by the loop; each is recorded, the context's `wake` makes the
    runtime tick the client, and the client polls. The handle is JSON naming the run and its task dir, where
    the run's pid and start time are kept, so that a restarted client can reattach to a task still running
    (and tell it from another process that reused the pid).
    """

    name = "raw_exec"
    isolated = False  # subclasses that chroot (exec, java) get the /alloc, /local, /secrets environment

    def __init__(self, context: DriverContext):
        self.context = context
        self.loop = context.loop
        self.preparer = context.preparer
        self.enabled = bool(context.plugin_config.get("enabled", False))
        self._procs: dict[str, _Process] = {}
        self._exits: list[TaskExit] = []
        self._launching = 0
        self._pool = ThreadPoolExecutor(LAUNCH_WORKERS, thread_name_prefix="raw_exec")
        self._detected_at = rfc3339(time.time())

    # -- the TaskDriver port --------------------------------------------------------------------------------

    def start(self, now: float, alloc: Allocation, task: Task) -> str:
        self._validate(task)
        kill_signal = kill_signal_of(task)
        max_files, max_bytes = log_limits(task)
        task_dir = self.preparer.alloc_dir(alloc.id).task_dir(task.name)
        run = secrets.token_hex(8)
        handle = json.dumps({"run": run, "dir": str(task_dir.dir), "signal": kill_signal,
                             "logs": [str(task_dir.log_dir), task.name, max_files, max_bytes]}, separators=(",", ":"))
        proc = _Process(handle, run, kill_signal, launching=True)
        self._procs[handle] = proc
        self._launching += 1
        self._pool.submit(self._launch, proc, alloc, task, max_files, max_bytes)
        return handle

    def stop(self, now: float, handle: str, kill_timeout: float) -> None:
        proc = self._procs.get(handle)
        if proc is None or proc.stopping:
            return
        proc.stopping = True
        proc.stop_timeout = max(0.0, kill_timeout)
        if not proc.launching:
            self._signal(proc)

    def recover(self, now: float, handle: str) -> bool:
        if handle in self._procs:
            return True
        try:
            info = json.loads(handle)
            run, task_dir, kill_signal = str(info["run"]), Path(info["dir"]), int(info["signal"])
            log_dir, task_name, max_files, max_bytes = info["logs"]
            record = json.loads((task_dir / RUN_FILE).read_text())
            pid, ticks = int(record["pid"]), int(record["start"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if record.get("run") != run:
            return False
        if _start_ticks(pid) != ticks:
            if not Path(f"/proc/{pid}").exists():
                _kill_group(pid, signal.SIGKILL)  # what is left of its group; its id cannot be anyone else's
            return False
        proc = _Process(handle, run, kill_signal, pid=pid)
        self._procs[handle] = proc
        self._watch(proc)  # an exit since the check above is reported through the pidfd like any other
        for stream in STREAMS:
            try:
                writer = RotatingLogWriter(Path(log_dir), task_name, stream, max_files=max_files, max_bytes=max_bytes)
                proc.pumps.append(FifoPump(self.loop, fifo_path(Path(log_dir), task_name, stream), writer))
            except OSError as exc:
                log.warning("raw_exec: logs of pid %d not reattached: %s", pid, exc)
        return True

    def poll(self, now: float) -> list[TaskExit]:
        exits, self._exits = self._exits, []
        return exits

    def next_deadline(self) -> float | None:
        return 0.0 if self._exits else None  # recorded exits are due at once: the client polls on its tick

    # -- hooks for the drivers built on this one (exec, java) ------------------------------------------------

    def _validate(self, task: Task) -> None:
        """Checks made by `start`, on the loop: a DriverError refuses the task."""
        if not self.enabled:
            raise DriverError("raw_exec is disabled on this client", recoverable=False)
        command = (task.config or {}).get("command")
        if not isinstance(command, str) or not command:
            raise DriverError('raw_exec: the task config needs a "command"', recoverable=False)
        if os.path.isabs(command) and "${" not in command and not os.path.isfile(command):
            raise DriverError(f'failed to launch command with executor: file "{command}" not found')

    def _command(self, run: str, prepared: PreparedTask, alloc: Allocation, task: Task) -> tuple[list[str], dict]:
        """The argv and environment to fork for one run (in a worker thread); LaunchError when it cannot be."""
        env, config = prepared.env, task.config or {}
        scope = node_variables(self.preparer.node, self.preparer.region)
        command = interpolate(str(config["command"]), scope, env)
        args = [interpolate(str(arg), scope, env) for arg in config.get("args") or []]
        binary = lookup_binary(prepared.task_dir, command, env.get("PATH"))
        if binary is None:
            raise LaunchError(f'failed to launch command with executor: file "{command}" not found')
        return [binary, *args], env

    def _ended(self, run: str, result: TaskExit) -> TaskExit:
        """Called once per run that ended or failed to launch (on the loop): releases what `_command` set up."""
        return result

    # -- fingerprint and shutdown -------------------------------------------------------------------------

    def fingerprint(self) -> DriverInfo:
        if not self.enabled:
            return DriverInfo(detected=False, healthy=False, health_description="disabled",
                              update_time=self._detected_at)
        return DriverInfo(attributes={"driver.raw_exec": "true"}, detected=True, healthy=True,
                          health_description="Healthy", update_time=self._detected_at)

    def running(self) -> list[int]:
        """Pids of the tasks this driver watches."""
        return [p.pid for p in self._procs.values() if p.pid]

    def pid(self, handle: str) -> int | None:
        """The pid (and process group id) of a running task; None while launching or once it exited."""
        proc = self._procs.get(handle)
        return proc.pid if proc is not None and proc.pid else None

    def signal(self, handle: str, sig: int) -> bool:
        """Send `sig` to the task's process group (`alloc signal`); False when it is not running."""
        pid = self.pid(handle)
        if pid is None:
            return False
        _kill_group(pid, sig)
        return True

    async def shutdown(self, *, kill: bool, grace: float = SHUTDOWN_GRACE) -> None:
        """kill=True: every task gets its kill signal, then SIGKILL after `grace`; returns once all exited.
        kill=False: stop watching and leave them running for the next client to reattach."""
        deadline = time.monotonic() + grace + 5.0
        while self._launching and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # runs being launched land first: then they have a pid to kill or keep
        if kill:
            for handle in list(self._procs):
                self.stop(0.0, handle, grace)
            while self._procs and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        for proc in list(self._procs.values()):
            self._unwatch(proc)
            for pump in proc.pumps:
                pump.close(drain=True)
        self._procs.clear()
        self._pool.shutdown(wait=False)

    # -- launching (worker threads) -----------------------------------------------------------------------

    def _launch(self, proc: _Process, alloc: Allocation, task: Task, max_files: int, max_bytes: int) -> None:
        try:
            result: _Launched | Exception = self._spawn(proc, alloc, task, max_files, max_bytes)
        except Exception as exc:  # any failure is the run's, reported as its exit; never the worker's
            result = exc if isinstance(exc, LaunchError) else LaunchError(f"failed to launch the task: {exc}")
        try:
            self.loop.call_soon_threadsafe(self._launched, proc, result)
        except RuntimeError:  # the loop is closed: the agent is gone, and with it whoever would watch the task
            if isinstance(result, _Launched):
                _kill_group(result.popen.pid, signal.SIGKILL)

    def _spawn(self, proc: _Process, alloc: Allocation, task: Task, max_files: int, max_bytes: int) -> _Launched:
        try:
            prepared = self.preparer.prepare(alloc, task, isolated=self.isolated)
        except OSError as exc:
            raise LaunchError(f"failed to build the task directory: {exc}") from exc
        argv, env = self._command(proc.run, prepared, alloc, task)
        log_dir = prepared.alloc_dir.log_dir
        writers: list[RotatingLogWriter] = []
        fifos: list[Path] = []
        readers: list[int] = []
        ends: list[int] = []
        try:
            for stream in STREAMS:
                fifos.append(fifo_path(log_dir, task.name, stream))
                make_fifo(fifos[-1])
                writers.append(RotatingLogWriter(log_dir, task.name, stream, max_files=max_files, max_bytes=max_bytes))
                readers.append(open_reader(fifos[-1]))
                ends.append(open_task_end(fifos[-1]))
            popen = subprocess.Popen(argv, cwd=prepared.task_dir.dir, env=env, stdin=subprocess.DEVNULL,
                                     stdout=ends[0], stderr=ends[1], start_new_session=True, close_fds=True)
        except OSError as exc:
            for writer in writers:
                writer.close()
            for fd in readers:
                os.close(fd)
            raise LaunchError(f"failed to launch command with executor: {exc}") from exc
        finally:
            for fd in ends:
                os.close(fd)
        record = {"run": proc.run, "pid": popen.pid, "start": _start_ticks(popen.pid) or 0}
        _write_atomically(prepared.task_dir.dir / RUN_FILE, json.dumps(record))
        return _Launched(popen, writers, fifos, readers)

    # -- the loop's side ----------------------------------------------------------------------------------

    def _launched(self, proc: _Process, result: _Launched | Exception) -> None:
        self._launching -= 1
        proc.launching = False
        if isinstance(result, Exception):
            if self._procs.pop(proc.handle, None) is proc:
                self._record(self._ended(proc.run, TaskExit(proc.handle, failed=True, message=str(result))))
            return
        proc.popen, proc.pid = result.popen, result.popen.pid
        if self._procs.get(proc.handle) is not proc:
            for writer, fd in zip(result.writers, result.readers):
                writer.close()
                os.close(fd)
            return  # detached by shutdown(kill=False) meanwhile: the next client reattaches
        proc.pumps = [FifoPump(self.loop, fifo, writer, fd)
                      for fifo, writer, fd in zip(result.fifos, result.writers, result.readers)]
        self._watch(proc)
        if proc.stopping:
            self._signal(proc)

    def _signal(self, proc: _Process) -> None:
        _kill_group(proc.pid, proc.kill_signal)
        proc.kill_timer = self.loop.call_later(proc.stop_timeout, _kill_group, proc.pid, signal.SIGKILL)

    def _watch(self, proc: _Process) -> None:
        try:
            proc.pidfd = os.pidfd_open(proc.pid)
        except ProcessLookupError:
            self.loop.call_soon(self._on_exit, proc)
            return
        except (OSError, AttributeError):
            self.loop.call_later(_POLL_INTERVAL, self._poll_one, proc)  # no pidfd: look every so often
            return
        self.loop.add_reader(proc.pidfd, self._on_exit, proc)

    def _poll_one(self, proc: _Process) -> None:
        if self._procs.get(proc.handle) is not proc:
            return
        gone = proc.popen.poll() is not None if proc.popen is not None else _start_ticks(proc.pid) is None
        if gone:
            self._on_exit(proc)
        else:
            self.loop.call_later(_POLL_INTERVAL, self._poll_one, proc)

    def _unwatch(self, proc: _Process) -> None:
        if proc.pidfd >= 0:
            self.loop.remove_reader(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = -1
        if proc.kill_timer is not None:
            proc.kill_timer.cancel()
            proc.kill_timer = None

    def _on_exit(self, proc: _Process) -> None:
        if self._procs.get(proc.handle) is not proc:
            return
        # The leader is a zombie (our child, not reaped yet) or gone: its pid still pins the group id, so
        # what it left running in its group is killed now, and nothing outlives the task.
        _kill_group(proc.pid, signal.SIGKILL)
        exit_code, sig, message = 0, 0, ""
        if proc.popen is not None:
            code = proc.popen.wait()
            if code < 0:
                sig, exit_code = -code, 128 - code  # Nomad's executor reports 128+signal
            else:
                exit_code = code
        else:
            message = UNKNOWN_EXIT
        self._unwatch(proc)
        for pump in proc.pumps:
            pump.close(drain=True)
        del self._procs[proc.handle]
        self._record(self._ended(proc.run, TaskExit(proc.handle, exit_code=exit_code, signal=sig,
                                                    failed=bool(exit_code or sig or message), message=message)))

    def _record(self, result: TaskExit) -> None:
        self._exits.append(result)
        self.context.wake()


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
