"""`yurt job ...`: the job command group, reading job files (-var, -var-file) and `job validate/init/run`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .flags import CommandError, FlagSet, Options, command, err, group, out

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

JOB_HELP = """
Usage: yurt job <subcommand> [options] [args]

  This command groups subcommands for interacting with jobs.

  Run a new job or update an existing job:

      $ yurt job run <path>

  Plan the run of a job to determine what would change:

      $ yurt job plan <path>

  Stop a running job:

      $ yurt job stop <job_id>

  Examine the status of a running job:

      $ yurt job status <job_id>

Subcommands:
    allocs         List allocations for a job
    deployments    List deployments for a job
    dispatch       Dispatch an instance of a parameterized job
    history        Display all tracked versions of a job
    init           Create an example job file
    inspect        Inspect a submitted job
    periodic       Interact with periodic jobs
    plan           Dry-run a job update to determine its effects
    revert         Revert to a prior version of the job
    run            Run a new job or update an existing job
    scale          Change the count of a Nomad job group
    status         Display status information about a job
    stop           Stop a running job
    validate       Checks if a given job specification is valid
"""

RUN_HELP = """
Usage: yurt job run [options] <path>
Alias: yurt run

  Starts running a new job or updates an existing job using the specification
  located at <path>. This is the main command used to interact with Nomad.

  Upon successful job submission, this command will immediately enter an
  interactive monitor. This is useful to watch Nomad's internals make
  scheduling decisions and place the submitted work onto nodes. The monitor
  will end once job placement is done. It is safe to exit the monitor early
  using ctrl+c.

  On successful job submission and scheduling, exit code 0 will be returned.
  If there are job placement issues encountered (unsatisfiable constraints,
  resource exhaustion, etc), then the exit code will be 2. Any other errors,
  including client connection issues or internal errors, are indicated by exit
  code 1.

{general}

Run Options:

  -check-index
    If set, the job is only registered or updated if the passed job modify
    index matches the server side version. If a check-index value of zero is
    passed, the job is only registered if it does not yet exist. If a non-zero
    value is passed, it ensures that the job is being updated from a known
    state. The use of this flag is most common in conjunction with plan command.

  -detach
    Return immediately instead of entering monitor mode. After job submission,
    the evaluation ID will be printed to the screen, which can be used to
    examine the evaluation using the eval-status command.

  -output
    Output the JSON that would be submitted to the HTTP API without submitting
    the job.

  -policy-override
    Sets the flag to force override any soft mandatory Sentinel policies.

  -preserve-counts
    If set, the existing task group counts will be preserved when updating a job.

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.

  -verbose
    Display full information.
"""

VALIDATE_HELP = """
Usage: yurt job validate [options] <path>
Alias: yurt validate

  Checks if a given HCL job file has a valid specification. This can be used to
  check for any syntax errors or validation problems with a job.

{general}

Validate Options:

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.
"""

INIT_HELP = """
Usage: yurt job init [options] [filename]
Alias: yurt init

  Creates an example job file that can be used as a starting point to
  customize further. If no filename is given, the default of "example.nomad"
  will be used.

Init Options:

  -short
    If the short flag is set, a minimal jobspec without comments is emitted.
"""

_ENFORCE_INDEX = re.compile(r"\((Enforcing job modify index.*)\)", re.S)


def spec_flags(flags: FlagSet) -> FlagSet:
    """The flags every command that reads a job file takes."""
    flags.strings("var").strings("var-file").bool("json").bool("hcl1").bool("hcl2-strict", True)
    return flags


def _variables(pairs: list[str]) -> dict[str, str]:
    variables = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"-var {pair!r}: expected KEY=VALUE")
        variables[key] = value
    return variables


def load_job(path: str, var_pairs: list[str], var_files: list[str]) -> tuple[Any, str]:
    """(the canonical job, "") or (None, the error text Nomad prints when a job file cannot be read)."""
    from orchestrator.jobspec import JobspecError, parse_job_file
    from orchestrator.structs import DecodeError, job_from_api

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


def read_job_file(opts: Options, code: int = 1) -> Any:
    """The job the command's file and -var flags describe; CommandError (exit `code`) when it cannot be read."""
    job, error = load_job(opts.args[0], opts.var, opts.var_file)
    if job is None:
        raise CommandError(error, code)
    return job


def job_api_client(flags: FlagSet, opts: Options, job: dict) -> Any:
    """The API client, pinned to the region and namespace the job file names, as Nomad's run and plan do.

    The loaded job carries Nomad's defaults ("global", "default"); like a job file that names neither, those
    leave the -region/-namespace flags in charge.
    """
    client = flags.client(opts)
    if job.get("Region") not in (None, "", "global"):
        client.region = job["Region"]
    if job.get("Namespace") not in (None, "", "default"):
        client.namespace = job["Namespace"]
    return client


@command
def validate(args: list[str]) -> int:
    flags = spec_flags(FlagSet("job validate", VALIDATE_HELP))
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <path>")
    from orchestrator.structs import format_errors, validate_job

    errors = validate_job(read_job_file(opts))
    if errors:
        raise CommandError("Job validation errors:\n" + format_errors(errors))
    out("Job validation successful")
    return 0


@command
def init(args: list[str]) -> int:
    flags = FlagSet("job init", INIT_HELP, api=False).bool("short").bool("connect")
    opts = flags.parse(args)
    if len(opts.args) > 1:
        raise flags.usage_error("This command takes no arguments or one: <filename>")
    name = opts.args[0] if opts.args else "example.nomad"
    target = Path(name)
    if target.exists():
        raise CommandError(f"Job '{name}' already exists")
    target.write_text(EXAMPLE_JOB)
    out(f"Example job file written to {name}")
    return 0


@command
def run(args: list[str]) -> int:
    flags = spec_flags(FlagSet("job run", RUN_HELP))
    flags.string("check-index").bool("detach").bool("verbose").bool("output").bool("policy-override")
    flags.bool("preserve-counts").string("consul-token").string("vault-token").string("vault-namespace")
    flags.int("eval-priority", 0)
    opts = flags.parse(args)
    if len(opts.args) != 1:
        raise flags.usage_error("This command takes one argument: <path>")
    from orchestrator.structs import format_errors, job_to_api, validate_job

    job_struct = read_job_file(opts)
    job = job_to_api(job_struct)
    if opts.output:
        from .format import go_json

        out(go_json({"Job": job}))
        return 0
    errors = validate_job(job_struct)
    if errors:
        raise CommandError("Error submitting job: " + format_errors(errors))
    check_index = None
    if opts.check_index:
        try:
            check_index = int(opts.check_index)
        except ValueError:
            raise CommandError(f'Error parsing check-index value "{opts.check_index}": strconv.ParseUint: '
                               f'parsing "{opts.check_index}": invalid syntax') from None
    client = job_api_client(flags, opts, job)
    from orchestrator.api.client import ApiError

    try:
        response = client.register_job(job, check_index=check_index, policy_override=opts.policy_override,
                                       preserve_counts=opts.preserve_counts)
    except ApiError as exc:
        match = _ENFORCE_INDEX.search(str(exc))
        if "Enforcing job modify index" in str(exc) and match:
            err(match.group(1))
            raise CommandError("Job not updated") from exc
        raise CommandError(f"Error submitting job: {exc}") from exc
    if response.get("Warnings"):
        out(f"Job Warnings:\n{response['Warnings']}\n")
    periodic = bool((job.get("Periodic") or {}).get("Enabled"))
    parameterized = job.get("ParameterizedJob") is not None
    if opts.detach or periodic or parameterized:
        out("Job registration successful")
        if periodic and not parameterized:
            from .format import clock
            from .job_status import next_launch_text

            launch = next_launch_text(job, clock())
            if launch:
                out(f"Approximate next launch time: {launch}")
        elif not parameterized:
            out("Evaluation ID: " + response.get("EvalID", ""))
        return 0
    if not response.get("EvalID"):
        out("Job registration successful")
        return 0
    from .monitor import EvalMonitor

    return EvalMonitor(client, 36 if opts.verbose else 8).monitor(response["EvalID"], follow_deployment=True)


main = group("job", JOB_HELP, {
    "run": "orchestrator.cli.job:run",
    "validate": "orchestrator.cli.job:validate",
    "init": "orchestrator.cli.job:init",
    "plan": "orchestrator.cli.job_plan:plan",
    "status": "orchestrator.cli.job_status:status",
    "stop": "orchestrator.cli.job_ops:stop",
    "allocs": "orchestrator.cli.job_ops:allocs",
    "inspect": "orchestrator.cli.job_ops:inspect",
    "deployments": "orchestrator.cli.job_ops:deployments",
    "history": "orchestrator.cli.job_ops:history",
    "revert": "orchestrator.cli.job_ops:revert",
    "dispatch": "orchestrator.cli.job_launch:dispatch",
    "periodic force": "orchestrator.cli.job_launch:periodic_force",
    "scale": "orchestrator.cli.job_launch:scale",
})
