"""Nomad jobspec parsing: HCL2 and JSON jobs into Nomad's API JSON dict, with located errors."""

from orchestrator.structs.timefmt import parse_duration

from .diagnostics import Diagnostic, JobspecError
from .parser import parse_job, parse_job_file

__all__ = ["Diagnostic", "JobspecError", "parse_duration", "parse_job", "parse_job_file"]
