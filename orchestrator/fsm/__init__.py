"""The server state machine: applies committed Raft commands to the state store."""

from .commands import COMMAND_TYPES, decode_command, encode_command
from .fsm import FSM, HANDLERS
from .result import ApplyResult, CommandError, MalformedCommandError, UnknownCommandError

__all__ = ["COMMAND_TYPES", "FSM", "HANDLERS", "ApplyResult", "CommandError", "MalformedCommandError",
           "UnknownCommandError", "decode_command", "encode_command"]
