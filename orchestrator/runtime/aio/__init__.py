"""The asyncio runtime: the agent process's driver, TCP transport, wire format and local RPC caller."""

from .driver import AgentCrashed, AgentRunner, AioRuntime
from .local import LocalCaller
from .transport import REFUSED, RESET, Transport, parse_address
from .wire import MAX_FRAME, Frame, WireError, decode_frame, encode_frame

__all__ = [
    "MAX_FRAME",
    "REFUSED",
    "RESET",
    "AgentCrashed",
    "AgentRunner",
    "AioRuntime",
    "Frame",
    "LocalCaller",
    "Transport",
    "WireError",
    "decode_frame",
    "encode_frame",
    "parse_address",
]
