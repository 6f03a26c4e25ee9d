"""Allocation directories on disk, laid out as Nomad's, and the per-run task setup the real drivers share."""

from __future__ import annotations

import base64
import binascii
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.structs import Allocation, Node, Task

from .taskenv import CONTAINER_PATHS, TaskPaths, build_env

SHARED_DIR = "alloc"  # <alloc dir>/<alloc id>/alloc: shared by the allocation's tasks
SHARED_SUBDIRS = ("logs", "data", "tmp")
TASK_SUBDIRS = ("local", "secrets", "tmp")
# Tasks may run as another user (exec's `nobody`) and still need to write here, as in Nomad.
DIR_MODE = 0o777


@dataclass(frozen=True, slots=True)
class TaskDir:
    """<alloc dir>/<alloc id>/<task>: the task's working directory and its local/, secrets/, tmp/."""

    dir: Path
    shared_dir: Path  # the allocation's alloc/
    log_dir: Path  # alloc/logs

    @property
    def local_dir(self) -> Path:
        return self.dir / "local"

    @property
    def secrets_dir(self) -> Path:
        return self.dir / "secrets"

    @property
    def tmp_dir(self) -> Path:
        return self.dir / "tmp"

    def host_paths(self) -> TaskPaths:
        return TaskPaths(str(self.shared_dir), str(self.local_dir), str(self.secrets_dir))

    def build(self) -> None:
        for sub in TASK_SUBDIRS:
            _mkdir(self.dir / sub)


class AllocDir:
    """One allocation's directory tree: `alloc/{logs,data,tmp}` and one `<task>/{local,secrets,tmp}` per task."""

    def __init__(self, root: Path | str, alloc_id: str):
        self.root = Path(root)
        self.alloc_id = alloc_id
        self.dir = self.root / alloc_id
        self.shared_dir = self.dir / SHARED_DIR
        self.log_dir = self.shared_dir / "logs"

    def task_dir(self, task_name: str) -> TaskDir:
        return TaskDir(self.dir / task_name, self.shared_dir, self.log_dir)

    def build(self) -> None:
        _mkdir(self.dir, 0o755)
        for sub in SHARED_SUBDIRS:
            _mkdir(self.shared_dir / sub)

    def exists(self) -> bool:
        return self.dir.is_dir()

    def destroy(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _mkdir(path: Path, mode: int = DIR_MODE) -> None:
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)  # mkdir's mode is cut by the umask


def alloc_dir_of(alloc_root: Path | str, alloc_id: str) -> Path | None:
    """The directory of `alloc_id` under a client's alloc dir, None when this client has none."""
    path = Path(alloc_root) / alloc_id
    return path if path.is_dir() else None


@dataclass(frozen=True, slots=True)
class PreparedTask:
    """What a driver needs to start one run of a task: its directories and its environment."""

    alloc_dir: AllocDir
    task_dir: TaskDir
    env: dict[str, str]


class TaskPreparer:
    """Builds the allocation and task directories, the environment and the dispatch payload before a driver
    starts a task (Nomad's task dir, env and dispatch hooks). Shared by the real drivers of one client.

    `node` is set once fingerprinting is done (the environment interpolates its attributes).
    """

    def __init__(self, alloc_root: Path | str, region: str, *, host_env: Mapping[str, str] | None = None):
        self.alloc_root = Path(alloc_root)
        self.region = region
        self.host_env = dict(os.environ) if host_env is None else dict(host_env)
        self.node = Node()

    def alloc_dir(self, alloc_id: str) -> AllocDir:
        return AllocDir(self.alloc_root, alloc_id)

    def alloc_path(self, alloc_id: str) -> Path:
        """`<alloc dir>/<alloc id>` (made if missing), for drivers that lay out the rest themselves."""
        alloc_dir = self.alloc_dir(alloc_id)
        alloc_dir.build()
        return alloc_dir.dir

    def prepare(self, alloc: Allocation, task: Task, *, isolated: bool = False) -> PreparedTask:
        """Directories made, payload written, environment built. `isolated` tasks (containers, chroots) see
        /alloc, /local and /secrets and do not inherit the agent's environment. OSError when the disk fails."""
        alloc_dir = self.alloc_dir(alloc.id)
        alloc_dir.build()
        task_dir = alloc_dir.task_dir(task.name)
        task_dir.build()
        self._write_payload(alloc, task, task_dir)
        paths = CONTAINER_PATHS if isolated else task_dir.host_paths()
        env = build_env(self.node, alloc, task, paths, region=self.region,
                        host_env=None if isolated else self.host_env)
        return PreparedTask(alloc_dir, task_dir, env)

    def destroy(self, alloc_id: str) -> None:
        self.alloc_dir(alloc_id).destroy()

    @staticmethod
    def _write_payload(alloc: Allocation, task: Task, task_dir: TaskDir) -> None:
        job = alloc.job
        target = task.dispatch_payload.file if task.dispatch_payload is not None else ""
        if job is None or not job.payload or not target:
            return
        try:
            data = base64.b64decode(job.payload)
        except (binascii.Error, ValueError) as exc:
            raise OSError(f"failed to decode the dispatch payload: {exc}") from exc
        path = (task_dir.local_dir / target).resolve()
        if not path.is_relative_to(task_dir.local_dir.resolve()):
            raise OSError(f"dispatch payload file {target!r} escapes the task's local directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
