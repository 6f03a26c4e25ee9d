"""Nomad's restart tracker: whether and when a task that exited is started again, under its restart policy."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from orchestrator.structs import RestartPolicy
from orchestrator.structs.timefmt import NS, go_duration

RESTART = "restart"
NO_RESTART = "no_restart"

JITTER = 0.25  # Nomad adds up to 25% of the delay as jitter

# Reasons, word for word as Nomad's client/allocrunner/taskrunner/restarts package writes them.
REASON_NO_RESTARTS_ALLOWED = "Policy allows no restarts"
REASON_UNRECOVERABLE_ERROR = "Error was unrecoverable"
REASON_WITHIN_POLICY = "Restart within policy"
REASON_DELAY = "Exceeded allowed attempts, applying a delay"
REASON_SUCCESS = "Restart unnecessary as task terminated successfully"

MODE_FAIL = "fail"
MODE_DELAY = "delay"


class RestartRng(Protocol):
    def randrange(self, stop: int, /) -> int: ...


class RestartDecision(NamedTuple):
    decision: str  # RESTART or NO_RESTART
    delay: float  # seconds to wait before starting again (RESTART only)
    reason: str


class RestartTracker:
    """Counts restarts within the policy's interval windows, as Nomad's RestartTracker.GetState does.

    `terminated` is set after a NO_RESTART that is not a failure (Nomad's TaskTerminated state): a batch
    task that exited successfully. Any other NO_RESTART fails the task.
    """

    def __init__(self, policy: RestartPolicy, job_type: str, rng: RestartRng, *, lifecycle_hook: str = "",
                 sidecar: bool = False, started_at: float | None = None):
        self.policy = policy
        self.rng = rng
        # Batch work is not restarted after a clean exit; services are, whatever the exit code.
        on_success = job_type not in ("batch", "sysbatch")
        if lifecycle_hook in ("prestart", "poststart"):
            on_success = sidecar
        elif lifecycle_hook == "poststop":
            on_success = False
        self.on_success = on_success
        self.count = 0
        # Nomad opens the first window when the tracker is created; None opens it at the first exit.
        self.window_start = started_at
        self.reason = ""
        self.terminated = False

    # -- decisions ----------------------------------------------------------------------------------

    def on_exit(self, now: float, exit_code: int, signal: int = 0, error: str = "") -> RestartDecision:
        """The task exited on its own (not killed by the client): restart it, and after how long?"""
        return self._decide(now, successful=exit_code == 0 and signal == 0 and not error, start_error=None)

    def on_start_error(self, now: float, recoverable: bool = True) -> RestartDecision:
        """The driver failed to start the task."""
        return self._decide(now, successful=False, start_error=recoverable)

    def _decide(self, now: float, *, successful: bool, start_error: bool | None) -> RestartDecision:
        self.terminated = False
        policy = self.policy
        if policy.attempts == 0:
            self.reason = REASON_NO_RESTARTS_ALLOWED
            if not self.on_success and start_error is None and successful:
                self.terminated = True
            return RestartDecision(NO_RESTART, 0.0, self.reason)

        if self.window_start is None or now > self.window_start + policy.interval / NS:
            self.count = 0
            self.window_start = now
        self.count += 1

        if start_error is not None:
            if not start_error:
                self.reason = REASON_UNRECOVERABLE_ERROR
                return RestartDecision(NO_RESTART, 0.0, self.reason)
        elif successful and not self.on_success:
            self.reason = REASON_SUCCESS
            self.terminated = True
            return RestartDecision(NO_RESTART, 0.0, self.reason)

        if self.count > policy.attempts:
            if policy.mode == MODE_FAIL:
                self.reason = (f"Exceeded allowed attempts {policy.attempts} in interval "
                               f"{go_duration(policy.interval)} and mode is \"fail\"")
                return RestartDecision(NO_RESTART, 0.0, self.reason)
            # Mode "delay": wait for the window to close; the next exit after it opens a new window.
            self.reason = REASON_DELAY
            return RestartDecision(RESTART, max(0.0, self.window_start + policy.interval / NS - now), self.reason)

        self.reason = REASON_WITHIN_POLICY
        return RestartDecision(RESTART, self._jittered_delay() / NS, self.reason)

    def _jittered_delay(self) -> int:
        """Nanoseconds: the policy's delay plus up to 25% of it, drawn as Nomad does (Int63n(d) * 0.25)."""
        delay = self.policy.delay or 1
        return delay + int(self.rng.randrange(delay) * JITTER)

    # -- persistence --------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"Count": self.count, "WindowStart": self.window_start}

    def load(self, data: dict[str, Any] | None) -> None:
        if data:
            self.count = int(data.get("Count", 0))
            self.window_start = data.get("WindowStart")
