"""The client's disk-pressure check behind its GC by disk and inode usage."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.agent.agent import disk_pressure


def test_pressure_is_reported_only_over_a_threshold(tmp_path: Path):
    stats = os.statvfs(tmp_path)
    disk_used = 100.0 * (stats.f_blocks - stats.f_bfree) / stats.f_blocks
    assert disk_pressure(tmp_path, 100.0, 100.0) == ""
    assert disk_pressure(tmp_path, disk_used - 0.5, 100.0).startswith("disk usage")
    if stats.f_files:
        inodes_used = 100.0 * (stats.f_files - stats.f_ffree) / stats.f_files
        assert disk_pressure(tmp_path, 100.0, max(inodes_used - 0.5, 0.0)).startswith("inode usage")
    assert disk_pressure(tmp_path / "missing", 0.0, 0.0) == ""
