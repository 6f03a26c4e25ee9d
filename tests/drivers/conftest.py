"""Fixtures for the docker driver's tests: one engine per session (started here when none answers) and an image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_helpers import IMAGE

from orchestrator.testing.dockerd import DockerEngine, DockerUnavailable, ensure_busybox_image, ensure_dockerd


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    try:
        engine = ensure_dockerd(tmp_path_factory.mktemp("dockerd"))
    except DockerUnavailable as err:
        pytest.skip(f"no Docker engine: {err}")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="session")
def docker_client(docker_engine: DockerEngine) -> Iterator[Any]:
    client = docker_engine.client()
    try:
        ensure_busybox_image(client, IMAGE)
    except DockerUnavailable as err:
        pytest.skip(f"no busybox image: {err}")
    yield client
    client.close()


@pytest.fixture
def alloc_root(tmp_path: Path) -> Path:
    return tmp_path / "allocs"
