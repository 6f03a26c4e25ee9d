"""One task of an allocation on the client: its state, its Nomad task events, restarts and kills."""

from __future__ import annotations

from typing import Any

from orchestrator.structs import Allocation, RestartPolicy, Task, TaskEvent, TaskState, decode, encode
from orchestrator.structs.timefmt import go_duration, rfc3339, to_ns

from .restarts import NO_RESTART, REASON_WITHIN_POLICY, RestartDecision, RestartRng, RestartTracker
from .task_driver import DriverError, TaskDriver, TaskExit

# Task states and event types, spelled as Nomad's structs package spells them.
PENDING, RUNNING, DEAD = "pending", "running", "dead"
EVENT_RECEIVED = "Received"
EVENT_SETUP = "Task Setup"
EVENT_STARTED = "Started"
EVENT_TERMINATED = "Terminated"
EVENT_RESTARTING = "Restarting"
EVENT_NOT_RESTARTING = "Not Restarting"
EVENT_KILLING = "Killing"
EVENT_KILLED = "Killed"
EVENT_DRIVER_FAILURE = "Driver Failure"
EVENT_SIBLING_FAILED = "Sibling Task Failed"
EVENT_LEADER_DEAD = "Leader Task Dead"
EVENT_ALLOC_UNHEALTHY = "Alloc Unhealthy"
EVENT_MAIN_DEAD = "Main Tasks Dead"
EVENT_SHUTDOWN_DELAY = "Waiting for shutdown delay"
EVENT_RESTART_SIGNALED = "Restart Signaled"
REASON_USER_RESTART = "User requested restart"
BUILDING_TASK_DIR = "Building Task Directory"

MAX_EVENTS = 10  # Nomad keeps the last 10 events of a task
DEFAULT_KILL_TIMEOUT = 5.0


def new_event(now: float, kind: str, **fields: Any) -> TaskEvent:
    """A TaskEvent with its DisplayMessage written as Nomad's client writes it."""
    event = TaskEvent(type=kind, time=to_ns(now), **fields)
    event.display_message = display_message(event, fields.get("details", {}).get("kill_timeout", ""))
    return event


def display_message(event: TaskEvent, kill_timeout: str = "") -> str:
    kind = event.type
    if kind == EVENT_RECEIVED:
        return "Task received by client"
    if kind == EVENT_STARTED:
        return "Task started by client"
    if kind == EVENT_TERMINATED:
        parts = [f"Exit Code: {event.exit_code}"]
        if event.signal:
            parts.append(f"Signal: {event.signal}")
        if event.message:
            parts.append(f'Exit Message: "{event.message}"')
        return ", ".join(parts)
    if kind == EVENT_RESTARTING:
        within = f"Task restarting in {go_duration(event.start_delay)}"
        if event.restart_reason and event.restart_reason != REASON_WITHIN_POLICY:
            return f"{event.restart_reason} - {within}"
        return within
    if kind == EVENT_NOT_RESTARTING:
        return event.restart_reason or "Task exceeded restart policy"
    if kind == EVENT_KILLING:
        if event.kill_reason:
            return f"Killing task: {event.kill_reason}"
        return f"Sent interrupt. Waiting {kill_timeout} before force killing" if kill_timeout else "Sent interrupt"
    if kind == EVENT_KILLED:
        return "Task successfully killed"
    if kind == EVENT_DRIVER_FAILURE:
        return event.driver_error or "Failed to start task"
    if kind == EVENT_SIBLING_FAILED:
        return f'Task\'s sibling "{event.failed_sibling}" failed' if event.failed_sibling else "Task's sibling failed"
    if kind == EVENT_LEADER_DEAD:
        return "Leader Task in Group dead"
    if kind == EVENT_MAIN_DEAD:
        return "Main tasks in the group died"
    if kind == EVENT_RESTART_SIGNALED:
        return event.restart_reason or "Task signaled to restart"
    return event.message


class TaskRunner:
    """Drives one task through pending -> running -> dead, restarting it as its policy says."""

    def __init__(self, task: Task, job_type: str, rng: RestartRng, driver: TaskDriver, *,
                 group_policy: RestartPolicy | None = None, max_kill_timeout: float = 30.0):
        self.task = task
        self.name = task.name
        self.driver = driver
        self.state = TaskState()
        policy = task.restart_policy or group_policy or RestartPolicy()
        hook = task.lifecycle.hook if task.lifecycle is not None else ""
        sidecar = task.lifecycle.sidecar if task.lifecycle is not None else False
        self.tracker = RestartTracker(policy, job_type, rng, lifecycle_hook=hook, sidecar=sidecar)
        self.handle: str | None = None
        self.restart_at: float | None = None  # when a restart delay ends
        self.kill_at: float | None = None  # when the shutdown_delay ends and the kill signal is sent
        self.started_at: float | None = None  # unix seconds of the current run's start
        self.killing = False  # the client asked the task to stop: it is never restarted again
        # A user asked for a restart: the next exit starts the task again at once, outside the policy.
        self.restarting = False
        self.setup_done = False
        timeout = task.kill_timeout / 1e9 if task.kill_timeout else DEFAULT_KILL_TIMEOUT
        self.kill_timeout = min(timeout, max_kill_timeout)
        self._encoded: dict[str, Any] | None = None
        self._encoded_events: list[dict[str, Any]] = []  # events never change once emitted: encoded once
        self.version = 0  # bumped on every change the servers would see

    # -- views ----------------------------------------------------------------------------------------

    @property
    def dead(self) -> bool:
        return self.state.state == DEAD

    @property
    def hook(self) -> str:
        """The lifecycle hook ("prestart", "poststart", "poststop"), "" for a main task."""
        return self.task.lifecycle.hook if self.task.lifecycle is not None else ""

    @property
    def sidecar(self) -> bool:
        return self.task.lifecycle is not None and self.task.lifecycle.sidecar

    @property
    def launched(self) -> bool:
        """Started once already (or dead before it could be): the lifecycle coordinator is done with it."""
        return self.setup_done or self.dead

    def encoded_state(self) -> dict[str, Any]:
        """The TaskState as API JSON, cached until the next change (sent and persisted alike)."""
        if self._encoded is None:
            state = self.state
            self._encoded = encode(TaskState(state=state.state, failed=state.failed, restarts=state.restarts,
                                             last_restart=state.last_restart, started_at=state.started_at,
                                             finished_at=state.finished_at))
            self._encoded["Events"] = list(self._encoded_events) or None
        return self._encoded

    def next_deadline(self) -> float | None:
        times = [t for t in (self.restart_at, self.kill_at) if t is not None]
        return min(times) if times else None

    # -- lifecycle ------------------------------------------------------------------------------------

    def emit(self, event: TaskEvent) -> None:
        events = self.state.events
        if len(events) >= MAX_EVENTS:
            del events[0]
            del self._encoded_events[0]
        events.append(event)
        self._encoded_events.append(encode(event))
        if event.type == EVENT_RESTARTING:
            self.state.restarts += 1
            self.state.last_restart = rfc3339(event.time / 1e9)
        self._changed()

    def _changed(self) -> None:
        self._encoded = None
        self.version += 1

    def set_state(self, now: float, state: str) -> None:
        old = self.state.state
        self.state.state = state
        if state == RUNNING and old != RUNNING:
            self.state.started_at = rfc3339(now)
            self.started_at = now
        elif state == DEAD and self.state.finished_at is None:
            self.state.finished_at = rfc3339(now)
        self._changed()

    def received(self, now: float) -> None:
        if self.tracker.window_start is None:
            self.tracker.window_start = now  # Nomad's first restart window opens with the task runner
        self.emit(new_event(now, EVENT_RECEIVED))

    def run(self, now: float, alloc: Allocation) -> None:
        """Start (or restart) the task through the driver."""
        self.restart_at = None
        self.restarting = False  # a restart asked for the previous run: this is the new one
        if self.killing or self.dead:
            return
        if not self.setup_done:
            self.emit(new_event(now, EVENT_SETUP, message=BUILDING_TASK_DIR))
            self.setup_done = True
        try:
            self.handle = self.driver.start(now, alloc, self.task)
        except DriverError as err:
            self.emit(new_event(now, EVENT_DRIVER_FAILURE, driver_error=str(err),
                                details={"driver_error": str(err)}))
            self._after_exit(now, self.tracker.on_start_error(now, err.recoverable), successful=False)
            return
        self.emit(new_event(now, EVENT_STARTED))
        self.set_state(now, RUNNING)

    def tick(self, now: float, alloc: Allocation) -> None:
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            if self.handle is not None:
                self.driver.stop(now, self.handle, self.kill_timeout)
        if self.restart_at is not None and now >= self.restart_at:
            self.run(now, alloc)

    def on_exit(self, now: float, result: TaskExit) -> None:
        """The driver reported the task's process ended."""
        self.handle = None
        self.kill_at = None  # ended during its shutdown delay: nothing left to signal
        self.emit(new_event(now, EVENT_TERMINATED, exit_code=result.exit_code, signal=result.signal,
                            message=result.message,
                            details={"exit_code": str(result.exit_code), "signal": str(result.signal),
                                     "oom_killed": "false", "exit_message": result.message}))
        if self.killing:
            # Killed on purpose: Nomad's restart tracker answers TaskKilled and the task stays down.
            self.restarting = False
            self.emit(new_event(now, EVENT_KILLED))
            self.set_state(now, DEAD)
            return
        if self.restarting:
            # Nomad's tracker answers a triggered restart with no delay and no reason, and counts no attempt.
            self.restarting = False
            self.emit(new_event(now, EVENT_RESTARTING, start_delay=0,
                                details={"restart_reason": "", "start_delay": "0"}))
            self.set_state(now, PENDING)
            self.restart_at = now
            return
        decision = self.tracker.on_exit(now, result.exit_code, result.signal, result.message)
        self._after_exit(now, decision, successful=not result.failed)

    def _after_exit(self, now: float, decision: RestartDecision, *, successful: bool) -> None:
        if decision.decision == NO_RESTART:
            if not self.tracker.terminated:
                self.emit(new_event(now, EVENT_NOT_RESTARTING, restart_reason=decision.reason,
                                    details={"fails_task": "true", "restart_reason": decision.reason}))
                self.state.failed = True
            self.set_state(now, DEAD)
            return
        delay_ns = to_ns(decision.delay)
        self.emit(new_event(now, EVENT_RESTARTING, restart_reason=decision.reason, start_delay=delay_ns,
                            details={"restart_reason": decision.reason, "start_delay": str(delay_ns)}))
        self.set_state(now, PENDING)
        self.restart_at = now + decision.delay

    def restart(self, now: float, reason: str = REASON_USER_RESTART) -> bool:
        """Stop the running task with its kill signal and timeout, then start it again as soon as it exits
        (Nomad's TaskRunner.Restart). False when it is not running, or already stopping or restarting."""
        if self.handle is None or self.killing or self.restarting or self.state.state != RUNNING:
            return False
        self.restarting = True
        self.emit(new_event(now, EVENT_RESTART_SIGNALED, restart_reason=reason,
                            details={"restart_reason": reason}))
        self.driver.stop(now, self.handle, self.kill_timeout)
        return True

    def kill(self, now: float, cause: TaskEvent | None = None) -> None:
        """Stop the task for good: interrupt it, and let the driver force-kill it after the kill timeout."""
        if self.dead or self.killing:
            return
        self.killing = True
        if cause is not None:
            self.emit(cause)
        if self.handle is not None:
            self.emit(self._killing_event(now))
            delay = self.task.shutdown_delay
            if delay and not self.restarting:
                # Nomad waits shutdown_delay before the kill signal (services deregister first); the task
                # is reported pending meanwhile, as Nomad's handleKill does.
                event = new_event(now, EVENT_SHUTDOWN_DELAY)
                event.display_message = f"Waiting for shutdown_delay of {go_duration(delay)} before killing the task."
                self.emit(event)
                self.set_state(now, PENDING)
                self.kill_at = now + delay / 1e9
                return
            self.driver.stop(now, self.handle, self.kill_timeout)
            return
        # Not running (waiting to restart, or never started): nothing to signal, it is dead at once.
        if self.restart_at is not None:
            self.emit(self._killing_event(now))
        self.restart_at = None
        self.set_state(now, DEAD)

    def _killing_event(self, now: float) -> TaskEvent:
        """Nomad's Killing event: the kill timeout in its KillTimeout (nanoseconds) and its details."""
        timeout = to_ns(self.kill_timeout)
        return new_event(now, EVENT_KILLING, kill_timeout=timeout, details={"kill_timeout": go_duration(timeout)})

    # -- persistence ----------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"State": self.encoded_state(), "Handle": self.handle or "", "Restart": self.tracker.dump(),
                "RestartAt": self.restart_at, "KillAt": self.kill_at, "StartedAt": self.started_at,
                "Killing": self.killing, "Restarting": self.restarting, "SetupDone": self.setup_done}

    def load(self, data: dict[str, Any]) -> None:
        self.state = decode(TaskState, data.get("State"))
        self._encoded_events = [encode(event) for event in self.state.events]
        self.handle = data.get("Handle") or None
        self.tracker.load(data.get("Restart"))
        self.restart_at = data.get("RestartAt")
        self.kill_at = data.get("KillAt")
        self.started_at = data.get("StartedAt")
        self.killing = bool(data.get("Killing"))
        self.restarting = bool(data.get("Restarting"))
        self.setup_done = bool(data.get("SetupDone"))
        self._changed()
