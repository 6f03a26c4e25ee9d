"""`yurt sim`: run a named scenario or a fuzz campaign on the simulator (virtual time, one seed each)."""

from __future__ import annotations

import argparse
import json
import sys
import time

USAGE_EPILOG = """Scenarios: leader-failover, leader-graceful-stop, leader-machine-failure, leader-minority-partition,
client-loss, node-drain, task-kill, leader-and-client-loss. The same seed and code always give the same trace hash."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yurt sim", description="Run yurt's servers and clients on a "
                                     "simulated network with a virtual clock.", epilog=USAGE_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one named scenario")
    run.add_argument("scenario")
    run.add_argument("--seed", "-seed", type=int, default=0)
    run.add_argument("--servers", "-servers", type=int, default=3)
    run.add_argument("--clients", "-clients", type=int, default=3)
    run.add_argument("--failover-policy", "-failover-policy", choices=("bounded", "nomad"), default="bounded",
                     help="heartbeat grace after an election: yurt's bounded one, or Nomad's fixed 300 s")
    run.add_argument("--latency", "-latency", type=float, default=None,
                     help="every link's latency in seconds (default: a LAN's, lognormal around 0.5 ms)")
    run.add_argument("--loss", "-loss", type=float, default=0.0, help="every link's loss probability")
    run.add_argument("--bandwidth", "-bandwidth", type=float, default=None,
                     help="every link's bandwidth in bytes per second (default: unlimited)")
    run.add_argument("--json", "-json", action="store_true", help="end with one JSON object")
    fuzz = sub.add_parser("fuzz", help="random fault campaigns with invariant checks")
    fuzz.add_argument("--seeds", "-seeds", type=int, default=100)
    fuzz.add_argument("--start", "-start", type=int, default=0, help="first seed")
    fuzz.add_argument("--servers", "-servers", type=int, default=3)
    fuzz.add_argument("--clients", "-clients", type=int, default=4)
    fuzz.add_argument("--horizon", "-horizon", type=float, default=90.0, help="virtual seconds of faults")
    fuzz.add_argument("--intensity", "-intensity", type=float, default=3.0, help="faults per virtual minute")
    fuzz.add_argument("--workers", "-workers", type=int, default=1, help="processes to spread seeds over")
    fuzz.add_argument("--json", "-json", action="store_true", help="end with one JSON object")
    sub.add_parser("list", help="list the scenarios")
    return parser


def main(args: list[str]) -> int:
    try:
        opts = _parser().parse_args(args)
    except SystemExit as exc:
        return int(exc.code or 0) and 1
    if opts.command == "list":
        from sim.scenarios import SCENARIOS
        for name, fn in SCENARIOS.items():
            print(f"{name:<28}{(fn.__doc__ or '').splitlines()[0]}")
        return 0
    if opts.command == "run":
        return _run(opts)
    return _fuzz(opts)


def _run(opts: argparse.Namespace) -> int:
    from sim.scenarios import SCENARIOS, run_scenario
    if opts.scenario not in SCENARIOS:
        print(f"Error: unknown scenario {opts.scenario!r}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 1
    from sim.progress import ProgressBar
    links = _link_options(opts)
    started = time.perf_counter()
    # A scenario's length is known only once it ends: the bar counts virtual seconds (on a terminal only).
    with ProgressBar(None, label=opts.scenario) as bar:
        result = run_scenario(opts.scenario, opts.seed, servers=opts.servers, clients=opts.clients,
                              server_options={"failover_policy": opts.failover_policy}, **links,
                              on_progress=bar.update if bar.active else None)
    wall = time.perf_counter() - started
    print(f"==> Scenario {result.scenario} (seed {result.seed}): {'ok' if result.ok else 'FAILED'}")
    for key, value in result.timings.items():
        shown = "did not happen" if value is None else f"{value:.3f}s"
        print(f"    {key:<26} {shown}")
    for key, value in result.notes.items():
        print(f"    {key:<26} {value}")
    print(f"    {'virtual time':<26} {result.virtual_seconds:.1f}s ({wall:.2f}s wall)")
    print(f"    {'trace hash':<26} {result.trace_hash}")
    print(f"    {'violations':<26} {len(result.violations)}")
    for violation in result.violations:
        print(f"      {violation}")
    if not result.ok:
        print(f"Replay: yurt sim run {result.scenario} --seed {result.seed} --servers {opts.servers} "
              f"--clients {opts.clients} --failover-policy {opts.failover_policy}"
              + "".join(f" --{key} {value}" for key, value in links.items()))
    if opts.json:
        print(json.dumps({**result.summary(), "wall_seconds": round(wall, 3),
                          **{k: (round(v, 3) if v is not None else None) for k, v in result.timings.items()}}))
    return 0 if result.ok else 2


def _link_options(opts: argparse.Namespace) -> dict[str, float]:
    """The ClusterSpec link settings given on the command line (only those that differ from the default)."""
    links = {"latency": opts.latency, "loss": opts.loss or None, "bandwidth": opts.bandwidth}
    return {key: value for key, value in links.items() if value is not None}


def _fuzz(opts: argparse.Namespace) -> int:
    from sim.fuzz import FuzzOptions, fuzz, summary
    from sim.progress import ProgressBar
    options = FuzzOptions(servers=opts.servers, clients=opts.clients, horizon=opts.horizon,
                          intensity=opts.intensity)
    seeds = range(opts.start, opts.start + opts.seeds)
    bar = ProgressBar(len(seeds), label="fuzz")
    failures = []
    done = 0

    def on_result(result) -> None:
        nonlocal done
        done += 1
        bar.update(done)
        if not result.ok:
            failures.append(result)

    started = time.perf_counter()
    results = fuzz(seeds, options, workers=opts.workers, on_result=on_result)
    bar.close()
    wall = time.perf_counter() - started
    report = summary(results, options)
    print(f"==> {report['seeds']} seeds, {report['virtual_seconds']:.0f} virtual seconds in {wall:.1f}s: "
          f"{report['violations']} violations")
    for result in failures:
        print(f"    seed {result.seed}:")
        for violation in result.violations:
            print(f"      {violation}")
        print(f"      replay: {result.replay_command(options)}")
    if opts.json:
        print(json.dumps({**report, "wall_seconds": round(wall, 2)}))
    return 0 if not failures else 2
