"""`docker kill` of a service task's container → the task running again, with a 1 s restart delay.

    python benchmarks/docker_kill.py [--runs 5] [--delay 1.0] [--json] [--agent]

Starts what it needs: the engine at DOCKER_HOST when it answers, else a private dockerd of its own (stopped
at the end), and the local busybox image. A container is running again when the engine reports its `start`
event. The issue's target is 1.5 s with `restart { delay = "1s" }`.

Default (driver mode): the docker driver alone, with this script doing what the client does on an exit:
wait `--delay`, start the task again. `--agent`: a dev agent (`yurt agent -dev`) runs a service job with
`restart { delay = "1s" }` and its client restarts the task; this needs the docker driver registered in
`orchestrator/drivers/registry.py`, checked at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.drivers.docker_config import LABEL_ALLOC_ID
from orchestrator.structs import Allocation, Job, Resources, Task, TaskGroup
from orchestrator.testing.dockerd import DockerEngine, DockerUnavailable, ensure_busybox_image, ensure_dockerd

IMAGE = "yurt/busybox:1"
FOREVER = ["-c", "while true; do sleep 1; done"]
TIMEOUT = 30.0


class StartWatcher:
    """Follows the engine's container `start` events: when each container (by id, and by alloc label) started."""

    def __init__(self, client: Any):
        self._cond = threading.Condition()
        self.starts: list[tuple[float, str, str]] = []  # (monotonic time, container id, alloc id)
        self._stream = client.api.events(decode=True, filters={"type": "container", "event": ["start"],
                                                               "label": [LABEL_ALLOC_ID]})
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        try:
            for event in self._stream:
                actor = event.get("Actor") or {}
                alloc = (actor.get("Attributes") or {}).get(LABEL_ALLOC_ID, "")
                with self._cond:
                    self.starts.append((time.monotonic(), actor.get("ID", ""), alloc))
                    self._cond.notify_all()
        except Exception:
            pass  # closed at the end

    def wait(self, *, after: float, container: str = "", alloc: str = "", timeout: float = TIMEOUT) -> float | None:
        """When the first matching start after `after` happened; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, cid, aid in self.starts:
                    if at >= after and (cid == container or (alloc and aid == alloc)):
                        return at
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def close(self) -> None:
        self._stream.close()


def driver_runs(engine: DockerEngine, client: Any, runs: int, delay: float) -> list[dict[str, float]]:
    """Kill the container from outside `runs` times; the script restarts the task after `delay` like the client."""
    from orchestrator.drivers.docker import DockerDriver

    woke = threading.Event()
    woke_at: list[float] = []

    def wake() -> None:
        woke_at.append(time.monotonic())  # the kill call itself returns only once the container is gone
        woke.set()

    driver = DockerDriver({"endpoint": engine.base_url}, wake=wake)
    task = Task(name="sleeper", driver="docker", config={"image": IMAGE, "command": "sh", "args": FOREVER},
                resources=Resources(cpu=20, memory_mb=32))
    job = Job(id="bench", name="bench", task_groups=[TaskGroup(name="g", tasks=[task])])
    alloc = Allocation(id=f"bench-{os.getpid()}-{int(time.time())}", name="bench.g[0]", job_id="bench", job=job,
                       task_group="g")
    watcher = StartWatcher(client)
    results = []
    try:
        handle = driver.start(0.0, alloc, task)
        if watcher.wait(after=0.0, container=handle) is None:
            raise RuntimeError("the task's container never started")
        for _ in range(runs):
            woke.clear()
            killed = time.monotonic()
            client.api.kill(handle)  # from outside: the driver is not told
            if not woke.wait(TIMEOUT):
                raise RuntimeError("the driver never reported the kill")
            noticed = woke_at[-1]
            exits = driver.poll(0.0)
            assert [e.handle for e in exits] == [handle], exits
            time.sleep(delay)  # the restart policy's delay, as the client waits it
            handle = driver.start(0.0, alloc, task)
            running = watcher.wait(after=noticed, container=handle)
            if running is None:
                raise RuntimeError("the restarted container never started")
            results.append({"total_s": running - killed, "notice_s": noticed - killed,
                            "start_s": running - noticed - delay})
        driver.stop(0.0, handle, 0.0)
        woke.wait(10.0)
    finally:
        watcher.close()
        driver.close()
    return results


def agent_available() -> str | None:
    """Why the agent mode cannot run yet, or None when the docker driver is registered."""
    try:
        from orchestrator.drivers import registry
    except ImportError as err:
        return f"orchestrator/drivers/registry.py is not there yet ({err})"
    if "docker" not in getattr(registry, "FACTORIES", {}):
        return "orchestrator/drivers/registry.py does not register the docker driver yet"
    return None


def docker_job(job_id: str, delay: float) -> dict[str, Any]:
    return {"ID": job_id, "Name": job_id, "Type": "service", "Datacenters": ["dc1"],
            "TaskGroups": [{"Name": "g", "Count": 1,
                            "RestartPolicy": {"Attempts": 1000, "Interval": int(3600e9), "Delay": int(delay * 1e9),
                                              "Mode": "delay"},
                            "Tasks": [{"Name": "sleeper", "Driver": "docker",
                                       "Config": {"image": IMAGE, "command": "sh", "args": FOREVER},
                                       "Resources": {"CPU": 20, "MemoryMB": 32}}]}]}


def agent_runs(engine: DockerEngine, client: Any, runs: int, delay: float) -> list[dict[str, float]]:
    """A dev agent's client restarts the killed task through its restart policy."""
    from orchestrator.testing.local_cluster import LocalCluster

    os.environ["DOCKER_HOST"] = engine.base_url  # the agent process inherits it
    watcher = StartWatcher(client)
    results = []
    with LocalCluster(dev=True) as cluster:
        cluster.start()

        def get(path: str) -> Any:
            try:
                return cluster.request(0, "GET", path, timeout=1.0)
            except (OSError, urllib.error.URLError, ValueError):
                return None

        def docker_ready() -> bool:
            nodes = get("/v1/nodes") or []
            return any(n.get("Status") == "ready" and (n.get("Drivers") or {}).get("docker", {}).get("Healthy")
                       for n in nodes)

        try:
            if cluster.wait(docker_ready, timeout=TIMEOUT) is None:
                raise RuntimeError(f"no ready node with a healthy docker driver; agent log: {cluster.agents[0].log}")
            if not cluster.register(0, docker_job("docker-kill", delay), timeout=10.0):
                raise RuntimeError("job registration failed")

            def alloc_id() -> str:
                allocs = get("/v1/job/docker-kill/allocations") or []
                return next((a["ID"] for a in allocs if a.get("ClientStatus") == "running"), "")

            alloc = cluster.wait(alloc_id, timeout=TIMEOUT) is not None and alloc_id()
            if not alloc or watcher.wait(after=0.0, alloc=alloc) is None:
                raise RuntimeError("the job's container never started")
            for _ in range(runs):
                time.sleep(0.5)  # let the client settle the previous restart
                (container,) = client.api.containers(filters={"label": f"{LABEL_ALLOC_ID}={alloc}"})
                killed = time.monotonic()
                client.api.kill(container["Id"])
                running = watcher.wait(after=killed, alloc=alloc)
                if running is None:
                    states = (get(f"/v1/allocation/{alloc}") or {}).get("TaskStates")
                    log_tail = cluster.agents[0].log.read_text(errors="replace").splitlines()[-15:]
                    raise RuntimeError("the killed task was not restarted; task states: "
                                       + json.dumps(states) + "\nagent log:\n" + "\n".join(log_tail))
                results.append({"total_s": running - killed})
        finally:
            watcher.close()
            try:
                cluster.request(0, "DELETE", "/v1/job/docker-kill?purge=true", timeout=5.0)
                time.sleep(1.0)
            except (OSError, urllib.error.URLError, ValueError):
                pass
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay", type=float, default=1.0, help="restart delay in seconds (default 1)")
    parser.add_argument("--agent", action="store_true", help="through a dev agent's client (needs the registry)")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    if opts.agent and (why := agent_available()) is not None:
        print(f"--agent is not available yet: {why}", file=sys.stderr)
        return 2
    base = Path(tempfile.mkdtemp(prefix="yurt-docker-kill-"))
    try:
        engine = ensure_dockerd(base / "engine")
    except DockerUnavailable as err:
        print(f"no Docker engine: {err}", file=sys.stderr)
        shutil.rmtree(base, ignore_errors=True)
        return 2
    try:
        client = engine.client()
        ensure_busybox_image(client, IMAGE)
        measure = agent_runs if opts.agent else driver_runs
        results = measure(engine, client, opts.runs, opts.delay)
        client.close()
    finally:
        engine.stop()
        shutil.rmtree(base, ignore_errors=True)
    totals = [r["total_s"] for r in results]
    figures: dict[str, Any] = {"mode": "agent" if opts.agent else "driver", "runs": len(results),
                               "delay_s": opts.delay, "median_s": round(statistics.median(totals), 3),
                               "min_s": round(min(totals), 3), "max_s": round(max(totals), 3)}
    for key in ("notice_s", "start_s"):
        values = [r[key] for r in results if key in r]
        if values:
            figures[f"{key[:-2]}_median_s"] = round(statistics.median(values), 3)
    detail = ""
    if "notice_median_s" in figures:
        detail = (f" (kill noticed after {figures['notice_median_s']} s, container started "
                  f"{figures['start_median_s']} s after the delay)")
    print(f"docker kill -> running again, {figures['mode']} mode, restart delay {opts.delay:g} s: "
          f"median {figures['median_s']} s of {figures['runs']}{detail}; target <= 1.5 s")
    if opts.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
