"""The docker task driver: containers through the Docker engine's API, exits noticed from its event stream."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.client.task_driver import DriverError, TaskExit
from orchestrator.structs import Allocation, Task

from .docker_config import LABEL_ALLOC_ID, LABEL_TASK_NAME, PluginConfig, config_error, create_kwargs
from .docker_logs import DEFAULT_MAX_FILE_SIZE_MB, DEFAULT_MAX_FILES, LogSinks, catch_up, epoch_seconds, follow

log = logging.getLogger(__name__)

API_TIMEOUT = 30.0  # one API call; starts and stops run on worker threads, never on the caller's
FINGERPRINT_TIMEOUT = 5.0
EVENT_RETRY_DELAY = 0.5  # between attempts to resubscribe to the engine's events after the stream broke
LOG_DRAIN_TIMEOUT = 5.0  # how long an exited container is kept for its log followers to read the last output
STOP_CONFIRM_TIMEOUT = 5.0  # after SIGKILL, how long to wait for the exit event before asking the engine
SHUTDOWN_KILL_TIMEOUT = 5.0  # -dev agent stopping: each task's kill signal, then SIGKILL after this long
PURGE_TIMEOUT = 2.0  # waiting for an old container of the same name to be gone (removal takes ~10-50 ms)
LABEL_LOG_CONFIG = "yurt.log_config"  # "<max_files>,<max_file_size_mb>", so a recovered task keeps its rotation
RECOVER_OVERLAP = 2.0  # seconds of output replayed before a recovered log file's last write, to find its end
STREAM_POOL_SIZE = 1024  # each followed log holds one connection to the engine for the container's lifetime


@dataclass(eq=False)
class _Container:
    handle: str  # what the client knows the task by (the container id start() returned)
    id: str  # the full container id, as engine events carry it
    alloc_id: str
    task_name: str
    stop_signal: str = "SIGTERM"
    log_files: int = DEFAULT_MAX_FILES
    log_file_mb: int = DEFAULT_MAX_FILE_SIZE_MB
    stopping: bool = False
    exited: bool = False
    oom: bool = False
    loggers: list[threading.Thread] = field(default_factory=list)
    ops: threading.Lock = field(default_factory=threading.Lock)  # start and stop calls, one at a time
    started: threading.Event = field(default_factory=threading.Event)  # start call over, log followers attached
    done: threading.Event = field(default_factory=threading.Event)  # the exit is recorded


class DockerDriver:
    """Implements the TaskDriver port with the Docker engine; one instance per client agent.

    `wake` is called from the driver's own threads as soon as an exit is recorded (the caller then `poll`s);
    `alloc_dir_of(alloc_id)` gives an allocation's directory (its `alloc`, `<task>/local`, `<task>/secrets` are
    mounted at /alloc, /local and /secrets); logs go to `logs_dir_of(alloc_id)`, else `<alloc dir>/alloc/logs`.
    `env_of(alloc, task)` gives the environment as the container sees it (Nomad's NOMAD_* variables, the `env`
    block interpolated; default: the `env` block as is), and `interpolate(text, env)` resolves `${...}` in the
    task config's strings (default: names from that environment).
    Handles are container ids. Images are never removed by this driver, so none in use can be collected.
    """

    name = "docker"

    def __init__(self, config: dict[str, Any] | None = None, *, wake: Callable[[], None] | None = None,
                 alloc_dir_of: Callable[[str], Path] | None = None,
                 logs_dir_of: Callable[[str], Path] | None = None,
                 env_of: Callable[[Allocation, Task], Mapping[str, str]] | None = None,
                 interpolate: Callable[[str, Mapping[str, str]], str] | None = None):
        self.plugin = PluginConfig.parse(config)
        self._wake = wake
        self._alloc_dir_of = alloc_dir_of
        self._logs_dir_of = logs_dir_of
        self._env_of = env_of
        self._interpolate = interpolate
        self._lock = threading.Lock()  # containers and exits; held only for dict and list updates
        self._connect_lock = threading.Lock()
        self._containers: dict[str, _Container] = {}  # by full container id
        self._exits: list[TaskExit] = []
        self._sinks = LogSinks()
        self._client: Any = None  # docker.DockerClient
        self._stream_api: Any = None  # docker.APIClient without a read timeout, for followed logs
        self._events: Any = None  # the engine's event stream being followed
        self._events_thread: threading.Thread | None = None
        self._closed = False

    # -- the TaskDriver port --------------------------------------------------------------------------

    def start(self, now: float, alloc: Allocation, task: Task) -> str:
        try:
            alloc_dir = Path(self._alloc_dir_of(alloc.id)) if self._alloc_dir_of is not None else None
            env = self._env_of(alloc, task) if self._env_of is not None else None
        except OSError as err:
            raise DriverError(f"failed to build the task directory: {err}") from err
        try:
            kwargs = create_kwargs(alloc, task, self.plugin, alloc_dir=alloc_dir, env=env,
                                   interpolate=self._interpolate)
        except ValueError as err:
            raise config_error(err) from err
        except OSError as err:
            raise DriverError(f"failed to build the task directory: {err}") from err
        log_config = task.log_config
        max_files = (log_config.max_files if log_config else 0) or DEFAULT_MAX_FILES
        max_mb = (log_config.max_file_size_mb if log_config else 0) or DEFAULT_MAX_FILE_SIZE_MB
        kwargs["labels"][LABEL_LOG_CONFIG] = f"{max_files},{max_mb}"
        client = self._engine()
        self._ensure_events()
        self._check_image(client, kwargs["image"])
        container_id = self._create(client, kwargs)
        container = _Container(handle=container_id, id=container_id, alloc_id=alloc.id, task_name=task.name,
                               stop_signal=kwargs.get("stop_signal") or "SIGTERM", log_files=max_files,
                               log_file_mb=max_mb)
        with self._lock:
            self._containers[container_id] = container
        # Starting takes a few hundred ms (network namespace, runc): done off the caller's thread, whose event
        # loop must stay responsive. A failed start is reported as a failed exit with the engine's message.
        threading.Thread(target=self._start_container, args=(container, False), name=f"docker-start-{task.name}",
                         daemon=True).start()
        return container_id

    def stop(self, now: float, handle: str, kill_timeout: float) -> None:
        with self._lock:
            container = self._find(handle)
            if container is None or container.exited or container.stopping:
                return
            container.stopping = True
        threading.Thread(target=self._stop_container, args=(container, max(0.0, kill_timeout)),
                         name=f"docker-stop-{container.task_name}", daemon=True).start()

    def recover(self, now: float, handle: str) -> bool:
        with self._lock:
            if self._find(handle) is not None or any(e.handle == handle for e in self._exits):
                return True
        try:
            client = self._engine()
            self._ensure_events()
            info = client.api.inspect_container(handle)
        except Exception as err:  # not found, or no engine: the task is lost and the client starts it anew
            log.info("docker: cannot recover %s: %s", handle, err)
            return False
        labels = info.get("Config", {}).get("Labels") or {}
        if LABEL_ALLOC_ID not in labels:
            return False  # not a container of a Nomad task
        files, _, size_mb = labels.get(LABEL_LOG_CONFIG, "").partition(",")
        container = _Container(handle=handle, id=info["Id"], alloc_id=labels[LABEL_ALLOC_ID],
                               task_name=labels.get(LABEL_TASK_NAME, ""),
                               stop_signal=info.get("Config", {}).get("StopSignal") or "SIGTERM",
                               log_files=int(files or DEFAULT_MAX_FILES),
                               log_file_mb=int(size_mb or DEFAULT_MAX_FILE_SIZE_MB))
        with self._lock:
            self._containers[container.id] = container
        # Registered before looking at its state again, so an exit in between is seen by one or the other.
        self._start_container(container, True)
        return True

    def poll(self, now: float) -> list[TaskExit]:
        with self._lock:
            exits, self._exits = self._exits, []
        return exits

    def next_deadline(self) -> float | None:
        # Exits are never predicted; recorded ones are due at once, so the client's tick (after `wake`) polls.
        with self._lock:
            return 0.0 if self._exits else None

    # -- beyond the port ------------------------------------------------------------------------------

    def fingerprint(self) -> dict[str, Any]:
        """`{"attributes", "detected", "healthy", "health_description"}` as the node's DriverInfo holds them."""
        try:
            client = self._engine(timeout=FINGERPRINT_TIMEOUT)
            client.api.ping()
            version = client.api.version()
            info = client.api.info()
        except DriverError as err:  # _engine's own error already says what failed
            return {"attributes": {}, "detected": False, "healthy": False, "health_description": str(err)}
        except Exception as err:
            return {"attributes": {}, "detected": False, "healthy": False,
                    "health_description": f"Failed to connect to docker daemon: {err}"}
        attributes = {"driver.docker": "true", "driver.docker.version": str(version.get("Version", "")),
                      "driver.docker.os_type": str(info.get("OSType", "linux")),
                      "driver.docker.runtimes": ",".join(sorted(info.get("Runtimes") or {}))}
        if self.plugin.volumes_enabled:
            attributes["driver.docker.volumes.enabled"] = "1"
        if self.plugin.allow_privileged:
            attributes["driver.docker.privileged.enabled"] = "1"
        return {"attributes": attributes, "detected": True, "healthy": True, "health_description": "Healthy"}

    # -- beyond the port: what the client's HTTP endpoints ask of a running task ----------------------

    def stats(self, handle: str, ticks_per_core: float = 0.0) -> dict[str, Any] | None:
        """The task's ResourceUsage (client_stats' shape, Nomad's docker figures) from the engine's stats API;
        None when the container is not running. Blocking (the engine samples twice, ~1 s apart, so that
        precpu_stats is filled): run it off the event loop."""
        with self._lock:
            container = self._find(handle)
            if container is None or container.exited or self._client is None:
                return None
        try:
            raw = self._client.api.stats(container.id, stream=False)
        except Exception as err:  # not running any more, or the engine is gone: no figures, never an error
            log.debug("docker: stats of %s failed: %s", container.id[:12], err)
            return None
        return docker_resource_usage(raw, ticks_per_core)

    def main_pid(self, handle: str) -> int | None:
        """The host pid of the container's init process (the engine's State.Pid); None when not running.
        Blocking: one inspect call to the engine."""
        with self._lock:
            container = self._find(handle)
            if container is None or container.exited or self._client is None:
                return None
        try:
            pid = self._client.api.inspect_container(container.id)["State"]["Pid"]
        except Exception as err:  # gone meanwhile, or the engine is: not running as far as we can tell
            log.debug("docker: inspect of %s failed: %s", container.id[:12], err)
            return None
        return int(pid) if pid else None

    def signal(self, handle: str, sig: int | str) -> bool:
        """Send `sig` to the container's main process (`alloc signal`); False when it is not running."""
        with self._lock:
            container = self._find(handle)
            if container is None or container.exited or self._client is None:
                return False
        try:
            self._client.api.kill(container.id, signal=sig)
        except Exception as err:  # 409 not running, 404 gone: the caller reports it cannot signal the task
            log.debug("docker: signal %s to %s failed: %s", sig, container.id[:12], err)
            return False
        return True

    def running_handles(self) -> list[str]:
        with self._lock:
            return [c.handle for c in self._containers.values() if not c.exited]

    async def shutdown(self, *, kill: bool) -> None:
        """The agent stops: with `kill` (-dev) every task is stopped and its container removed before this returns,
        so nothing is left behind; otherwise containers run on for the next agent to recover."""
        import asyncio

        if kill:
            for handle in self.running_handles():
                self.stop(0.0, handle, SHUTDOWN_KILL_TIMEOUT)
            deadline = time.monotonic() + SHUTDOWN_KILL_TIMEOUT + STOP_CONFIRM_TIMEOUT + LOG_DRAIN_TIMEOUT
            while self._containers and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # exits recorded, then each container removed by its reaper
        self.close()

    def close(self) -> None:
        """Stop following the engine and writing logs; running containers are left running (a later driver can
        recover them, as a restarted Nomad client does)."""
        self._closed = True
        events = self._events
        if events is not None:
            with contextlib.suppress(Exception):
                events.close()
        self._sinks.close_all()

    # -- engine access --------------------------------------------------------------------------------

    def _engine(self, timeout: float = API_TIMEOUT) -> Any:
        with self._connect_lock:
            if self._client is not None:
                return self._client
            import docker

            kwargs = self._client_kwargs()
            try:
                # API version negotiated with the engine (Debian's 20.10 speaks 1.41, older than the SDK's default).
                client = docker.DockerClient(timeout=timeout, version="auto", **kwargs)
            except Exception as err:
                raise DriverError(f"Failed to connect to docker daemon: {err}") from err
            client.api.timeout = API_TIMEOUT
            self._stream_api = docker.APIClient(timeout=None, version=client.api.api_version,
                                                max_pool_size=STREAM_POOL_SIZE, **kwargs)
            self._client = client
            return client

    def _client_kwargs(self) -> dict[str, Any]:
        import docker

        if not self.plugin.endpoint:
            return docker.utils.kwargs_from_env()
        kwargs: dict[str, Any] = {"base_url": self.plugin.endpoint}
        tls = self.plugin.tls
        if tls.get("cert") or tls.get("ca"):
            cert = (tls["cert"], tls["key"]) if tls.get("cert") else None
            kwargs["tls"] = docker.tls.TLSConfig(client_cert=cert, ca_cert=tls.get("ca"), verify=bool(tls.get("ca")))
        return kwargs

    def _check_image(self, client: Any, image: str) -> None:
        import docker

        try:
            client.api.inspect_image(image)
        except docker.errors.ImageNotFound as err:
            # No registry is reachable from these machines, so a pull cannot succeed: say so instead of trying.
            raise DriverError(f"Failed to pull `{image}`: image not found locally and no registry reachable",
                              recoverable=False) from err
        except docker.errors.APIError as err:
            raise DriverError(f"Failed to inspect image `{image}`: {err}") from err

    def _create(self, client: Any, kwargs: dict[str, Any]) -> str:
        import docker

        for attempt in range(2):
            try:
                return client.containers.create(**kwargs).id
            except docker.errors.APIError as err:
                if err.status_code != 409 or attempt:
                    # 400: the engine refuses the configuration (e.g. memory below its 6 MB minimum): retrying
                    # cannot help. Anything else may pass (the engine was busy or restarting).
                    raise DriverError(f"Failed to create container: {err.explanation or err}",
                                      recoverable=err.status_code != 400) from err
                self._purge_name(client, kwargs["name"])
        raise AssertionError("unreachable")

    def _purge_name(self, client: Any, name: str) -> None:
        import docker

        # A container of the same name is left by an earlier run of this task (still draining its logs, or
        # orphaned by a crashed agent): remove it as Nomad does, unless it is a run this driver is watching.
        try:
            old = client.api.inspect_container(name)
        except Exception:
            return
        with self._lock:
            tracked = self._containers.get(old["Id"])
        if tracked is not None and not tracked.exited:
            raise DriverError(f"container {name} is already running")
        try:
            client.api.remove_container(old["Id"], force=True)
        except Exception as err:  # e.g. our reaper is removing it already: wait for that below
            log.debug("docker: removing %s: %s", name, err)
        deadline = time.monotonic() + PURGE_TIMEOUT
        while time.monotonic() < deadline:
            try:
                client.api.inspect_container(old["Id"])
            except docker.errors.NotFound:
                return
            except Exception:
                pass
            time.sleep(0.01)

    # -- worker threads -------------------------------------------------------------------------------

    def _start_container(self, container: _Container, recovered: bool) -> None:
        api = self._client.api
        with container.ops:
            try:
                if not recovered:
                    if container.stopping:  # stopped before it ever ran: no engine event will come
                        self._record_exit(container, 0, message="stopped before start")
                        return
                    try:
                        api.start(container.id)
                    except Exception as err:
                        code = self._state(container).get("ExitCode") or 1
                        explanation = getattr(err, "explanation", None) or err
                        self._record_exit(container, code, message=f"Failed to start container: {explanation}")
                        return
                    self._follow_logs(container, recovered=False)
                    return
                state = self._state(container)
                if state.get("Running"):
                    self._follow_logs(container, recovered=True)
                    return
                self._record_exit(container, int(state.get("ExitCode", 0)), oom=bool(state.get("OOMKilled")),
                                  message="" if state else "container not found")
            finally:
                container.started.set()

    def _stop_container(self, container: _Container, kill_timeout: float) -> None:
        api = self._client.api
        with container.ops:
            if container.exited:
                return
            try:
                api.kill(container.id, signal=container.stop_signal)
            except Exception as err:
                log.debug("docker: %s on %s: %s", container.stop_signal, container.id[:12], err)
            if container.done.wait(kill_timeout):
                return
            try:
                api.kill(container.id, signal="SIGKILL")
            except Exception as err:
                log.debug("docker: SIGKILL on %s: %s", container.id[:12], err)
            if container.done.wait(STOP_CONFIRM_TIMEOUT):
                return
        state = self._state(container)  # the event stream may be down: ask the engine directly
        if not state.get("Running"):
            self._record_exit(container, int(state.get("ExitCode", 137)), oom=bool(state.get("OOMKilled")))

    def _follow_logs(self, container: _Container, recovered: bool) -> None:
        try:
            self._attach_logs(container, recovered)
        except Exception as err:  # the task runs on without its logs rather than being lost
            log.warning("docker: logs of %s (%s) not followed: %s", container.task_name, container.id[:12], err)

    def _attach_logs(self, container: _Container, recovered: bool) -> None:
        if self._logs_dir_of is not None:
            directory = Path(self._logs_dir_of(container.alloc_id))
        elif self._alloc_dir_of is not None:
            directory = Path(self._alloc_dir_of(container.alloc_id)) / "alloc" / "logs"
        else:
            return
        max_bytes = container.log_file_mb * 1024 * 1024
        for stream in ("stdout", "stderr"):
            writer = self._sinks.acquire(directory, f"{container.task_name}.{stream}", container.log_files, max_bytes)
            since: float | None = None
            after = b""
            last_write = writer.last_write() if recovered else None
            if last_write is not None:
                # A recovered container's earlier output is already in the files: replay from a little before
                # their last write (mtime is coarse), skip what the files end with, then follow what is newer.
                replay = self._stream_api.logs(container.id, stdout=stream == "stdout", stderr=stream == "stderr",
                                               stream=True, follow=False, timestamps=True,
                                               since=max(1.0, last_write - RECOVER_OVERLAP))
                after = catch_up(replay, writer)
                since = epoch_seconds(after) if after else last_write - RECOVER_OVERLAP

            def frames(stream: str = stream, since: float | None = since) -> Any:
                return self._stream_api.logs(container.id, stdout=stream == "stdout", stderr=stream == "stderr",
                                             stream=True, follow=True, timestamps=True, since=since)

            container.loggers.append(follow(frames, writer, self._sinks, f"{container.id[:12]}-{stream}", after))

    def _reap(self, container: _Container) -> None:
        container.started.wait(API_TIMEOUT)
        for thread in container.loggers:
            thread.join(LOG_DRAIN_TIMEOUT)
        if self.plugin.gc_container and self._client is not None:
            try:
                self._client.api.remove_container(container.id, force=True)
            except Exception as err:  # already removed from outside, or replaced by the task's next run
                log.debug("docker: removing %s: %s", container.id[:12], err)
        with self._lock:
            if self._containers.get(container.id) is container:
                del self._containers[container.id]

    # -- engine events --------------------------------------------------------------------------------

    def _ensure_events(self) -> None:
        # Subscribed on the caller's thread before any container is created, so no exit can slip past.
        with self._connect_lock:
            if self._events_thread is not None and self._events_thread.is_alive():
                return
            self._events = self._subscribe()
            self._events_thread = threading.Thread(target=self._follow_events, name="docker-events", daemon=True)
            self._events_thread.start()

    def _subscribe(self) -> Any:
        try:
            return self._client.api.events(decode=True, filters={"type": "container", "label": [LABEL_ALLOC_ID],
                                                                 "event": ["die", "oom"]})
        except Exception as err:
            raise DriverError(f"Failed to follow docker events: {err}") from err

    def _follow_events(self) -> None:
        while not self._closed:
            try:
                for event in self._events:
                    self._on_event(event)
            except Exception as err:
                log.debug("docker: event stream ended: %s", err)
            if self._closed:
                return
            # The engine restarted or the connection broke: subscribe again, then look at every container so an
            # exit during the gap is not lost.
            while not self._closed:
                try:
                    self._events = self._subscribe()
                    break
                except DriverError:
                    time.sleep(EVENT_RETRY_DELAY)
            self._reconcile()

    def _on_event(self, event: dict[str, Any]) -> None:
        actor = event.get("Actor") or {}
        container_id = actor.get("ID") or event.get("id", "")
        action = event.get("Action") or event.get("status", "")
        with self._lock:
            container = self._containers.get(container_id)
        if container is None:
            return
        if action == "oom":
            container.oom = True
        elif action == "die":
            code = int((actor.get("Attributes") or {}).get("exitCode", 0) or 0)
            # The engine handles a container's events in order and the kernel's OOM notice comes before the
            # exit, so `oom` is already set. Inspecting here instead would wait ~50 ms for the engine's
            # container lock, held while it cleans up the exit.
            self._record_exit(container, code, oom=container.oom)

    def _reconcile(self) -> None:
        with self._lock:
            watched = [c for c in self._containers.values() if not c.exited and c.started.is_set()]
        for container in watched:
            state = self._state(container)
            if not state.get("Running"):
                self._record_exit(container, int(state.get("ExitCode", 0)), oom=bool(state.get("OOMKilled")),
                                  message="" if state else "container not found")

    # -- helpers --------------------------------------------------------------------------------------

    def _state(self, container: _Container) -> dict[str, Any]:
        """The container's State from the engine; {} when it is gone or the engine does not answer."""
        try:
            return self._client.api.inspect_container(container.id).get("State") or {}
        except Exception:
            return {}

    def _record_exit(self, container: _Container, exit_code: int, *, oom: bool = False, message: str = "") -> None:
        with self._lock:
            if container.exited:
                return
            container.exited = True
            failed = exit_code != 0 or oom or bool(message and message != "stopped before start")
            self._exits.append(TaskExit(container.handle, exit_code=exit_code, failed=failed,
                                        message=message or ("OOM Killed" if oom else "")))
        container.done.set()
        if self._wake is not None:
            try:
                self._wake()
            except Exception:
                log.exception("docker: wake callback failed")
        threading.Thread(target=self._reap, args=(container,), name=f"docker-reap-{container.id[:12]}",
                         daemon=True).start()

    def _find(self, handle: str) -> _Container | None:
        container = self._containers.get(handle)
        if container is not None:
            return container
        return next((c for c in self._containers.values() if c.handle == handle), None)


# What Nomad's docker driver reports as measured (drivers/docker/util/stats_posix.go); cgroup v2 has no RSS or
# max usage in the engine's figures.
MEMORY_MEASURED = ["RSS", "Cache", "Swap", "Usage", "Max Usage"]
MEMORY_MEASURED_V2 = ["Cache", "Swap", "Usage"]
CPU_MEASURED = ["Throttled Periods", "Throttled Time", "Percent"]


def _cpu_percent(new: int, old: int, new_total: int, old_total: int, cores: int) -> float:
    """Nomad's CalculateCPUPercent: a counter's share of another's growth, times the cores."""
    numerator, denominator = new - old, new_total - old_total
    return numerator / denominator * cores * 100.0 if numerator > 0 and denominator > 0 else 0.0


def docker_resource_usage(raw: dict[str, Any], ticks_per_core: float = 0.0) -> dict[str, Any]:
    """Nomad's ResourceUsage from one reading of the engine's stats API, with exactly the keys
    client_stats.resource_usage has (sum_usage adds them up key by key)."""
    memory = raw.get("memory_stats") or {}
    figures = memory.get("stats") or {}
    cache = figures.get("cache", 0)
    measured = MEMORY_MEASURED
    if not cache:  # cgroup v2 calls the page cache "file"
        cache = figures.get("file", 0)
        measured = MEMORY_MEASURED_V2
    cpu, pre = raw.get("cpu_stats") or {}, raw.get("precpu_stats") or {}
    usage, pre_usage = cpu.get("cpu_usage") or {}, pre.get("cpu_usage") or {}
    throttling = cpu.get("throttling_data") or {}
    # Nomad multiplies by the agent's CPU count (runtime.NumCPU); the engine's own count of the container's is
    # the same figure seen from the engine, which may run elsewhere than the agent.
    cores = cpu.get("online_cpus") or len(usage.get("percpu_usage") or []) or 1
    total, pre_total = usage.get("total_usage", 0), pre_usage.get("total_usage", 0)
    percent = _cpu_percent(total, pre_total, cpu.get("system_cpu_usage", 0), pre.get("system_cpu_usage", 0), cores)
    system = _cpu_percent(usage.get("usage_in_kernelmode", 0), pre_usage.get("usage_in_kernelmode", 0), total,
                          pre_total, cores)
    user = _cpu_percent(usage.get("usage_in_usermode", 0), pre_usage.get("usage_in_usermode", 0), total,
                        pre_total, cores)
    return {"MemoryStats": {"RSS": figures.get("rss", 0), "Cache": cache, "Swap": figures.get("swap", 0),
                            "Usage": memory.get("usage", 0), "MaxUsage": memory.get("max_usage", 0),
                            "KernelUsage": 0, "KernelMaxUsage": 0, "Measured": list(measured)},
            "CpuStats": {"SystemMode": system, "UserMode": user, "TotalTicks": percent / 100 * ticks_per_core,
                         "ThrottledPeriods": throttling.get("throttled_periods", 0),
                         "ThrottledTime": throttling.get("throttled_time", 0), "Percent": percent,
                         "Measured": list(CPU_MEASURED)},
            "DeviceStats": None}
