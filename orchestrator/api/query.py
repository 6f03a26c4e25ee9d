"""What every route shares: query options, blocking reads, Nomad's headers, JSON bodies and errors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from orchestrator.agent.handle import AgentHandle, QueryMeta
from orchestrator.state import DEFAULT_NAMESPACE, StateReader
from orchestrator.structs.timefmt import parse_duration

AGENT = web.AppKey("agent", AgentHandle)

# Nomad's blocking queries: 5 minutes unless ?wait= says otherwise, never more than 10, plus up to 1/16
# of the wait at random so that many watchers of one index do not all come back at the same instant.
DEFAULT_WAIT = 300.0
MAX_WAIT = 600.0
JITTER_FRACTION = 16

INVALID_METHOD = "Invalid method"
NOT_FOUND_PAGE = "404 page not found"  # Go's ServeMux text for a path no handler serves
NO_PATH_TO_REGION = "No path to region"

_jitter = random.Random()


class ApiError(Exception):
    """An answer other than 200: `status` with a plain-text `message`, as Nomad's HTTP layer gives them."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def invalid_method() -> ApiError:
    return ApiError(405, INVALID_METHOD)


# -- query options ---------------------------------------------------------------------------------------


_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter as Go's strconv.ParseBool reads it; a bare `?name` counts as true."""
    if name not in request.query:
        return default
    value = request.query.get(name, "")
    if value == "" or value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise bad_request(f'Failed to parse value of "{name}" ({value}) as a bool: strconv.ParseBool: parsing '
                      f'"{value}": invalid syntax')


@dataclass(slots=True)
class QueryOptions:
    namespace: str = DEFAULT_NAMESPACE
    prefix: str = ""
    min_index: int = 0
    wait: float = DEFAULT_WAIT  # seconds
    stale: bool = False
    pretty: bool = False

    def all_namespaces(self) -> bool:
        return self.namespace == "*"

    def in_namespace(self, namespace: str) -> bool:
        return self.namespace == "*" or namespace == self.namespace

    def jittered_wait(self) -> float:
        wait = min(self.wait, MAX_WAIT)
        return wait + _jitter.uniform(0, wait / JITTER_FRACTION)


def options(request: web.Request) -> QueryOptions:
    """The request's query options (400 "Invalid index" / "Invalid wait time" as Nomad); cheap to call again."""
    query = request.query
    opts = QueryOptions(namespace=query.get("namespace") or DEFAULT_NAMESPACE, prefix=query.get("prefix", ""))
    if query.get("index"):
        try:
            opts.min_index = int(query["index"])
        except ValueError:
            raise bad_request("Invalid index") from None
        if opts.min_index < 0:
            raise bad_request("Invalid index")
    if query.get("wait"):
        try:
            wait = parse_duration(query["wait"]) / 1e9
        except ValueError:
            raise bad_request("Invalid wait time") from None
        opts.wait = wait if wait > 0 else DEFAULT_WAIT  # Nomad's blocking RPC treats 0 as "the default"
    opts.stale = parse_bool(request, "stale")
    opts.pretty = parse_bool(request, "pretty")
    return opts


# -- responses -------------------------------------------------------------------------------------------


# json.dumps and json.loads with options build a new encoder/decoder on every call, which costs more than
# the small bodies of most requests; these are what they build, made once (they keep no state between calls).
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_PRETTY = json.JSONEncoder(indent=4, ensure_ascii=False)
_DECODER = json.JSONDecoder()


def dumps(body: Any, pretty: bool = False) -> str:
    return (_PRETTY if pretty else _COMPACT).encode(body)


def json_response(request: web.Request, body: Any, headers: Mapping[str, str] | None = None,
                  status: int = 200) -> web.Response:
    # Exactly Nomad's Content-Type, without the charset aiohttp would add.
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=dumps(body, options(request).pretty).encode(), status=status, headers=all_headers)


def text_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(text=message, status=status, headers=headers, content_type="text/plain", charset="utf-8")


def meta_headers(index: int, meta: QueryMeta) -> dict[str, str]:
    # Nomad never reports index 0: a client blocking on it would return at once and spin.
    return {"X-Nomad-Index": str(max(index, 1)), "X-Nomad-KnownLeader": "true" if meta.known_leader else "false",
            "X-Nomad-LastContact": str(meta.last_contact_ms)}


def meta_fields(index: int, meta: QueryMeta) -> dict[str, Any]:
    """The QueryMeta Nomad embeds in some response bodies (job versions, write responses)."""
    return {"Index": max(index, 1), "LastContact": meta.last_contact_ms, "KnownLeader": meta.known_leader}


def _tables_index(reader: StateReader, tables: Iterable[str]) -> int:
    return max(reader.table_index(t) for t in tables)


async def blocking_read(request: web.Request, tables: tuple[str, ...],
                        compute: Callable[[StateReader, QueryMeta, int], Any]) -> web.Response:
    """Serve a read with Nomad's blocking-query semantics and headers.

    With `?index=N` the answer waits until one of `tables` moves past N (or the wait ends). `compute(reader,
    meta, index)` builds the body from the state; it may raise ApiError (a 404 still carries the headers).
    """
    agent = request.app[AGENT]
    opts = options(request)
    reader, meta = await agent.state(stale=opts.stale)
    index = _tables_index(reader, tables)
    if opts.min_index and index <= opts.min_index:
        # The reader is dropped before awaiting: the agent's state must not be held across awaits.
        del reader
        await agent.wait_for(tables, opts.min_index, opts.jittered_wait())
        reader, meta = await agent.state(stale=opts.stale)
        index = _tables_index(reader, tables)
    headers = meta_headers(index, meta)
    try:
        body = compute(reader, meta, index)
    except ApiError as exc:
        exc.headers.update(headers)
        raise
    return json_response(request, body, headers)


def write_response(request: web.Request, body: dict[str, Any]) -> web.Response:
    """A write's answer: Nomad sets X-Nomad-Index to the index the write was applied at."""
    headers = {"X-Nomad-Index": str(body["Index"])} if body.get("Index") else None
    return json_response(request, body, headers)


def shaped(result: Any, keys: Mapping[str, Any], *, keep_extra: bool = False) -> dict[str, Any]:
    """An RPC result with the key set of Nomad's response struct: `keys` gives the keys, their order and the
    zero value for one the result lacks (or has null); other keys of the result only with `keep_extra`."""
    source = result if isinstance(result, Mapping) else {}
    out = {key: zero if source.get(key) is None else source[key] for key, zero in keys.items()}
    if keep_extra:
        out.update((k, v) for k, v in source.items() if k not in out)
    return out


# -- request bodies --------------------------------------------------------------------------------------


def _go_char(ch: str) -> str:
    """How Go's encoding/json quotes the offending character in its syntax errors."""
    if ch == "'":
        return "'\\''"
    if ch == '"':
        return "'\"'"
    return repr(ch)


def _innermost_container(text: str, pos: int) -> str:
    """'{' or '[': the bracket still open at `pos` (strings skipped), to word a comma error as Go does."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in text[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def go_json_error(text: str, exc: json.JSONDecodeError) -> str:
    """Python's JSON syntax error re-worded as Go's json.Decoder words it (Nomad returns that text)."""
    pos = exc.pos
    if pos >= len(text.rstrip()):
        return "unexpected EOF"
    ch = _go_char(text[pos])
    msg = exc.msg
    if msg.startswith("Expecting property name"):
        return f"invalid character {ch} looking for beginning of object key string"
    if msg == "Expecting ':' delimiter":
        return f"invalid character {ch} after object key"
    if msg == "Expecting ',' delimiter":
        where = "object key:value pair" if _innermost_container(text, pos) == "{" else "array element"
        return f"invalid character {ch} after {where}"
    if msg.startswith(("Invalid control character", "Unterminated string")):
        return f"invalid character {ch} in string literal"
    if msg.startswith("Invalid \\escape"):
        return f"invalid character {ch} in string escape code"
    return f"invalid character {ch} looking for beginning of value"


_JSON_KIND = {list: "array", str: "string", int: "number", float: "number", bool: "bool"}


async def json_body(request: web.Request, go_type: str, *, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object, or 400 with the error Go's decoder would give for it.

    `go_type` names Nomad's request struct for the "cannot unmarshal" message. An empty body is "EOF"
    unless `optional` (endpoints such as /evaluate whose body Nomad reads only when one is sent).
    """
    raw = await request.read()
    text = raw.decode("utf-8", errors="replace")
    start = len(text) - len(text.lstrip())
    if start == len(text):
        if optional:
            return {}
        raise bad_request("EOF")
    try:
        # raw_decode: like Go's Decoder.Decode, read one value and ignore whatever follows it.
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise bad_request(go_json_error(text, exc)) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad_request(f"json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')} into Go value of type "
                          f"{go_type}")
    return value


def typed(body: Mapping[str, Any], key: str, kinds: tuple[type, ...], go_field: str, go_type: str,
          default: Any = None) -> Any:
    """`body[key]` when it has one of the JSON types `kinds`, else 400 with Go's error for the struct field
    (`go_field` like "JobRegisterRequest.EnforceIndex", `go_type` like "bool"); absent or null: `default`."""
    value = body.get(key)
    if value is None:
        return default
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise bad_request(f"json: cannot unmarshal {_JSON_KIND.get(type(value), 'object')} into Go struct field "
                          f"{go_field} of type {go_type}")
    return value
