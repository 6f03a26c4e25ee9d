"""The `yurt` command: Nomad's verbs, flags, output and exit codes, dispatched to one module per group."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from orchestrator import __version__

USAGE = """Usage: yurt [-version] [-help] <command> [args]

Common commands:
    run         Run a new job or update an existing job
    stop        Stop a running job
    status      Display the status output for a resource
    alloc       Interact with allocations
    job         Interact with jobs
    node        Interact with nodes
    agent       Runs a Nomad agent

Other commands:
    deployment      Interact with deployments
    eval            Interact with evaluations
    operator        Provides cluster-level tools for Nomad operators
    server          Interact with servers
    sim             Run scenarios and fault campaigns on the simulator
    lab             Bring the network-namespace lab hosts up or down (root)
    system          Interact with the system API
    version         Prints the yurt version
"""

Command = Callable[[list[str]], int]


def _version(_args: list[str]) -> int:
    print(f"yurt v{__version__}")
    return 0


def _lazy(target: str, *prefix: str) -> Command:
    """A command imported only when run, so `yurt` starts without loading every command group."""

    def run(args: list[str]) -> int:
        module, _, function = target.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            # The agent command lives in its own package, which a partial checkout may not have yet.
            print(f"yurt: {module} is not available in this build", file=sys.stderr)
            return 1
        return getattr(loaded, function)([*prefix, *args])

    return run


COMMANDS: dict[str, Command] = {
    "agent": _lazy("orchestrator.agent.command:main"),
    "alloc": _lazy("orchestrator.cli.alloc:main"),
    "deployment": _lazy("orchestrator.cli.deployment:main"),
    "eval": _lazy("orchestrator.cli.eval:main"),
    "job": _lazy("orchestrator.cli.job:main"),
    "node": _lazy("orchestrator.cli.node:main"),
    "operator": _lazy("orchestrator.cli.operator:main"),
    "server": _lazy("orchestrator.cli.server:main"),
    "sim": _lazy("orchestrator.cli.sim:main"),
    "lab": _lazy("orchestrator.cli.lab:main"),
    "status": _lazy("orchestrator.cli.status:status"),
    "system": _lazy("orchestrator.cli.operator:system"),
    "version": _version,
    # Nomad's top-level aliases.
    "run": _lazy("orchestrator.cli.job:run"),
    "stop": _lazy("orchestrator.cli.job_ops:stop"),
    "plan": _lazy("orchestrator.cli.job_plan:plan"),
    "inspect": _lazy("orchestrator.cli.job_ops:inspect"),
    "validate": _lazy("orchestrator.cli.job:validate"),
    "init": _lazy("orchestrator.cli.job:init"),
    "logs": _lazy("orchestrator.cli.alloc:logs"),
    "fs": _lazy("orchestrator.cli.alloc_fs:fs"),
    # Nomad's older, hyphenated spellings, still found in blog posts.
    "alloc-status": _lazy("orchestrator.cli.alloc:status"),
    "eval-status": _lazy("orchestrator.cli.eval:status"),
    "node-drain": _lazy("orchestrator.cli.node_drain:drain"),
    "node-status": _lazy("orchestrator.cli.node:status"),
    "server-join": _lazy("orchestrator.cli.server:join"),
    "server-members": _lazy("orchestrator.cli.server:members"),
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "-help", "--help"):
        print(USAGE, end="")
        return 0 if args else 1
    if args[0] in ("-version", "--version", "-v"):
        return _version([])
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"yurt: unknown command {args[0]!r}\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 127
    try:
        return command(args[1:])
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
