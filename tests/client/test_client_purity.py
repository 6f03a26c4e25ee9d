"""The client and the simulated driver stay sans-IO, and their state goes through the store port."""

import ast
from pathlib import Path

import pytest
from client_fakes import FakeServers, Loop, make_alloc, make_job

from orchestrator.client.state import ClientStateBatch, InMemoryClientStateStore

ROOT = Path(__file__).resolve().parents[2] / "orchestrator"
# The real agent's client I/O (see tests/test_sans_io.py's IO_FILES) is not part of the sans-IO client.
IO_MODULES = {"fingerprint.py", "allocdir.py", "logs.py", "state_file.py"}
MODULES = [*sorted(p for p in (ROOT / "client").glob("*.py") if p.name not in IO_MODULES),
           ROOT / "drivers" / "__init__.py", ROOT / "drivers" / "simulated.py"]
FORBIDDEN = {"asyncio", "simpy", "socket", "threading", "time", "subprocess", "multiprocessing", "random"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_io_imports(path: Path):
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in FORBIDDEN]
        elif (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module
              and node.module.split(".")[0] in FORBIDDEN):
            found.append(node.module)
    assert found == []


def test_store_applies_batches():
    store = InMemoryClientStateStore()
    store.write(ClientStateBatch(node={"NodeID": "n", "AllocIndex": 3}, allocs={"a": {"ID": "a"}},
                                 runners={"a": {"Tasks": {}}}))
    store.write(ClientStateBatch(deleted=["a"]))
    snapshot = store.load()
    assert snapshot.node == {"NodeID": "n", "AllocIndex": 3} and snapshot.allocs == {} and snapshot.runners == {}


def test_agent_persists_what_it_runs_through_ready():
    loop = Loop(FakeServers())
    loop.run_for(1)
    loop.servers.place(make_alloc("a1", make_job()))
    loop.run_for(1)
    assert loop.store.node["AllocIndex"] == loop.agent.alloc_index
    assert loop.store.allocs["a1"]["ID"] == "a1"
    assert loop.store.runners["a1"]["Tasks"]["t"]["Handle"] == loop.driver.running_handles()[0]
    writes = loop.store.writes
    loop.run_for(60)  # heartbeats only: nothing new to persist
    assert loop.store.writes == writes
