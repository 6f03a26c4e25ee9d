"""One allocation on the client: its task runners, client status, stop/kill, and deployment health."""

from __future__ import annotations

from typing import Any

from orchestrator.structs import Allocation, TaskGroup
from orchestrator.structs.timefmt import rfc3339

from .restarts import RestartRng
from .task_driver import TaskDriver, TaskExit
from .taskrunner import (
    DEAD,
    EVENT_ALLOC_UNHEALTHY,
    EVENT_LEADER_DEAD,
    EVENT_MAIN_DEAD,
    EVENT_SIBLING_FAILED,
    PENDING,
    RUNNING,
    TaskRunner,
    new_event,
)

DEFAULT_MIN_HEALTHY_TIME = 10.0
DEFAULT_HEALTHY_DEADLINE = 300.0
PRESTART, POSTSTART, POSTSTOP = "prestart", "poststart", "poststop"


def client_status_of(states: list[str], failed: bool) -> tuple[str, str]:
    """Nomad's getClientStatus: failed wins, then any running, then any pending, else complete."""
    if failed:
        return "failed", "Failed tasks"
    if RUNNING in states:
        return "running", "Tasks are running"
    if PENDING in states:
        return "pending", "No tasks have started"
    if states:
        return "complete", "All tasks have completed"
    return "", ""


class HealthWatch:
    """Deployment health from task states (Nomad's allochealth tracker with task-state checks).

    Healthy once every task has been running for min_healthy_time; unhealthy when a task fails or
    finishes first, or when healthy_deadline passes.
    """

    def __init__(self, deployment_id: str, now: float, min_healthy: float, deadline: float):
        self.deployment_id = deployment_id
        self.since = now
        self.min_healthy = min_healthy
        self.deadline = now + deadline
        self.healthy_at: float | None = None

    def observe(self, tasks: list[TaskRunner]) -> tuple[bool | None, str]:
        """(False, reason) when the allocation can no longer become healthy; (None, "") otherwise."""
        latest = self.since
        for runner in tasks:
            if runner.state.failed:
                return False, "Unhealthy because of failed task"
            if runner.dead:
                return False, "Task not running by deadline"
            if runner.state.state != RUNNING or runner.started_at is None:
                self.healthy_at = None
                return None, ""
            latest = max(latest, runner.started_at)
        self.healthy_at = latest + self.min_healthy
        return None, ""

    def next_deadline(self) -> float:
        return min(self.deadline, self.healthy_at) if self.healthy_at is not None else self.deadline

    def dump(self) -> dict[str, Any]:
        return {"DeploymentID": self.deployment_id, "Since": self.since, "MinHealthy": self.min_healthy,
                "Deadline": self.deadline}

    @classmethod
    def load(cls, data: dict[str, Any]) -> HealthWatch:
        watch = cls(data["DeploymentID"], data["Since"], data["MinHealthy"], 0.0)
        watch.deadline = data["Deadline"]
        return watch


class AllocRunner:
    """Runs an allocation's tasks and derives what the client reports about it.

    `changed` is set whenever something the servers see changed (task states, client status, health);
    the agent collects it into the next batched Node.UpdateAlloc and the next persisted snapshot.
    """

    def __init__(self, alloc: Allocation, driver: TaskDriver, rng: RestartRng, *, max_kill_timeout: float = 30.0):
        self.alloc = alloc
        self.id = alloc.id
        self.driver = driver
        self.rng = rng
        self.max_kill_timeout = max_kill_timeout
        job = alloc.job
        self.group: TaskGroup | None = job.group(alloc.task_group) if job is not None else None
        job_type = job.type if job is not None else "service"
        policy = self.group.restart_policy if self.group is not None else None
        self.tasks: dict[str, TaskRunner] = {
            task.name: TaskRunner(task, job_type, rng, driver, group_policy=policy,
                                  max_kill_timeout=max_kill_timeout)
            for task in (self.group.tasks if self.group is not None else [])}
        self.client_status = "pending"
        self.client_description = ""
        self.deployment_status: dict[str, Any] | None = None  # what we last set (Healthy, Timestamp)
        self.health: HealthWatch | None = None
        self.health_decided_for = ""  # the deployment whose health we set (until the servers echo it)
        self.stopping = False
        self.kill_tasks_at: float | None = None  # stopping: when the group's shutdown_delay ends
        self.changed = True
        self._seen: tuple[Any, ...] = ()

    # -- views ----------------------------------------------------------------------------------------

    def terminal(self) -> bool:
        """Every task is dead: the allocation holds nothing on this machine any more."""
        return all(runner.dead for runner in self.tasks.values())

    def handles(self) -> dict[str, str]:
        return {r.handle: name for name, r in self.tasks.items() if r.handle is not None}

    def next_deadline(self) -> float | None:
        times = [t for t in (r.next_deadline() for r in self.tasks.values()) if t is not None]
        if self.kill_tasks_at is not None:
            times.append(self.kill_tasks_at)
        if self.health is not None:
            times.append(self.health.next_deadline())
        return min(times) if times else None

    def client_update(self) -> dict[str, Any]:
        """This allocation's entry in Node.UpdateAlloc."""
        return {"ID": self.id, "ClientStatus": self.client_status, "ClientDescription": self.client_description,
                "TaskStates": {name: r.encoded_state() for name, r in self.tasks.items()},
                "DeploymentStatus": self.deployment_status}

    # -- inputs ---------------------------------------------------------------------------------------

    def run(self, now: float) -> None:
        """Start the allocation: every task is received, set up and started."""
        for runner in self.tasks.values():
            runner.received(now)
        self._watch_health(now)
        if self.alloc.job is None or self.group is None:
            self.client_status, self.client_description = "failed", "Allocation has no job or task group"
            return
        self._refresh(now)  # starts the tasks whose lifecycle allows it (see _advance)

    def update(self, now: float, alloc: Allocation) -> None:
        """A newer version of the allocation from the servers."""
        if alloc.job is None:
            alloc.job = self.alloc.job  # Alloc.GetAllocs always includes it; keep ours if not
        self.alloc = alloc
        if alloc.desired_status != "run" or alloc.desired_transition.should_migrate():
            self.kill(now)
            return
        if alloc.job is not None:
            self.group = alloc.job.group(alloc.task_group) or self.group
            # An in-place update changes the job without restarting tasks; later runs use the new task.
            policy = self.group.restart_policy if self.group is not None else None
            for task in self.group.tasks if self.group is not None else []:
                runner = self.tasks.get(task.name)
                if runner is not None:
                    runner.task = task
                    runner.tracker.policy = task.restart_policy or policy or runner.tracker.policy
        self._watch_health(now)
        self._refresh(now)

    def on_exit(self, now: float, task_name: str, result: TaskExit) -> None:
        runner = self.tasks.get(task_name)
        if runner is None:
            return
        runner.on_exit(now, result)
        if runner.restart_at is not None and runner.restart_at <= now:
            runner.tick(now, self.alloc)  # a user-requested restart starts again at once
        if runner.dead and not self.stopping:
            self._after_task_death(now, runner)
        self._refresh(now)

    def tick(self, now: float) -> None:
        if self.kill_tasks_at is not None and now >= self.kill_tasks_at:
            self.kill_tasks_at = None
            self._kill_tasks(now)
        for runner in self.tasks.values():
            deadline = runner.next_deadline()
            if deadline is not None and now >= deadline:
                runner.tick(now, self.alloc)
                if runner.dead and not self.stopping:
                    self._after_task_death(now, runner)
        self._refresh(now)

    def restart(self, now: float, task_name: str | None = None) -> list[str]:
        """A user asked to restart one task, or every running one: the names of the tasks being restarted
        (none when the task is unknown or not running, or the allocation is stopping)."""
        if self.stopping:
            return []
        if task_name:
            runner = self.tasks.get(task_name)
            names = [task_name] if runner is not None and runner.restart(now) else []
        else:
            names = [name for name, runner in self.tasks.items() if runner.restart(now)]
        self._refresh(now)
        return names

    def kill(self, now: float) -> None:
        """Stop every task (desired status stop/evict, migration, or the servers forgot the allocation)."""
        if not self.stopping:
            self.stopping = True
            self.health = None
            delay = self.group.shutdown_delay if self.group is not None else None
            if delay:
                # The group's shutdown_delay runs before any task is told to stop (Nomad's group service
                # hook waits it out in PreKill, after deregistering the group's services).
                self.kill_tasks_at = now + delay / 1e9
            else:
                self._kill_tasks(now)
        self._refresh(now)

    def _kill_tasks(self, now: float) -> None:
        for runner in self.tasks.values():
            # Poststop tasks are not killed: they run once every other task is dead (Nomad's killTasks).
            if runner.hook != POSTSTOP:
                runner.kill(now)

    # -- internals ----------------------------------------------------------------------------------

    def _after_task_death(self, now: float, dead: TaskRunner) -> None:
        """A failed task takes its siblings down, and so does the death of a leader (as in Nomad). Poststop
        tasks neither take others down nor are taken down: they run after everything else."""
        if dead.hook == POSTSTOP:
            return
        if dead.state.failed:
            cause = {"type": EVENT_SIBLING_FAILED, "failed_sibling": dead.name,
                     "details": {"failed_sibling": dead.name}}
        elif dead.task.leader:
            cause = {"type": EVENT_LEADER_DEAD, "details": {"leader_task_dead": "true"}}
        else:
            return
        for runner in self.tasks.values():
            if not runner.dead and runner.hook != POSTSTOP:
                fields = dict(cause)
                kind = fields.pop("type")
                runner.kill(now, new_event(now, kind, **fields))

    def _advance(self, now: float) -> None:
        """Nomad's task coordinator: start the tasks whose lifecycle hook allows it, and stop the sidecars once
        the main tasks are dead. Repeated until nothing changes (a start that fails at once may open a gate)."""
        if self.alloc.job is None or self.group is None:
            return
        for _ in range(len(self.tasks) + 2):
            before = sum(r.version for r in self.tasks.values())
            self._advance_once(now)
            if sum(r.version for r in self.tasks.values()) == before:
                return

    def _advance_once(self, now: float) -> None:
        runners = list(self.tasks.values())
        prestart = [r for r in runners if r.hook == PRESTART]
        main = [r for r in runners if r.hook not in (PRESTART, POSTSTART, POSTSTOP)]
        poststart = [r for r in runners if r.hook == POSTSTART]
        if not self.stopping:
            for runner in prestart:
                if not runner.launched:
                    runner.run(now, self.alloc)
            # Main tasks wait for the init tasks to complete successfully and for the prestart sidecars to run.
            if all(r.state.state == RUNNING if r.sidecar else r.dead and not r.state.failed for r in prestart):
                for runner in main:
                    if not runner.launched:
                        runner.run(now, self.alloc)
                if main and all(r.state.state == RUNNING for r in main):
                    for runner in poststart:
                        if not runner.launched:
                            runner.run(now, self.alloc)
        others = [r for r in runners if r.hook != POSTSTOP]
        live = [r for r in others if not r.dead]
        if live and all(r.sidecar for r in live) and any(r.launched for r in main):
            # Only sidecars are left: the work they served is done (Nomad's "Main Tasks Dead").
            for runner in live:
                runner.kill(now, new_event(now, EVENT_MAIN_DEAD))
            live = [r for r in others if not r.dead]
        if not live:
            for runner in runners:
                if runner.hook == POSTSTOP and not runner.launched:
                    runner.run(now, self.alloc)

    def _health_tasks(self) -> list[TaskRunner]:
        """The tasks deployment health waits for: main tasks and sidecars; short-lived lifecycle tasks count
        only if they failed, and poststop tasks not at all (as Nomad's health tracker)."""
        return [r for r in self.tasks.values()
                if r.hook != POSTSTOP and (r.sidecar or not r.hook or r.state.failed)]

    def _watch_health(self, now: float) -> None:
        alloc = self.alloc
        if not alloc.deployment_id or self.stopping:
            self.health = None
            return
        status = alloc.deployment_status
        if status is not None and status.healthy is not None:
            self.health = None  # already decided for this deployment
            return
        if self.health is not None and self.health.deployment_id == alloc.deployment_id:
            return
        if self.health_decided_for == alloc.deployment_id:
            return  # decided, waiting for the servers to record it
        update = self.group.update if self.group is not None else None
        if update is not None and update.health_check == "manual":
            return
        min_healthy = update.min_healthy_time / 1e9 if update and update.min_healthy_time else DEFAULT_MIN_HEALTHY_TIME
        deadline = update.healthy_deadline / 1e9 if update and update.healthy_deadline else DEFAULT_HEALTHY_DEADLINE
        self.health = HealthWatch(alloc.deployment_id, now, min_healthy, deadline)

    def _refresh(self, now: float) -> None:
        """Recompute the client status and deployment health after any change; mark what changed."""
        self._advance(now)
        runners = list(self.tasks.values())
        if self.health is not None:
            verdict, reason = self.health.observe(self._health_tasks())
            if verdict is None and self.health.healthy_at is not None and now >= self.health.healthy_at:
                verdict = True
            elif verdict is None and now >= self.health.deadline:
                verdict, reason = False, "Task not running by deadline"
            if verdict is not None:
                self._set_health(now, verdict, reason)
        status, description = client_status_of([r.state.state for r in runners],
                                               any(r.state.failed for r in runners))
        if self.client_status == "failed" and not runners:
            status, description = self.client_status, self.client_description
        self.client_status, self.client_description = status, description
        seen = (status, description, self.health_decided_for, *(r.version for r in runners))
        if seen != self._seen:
            self._seen = seen
            self.changed = True

    def _set_health(self, now: float, healthy: bool, reason: str) -> None:
        watch = self.health
        assert watch is not None
        if not healthy:
            for runner in self.tasks.values():
                if runner.state.failed or runner.state.state != RUNNING:
                    runner.emit(new_event(now, EVENT_ALLOC_UNHEALTHY, message=reason))
        previous = self.alloc.deployment_status
        self.deployment_status = {"Healthy": healthy, "Timestamp": rfc3339(now),
                                  "Canary": previous.canary if previous is not None else False,
                                  "ModifyIndex": previous.modify_index if previous is not None else 0}
        self.health_decided_for = watch.deployment_id
        self.health = None

    # -- persistence ----------------------------------------------------------------------------------

    def dump(self) -> dict[str, Any]:
        return {"ClientStatus": self.client_status, "ClientDescription": self.client_description,
                "DeploymentStatus": self.deployment_status, "HealthDecidedFor": self.health_decided_for,
                "Stopping": self.stopping, "KillTasksAt": self.kill_tasks_at,
                "Health": self.health.dump() if self.health is not None else None,
                "Tasks": {name: runner.dump() for name, runner in self.tasks.items()}}

    def restore(self, now: float, data: dict[str, Any]) -> None:
        """Reattach after a client restart: tasks the driver still knows keep running untouched; tasks it
        lost (the machine went down with the client) are started again."""
        self.client_status = data.get("ClientStatus", "pending")
        self.client_description = data.get("ClientDescription", "")
        self.deployment_status = data.get("DeploymentStatus")
        self.health_decided_for = data.get("HealthDecidedFor", "")
        self.stopping = bool(data.get("Stopping"))
        self.kill_tasks_at = data.get("KillTasksAt")
        health = data.get("Health")
        self.health = HealthWatch.load(health) if health else None
        for name, task_data in (data.get("Tasks") or {}).items():
            runner = self.tasks.get(name)
            if runner is None:
                continue
            runner.load(task_data)
            if runner.handle is not None and not self.driver.recover(now, runner.handle):
                runner.handle = None
                if runner.killing:
                    runner.set_state(now, DEAD)
                elif runner.state.state == RUNNING:
                    runner.run(now, self.alloc)
        self._refresh(now)
