"""Fixtures for the driver tests (the Docker engine and its client are the root conftest's, shared by the session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def alloc_root(tmp_path: Path) -> Path:
    return tmp_path / "allocs"
