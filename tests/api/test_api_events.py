"""The event broker (events from applied commands, ring buffer, filtered subscriptions) and /v1/event/stream."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from orchestrator.api.events import EventBroker
from orchestrator.api.http import bound_port, serve
from orchestrator.api.stream import parse_topics
from orchestrator.fsm import ApplyResult
from orchestrator.rpc import methods
from tests.api.fake_agent import FakeAgent, run_api


def _types(events) -> list[tuple[str, str]]:
    return [(e.topic, e.type) for e in events]


def test_applied_commands_become_nomad_events():
    fake = FakeAgent()
    start = fake.broker.latest_index + 1
    node_id = fake.register_node()
    fake.register_job()
    fake.advance(1.0)
    fake.run_allocs()
    fake.advance(0.5)
    seen = _types(fake.broker.events_from(start))
    assert seen[0] == ("Node", "NodeRegistration")
    for expected in (("Job", "JobRegistered"), ("Evaluation", "EvaluationUpdated"),
                     ("Allocation", "AllocationCreated"), ("Allocation", "AllocationUpdated"),
                     ("Deployment", "DeploymentStatusUpdate")):
        assert expected in seen, expected

    job_event = next(e for e in fake.broker.events_from(start) if e.topic == "Job").to_api()
    assert list(job_event) == ["Topic", "Type", "Key", "Namespace", "FilterKeys", "Index", "Payload"]
    assert job_event["Key"] == "web" and job_event["Payload"]["Job"]["ID"] == "web"
    alloc_event = next(e for e in fake.broker.events_from(start) if e.topic == "Allocation").to_api()
    assert "Job" not in alloc_event["Payload"]["Allocation"] and alloc_event["FilterKeys"][0] == "web"

    mark = fake.broker.latest_index + 1
    fake.loop.call(fake.local, methods.NODE_UPDATE_DRAIN,
                   {"NodeID": node_id, "DrainStrategy": {"DrainSpec": {"Deadline": 10**12}}})
    fake.loop.call(fake.local, methods.JOB_DEREGISTER, {"JobID": "web", "Purge": True})
    seen = _types(fake.broker.events_from(mark))
    assert ("Node", "NodeDrain") in seen and ("Job", "JobDeregistered") in seen
    gone = next(e for e in fake.broker.events_from(mark) if e.type == "JobDeregistered").to_api()
    assert gone["Payload"]["Job"]["ID"] == "web"  # the last version seen, although the job is purged


def test_topic_filters_and_the_ring_buffer():
    fake = FakeAgent()
    start = fake.broker.latest_index + 1
    fake.register_node()
    fake.register_job("web")
    fake.register_job("api")
    only_web = fake.broker.events_from(start, {"Job": ["web"]})
    assert [(e.type, e.key) for e in only_web] == [("JobRegistered", "web")]
    by_job = fake.broker.events_from(start, {"Evaluation": ["api"]})  # evaluations match on their job ID
    assert by_job and all(e.subject.job_id == "api" for e in by_job)
    assert {e.topic for e in fake.broker.events_from(start, {"Node": ["*"]})} == {"Node"}

    small = EventBroker(size=2)
    store = fake.loop.servers[fake.local].store
    base = store.latest_index() + 100  # indexes no table has, so only the result's evaluation makes events
    for index in range(base + 1, base + 5):
        small.publish(index, ApplyResult(evals=(store.evals()[0],)), store)
    assert [e.index for e in small.events_from(0)] == [base + 3, base + 4]  # older indexes fell out
    small.publish(base + 5, ApplyResult(error="refused"), store)
    assert small.latest_index == base + 4  # a refused command makes no event


def test_subscriptions_get_backlog_then_new_events():
    fake = FakeAgent()
    fake.register_job("web")

    async def main():
        stream = fake.broker.subscribe({"Job": ["*"]}, 0)
        first = await asyncio.wait_for(anext(stream), 1)
        assert (first["Type"], first["Key"]) == ("JobRegistered", "web")
        waiting = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        fake.register_job("api")
        second = await asyncio.wait_for(waiting, 1)
        assert second["Key"] == "api" and second["Index"] > first["Index"]
        await stream.aclose()

    asyncio.run(main())


def test_parse_topics():
    assert parse_topics([]) == {"*": ["*"]}
    assert parse_topics(["Job:web", "Job:api", "Node"]) == {"Job": ["web", "api"], "Node": ["*"]}


def test_event_stream_route_sends_ndjson_frames_and_heartbeats():
    async def scenario(client, fake):
        fake.add_namespace("other")
        fake.register_job("web")
        fake.register_job("hidden", Namespace="other")
        response = await client.get("/v1/event/stream?topic=Job&index=1")
        assert response.status == 200 and response.headers["Content-Type"] == "application/json"

        async def line():
            return json.loads(await asyncio.wait_for(response.content.readline(), 2))

        frame = await line()
        assert list(frame) == ["Index", "Events"] and [e["Key"] for e in frame["Events"]] == ["web"]
        assert await line() == {}  # nothing else in namespace default: a heartbeat
        fake.register_job("api")
        frame = await line()
        while frame == {}:
            frame = await line()
        assert [(e["Type"], e["Key"]) for e in frame["Events"]] == [("JobRegistered", "api")]
        response.close()

        everything = await client.get("/v1/event/stream?namespace=*&topic=Job")
        keys: set[str] = set()
        while len(keys) < 3:
            frame = json.loads(await asyncio.wait_for(everything.content.readline(), 2))
            keys.update(e["Key"] for e in frame.get("Events", []))
        assert keys == {"web", "hidden", "api"}
        everything.close()
        response = await client.get("/v1/event/stream?index=x")
        assert response.status == 400

    run_api(scenario, stream_heartbeat=0.05)


def test_shutdown_ends_open_streams_at_once():
    fake = FakeAgent()

    async def main():
        runner = await serve(fake, "127.0.0.1", 0, stream_heartbeat=0.05)
        async with aiohttp.ClientSession() as session:
            response = await session.get(f"http://127.0.0.1:{bound_port(runner)}/v1/event/stream")
            assert json.loads(await asyncio.wait_for(response.content.readline(), 2)) == {}
            started = time.monotonic()
            await runner.cleanup()
            assert time.monotonic() - started < 2.0
            response.close()

    asyncio.run(main())
