"""`yurt job ...`: the job commands that work without an agent (validate, run -output, init)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from orchestrator.jobspec import JobspecError, parse_job_file
from orchestrator.structs import DecodeError, Job, format_errors, job_from_api, job_to_api, validate_job

EXAMPLE_JOB = """job "example" {
  datacenters = ["dc1"]

  group "cache" {
    network {
      port "db" {
        to = 6379
      }
    }

    task "redis" {
      driver = "docker"

      config {
        image = "redis:3.2"

        ports = ["db"]
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
"""


class _Parser(argparse.ArgumentParser):
    """argparse with Nomad's single-dash flags and exit code 1 on bad usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"Error: {message}", file=sys.stderr)
        print(self.format_usage(), file=sys.stderr, end="")
        sys.exit(1)


def _spec_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-var", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-var-file", action="append", default=[], dest="var_files", metavar="FILE")
    parser.add_argument("file", metavar="FILE")


def _variables(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"-var {pair!r}: expected KEY=VALUE")
        variables[key] = value
    return variables


def load_job(path: str, var_pairs: list[str], var_files: list[str]) -> tuple[Job | None, str]:
    """(the canonical job, "") or (None, the error text Nomad prints when a job file cannot be read)."""
    try:
        data = parse_job_file(path, _variables(var_pairs), var_files)
        return job_from_api(data), ""
    except JobspecError as exc:
        if not Path(path).exists():
            return None, (f'Error getting job struct: Error getting jobfile from "{path}": source path error: '
                          f"stat {path}: no such file or directory")
        return None, f"Error getting job struct: Error parsing job file from {path}:\n{exc}"
    except (ValueError, DecodeError) as exc:
        return None, f"Error getting job struct: {exc}"


def _job_or_report(opts: argparse.Namespace) -> Job | None:
    """The job the command's file and -var flags describe, or None after printing why it could not be read."""
    job, error = load_job(opts.file, opts.var, opts.var_files)
    if job is None:
        print(error, file=sys.stderr)
    return job


def validate(args: list[str]) -> int:
    parser = _Parser(prog="yurt job validate", prefix_chars="-")
    _spec_flags(parser)
    opts = parser.parse_args(args)
    job = _job_or_report(opts)
    if job is None:
        return 1
    errors = validate_job(job)
    if errors:
        print("Job validation errors:\n" + format_errors(errors), file=sys.stderr)
        return 1
    print("Job validation successful")
    return 0


def run(args: list[str]) -> int:
    parser = _Parser(prog="yurt job run", prefix_chars="-")
    parser.add_argument("-output", action="store_true", help="print the JSON job instead of submitting it")
    parser.add_argument("-check-index", type=int, default=None)
    parser.add_argument("-detach", action="store_true")
    parser.add_argument("-verbose", action="store_true")
    parser.add_argument("-address", default=None)
    _spec_flags(parser)
    opts = parser.parse_args(args)
    job = _job_or_report(opts)
    if job is None:
        return 1
    if opts.output:
        print(json.dumps({"Job": job_to_api(job)}, indent=4))
        return 0
    errors = validate_job(job)
    if errors:
        print("Error submitting job: " + format_errors(errors), file=sys.stderr)
        return 1
    print("Error submitting job: no agent to submit to yet (yurt agent arrives with the agent issue); "
          "use -output to print the job", file=sys.stderr)
    return 1


def init(args: list[str]) -> int:
    parser = _Parser(prog="yurt job init", prefix_chars="-")
    parser.add_argument("-short", action="store_true")
    parser.add_argument("file", nargs="?", default="example.nomad")
    opts = parser.parse_args(args)
    target = Path(opts.file)
    if target.exists():
        print(f"Job '{opts.file}' already exists", file=sys.stderr)
        return 1
    target.write_text(EXAMPLE_JOB)
    print(f"Example job file written to {opts.file}")
    return 0


SUBCOMMANDS = {"validate": validate, "run": run, "init": init}


def main(args: list[str]) -> int:
    if not args or args[0] not in SUBCOMMANDS:
        print("Usage: yurt job <subcommand> [options] [args]\n\nSubcommands: " + ", ".join(SUBCOMMANDS),
              file=sys.stderr)
        return 1
    return SUBCOMMANDS[args[0]](args[1:])
