"""LocalCaller: await an RPC to any agent, local or remote, from code in the agent process (the HTTP API)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from typing import Any

from orchestrator.agent.handle import RpcError
from orchestrator.rpc.messages import RpcRequest, RpcResponse

from .driver import AioRuntime

log = logging.getLogger(__name__)

TIMEOUT = "rpc error: timeout"
CLOSED = "rpc error: caller closed"

# Request ids are unique per process, and start at a random 48-bit number so that a restarted process does
# not reuse the ids of its previous incarnation (a late answer to one must not be taken for a new call's).
_request_ids = itertools.count(secrets.randbits(48))


class LocalCaller:
    """A mailbox registered in the runtime under `caller_id`, with the calls waiting on it.

    `caller_id` must not look like an address ("host:port": those are servers) and should be unique across
    the cluster: a remote server sends its answers back over the connection the caller id last came from.
    """

    def __init__(self, runtime: AioRuntime, caller_id: str | None = None) -> None:
        self.runtime = runtime
        self.id = caller_id if caller_id is not None else f"caller-{secrets.token_hex(6)}"
        self._pending: dict[int, asyncio.Future[RpcResponse]] = {}
        self._closed = False
        runtime.register(self.id, self._receive)

    async def call(self, dst: str, method: str, args: dict[str, Any] | None = None, timeout: float = 30.0) -> Any:
        """Call `method` on agent `dst`; its result, or RpcError with the error text (or "rpc error: timeout")."""
        if self._closed:
            raise RpcError(CLOSED)
        response = await self.request(dst, method, args, timeout=timeout)
        if response.error:
            raise RpcError(response.error)
        return response.result

    async def request(self, dst: str, method: str, args: dict[str, Any] | None = None,
                      timeout: float = 30.0) -> RpcResponse:
        """Like `call`, but the whole response (index and leader included); RpcError only on a timeout."""
        request_id = next(_request_ids)
        future: asyncio.Future[RpcResponse] = self.runtime.loop.create_future()
        self._pending[request_id] = future  # before sending: a refusal may be answered synchronously
        try:
            self.runtime.send(self.id, dst, RpcRequest(id=request_id, src=self.id, method=method, args=args or {}))
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise RpcError(TIMEOUT) from None
        finally:
            self._pending.pop(request_id, None)

    def close(self) -> None:
        """Unregister; calls still waiting fail with "rpc error: caller closed"."""
        self._closed = True
        self.runtime.unregister(self.id)
        for request_id, future in list(self._pending.items()):
            if not future.done():
                future.set_result(RpcResponse(id=request_id, error=CLOSED))
        self._pending.clear()

    def _receive(self, src: str, message: Any) -> None:
        if not isinstance(message, RpcResponse):
            log.debug("caller %s ignores a %s from %s", self.id, type(message).__name__, src)
            return
        future = self._pending.pop(message.id, None)
        if future is not None and not future.done():
            future.set_result(message)
        # Otherwise a late answer to a call that timed out, or a second answer (a synthesized reset racing
        # the real reply): the first one won.
