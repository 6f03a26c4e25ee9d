"""`yurt agent`: build the configuration from -dev, -config files and flags, start the agent, run until a
signal, leave gracefully when configured to (Nomad's leave_on_interrupt / leave_on_terminate)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys

from orchestrator import __version__

from .config import AgentConfig, ConfigError
from .flags import FlagError, build_agent_config

LEVELS = {"TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
          "WARNING": logging.WARNING, "ERR": logging.ERROR, "ERROR": logging.ERROR, "OFF": logging.CRITICAL + 10}


def main(args: list[str]) -> int:
    # Start-up allocates a few hundred thousand long-lived objects (modules, classes, the config): collecting
    # meanwhile only walks them again and again (~30 ms). _tune_gc turns the collector back on once started.
    gc.disable()
    try:
        config, warnings = build_agent_config(args)
    except FlagError as exc:
        sys.stderr.write(exc.output)
        return exc.exit_code
    except ConfigError as exc:
        print(f"==> {exc}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"==> WARNING: {warning}", file=sys.stderr)  # Nomad prints warnings after this prefix
    _logging(config)
    try:
        return asyncio.run(_run(config))
    except KeyboardInterrupt:
        return 1


def _logging(config: AgentConfig) -> None:
    level = LEVELS.get(config.log_level.upper(), logging.INFO)
    fmt = ('{"@timestamp":"%(asctime)s","@level":"%(levelname)s","@module":"%(name)s","@message":"%(message)s"}'
           if config.log_json else "    %(asctime)s [%(levelname)s] %(name)s: %(message)s")
    logging.basicConfig(level=level, format=fmt, datefmt="%Y-%m-%dT%H:%M:%S%z", stream=sys.stdout, force=True)


def _tune_gc() -> None:
    """The agent's objects live long (the state store) and arrive in bursts: the default collector thresholds
    make a full collection every few thousand writes, an 80-125 ms stall for every request in flight. Collect
    the young generations less often, and freeze what start-up built so full collections skip it."""
    gc.set_threshold(50_000, 50, 1000)
    gc.collect(1)
    gc.freeze()
    gc.enable()


async def _run(config: AgentConfig) -> int:
    from .agent import Agent  # heavy imports only once the command line is known to be good
    from .banner import STARTING, config_files_line, startup_banner

    print(config_files_line(config))
    print(STARTING, flush=True)
    agent = Agent(config)
    try:
        await agent.start()
    except OSError as exc:
        print(f"==> Error starting agent: {exc}", file=sys.stderr)
        await agent.shutdown(leave=False)
        return 1
    _tune_gc()
    print(startup_banner(config, __version__), flush=True)
    stop = asyncio.Event()
    leave = {"value": False}
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        print(f"==> Caught signal: {sig.name.lower().replace('sig', '')}", flush=True)
        graceful = config.leave_on_interrupt if sig == signal.SIGINT else config.leave_on_terminate
        leave["value"] = graceful or config.dev_mode
        if leave["value"]:
            print("==> Gracefully shutting down agent...", flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    code = await agent.run_until_stopped(stop)
    await agent.shutdown(leave=leave["value"])
    return code
