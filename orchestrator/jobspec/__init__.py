"""Nomad jobspec parsing: HCL2 and JSON jobs into Nomad's API JSON dict, with located errors."""

from typing import Any

from orchestrator.structs.timefmt import parse_duration

from .diagnostics import Diagnostic, JobspecError

__all__ = ["Diagnostic", "JobspecError", "parse_duration", "parse_job", "parse_job_file"]


def __getattr__(name: str) -> Any:
    # The parser pulls in python-hcl2 and its Lark grammar (~40 ms): loaded on first use, so an agent that
    # never parses HCL (`yurt agent -dev`) starts without it.
    if name in ("parse_job", "parse_job_file"):
        from . import parser

        return getattr(parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
