"""One host's side of a deployment: the shell each step runs over an open connection (probe, install, start...)."""

from __future__ import annotations

import io
import platform
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from remote.build import Release
from remote.render import SERVICE_NAME, Layout

STOP_TIMEOUT = 15  # seconds between SIGTERM (the agent leaves the cluster first) and SIGKILL
DAEMON, SYSTEMD = "daemon", "systemd"
q = shlex.quote


class Runner(Protocol):
    """What is used of a Fabric Connection, so tests can record the commands instead of running them."""

    def run(self, command: str, **kwargs: Any) -> Any: ...

    def put(self, local: Any, remote: str | None = None, **kwargs: Any) -> Any: ...


class RemoteError(RuntimeError):
    pass


CLOCK = "date +%s.%N"  # appended to a fault's command: the host's wall clock once it took effect


def sh(conn: Runner, command: str, check: bool = True) -> str:
    # in_stream=False: Fabric would otherwise read this process's stdin from every host thread.
    result = conn.run(command, hide=True, warn=True, in_stream=False)
    if check and result.exited != 0:
        first = command.strip().splitlines()[0][:100]
        raise RemoteError(f"`{first}` exited {result.exited}: {(result.stderr or result.stdout).strip()[-1500:]}")
    return result.stdout


def put_text(conn: Runner, text: str, path: str) -> None:
    conn.put(io.BytesIO(text.encode()), remote=path)


# -- facts ----------------------------------------------------------------------------------------------


def running_pid(lay: Layout) -> str:
    """Shell printing the agent's pid when the pid file names a live agent of THIS host. Lab hosts share the PID
    space and paths, so a pid is ours only if it is in our network namespace and runs our config; zombies
    (an init that does not reap) count as dead."""
    return (f"pid=$(cat {q(lay.pid_file)} 2>/dev/null); "
            'if [ -n "$pid" ] && [ -r /proc/$pid/cmdline ] && ! grep -q "^State:.*Z" /proc/$pid/status 2>/dev/null'
            ' && [ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/self/ns/net)" ]'
            f" && tr '\\0' ' ' </proc/$pid/cmdline | grep -qF -- {q(lay.config_dir)}; then echo $pid; fi")


def systemd_usable() -> str:
    """Shell printing yes when systemd runs AND would start the unit where this session is: same network and
    mount namespaces as PID 1. A netns lab host shares this machine's systemd, which would start the agent in
    the wrong namespace (and the wrong /opt), so it gets the pid-file daemon."""
    return ('if [ -d /run/systemd/system ] && command -v systemctl >/dev/null'
            ' && [ "$(readlink /proc/1/ns/net)" = "$(readlink /proc/self/ns/net)" ]'
            ' && [ "$(readlink /proc/1/ns/mnt)" = "$(readlink /proc/self/ns/mnt)" ]; then echo yes; else echo no; fi')


@dataclass(slots=True)
class Facts:
    release: str = ""
    mode: str = ""  # how the running agent was installed (daemon/systemd); "" before the first deploy
    pid: int | None = None
    configs: dict[str, str] = field(default_factory=dict)  # config file name -> sha256
    unit: str = ""  # sha256 of the installed unit file
    interface: str = ""
    systemd: bool = False
    python: str = ""  # the host's interpreter tag and machine (PYTHON_TAG); "" when cluster.python is missing


# What the wheelhouse must match on a host: the interpreter's tag (cpython-311) and the machine (x86_64).
PYTHON_TAG = "import sys, platform; print(sys.implementation.cache_tag + '-' + platform.machine())"


def local_python_tag() -> str:
    return f"{sys.implementation.cache_tag}-{platform.machine()}"


def probe_command(lay: Layout, address: str, python: str = "python3") -> str:
    """One round trip that tells whether anything needs doing (a second deploy is only this and health)."""
    unit_pid = f"systemctl show -p MainPID --value {SERVICE_NAME} 2>/dev/null"
    return "; ".join([
        f'echo "python=$({q(python)} -c {q(PYTHON_TAG)} 2>/dev/null)"',
        f'echo "release=$(cat {q(lay.release_file)} 2>/dev/null)"',
        f'mode=$(cat {q(lay.mode_file)} 2>/dev/null); echo "mode=$mode"',
        f'if [ "$mode" = {SYSTEMD} ]; then echo "pid=$({unit_pid})"; else {running_pid(lay)} | sed "s/^/pid=/"; fi',
        f"for f in {q(lay.config_dir)}/*.hcl; do [ -f \"$f\" ] && echo \"config=$(sha256sum \"$f\")\"; done",
        f'[ -f {q(lay.unit_file)} ] && echo "unit=$(sha256sum < {q(lay.unit_file)} | cut -d" " -f1)"',
        # The interface holding the inventory's address: the client fingerprints its network from it.
        f"echo \"interface=$(ip -o -4 addr show 2>/dev/null | awk '$4 ~ /^{address}\\// {{print $2; exit}}')\"",
        f'echo "systemd=$({systemd_usable()})"',
        "true",
    ])


def parse_facts(text: str) -> Facts:
    facts = Facts()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        value = value.strip()
        if key == "config" and value:
            digest, _, path = value.partition(" ")
            facts.configs[Path(path.strip().lstrip("*")).name] = digest
        elif key == "pid":
            facts.pid = int(value) if value.isdigit() and int(value) > 0 else None
        elif key == "systemd":
            facts.systemd = value == "yes"
        elif key in ("release", "mode", "unit", "interface", "python"):
            setattr(facts, key, value)
    return facts


def probe(conn: Runner, lay: Layout, address: str, python: str = "python3") -> Facts:
    return parse_facts(sh(conn, probe_command(lay, address, python)))


# -- install ----------------------------------------------------------------------------------------------


def sync_wheels(conn: Runner, lay: Layout, release: Release) -> list[str]:
    """Upload the wheels the host lacks (by sha256), drop the ones the release no longer has; names uploaded."""
    listing = sh(conn, f"mkdir -p {q(lay.wheels)} && (cd {q(lay.wheels)} && sha256sum -- *.whl 2>/dev/null; true)")
    remote = {}
    for line in listing.splitlines():
        digest, _, name = line.partition(" ")
        remote[name.strip().lstrip("*")] = digest
    uploaded = []
    for wheel in release.wheels:
        if remote.get(wheel.name) != release.digests[wheel.name]:
            conn.put(str(wheel), remote=f"{lay.wheels}/{wheel.name}")
            uploaded.append(wheel.name)
    stale = sorted(set(remote) - set(release.digests))
    if stale:
        sh(conn, "rm -f -- " + " ".join(q(f"{lay.wheels}/{name}") for name in stale))
    return uploaded


def install(conn: Runner, lay: Layout, python: str, release: Release) -> None:
    """venv under install_dir, then pip from the uploaded wheels only (hosts need no package index)."""
    wheel = q(f"{lay.wheels}/{release.project_wheel.name}")
    venv = q(lay.venv)
    # PIP_CONFIG_FILE=/dev/null: a host's pip.conf (index URLs, constraints) must not change what gets installed.
    # --no-compile halves the install time; Python compiles what the agent imports on its first start.
    pip = (f"PIP_CONFIG_FILE=/dev/null {venv}/bin/python {q(lay.wheels + '/' + release.pip_wheel.name)}/pip "
           "--disable-pip-version-check -q install --no-index --no-compile")
    sh(conn, " && ".join([
        f"if [ -x {venv}/bin/python ]; then fresh=; else {q(python)} -m venv --without-pip {venv} && fresh=1; fi",
        f"{pip} --find-links {q(lay.wheels)} {wheel}",
        # An existing venv already has a yurt of the same version (it does not change between builds), which pip
        # would keep: force just the project in, its dependencies having been settled by the line above.
        f'{{ [ -n "$fresh" ] || {pip} --no-deps --force-reinstall {wheel}; }}',
        f"mkdir -p {q(str(Path(lay.release_file).parent))}",
        f"echo {q(release.id)} > {q(lay.release_file)}",
    ]))


def write_configs(conn: Runner, lay: Layout, files: dict[str, str], directories: list[str]) -> None:
    """The config directory holds exactly `files`; data, log, run and host volume directories exist."""
    dirs = [lay.config_dir, lay.data_dir, str(Path(lay.log_file).parent), str(Path(lay.pid_file).parent), *directories]
    keep = " ".join(q(n) for n in sorted(files))
    sh(conn, f"mkdir -p {' '.join(q(d) for d in dirs)} && cd {q(lay.config_dir)} && "
             f"for f in *.hcl; do case \" {keep} \" in *\" $f \"*) ;; *) rm -f -- \"$f\";; esac; done")
    for name, text in sorted(files.items()):
        put_text(conn, text, f"{lay.config_dir}/{name}")
    # agent_config may carry keys and tokens (encrypt, vault, acl): readable by the agent's user only.
    sh(conn, f"chmod 600 {' '.join(q(f'{lay.config_dir}/{name}') for name in sorted(files))}")


def write_mode(conn: Runner, lay: Layout, mode: str) -> None:
    sh(conn, f"mkdir -p {q(str(Path(lay.mode_file).parent))} && echo {mode} > {q(lay.mode_file)}")


def install_unit(conn: Runner, lay: Layout, unit: str) -> None:
    put_text(conn, unit, lay.unit_file)
    sh(conn, f"systemctl daemon-reload && systemctl enable {SERVICE_NAME}")


# -- the agent process --------------------------------------------------------------------------------------


def start(conn: Runner, lay: Layout, mode: str) -> None:
    """Start the agent unless it runs. Daemon mode is NOT supervised: a killed agent stays down until `start`
    (what fault scenarios rely on); under systemd, Restart=on-failure restarts it."""
    if mode == SYSTEMD:
        sh(conn, f"systemctl start {SERVICE_NAME}")
        return
    # nohup setsid ... & echo $! returns at once; a `cd && nohup` form keeps the SSH session (and Fabric) waiting.
    # setsid execs in place (the backgrounded shell child is no group leader), so $! is the agent's own pid.
    sh(conn, f"running=$({running_pid(lay)}); [ -n \"$running\" ] || "
             f"{{ nohup setsid {lay.command()} >>{q(lay.log_file)} 2>&1 </dev/null & echo $! > {q(lay.pid_file)}; }}")


def stop(conn: Runner, lay: Layout, mode: str) -> None:
    """SIGTERM (the agent leaves when leave_on_terminate says so), SIGKILL after STOP_TIMEOUT; idempotent."""
    if mode == SYSTEMD:
        sh(conn, f"systemctl stop {SERVICE_NAME}")
        return
    ticks = STOP_TIMEOUT * 10
    sh(conn, f"pid=$({running_pid(lay)}); if [ -n \"$pid\" ]; then kill -TERM $pid; i=0; "
             f"while [ -n \"$({running_pid(lay)})\" ] && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done; "
             f"[ -n \"$({running_pid(lay)})\" ] && kill -KILL $pid; fi; rm -f {q(lay.pid_file)}")


def kill(conn: Runner, lay: Layout, mode: str) -> float | None:
    """kill -9, as a crash: nothing restarts a daemon-mode agent (systemd restarts its unit after RestartSec).
    Returns the host's wall clock just after the kill (`date +%s.%N`), so callers can time from the kill
    itself rather than from an SSH round trip earlier."""
    if mode == SYSTEMD:
        # The agent alone, as a crash: the unit's whole cgroup would take the raw_exec tasks with it. Its
        # Restart=on-failure brings it back after RestartSec, unlike the daemon mode.
        out = sh(conn, f"systemctl kill --kill-whom=main -s KILL {SERVICE_NAME}; {CLOCK}")
    else:
        out = sh(conn, f"pid=$({running_pid(lay)}); [ -z \"$pid\" ] || kill -KILL $pid; {CLOCK}")
    return parse_clock(out)


def parse_clock(out: str) -> float | None:
    """The last line of a command ending in CLOCK, as seconds since the epoch."""
    try:
        return float(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def pid(conn: Runner, lay: Layout, mode: str) -> int | None:
    if mode == SYSTEMD:
        out = sh(conn, f"systemctl show -p MainPID --value {SERVICE_NAME}", check=False).strip()
    else:
        out = sh(conn, running_pid(lay), check=False).strip()
    return int(out) if out.isdigit() and int(out) > 0 else None


def logs(conn: Runner, lay: Layout, lines: int) -> str:
    return sh(conn, f"tail -n {int(lines)} {q(lay.log_file)} 2>/dev/null; true")


def _safe_to_remove(path: str) -> bool:
    # rm -rf of "/", "/opt" or a relative path would be a disaster; an install lives at least two levels down.
    parts = Path(path).parts
    return Path(path).is_absolute() and len(parts) >= 3 and ".." not in parts


def teardown(conn: Runner, lay: Layout, mode: str) -> None:
    """Stop the agent, kill the tasks it left running, remove the unit, install_dir and data_dir."""
    for path in (lay.install_dir, lay.data_dir):
        if not _safe_to_remove(path):
            raise RemoteError(f"refusing to remove {path!r}: not an absolute path at least two levels deep")
    stop(conn, lay, mode)
    if mode == SYSTEMD:
        sh(conn, f"systemctl disable {SERVICE_NAME}; rm -f {q(lay.unit_file)}; systemctl daemon-reload", check=False)
    # Tasks (raw_exec) run in their own sessions and outlive the agent, as in Nomad; they are found by working
    # directory under our dirs and by network namespace, never by name.
    roots = "|".join(f"{q(d)}/*" for d in (lay.data_dir, lay.install_dir))
    sh(conn, f'self=$(readlink /proc/self/ns/net); for p in /proc/[0-9]*; do cwd=$(readlink $p/cwd 2>/dev/null) || '
             f'continue; case "$cwd" in {roots}) [ "$(readlink $p/ns/net)" = "$self" ] && kill -KILL ${{p#/proc/}} '
             f"2>/dev/null;; esac; done; true")
    sh(conn, f"rm -rf -- {q(lay.install_dir)} {q(lay.data_dir)}")
