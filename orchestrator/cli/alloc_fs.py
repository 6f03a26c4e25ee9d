"""`yurt alloc fs` (and the `yurt fs` alias): list, stat, cat, tail and follow files of an allocation's directory,
as Nomad's `alloc fs` does through /v1/client/fs/ls|stat|cat|readat|stream."""

from __future__ import annotations

import base64
import http.client
import json
import signal as signals
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .alloc import BYTES_TO_LINES, DEFAULT_TAIL_LINES, _copy_logs, _interrupted, _random_job_alloc
from .flags import CommandError, FlagSet, command, failing, out
from .format import format_list, format_time, ibytes
from .resources import find_alloc, sanitize_uuid_prefix

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

FS_HELP = """
Usage: yurt alloc fs [options] <allocation> <path>
Alias: yurt fs

  fs displays either the contents of an allocation directory for the passed
  allocation, or displays the file at the given path. The path is relative to
  the root of the alloc dir and defaults to root if unspecified.

{general}

FS Specific Options:

  -H
    Machine friendly output.

  -verbose
    Show full information.

  -job <job-id>
    Use a random allocation from the specified job ID.

  -stat
    Show file stat information instead of displaying the file, or listing the directory.

  -f
    Causes the output to not stop when the end of the file is reached, but rather to
    wait for additional output.

  -tail
    Show the files contents with offsets relative to the end of the file. If no
    offset is given, -n is defaulted to 10.

  -n
    Sets the tail location in best-efforted number of lines relative to the end
    of the file.

  -c
    Sets the tail location in number of bytes relative to the end of the file.
"""


def _size(info: dict, machine: bool) -> str:
    size = int(info.get("Size") or 0)
    return str(size) if machine else ibytes(size)


def _name(info: dict) -> str:
    return f"{info.get('Name', '')}/" if info.get("IsDir") else info.get("Name", "")


def format_stat(info: dict, machine: bool) -> str:
    return format_list(["Mode|Size|Modified Time|Content Type|Name",
                        f"{info.get('FileMode', '')}|{_size(info, machine)}|{format_time(info.get('ModTime'))}|"
                        f"{info.get('ContentType', '')}|{_name(info)}"])


def format_listing(files: list[dict], machine: bool) -> str:
    rows = ["Mode|Size|Modified Time|Name"]
    rows += [f"{f.get('FileMode', '')}|{_size(f, machine)}|{format_time(f.get('ModTime'))}|{_name(f)}"
             for f in files]
    return format_list(rows)


def _read_all(client: ApiClient, path: str, params: list[tuple[str, str]]) -> Iterator[bytes]:
    """A plain answer's bytes, chunk by chunk (ApiError before the first when the agent refuses)."""
    response = client.open("GET", path, params=params)

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := response.read1(65536):
                yield chunk
        finally:
            response.close()

    return chunks()


def _frames(client: ApiClient, alloc_id: str, path: str, origin: str, offset: int) -> Iterator[bytes]:
    """/v1/client/fs/stream followed: each StreamFrame's data as it comes (heartbeats and file events carry
    none); ends when the agent hangs up (the file was deleted, the allocation is gone)."""
    params = [("path", path), ("origin", origin), ("offset", str(offset)), ("follow", "true")]
    response = client.open("GET", f"/v1/client/fs/stream/{alloc_id}", params=params, timeout=None)

    def chunks() -> Iterator[bytes]:
        try:
            while line := response.readline():
                if not line.strip():
                    continue
                try:
                    frame = json.loads(line)
                except ValueError:
                    continue
                if frame.get("Data"):
                    yield base64.b64decode(frame["Data"])
        except (OSError, http.client.HTTPException):
            return
        finally:
            response.close()

    return chunks()


@command
def fs(args: list[str]) -> int:
    flags = FlagSet("alloc fs", FS_HELP).bool("verbose").bool("H").bool("job").bool("stat").bool("f").bool("tail")
    flags.int("n", -1).int("c", -1)
    opts = flags.parse(args)
    if not opts.args:
        raise flags.usage_error("A job ID is required" if opts.job else "An allocation ID is required")
    if len(opts.args) > 2:
        raise flags.usage_error("This command takes one or two arguments: <allocation> [<path>]")
    path = opts.args[1] if len(opts.args) == 2 else "/"
    client = flags.client(opts)
    alloc_id = _random_job_alloc(client, opts.args[0]) if opts.job else opts.args[0]
    if len(alloc_id) == 1:
        raise CommandError("Alloc ID must contain at least two characters.")
    stub = find_alloc(client, sanitize_uuid_prefix(alloc_id), verbose=opts.verbose)
    with failing("Error querying allocation"):
        alloc = client.allocation(stub["ID"])
    alloc_id = alloc["ID"]
    from orchestrator.api.client import ApiError

    try:
        info = client.get(f"/v1/client/fs/stat/{alloc_id}", [("path", path)]).data
    except ApiError as exc:
        raise CommandError(str(exc)) from exc
    if opts.stat:
        out(format_stat(info, opts.H))
        return 0
    if info.get("IsDir"):
        with failing("Error listing alloc dir"):
            files = client.get(f"/v1/client/fs/ls/{alloc_id}", [("path", path)]).data or []
        out(format_listing(files, opts.H))
        return 0
    lines = -1
    if not opts.tail:
        with failing("Error reading file"):
            if opts.f:
                chunks = _frames(client, alloc_id, path, "start", 0)
            else:
                chunks = _read_all(client, f"/v1/client/fs/cat/{alloc_id}", [("path", path)])
    else:
        if opts.n != -1 and opts.c != -1:
            raise CommandError("Both -n and -c are not allowed")
        if opts.n < -1 or opts.c < -1:
            raise CommandError("Invalid size is specified")
        offset = DEFAULT_TAIL_LINES * BYTES_TO_LINES
        if opts.n != -1:
            lines, offset = opts.n, opts.n * BYTES_TO_LINES
        elif opts.c != -1:
            offset = opts.c
        else:
            lines = DEFAULT_TAIL_LINES
        offset = min(offset, int(info.get("Size") or 0))
        with failing("Error tailing file"):
            if opts.f:
                chunks = _frames(client, alloc_id, path, "end", offset)
            else:
                # ReadAt counts from the front; the stream above from the end.
                start = int(info.get("Size") or 0) - offset
                chunks = _read_all(client, f"/v1/client/fs/readat/{alloc_id}",
                                   [("path", path), ("offset", str(start)), ("limit", "-1")])
    previous = signals.signal(signals.SIGTERM, _interrupted) if opts.f else None
    try:
        with failing("error tailing file"):
            _copy_logs(chunks, lines, lines * BYTES_TO_LINES)
    except KeyboardInterrupt:
        return 0  # Nomad closes the stream on an interrupt or SIGTERM and ends successfully
    finally:
        if previous is not None:
            signals.signal(signals.SIGTERM, previous)
    return 0
