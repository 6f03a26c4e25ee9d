"""The `yurt` command: Nomad's verbs, flags, output and exit codes, dispatched to one module per group."""

from __future__ import annotations

import sys
from collections.abc import Callable

from orchestrator import __version__

from . import job, sim

USAGE = """Usage: yurt [-version] [-help] <command> [args]

Common commands:
    run         Run a new job or update an existing job
    validate    Checks if a given job specification is valid
    job         Interact with jobs
    sim         Run scenarios and fault campaigns on the simulator
    version     Prints the yurt version

Commands that need a running agent (agent, node, alloc, server, status, ...) arrive with the agent.
"""

Command = Callable[[list[str]], int]


def _version(_args: list[str]) -> int:
    print(f"yurt v{__version__}")
    return 0


COMMANDS: dict[str, Command] = {
    "job": job.main,
    "run": lambda args: job.main(["run", *args]),
    "validate": lambda args: job.main(["validate", *args]),
    "init": lambda args: job.main(["init", *args]),
    "version": _version,
    "sim": sim.main,
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
    return command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
