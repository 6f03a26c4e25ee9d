"""RPC between agents: request/response envelopes and the method names servers answer."""

from .messages import RpcRequest, RpcResponse, methods

__all__ = ["RpcRequest", "RpcResponse", "methods"]
