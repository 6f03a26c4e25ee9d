"""The CLI against a real `yurt agent -dev` process: every command's routes exist and answer as it expects."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.testing.local_cluster import LocalCluster

pytestmark = [pytest.mark.real]

JOBS = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


@pytest.fixture(scope="module")
def dev_agent():
    with LocalCluster(dev=True) as cluster:
        cluster.start()
        assert cluster.wait(lambda: cluster.leader(0) != "", timeout=20) is not None, cluster.agents[0].log.read_text()
        yield cluster.agents[0].address


def test_cli_round_trip_against_a_dev_agent(dev_agent, capsys):
    def yurt(words: str, *args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*words.split(), "-address", dev_agent, *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    code, out, _ = yurt("server members")
    assert code == 0 and out.splitlines()[1].split()[3:5] == ["alive", "true"]
    code, out, _ = yurt("operator raft list-peers")
    assert code == 0 and "leader" in out
    code, out, _ = yurt("job plan", str(JOBS / "batch.nomad"))
    assert code == 1 and out.startswith('+ Job: "hello-batch"\n+ Task Group: "g" (1 create)\n')
    assert "yurt job run -check-index 0 " in out
    code, out, _ = yurt("job run", str(JOBS / "batch.nomad"))
    # 0 once a client runs the allocation; 2 (placement failure) on an agent whose client is not up yet.
    assert code in (0, 2) and out.startswith('==> Monitoring evaluation "')
    assert 'Evaluation triggered by job "hello-batch"' in out
    code, out, _ = yurt("job status")
    assert code == 0 and out.splitlines()[1].split()[:3] == ["hello-batch", "batch", "50"]
    code, out, _ = yurt("status", "hello")
    assert code == 0 and out.startswith("ID            = hello-batch\n")
    code, out, _ = yurt("job run", "-check-index", "1", str(JOBS / "batch.nomad"))
    assert code == 1
    code, out, _ = yurt("job run", str(JOBS / "param.nomad"))
    assert (code, out) == (0, "Job registration successful\n")
    code, _, err = yurt("job dispatch", "param-echo")
    assert code == 1 and err.startswith("Failed to dispatch job: Unexpected response code: ")
    assert "Dispatch did not provide required meta keys: [k]" in err
    code, out, _ = yurt("job stop", "-purge", "hello-batch")
    assert code == 0 and out.splitlines()[-1].endswith('finished with status "complete"')
    assert yurt("job status", "hello-batch")[:2] == (1, "")
    code, out, _ = yurt("eval list")
    assert code == 0 and out.startswith("ID")
