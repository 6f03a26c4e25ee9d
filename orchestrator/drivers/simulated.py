"""A simulated task driver: tasks "run" on the virtual clock; how long and how they end comes from meta."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Protocol

from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.structs import Allocation, Task
from orchestrator.structs.timefmt import duration_seconds

SIGKILL = 9
KILLED_EXIT_CODE = 128 + SIGKILL  # Nomad's executor reports 128+signal for signalled processes
DEFAULT_BATCH_RUN = "10s"
DEFAULT_STOP_AFTER = 0.1


class SimRng(Protocol):
    def random(self) -> float: ...
    def expovariate(self, lambd: float, /) -> float: ...
    def uniform(self, a: float, b: float, /) -> float: ...


@dataclass(frozen=True, slots=True)
class Workload:
    """A task's simulated behaviour, parsed from its meta."""

    kind: str = "forever"  # "forever", "fixed", "exp", "uniform"
    a: float = 0.0  # fixed duration, mean, or lower bound (seconds)
    b: float = 0.0  # upper bound for "uniform"
    exit_code: int = 0
    fail_probability: float = 0.0
    stop_after: float = DEFAULT_STOP_AFTER
    start_error: str = ""

    def draw_run_time(self, rng: SimRng) -> float | None:
        if self.kind == "forever":
            return None
        if self.kind == "exp":
            return rng.expovariate(1.0 / self.a) if self.a > 0 else 0.0
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return self.a


def _seconds(text: str) -> float:
    text = text.strip()
    try:
        return float(text)  # a bare number is taken as seconds
    except ValueError:
        return duration_seconds(text)


def parse_run_for(spec: str) -> tuple[str, float, float]:
    """("forever"|"fixed"|"exp"|"uniform", a, b) from a `sim_run_for` value; ValueError when malformed."""
    spec = spec.strip()
    if spec in ("forever", "inf", ""):
        return ("forever", 0.0, 0.0)
    kind, _, rest = spec.partition(":")
    if kind == "exp" and rest:
        return ("exp", _seconds(rest), 0.0)
    if kind == "uniform" and rest:
        low, sep, high = rest.partition(":")
        if not sep:
            raise ValueError(f"uniform needs two bounds: {spec!r}")
        a, b = _seconds(low), _seconds(high)
        return ("uniform", min(a, b), max(a, b))
    return ("fixed", _seconds(spec), 0.0)


def workload_for(alloc: Allocation, task: Task) -> Workload:
    """The workload of `task` in `alloc`; ValueError when a key does not parse."""
    job = alloc.job
    group = job.group(alloc.task_group) if job is not None else None
    layers = [task.meta, group.meta if group is not None else {}, job.meta if job is not None else {}]

    def get(key: str) -> str | None:
        return next((str(layer[key]) for layer in layers if layer and key in layer), None)

    job_type = job.type if job is not None else "service"
    run_for = get("sim_run_for")
    if run_for is None:
        run_for = DEFAULT_BATCH_RUN if job_type in ("batch", "sysbatch") else "forever"
    kind, a, b = parse_run_for(run_for)
    stop_after = get("sim_stop_after")
    return Workload(kind=kind, a=a, b=b, exit_code=int(get("sim_exit_code") or 0),
                    fail_probability=float(get("sim_fail_probability") or 0.0),
                    stop_after=_seconds(stop_after) if stop_after is not None else DEFAULT_STOP_AFTER,
                    start_error=get("sim_start_error") or "")


@dataclass(slots=True)
class _SimTask:
    workload: Workload
    exit_at: float | None  # when the current run ends; None while it runs forever
    result: TaskExit  # what it reports when it ends at exit_at
    stopping: bool = False


class SimulatedDriver:
    """Implements the TaskDriver port on the virtual clock; one instance per client machine.

    Workload keys, read from the task's `meta`, else its group's, else its job's (so one job-level `meta`
    block can describe every task):

        sim_run_for           how long each run lasts:
                                "forever"            never exits on its own (default for service/system jobs)
                                "30s"                a fixed duration, Go syntax (default "10s" for batch/sysbatch)
                                "exp:30s"            exponentially distributed with that mean
                                "uniform:10s:60s"    uniformly distributed between the two bounds
        sim_exit_code         the exit code of a run that ends on its own (default 0)
        sim_fail_probability  each run instead fails with exit code 1 with this probability (default 0)
        sim_stop_after        how long the task takes to exit after its kill signal (default "100ms"); when longer
                              than the kill timeout, the task is force-killed at the timeout (exit 137, signal 9)
        sim_start_error       when set, every start fails with this driver error (recoverable)

    Runs ended by the kill signal exit with code 0; `kill` (the fault hook) ends a task as `kill -9` would.
    """

    name = "simulated"

    def __init__(self, rng: SimRng):
        self.rng = rng
        self._tasks: dict[str, _SimTask] = {}
        self._timers: list[tuple[float, int, str]] = []  # (exit_at, seq, handle); stale entries skipped
        self._exited: list[tuple[float, TaskExit]] = []  # ended by kill(): reported at the next poll
        self._seq = 0

    # -- the TaskDriver port --------------------------------------------------------------------------

    def start(self, now: float, alloc: Allocation, task: Task) -> str:
        try:
            workload = workload_for(alloc, task)
        except ValueError as err:
            raise DriverError(f"invalid simulated workload: {err}", recoverable=False) from err
        if workload.start_error:
            raise DriverError(workload.start_error)
        self._seq += 1
        handle = f"sim-{alloc.id[:8]}-{task.name}-{self._seq}"
        run_time = workload.draw_run_time(self.rng)
        # Drawn at start so one seed gives the same runs whatever happens later.
        fails = workload.fail_probability > 0 and self.rng.random() < workload.fail_probability
        code = 1 if fails else workload.exit_code
        result = TaskExit(handle, exit_code=code, failed=code != 0)
        self._tasks[handle] = _SimTask(workload, None, result)
        if run_time is not None:
            self._schedule(handle, now + max(0.0, run_time))
        return handle

    def stop(self, now: float, handle: str, kill_timeout: float) -> None:
        sim = self._tasks.get(handle)
        if sim is None or sim.stopping:
            return
        sim.stopping = True
        if sim.workload.stop_after > kill_timeout:
            at, result = now + kill_timeout, TaskExit(handle, KILLED_EXIT_CODE, SIGKILL, failed=True)
        else:
            at, result = now + sim.workload.stop_after, TaskExit(handle)
        if sim.exit_at is None or at < sim.exit_at:
            sim.result = result
            self._schedule(handle, at)

    def recover(self, now: float, handle: str) -> bool:
        return handle in self._tasks or any(e.handle == handle for _, e in self._exited)

    def poll(self, now: float) -> list[TaskExit]:
        exits = [e for at, e in self._exited if at <= now]
        self._exited = [(at, e) for at, e in self._exited if at > now]
        while self._timers and self._timers[0][0] <= now:
            at, _, handle = heapq.heappop(self._timers)
            sim = self._tasks.get(handle)
            if sim is not None and sim.exit_at == at:
                del self._tasks[handle]
                exits.append(sim.result)
        return exits

    def next_deadline(self) -> float | None:
        timers = self._timers
        while timers and self._stale(timers[0]):
            heapq.heappop(timers)
        candidates = [timers[0][0]] if timers else []
        candidates.extend(at for at, _ in self._exited)
        return min(candidates) if candidates else None

    # -- fault hooks and views ------------------------------------------------------------------------

    def kill(self, now: float, handle: str) -> bool:
        """End a task at once as `kill -9` would (exit 137, signal 9); False when it is not running."""
        if self._tasks.pop(handle, None) is None:
            return False
        self._exited.append((now, TaskExit(handle, KILLED_EXIT_CODE, SIGKILL, failed=True)))
        return True

    def kill_all(self, now: float) -> int:
        handles = list(self._tasks)
        for handle in handles:
            self.kill(now, handle)
        return len(handles)

    def running_handles(self) -> list[str]:
        return list(self._tasks)

    # -- internals ----------------------------------------------------------------------------------

    def _schedule(self, handle: str, at: float) -> None:
        self._tasks[handle].exit_at = at
        self._seq += 1
        heapq.heappush(self._timers, (at, self._seq, handle))

    def _stale(self, entry: tuple[float, int, str]) -> bool:
        sim = self._tasks.get(entry[2])
        return sim is None or sim.exit_at != entry[0]
