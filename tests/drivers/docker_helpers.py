"""Helpers for the docker driver's tests: allocations and tasks to start, and a wake callback to wait on."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.structs import Allocation, Job, Resources, Task, TaskGroup
from orchestrator.structs.alloc import AllocatedPortMapping, AllocatedResources, AllocatedSharedResources

IMAGE = "yurt/busybox:1"
NODE_ID = "yurt-test-node"  # labels the tests' containers, so teardown removes only those


class Waker:
    """The driver's `wake` callback: counts calls and records when the latest came."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.calls = 0
        self.at: float | None = None

    def __call__(self) -> None:
        self.calls += 1
        self.at = time.monotonic()
        self.event.set()


def make_task(config: dict[str, Any], *, name: str = "t", env: dict[str, str] | None = None, memory_mb: int = 32,
              kill_signal: str = "") -> Task:
    return Task(name=name, driver="docker", config={"image": IMAGE, **config}, env=env or {},
                resources=Resources(cpu=100, memory_mb=memory_mb), kill_signal=kill_signal)


def make_alloc(task: Task, *, ports: list[AllocatedPortMapping] | None = None) -> Allocation:
    job = Job(id="web", name="web", task_groups=[TaskGroup(name="g", tasks=[task])])
    shared = AllocatedSharedResources(ports=ports or [])
    return Allocation(id=str(uuid.uuid4()), name="web.g[0]", node_id=NODE_ID, node_name="n1", job_id="web",
                      job=job, task_group="g", allocated_resources=AllocatedResources(shared=shared))



def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """The first truthy value of `check()`, polled until `timeout`; AssertionError when none comes."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


def read_log(logs_dir: Path, task: str, stream: str) -> str:
    path = logs_dir / f"{task}.{stream}.0"
    return path.read_text() if path.exists() else ""
