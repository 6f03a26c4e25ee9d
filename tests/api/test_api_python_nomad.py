"""python-nomad (a real Nomad client library) registers, reads, lists and stops a job on a real localhost port."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.api.http import bound_port, serve
from tests.api.fake_agent import FakeAgent, job_dict

nomad = pytest.importorskip("nomad", reason="python-nomad is not installed")


def _client_session(port: int) -> None:
    """What a user of python-nomad does; runs in a worker thread (python-nomad is synchronous)."""
    client = nomad.Nomad(host="127.0.0.1", port=port, timeout=10)
    registered = client.jobs.register_job({"Job": job_dict()})
    assert registered["EvalID"] and registered["JobModifyIndex"] > 0

    job = client.job.get_job("web")
    assert job["ID"] == "web" and job["TaskGroups"][0]["Count"] == 2
    assert [j["ID"] for j in client.jobs.get_jobs()] == ["web"]
    assert [j["ID"] for j in client.jobs.get_jobs(prefix="nope")] == []
    assert "web" in client.jobs
    assert client.job.get_summary("web")["JobID"] == "web"
    assert len(client.job.get_allocations("web")) == 2
    assert client.evaluations.get_evaluations()[0]["JobID"] == "web"
    assert client.status.leader.get_leader() == "127.0.0.1:4647"
    parsed = client.jobs.parse('job "x" {\n  group "g" {\n    task "t" {\n      driver = "raw_exec"\n    }\n  }\n}\n',
                               canonicalize=True)
    assert parsed["ID"] == "x" and parsed["Region"] == "global"

    stopped = client.job.deregister_job("web", purge=True)
    assert stopped["EvalID"]
    assert client.jobs.get_jobs() == []
    with pytest.raises(nomad.api.exceptions.URLNotFoundNomadException):
        client.job.get_job("web")
    with pytest.raises(nomad.api.exceptions.BadRequestNomadException):
        client.jobs.register_job({"NotAJob": {}})


def test_python_nomad_against_the_api_on_a_real_port():
    fake = FakeAgent()
    fake.register_node()

    async def main() -> None:
        runner = await serve(fake, "127.0.0.1", 0)
        try:
            port = bound_port(runner)
            # The fake's cluster only moves when the event loop runs it: schedule while the client works.
            stop = asyncio.Event()

            async def keep_scheduling() -> None:
                while not stop.is_set():
                    fake.advance(0.1)
                    await asyncio.sleep(0.005)

            ticker = asyncio.create_task(keep_scheduling())
            try:
                await asyncio.get_running_loop().run_in_executor(None, _client_session, port)
            finally:
                stop.set()
                await ticker
        finally:
            await runner.cleanup()

    asyncio.run(main())
