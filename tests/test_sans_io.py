"""The pure cores must not touch the clock, sockets, threads, processes or global randomness."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE_PACKAGES = ["structs", "jobspec", "state", "fsm", "scheduler", "raft", "server", "client", "rpc"]
# Single pure modules in packages that also hold I/O code (the runtimes, the real drivers).
PURE_FILES = ["runtime/ports.py", "drivers/simulated.py"]
# The client's I/O for the real agent lives next to the sans-IO client but is never imported by it: reading
# /proc and interfaces (fingerprint), making alloc directories, task log FIFOs and rotated files, the state file.
IO_FILES = ["client/fingerprint.py", "client/allocdir.py", "client/logs.py", "client/state_file.py"]
FORBIDDEN_MODULES = {"asyncio", "simpy", "socket", "threading", "time", "subprocess", "multiprocessing"}


def _pure_modules() -> list[Path]:
    files: list[Path] = []
    excluded = {ROOT / "orchestrator" / name for name in IO_FILES}
    for package in PURE_PACKAGES:
        files.extend(p for p in sorted((ROOT / "orchestrator" / package).rglob("*.py")) if p not in excluded)
    files.extend(ROOT / "orchestrator" / name for name in PURE_FILES)
    return files


def forbidden_imports(source: str) -> list[str]:
    """Names of forbidden imports in a module's source, with their line numbers."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in FORBIDDEN_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
                if alias.name == "random":
                    found.append(f"line {node.lineno}: import random (use the injected Rng)")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in FORBIDDEN_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if top == "random":
                # Randomness is handed in by the runtime (typed by scheduler.ports.Rng); a core that
                # imports from `random` could reach the global generator or seed its own.
                names = ", ".join(a.name for a in node.names)
                found.append(f"line {node.lineno}: from random import {names}")
    return found


def test_there_are_pure_modules_to_check():
    assert len(_pure_modules()) >= len(PURE_PACKAGES)
    assert all((ROOT / "orchestrator" / name).exists() for name in IO_FILES)  # no stale exclusions


def test_the_sans_io_client_never_imports_its_io_modules():
    io_modules = {name.removesuffix(".py").replace("/", ".") for name in IO_FILES}
    for path in _pure_modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                name = node.module.removeprefix("orchestrator.") if node.level == 0 else f"client.{node.module}"
                assert name not in io_modules, f"{path.name} imports {node.module}"


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_has_no_io_imports(path: Path):
    assert forbidden_imports(path.read_text()) == []


def test_checker_catches_each_kind_of_forbidden_import():
    source = "import time\nimport random\nfrom asyncio import sleep\nfrom random import choice\n"
    assert len(forbidden_imports(source)) == 4
    assert len(forbidden_imports("from random import Random\n")) == 1
    assert forbidden_imports("import dataclasses\nfrom .ports import Rng\n") == []
