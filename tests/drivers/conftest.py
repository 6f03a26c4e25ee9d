"""Fixtures for the driver tests (the Docker engine and its client are the root conftest's, shared by the session)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.drivers import isolation


@pytest.fixture
def alloc_root(tmp_path: Path) -> Path:
    return tmp_path / "allocs"


@pytest.fixture
def cgroup_parent(request: pytest.FixtureRequest) -> Iterator[str]:
    """A cgroup parent of the test module's own; whatever a failed test left in it is removed afterwards."""
    name = f"yurt-test-{request.module.__name__.removeprefix('test_')}-{os.getpid()}"
    yield name
    for controller in isolation.CONTROLLERS:
        parent = isolation.CGROUP_ROOT / controller / name
        for child in parent.glob("*/"):
            child.rmdir()
        if parent.is_dir():
            parent.rmdir()
