"""Scenario fixtures: `cluster` (one per kind given with --cluster) and `record` (the scenario's JSON record)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios.cluster import Cluster
from scenarios.record import Record

KINDS = ("sim", "local", "lab")


def _kinds(config: pytest.Config) -> list[str]:
    kinds = [k.strip() for k in str(config.getoption("--cluster")).split(",") if k.strip()]
    for kind in kinds:
        if kind not in KINDS and not kind.startswith("inventory:"):
            raise pytest.UsageError(f"--cluster {kind!r}: expected one of {', '.join(KINDS)} or inventory:PATH")
    return kinds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cluster" in metafunc.fixturenames:
        kinds = _kinds(metafunc.config)
        metafunc.parametrize("cluster", kinds, ids=[k.split(":")[0] for k in kinds], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The markers follow where each run goes, so `-m "not lab"` and friends select as everywhere else.
    marks = {"sim": ("sim",), "local": ("real", "slow"), "lab": ("lab", "slow")}
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or "cluster" not in callspec.params:
            continue
        item.add_marker("scenario")
        for mark in marks.get(str(callspec.params["cluster"]).split(":")[0], ("lab", "slow")):
            item.add_marker(mark)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)  # the fixtures below read the outcome of the call
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or report.failed


@pytest.fixture(scope="session")
def lab_deployment(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The netns lab brought up and deployed with remote/ once per session, torn down at the end."""
    from remote.lab import unavailable
    from scenarios.clusters.lab import LabDeployment

    reason = unavailable(firewall=True)
    if reason is not None:
        pytest.skip(reason)
    # Each client host gets its own Docker engine for the container scenarios; without dockerd the lab still
    # comes up, and those scenarios skip saying why.
    deployment = LabDeployment.up(Path(request.config.rootpath) / ".scenario-lab",
                                  docker=shutil.which("dockerd") is not None)
    record = Record(scenario="fab-deploy", cluster="lab", outcome="passed")
    record.time("deploy_from_nothing", deployment.deploy_seconds)
    record.time("deploy_unchanged", deployment.redeploy_seconds)
    record.write(_results(request.config))
    yield deployment
    deployment.down()


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    kind = str(request.param)
    docker = request.node.get_closest_marker("docker") is not None  # its tasks run in containers
    built: Cluster
    if kind == "sim":
        from scenarios.clusters.sim import SimulatedCluster

        built = SimulatedCluster(seed=request.config.getoption("--seed"))
    elif kind == "local":
        from scenarios.clusters.local import LocalProcessCluster

        endpoint = None
        if docker:
            request.getfixturevalue("docker_client")  # skips, saying why, when there is no engine
            endpoint = request.getfixturevalue("docker_engine").base_url
        built = LocalProcessCluster(docker_endpoint=endpoint)
    elif kind == "lab":
        deployment = request.getfixturevalue("lab_deployment")
        if docker and deployment.docker_missing:
            pytest.skip(f"the lab's hosts have no Docker engine: {deployment.docker_missing}")
        built = deployment.fresh_cluster()
    else:
        from scenarios.clusters.lab import InventoryCluster

        built = InventoryCluster(Path(kind.split(":", 1)[1]))
    try:
        yield built
    finally:
        if _failed(request) and hasattr(built, "logs"):
            print(built.logs())  # shown with the failure: what each agent said
        built.close()


@pytest.fixture
def record(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Record]:
    name = re.sub(r"^test_", "", request.node.originalname).replace("_", "-")
    rec = Record(scenario=name, cluster=cluster.kind)
    yield rec
    report = getattr(request.node, "rep_call", None)
    rec.outcome = "passed" if report is not None and report.passed else (
        "skipped" if report is not None and report.skipped else "failed")
    rec.write(_results(request.config))


def _results(config: pytest.Config) -> Path:
    results = Path(config.getoption("--results"))
    return results if results.is_absolute() else Path(config.rootpath) / results

