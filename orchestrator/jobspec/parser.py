"""The pipeline: text -> syntax tree -> variables and locals -> decoded, validated API job dict."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from .decoder import Decoder
from .diagnostics import Collector, did_you_mean
from .jsonjob import looks_like_json, parse_json_job
from .loader import file_reader, read_text
from .syntax import parse_body
from .variables import build_scope

_TOP_LEVEL = ("job", "variable", "locals")


def parse_job(
    text: str,
    filename: str = "<input>",
    variables: dict[str, str] | None = None,
    var_files: list[str] | None = None,
    *,
    file_function: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """Parse an HCL2 or JSON jobspec into Nomad's API job dict; raise JobspecError listing every problem.

    `variables` are -var values (strings), `var_files` paths of -var-file files. HCL's file()
    reads relative to `filename`'s directory unless `file_function` is given.
    """
    if looks_like_json(text):
        return parse_json_job(text, filename)
    body = parse_body(text, filename)
    collector = Collector(filename)
    files = [(path, read_text(path, purpose="var")) for path in var_files or []]
    scope = build_scope(body, collector, variables, files)
    scope.functions["file"] = file_function or file_reader(os.path.dirname(filename) or ".")

    for attr in body.attributes:
        collector.error(
            attr.line, attr.column, "", f'unexpected argument "{attr.name}" outside the job block'
        )
    jobs = []
    for block in body.blocks:
        if block.type == "job":
            jobs.append(block)
        elif block.type not in _TOP_LEVEL:
            collector.error(
                block.line,
                block.column,
                "",
                f'unknown block "{block.type}" at the top level' + did_you_mean(block.type, _TOP_LEVEL),
            )
    if not jobs:
        collector.error(1, 1, "", 'no job block found: a jobspec needs job "name" { ... }')
    for extra in jobs[1:]:
        collector.error(
            extra.line,
            extra.column,
            "",
            f"only one job block is allowed per file (the first is at line {jobs[0].line})",
        )
    job = Decoder(collector, scope).job(jobs[0]) if jobs else {}
    collector.raise_if_any()
    return job


def parse_job_file(
    path: str, variables: dict[str, str] | None = None, var_files: list[str] | None = None
) -> dict[str, Any]:
    """Read `path` and parse it; a missing file raises JobspecError."""
    return parse_job(read_text(path), filename=path, variables=variables, var_files=var_files)
