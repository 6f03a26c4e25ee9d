"""Root pytest configuration: yurt's test markers, the scenario suites' options, and the one Docker engine every
test and scenario of a session shares (two private engines would fight over the docker0 bridge)."""

from collections.abc import Iterator
from typing import Any

import pytest

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


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The engine at DOCKER_HOST or the system socket, else a private dockerd started for this session."""
    from orchestrator.testing.dockerd import DockerUnavailable, ensure_dockerd

    try:
        engine = ensure_dockerd(tmp_path_factory.mktemp("dockerd"))
    except DockerUnavailable as err:
        pytest.skip(f"no Docker engine: {err}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: Any) -> Iterator[Any]:
    """A client of the session's engine, with the busybox image (no registry is reachable: built locally)."""
    from orchestrator.testing.dockerd import BUSYBOX_TAG, DockerUnavailable, ensure_busybox_image

    client = docker_engine.client()
    try:
        ensure_busybox_image(client, BUSYBOX_TAG)
    except DockerUnavailable as err:
        pytest.skip(f"no busybox image: {err}")
    yield client
    client.close()
