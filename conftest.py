"""Root pytest configuration: registers yurt's test markers and the scenario suites' options."""

MARKERS = {
    "sim": "runs on the SimPy simulator",
    "real": "spawns real yurt agents as processes",
    "docker": "needs a Docker engine (tests start dockerd themselves)",
    "lab": "needs the network-namespace lab with sshd (root)",
    "slow": "takes more than a few seconds",
    "scenario": "a scenario suite, run on the clusters chosen with --cluster",
}


def pytest_addoption(parser):
    # Here rather than in scenarios/conftest.py: pytest reads options only from the root conftest and plugins.
    group = parser.getgroup("yurt scenarios")
    group.addoption("--cluster", default="sim",
                    help="where scenarios run: sim, local, lab or inventory:PATH; several separated by commas")
    group.addoption("--results", default=".scenario-results",
                    help="directory for each scenario's JSON record (<dir>/<cluster>/<scenario>.json)")
    group.addoption("--seed", type=int, default=0, help="the simulator's seed for scenarios on --cluster=sim")


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
