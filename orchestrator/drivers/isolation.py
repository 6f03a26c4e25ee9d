"""Namespaces, chroot and cgroup (v1) isolation shared by the exec and java drivers; run as a script, the launcher."""

from __future__ import annotations

import ctypes
import errno
import marshal
import os
import pwd
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

# Nomad's default `chroot_env`: host path -> path inside the task's chroot.
DEFAULT_CHROOT_ENV = {
    "/bin": "/bin", "/etc": "/etc", "/lib": "/lib", "/lib32": "/lib32", "/lib64": "/lib64",
    "/run/resolvconf": "/run/resolvconf", "/sbin": "/sbin", "/usr": "/usr",
}
DEFAULT_USER = "nobody"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Nomad's executor default
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu")
DEFAULT_CGROUP_PARENT = "yurt"
MIN_CPU_SHARES = 2  # the kernel's floor for cpu.shares
SPEC_FILE = ".isolation.spec"  # in the task dir, root-only: read and removed by the launcher
# The launcher sees only this; the task's own environment travels in the spec file,
# which keeps it out of every other user's view of the launcher's command line.
LAUNCHER_ENV = {"PATH": DEFAULT_PATH, "LC_ALL": "C"}
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2"}

# mount(2), unshare(2) and prctl(2) constants
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x04000000, 0x08000000, 0x20000000
PR_SET_PDEATHSIG = 1
# What the agent's stop sends the task's process group: the launcher left outside the namespace outlives them.
BLOCKED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2}


class IsolationError(Exception):
    """The task's isolation could not be set up (bad user, cgroups not writable...)."""


def unavailable_reason() -> str | None:
    """Why this client cannot isolate tasks (Nomad's exec needs root, Linux and cgroups), None when it can."""
    if not sys.platform.startswith("linux"):
        return "exec driver requires Linux"
    if os.geteuid() != 0:
        return "Driver must run as root"
    missing = [c for c in CONTROLLERS if not (CGROUP_ROOT / c / "cgroup.procs").exists()]
    if missing:
        return f"cgroup v1 controllers not mounted: {', '.join(missing)}"
    return None


def resolve_user(name: str) -> tuple[int, int, list[int]]:
    """The task's `user` (a name or a uid) as uid, gid and groups, looked up on the host, whose /etc the chroot
    shares by default."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, ValueError):
        raise IsolationError(f"user {name!r} not found") from None
    return entry.pw_uid, entry.pw_gid, os.getgrouplist(entry.pw_name, entry.pw_gid)


# -- cgroups ---------------------------------------------------------------------------------------------------


def cgroup_dirs(parent: str, run: str) -> list[Path]:
    """One directory per controller, named by the run: a restarted client finds them from the handle alone."""
    return [CGROUP_ROOT / controller / parent / run for controller in CONTROLLERS]


def create_cgroups(parent: str, run: str, memory_mb: int, memory_max_mb: int, cpu: int) -> list[Path]:
    """The run's cgroups with a hard memory limit (memory_max_mb when oversubscribed, else memory_mb) and
    cpu.shares from the task's MHz, as Nomad's executor sets them."""
    dirs = cgroup_dirs(parent, run)
    try:
        for path in dirs:
            path.mkdir(parents=True, exist_ok=True)
        memory, cpu_dir = dirs
        hard = max(memory_max_mb, memory_mb)
        if hard > 0:
            _write(memory / "memory.limit_in_bytes", hard << 20)
            if memory_max_mb > memory_mb > 0:
                _write(memory / "memory.soft_limit_in_bytes", memory_mb << 20)
            memsw = memory / "memory.memsw.limit_in_bytes"
            if memsw.exists():
                _write(memsw, hard << 20)  # else swap would let the task run past its hard limit
        _write(cpu_dir / "cpu.shares", max(MIN_CPU_SHARES, cpu))
    except OSError as exc:
        remove_cgroups(dirs)
        raise IsolationError(f"failed to set up cgroups: {exc}") from exc
    return dirs


def oom_killed(dirs: list[Path]) -> bool:
    """Whether the kernel's OOM killer acted in the run's memory cgroup (kernels since 4.13 count it)."""
    for path in dirs:
        try:
            text = (path / "memory.oom_control").read_text()
        except OSError:
            continue
        counts = dict(line.split() for line in text.splitlines() if line.count(" ") == 1)
        return int(counts.get("oom_kill", "0")) > 0
    return False


def remove_cgroups(dirs: list[Path]) -> bool:
    """rmdir each; False while one still holds processes (EBUSY): the namespace's last ones are exiting."""
    done = True
    for path in dirs:
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            done = False
    return done


def _write(path: Path, value: int) -> None:
    path.write_text(str(value))


# -- the chroot ------------------------------------------------------------------------------------------------


def build_root(root: Path, shared_dir: Path, chroot_env: dict[str, str]) -> list[list[str]]:
    """Mount points made in the task dir (which becomes the task's /) and the mounts the launcher makes there.

    Symlinks (/bin -> usr/bin on merged-/usr systems) are copied as links; directories and files are bound
    read-only. The task's own local/, secrets/ and tmp/ are already there; the allocation's shared dir is
    bound at /alloc; /proc and /dev are the namespace's own.
    """
    mounts: list[list[str]] = []
    for source, target in sorted(chroot_env.items(), key=lambda item: item[1]):
        host, inner = Path(source), root / target.lstrip("/")
        if host.is_symlink():
            if not inner.is_symlink():
                inner.parent.mkdir(parents=True, exist_ok=True)
                inner.symlink_to(os.readlink(host))
        elif host.is_dir():
            inner.mkdir(parents=True, exist_ok=True)
            mounts.append(["bind_ro", str(host), str(inner)])
        elif host.exists():
            inner.parent.mkdir(parents=True, exist_ok=True)
            inner.touch(exist_ok=True)
            mounts.append(["bind_ro", str(host), str(inner)])
    for name in ("alloc", "proc", "dev"):
        (root / name).mkdir(exist_ok=True)
    mounts.append(["bind", str(shared_dir), str(root / "alloc")])
    mounts.append(["proc", "proc", str(root / "proc")])
    mounts.append(["dev", "tmpfs", str(root / "dev")])
    return mounts


def write_spec(root: Path, spec: dict) -> Path:
    """The launcher's instructions, readable by root only (they hold the task's environment)."""
    path = root / SPEC_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        marshal.dump(spec, out)  # not json: marshal is built in, and the launcher's imports are its start time
    return path


def launch_argv(spec_path: Path) -> list[str]:
    """The launcher, run by this interpreter isolated from the agent's Python settings (-I) and site (-S)."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(spec_path)]


# -- the launcher: PID 1 in the new namespaces, before it becomes the task -------------------------------------


def _encode(text: str | None) -> bytes | None:
    return text.encode() if text is not None else None


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _errno_error(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def _mounter(libc: ctypes.CDLL) -> Callable[..., None]:
    def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
        args = (_encode(source), _encode(target), _encode(fstype), ctypes.c_ulong(flags), _encode(data))
        if libc.mount(*args) != 0:
            raise _errno_error(f"mount {source} on {target}")

    return mount


def _mount_dev(mount: Callable[..., None], dev: Path) -> None:
    # The host's device nodes are bound rather than made: mknod is often refused inside containers.
    mount("tmpfs", str(dev), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536k")
    for name in DEVICES:
        node = dev / name
        if Path("/dev", name).exists():
            node.touch()
            mount(f"/dev/{name}", str(node), None, MS_BIND)
    for name, target in DEV_LINKS.items():
        (dev / name).symlink_to(target)
    (dev / "shm").mkdir()
    mount("shm", str(dev / "shm"), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")


def launch(spec_path: str) -> int:
    """Unshare the namespaces, fork PID 1 and wait for it, exiting as it did.

    The parent stays outside the new PID namespace: the agent's pidfd watch, process group and kill escalation
    apply to it; it blocks the signals the agent's stop sends the group (PID 1 gets them too, and decides), and
    its death takes PID 1 and so the whole namespace with it (PDEATHSIG). It replays the task's end, signals
    included, which `unshare --fork` cannot do for SIGKILL (OOM kills, the kill escalation).
    """
    with open(spec_path, "rb") as f:
        spec = marshal.load(f)
    os.unlink(spec_path)
    libc = _libc()
    if libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS) != 0:
        raise _errno_error("unshare")
    signal.pthread_sigmask(signal.SIG_BLOCK, BLOCKED_SIGNALS)
    pid = os.fork()
    if pid == 0:
        try:
            _become_task(libc, spec)
        except OSError as exc:  # reaches the task's stderr log; 127 is the shell's "command not found"
            print(f"exec driver: failed to launch the task: {exc}", file=sys.stderr, flush=True)
            os._exit(126 if exc.errno == errno.EACCES else 127)
    status = os.waitpid(pid, 0)[1]
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig
    return os.waitstatus_to_exitcode(status)


def _become_task(libc: ctypes.CDLL, spec: dict) -> None:
    """In PID 1: join the cgroups, name the host, mount the chroot, drop to the task's user, exec the task."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for procs in spec["cgroups"]:
        Path(procs).write_text("0")  # 0: the writer itself, whatever its pid is in this namespace
    socket.sethostname(spec["hostname"])
    mount = _mounter(libc)
    mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted from here on reaches the host
    for kind, source, target in spec["mounts"]:
        if kind in ("bind", "bind_ro"):
            mount(source, target, None, MS_BIND | MS_REC)
            if kind == "bind_ro":
                mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        elif kind == "proc":
            mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        elif kind == "dev":
            _mount_dev(mount, Path(target))
    os.chroot(spec["root"])
    os.chdir(spec["cwd"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    # Python ignores SIGPIPE and SIGXFSZ, and the mask blocks the stop signals: exec would keep both.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    argv = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


def main() -> int:
    try:
        return launch(sys.argv[1])
    except OSError as exc:
        print(f"exec driver: failed to isolate the task: {exc}", file=sys.stderr, flush=True)
        return 127


if __name__ == "__main__":
    sys.exit(main())
