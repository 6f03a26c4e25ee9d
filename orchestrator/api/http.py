"""The aiohttp application serving Nomad's `/v1` HTTP API over an AgentHandle, and the error middleware."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from orchestrator.agent.handle import AgentHandle, RpcError

from . import agent, allocations, client_routes, deployments, job, jobs, metrics, nodes, stream
from .client_forward import forward_client_requests
from .query import AGENT, INVALID_METHOD, NO_PATH_TO_REGION, NOT_FOUND_PAGE, ApiError, text_response

log = logging.getLogger(__name__)

# Real Nomad 1.0.18 answers 500 for an error an RPC handler returns (a job that does not validate, a
# check-index conflict, a dispatch of a job that is not parameterized: TRANSCRIPTS.md shows "Unexpected
# response code: 500 (...)"). yurt answers 400: these are the caller's mistakes, and a 5xx would tell
# clients and load balancers to retry something that can never succeed. Internal failures stay 500.
RPC_ERROR_STATUS = 400

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# Nomad's HTTP layer answers 404 for RPC errors that start with these (structs.ErrUnknown*Prefix).
UNKNOWN_PREFIXES = ("Unknown allocation", "Unknown node", "Unknown job", "Unknown evaluation",
                    "Unknown deployment")


def rpc_error_status(exc: RpcError) -> int:
    if exc.no_leader or str(exc).startswith(("internal error", "rpc error")):
        return 500
    if exc.not_found or str(exc).startswith(UNKNOWN_PREFIXES):
        return 404
    return RPC_ERROR_STATUS


@web.middleware
async def nomad_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as Nomad reports it: a status and a plain-text reason; a crashing handler is logged,
    answered 500 with its message, and the agent goes on serving."""
    try:
        region = request.query.get("region", "")
        if region and region != request.app[AGENT].region:
            # One region per yurt cluster: there is no other server set to forward to.
            raise ApiError(500, NO_PATH_TO_REGION)
        return await handler(request)
    except ApiError as exc:
        return text_response(exc.status, exc.message, exc.headers)
    except RpcError as exc:
        return text_response(rpc_error_status(exc), str(exc))
    except web.HTTPMethodNotAllowed:
        return text_response(405, INVALID_METHOD)
    except web.HTTPNotFound:
        return text_response(404, NOT_FOUND_PAGE)
    except web.HTTPException:
        raise  # aiohttp's own answers (a body too large, a redirect): as aiohttp makes them
    except Exception as exc:
        log.exception("HTTP %s %s failed", request.method, request.path_qs)
        return text_response(500, str(exc) or type(exc).__name__)


def make_app(agent_handle: AgentHandle, *, stream_heartbeat: float = 10.0,
             client_max_size: int = 64 * 1024 * 1024) -> web.Application:
    """The application for one agent. `stream_heartbeat`: seconds between `{}` lines on an idle event
    stream (Nomad's 10 s). Job bodies can be large (Nomad does not limit them), hence the 64 MiB."""
    app = web.Application(middlewares=[nomad_errors, forward_client_requests], client_max_size=client_max_size)
    app[AGENT] = agent_handle
    app[stream.HEARTBEAT] = stream_heartbeat
    app[stream.STREAMS] = set()
    app.on_shutdown.append(stream.cancel_streams)
    for module in (jobs, job, allocations, deployments, nodes, agent, metrics, stream, client_routes):
        app.router.add_routes(module.routes)
    return app


async def serve(agent_handle: AgentHandle, host: str = "127.0.0.1", port: int = 4646,
                **options: Any) -> web.AppRunner:
    """Start serving on host:port (port 0: any free one; see `bound_port`); stop with `await runner.cleanup()`."""
    runner = web.AppRunner(make_app(agent_handle, **options), access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    await site.start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The port a runner from `serve` listens on (what port 0 turned into)."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the API is not listening on a TCP port")
