"""The wire format: length-prefixed msgpack frames carrying Raft messages, RPC envelopes and server joins."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from orchestrator.raft.messages import Message
from orchestrator.rpc.messages import RpcRequest, RpcResponse
from orchestrator.server.messages import ServerJoin

# A frame is HEADER (the payload's length, big-endian) then a msgpack map {"s": src, "d": dst, "k": kind, "b": body}.
HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # room for a large FSM snapshot; anything bigger is a bug or an attack

KIND_RAFT = "raft"
KIND_REQUEST = "req"
KIND_RESPONSE = "resp"
KIND_JOIN = "join"

_RAFT_INTS = ("term", "log_term", "index", "commit", "reject_hint")


class WireError(Exception):
    """A frame or message that cannot be encoded or decoded: too large, truncated, garbage or the wrong shape."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame: `message` sent by agent `src` to agent `dst`."""

    src: str
    dst: str
    message: Any


def _no_ext(code: int, data: bytes) -> Any:
    # Nothing yurt sends uses msgpack extension types; one arriving means the peer speaks something else.
    raise WireError(f"unexpected msgpack extension type {code}")


def encode_message(message: Any) -> tuple[str, Any]:
    """The (kind, body) of a message: plain values msgpack can pack."""
    if isinstance(message, Message):
        return KIND_RAFT, message.to_wire()
    if isinstance(message, RpcRequest):
        return KIND_REQUEST, {"id": message.id, "src": message.src, "method": message.method, "args": message.args}
    if isinstance(message, RpcResponse):
        body: dict[str, Any] = {"id": message.id, "result": message.result, "index": message.index}
        # Most answers succeed and most callers know the leader already: leave the empty fields out.
        if message.error:
            body["error"] = message.error
        if message.leader:
            body["leader"] = message.leader
        return KIND_RESPONSE, body
    if isinstance(message, ServerJoin):
        return KIND_JOIN, {"servers": list(message.servers)}
    raise WireError(f"cannot send a {type(message).__name__} over the wire")


def decode_message(kind: Any, body: Any) -> Any:
    """The message a (kind, body) pair encodes; WireError when the body does not have the kind's shape."""
    try:
        if kind == KIND_RAFT:
            _check_raft(body)
            return Message.from_wire(body)
        if kind == KIND_REQUEST:
            _need(body, dict, "request")
            args = body.get("args", {})
            _need(args, dict, "request args")
            return RpcRequest(id=_int(body["id"]), src=_str(body["src"]), method=_str(body["method"]), args=args)
        if kind == KIND_RESPONSE:
            _need(body, dict, "response")
            return RpcResponse(id=_int(body["id"]), result=body.get("result"), error=_str(body.get("error", "")),
                               index=_int(body.get("index", 0)), leader=_str(body.get("leader", "")))
        if kind == KIND_JOIN:
            _need(body, dict, "join")
            servers = body["servers"]
            _need(servers, list, "join servers")
            return ServerJoin(servers=tuple(_str(s) for s in servers))
    except WireError:
        raise
    except Exception as exc:  # from_wire and the constructors may raise anything on a hostile body
        raise WireError(f"bad {kind} body: {type(exc).__name__}: {exc}") from exc
    raise WireError(f"unknown message kind {kind!r}")


def encode_frame(src: str, dst: str, message: Any, *, max_size: int = MAX_FRAME) -> bytes:
    """HEADER plus payload, ready to write to a stream; WireError if unencodable or over `max_size`."""
    kind, body = encode_message(message)
    try:
        payload = msgpack.packb({"s": src, "d": dst, "k": kind, "b": body}, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"cannot encode {kind} from {src} to {dst}: {exc}") from exc
    if len(payload) > max_size:
        raise WireError(f"{kind} frame from {src} to {dst} is {len(payload)} bytes, over the {max_size} limit")
    return HEADER.pack(len(payload)) + payload


def frame_length(header: bytes, *, max_size: int = MAX_FRAME) -> int:
    """The payload length a HEADER announces; WireError when it is over `max_size` (read nothing more)."""
    if len(header) != HEADER.size:
        raise WireError(f"truncated frame header ({len(header)} of {HEADER.size} bytes)")
    (length,) = HEADER.unpack(header)
    if length > max_size:
        raise WireError(f"frame of {length} bytes is over the {max_size} limit")
    return length


def decode_payload(payload: bytes) -> Frame:
    """The frame a payload (the bytes after HEADER) holds."""
    try:
        envelope = msgpack.unpackb(payload, raw=False, strict_map_key=False, ext_hook=_no_ext)
    except WireError:
        raise
    except Exception as exc:  # msgpack raises a zoo of types (ExtraData, FormatError, StackError, ValueError...)
        raise WireError(f"undecodable frame: {type(exc).__name__}: {exc}") from exc
    if not isinstance(envelope, dict) or not {"s", "d", "k", "b"} <= envelope.keys():
        raise WireError("frame is not a map with s, d, k and b")
    src, dst = envelope["s"], envelope["d"]
    if not isinstance(src, str) or not isinstance(dst, str) or not src or not dst:
        raise WireError("frame src and dst must be non-empty strings")
    return Frame(src=src, dst=dst, message=decode_message(envelope["k"], envelope["b"]))


def decode_frame(data: bytes, *, max_size: int = MAX_FRAME) -> Frame:
    """Decode exactly one whole frame (HEADER and payload); truncated or trailing bytes are a WireError."""
    length = frame_length(bytes(data[:HEADER.size]), max_size=max_size)
    payload = data[HEADER.size:]
    if len(payload) != length:
        raise WireError(f"frame announces {length} bytes but {len(payload)} follow")
    return decode_payload(bytes(payload))


# -- shape checks: msgpack gives back any value, and a Raft node must only ever see well-typed messages ------


def _need(value: Any, kind: type, what: str) -> None:
    if not isinstance(value, kind):
        raise WireError(f"{what} must be a {kind.__name__}, not {type(value).__name__}")


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireError(f"expected an integer, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise WireError(f"expected a string, got {type(value).__name__}")
    return value


def _check_raft(body: Any) -> None:
    """Reject a Raft body that from_wire would turn into a malformed Message (or a huge allocation:
    bytes(n) of an integer n allocates n bytes)."""
    _need(body, dict, "raft message")
    _str(body.get("type"))
    _str(body.get("src"))
    _str(body.get("dst"))
    for key in _RAFT_INTS:
        if key in body:
            _int(body[key])
    if "reject" in body:
        _need(body["reject"], bool, "reject")
    if "context" in body:
        _need(body["context"], bytes, "context")
    entries = body.get("entries", [])
    _need(entries, list, "entries")
    for entry in entries:
        _need(entry, list, "entry")
        if len(entry) != 4:
            raise WireError("an entry is [term, index, type, data]")
        _int(entry[0])
        _int(entry[1])
        _int(entry[2])
        _need(entry[3], bytes, "entry data")
    snapshot = body.get("snapshot")
    if snapshot is not None:
        _need(snapshot, dict, "snapshot")
        _int(snapshot["index"])
        _int(snapshot["term"])
        _need(snapshot["voters"], list, "snapshot voters")
        for voter in snapshot["voters"]:
            _str(voter)
        _need(snapshot["data"], bytes, "snapshot data")
