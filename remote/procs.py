"""Process helpers the netns lab shares: run a command, find, test and signal processes, probe a TCP port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


class LabError(RuntimeError):
    pass


def run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, input=input)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0) but is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def signal_pid(pid: int, sig: int) -> None:
    # The process may exit between our check and the signal; that is the outcome we wanted anyway.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def descendants(pid: int) -> list[int]:
    """All descendants of pid (sshd's session processes), found through /proc since there is no pgrep contract."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def tcp_open(address: str, port: int = 22, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False




def end(pids: list[int], sig: int = signal.SIGTERM, timeout: float = 2.0) -> None:
    """Send `sig` to each process (SIGCONT first: a paused process would not act on it), wait up to `timeout`
    for them to go, then SIGKILL whatever is left."""
    for pid in pids:
        signal_pid(pid, signal.SIGCONT)
        signal_pid(pid, sig)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.01)
    for pid in pids:
        if alive(pid):
            signal_pid(pid, signal.SIGKILL)
