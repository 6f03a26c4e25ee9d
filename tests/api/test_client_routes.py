"""The /v1/client routes over a fake client and a scratch alloc dir: files, logs, stats, signals and their errors."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from orchestrator.agent.handle import LocalAlloc, LocalTask
from orchestrator.api import client_fs
from orchestrator.api.http import make_app
from orchestrator.api.stream import STREAMS
from orchestrator.structs import Node

ALLOC = "11111111-2222-3333-4444-555555555555"


class ClientFake:
    """An agent with a client whose one allocation `ALLOC` has tasks "t" (running as this test's process
    group, so that stats have something to read) and "idle" (never started)."""

    name = "c1"
    region = "global"
    datacenter = "dc1"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dir = root / ALLOC
        for sub in ("alloc/logs", "alloc/data", "alloc/tmp", "t/local", "t/secrets", "t/tmp"):
            (self.dir / sub).mkdir(parents=True)
        self.tasks = {"t": LocalTask("running", True, os.getpgrp()), "idle": LocalTask("pending", False, None)}
        self.signals: list[tuple[str, str, int]] = []

    def client_node(self) -> Node:
        return Node(id="node-1", attributes={"cpu.totalcompute": "4000", "cpu.numcores": "2"})

    def local_alloc(self, alloc_id: str) -> LocalAlloc | None:
        return LocalAlloc(ALLOC, "g", self.dir, dict(self.tasks)) if alloc_id == ALLOC else None

    def signal_task(self, alloc_id: str, task: str, sig: int) -> bool:
        self.signals.append((alloc_id, task, sig))
        return True

    def self_info(self) -> dict[str, Any]:
        return {"config": {"Client": {"AllocDir": str(self.root)}}}

    def log(self, name: str, data: bytes) -> Path:
        path = self.dir / "alloc/logs" / name
        with open(path, "ab") as f:
            f.write(data)
        return path


def run(tmp_path: Path, scenario: Any) -> ClientFake:
    fake = ClientFake(tmp_path)

    async def main() -> None:
        async with TestClient(TestServer(make_app(fake))) as client:
            await scenario(client, fake)

    asyncio.run(main())
    return fake


async def text(client: TestClient, path: str, method: str = "GET", **kwargs: Any) -> tuple[int, str]:
    response = await client.request(method, path, **kwargs)
    return response.status, await response.text()


def frames_of(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines()]


def test_files_listing_stat_cat_readat_and_confinement(tmp_path):
    async def scenario(client, fake):
        fake.log("t.stdout.0", b"hello\nworld\n").chmod(0o644)  # whatever the umask
        os.mkfifo(fake.dir / "alloc/logs/.t.stdout.fifo", 0o600)
        (fake.dir / "t/local/out").symlink_to("/etc")
        (fake.dir / "t/local/in").symlink_to(fake.dir / "alloc/logs/t.stdout.0")
        listing = await (await client.get(f"/v1/client/fs/ls/{ALLOC}")).json()
        assert [e["Name"] for e in listing] == ["alloc", "t"] and listing[0]["IsDir"] is True
        logs = await (await client.get(f"/v1/client/fs/ls/{ALLOC}?path=/alloc/logs/")).json()
        assert [(e["Name"], e["FileMode"], e["Size"]) for e in logs] == [
            (".t.stdout.fifo", "prw-------", 0), ("t.stdout.0", "-rw-r--r--", 12)]
        info = await (await client.get(f"/v1/client/fs/stat/{ALLOC}?path=alloc/logs/t.stdout.0")).json()
        assert list(info) == ["Name", "IsDir", "Size", "FileMode", "ModTime", "ContentType"]
        assert (info["Name"], info["Size"], info["ContentType"]) == ("t.stdout.0", 12, "text/plain; charset=utf-8")
        assert await text(client, f"/v1/client/fs/cat/{ALLOC}?path=alloc/logs/t.stdout.0") == (200, "hello\nworld\n")
        assert await text(client, f"/v1/client/fs/cat/{ALLOC}?path=t/local/in") == (200, "hello\nworld\n")
        assert await text(client, f"/v1/client/fs/readat/{ALLOC}?path=alloc/logs/t.stdout.0&offset=6&limit=3") == (
            200, "wor")
        assert await text(client, f"/v1/client/fs/readat/{ALLOC}?path=alloc/logs/t.stdout.0&offset=x&limit=3") == (
            400, 'error parsing offset: strconv.ParseInt: parsing "x": invalid syntax')
        assert await text(client, f"/v1/client/fs/cat/{ALLOC}?path=alloc/logs/.t.stdout.fifo") == (
            400, 'file "alloc/logs/.t.stdout.fifo" is not a regular file')
        assert await text(client, f"/v1/client/fs/cat/{ALLOC}?path=alloc") == (400, 'file "alloc" is a directory')
        assert await text(client, f"/v1/client/fs/cat/{ALLOC}") == (400, "must provide a file name")
        assert await text(client, f"/v1/client/fs/stat/{ALLOC}?path=alloc/nope") == (
            404, "stat alloc/nope: no such file or directory")
        for path in ("..", "../x", "alloc/../../etc", "/../../", "t/local/out", "t/local/out/passwd"):
            for route in ("ls", "stat", "cat"):
                assert await text(client, f"/v1/client/fs/{route}/{ALLOC}?path={path}") == (
                    400, "Path escapes the alloc directory"), (route, path)
        assert await text(client, "/v1/client/fs/ls/nope?path=/") == (404, 'Unknown allocation "nope"')

    run(tmp_path, scenario)


def test_logs_frames_plain_rotation_and_errors(tmp_path):
    async def scenario(client, fake):
        for index, data in enumerate((b"aaaa\n", b"bbbb\n", b"cc\n")):
            fake.log(f"t.stdout.{index}", data)
        fake.log("t.stderr.0", b"oops\n")
        base = f"/v1/client/fs/logs/{ALLOC}?task=t"
        response = await client.get(f"{base}&type=stdout")
        frames = frames_of(await response.read())
        assert response.headers["Content-Type"] == "application/json"
        assert [(f["File"], f["Offset"], base64.b64decode(f["Data"])) for f in frames] == [
            ("alloc/logs/t.stdout.0", 5, b"aaaa\n"), ("alloc/logs/t.stdout.1", 5, b"bbbb\n"),
            ("alloc/logs/t.stdout.2", 3, b"cc\n")]
        assert await text(client, f"{base}&type=stdout&plain=true") == (200, "aaaa\nbbbb\ncc\n")
        assert await text(client, f"{base}&type=stdout&plain=true&offset=7") == (200, "bb\ncc\n")
        # From the end, back across rotated files, as Nomad's findClosest.
        assert await text(client, f"{base}&type=stdout&plain=true&origin=end&offset=5") == (200, "b\ncc\n")
        assert await text(client, f"{base}&type=stdout&plain=true&origin=end&offset=100") == (200, "aaaa\nbbbb\ncc\n")
        assert await text(client, f"{base}&type=stdout&plain=true&origin=end&offset=0") == (200, "")
        assert await text(client, f"{base}&type=stderr&plain=1") == (200, "oops\n")
        assert await text(client, f"/v1/client/fs/logs/{ALLOC}?type=stdout") == (400, "must provide task name")
        assert await text(client, f"{base}&type=both") == (400, "must provide log type (stdout/stderr)")
        assert await text(client, f"{base}&type=stdout&origin=x") == (400, "origin must be start or end")
        assert await text(client, f"{base}&type=stdout&offset=-x") == (
            400, 'failed to parse offset field to integer: strconv.ParseInt: parsing "-x": invalid syntax')
        assert await text(client, f"/v1/client/fs/logs/{ALLOC}?task=x&type=stdout") == (
            400, 'task group "g" does not have task with name "x"')
        assert await text(client, f"/v1/client/fs/logs/{ALLOC}?task=idle&type=stdout") == (
            404, 'task "idle" not started yet. No logs available')
        (fake.dir / "alloc/logs/t.stderr.0").unlink()
        assert await text(client, f"{base}&type=stderr") == (
            404, 'log entry for task "t" and log type "stderr" not found')

    run(tmp_path, scenario)


def test_follow_streams_new_output_across_rotation_with_heartbeats_until_the_caller_leaves(tmp_path, monkeypatch):
    monkeypatch.setattr(client_fs, "POLL", 0.02)
    monkeypatch.setattr("orchestrator.api.client_routes.HEARTBEAT", 0.1)

    async def scenario(client, fake):
        fake.log("t.stdout.0", b"one\n")
        response = await client.get(f"/v1/client/fs/logs/{ALLOC}?task=t&type=stdout&follow=true")
        assert base64.b64decode(json.loads(await response.content.readline())["Data"]) == b"one\n"
        assert await asyncio.wait_for(response.content.readline(), 2) == b"{}\n"  # idle: a heartbeat
        fake.log("t.stdout.0", b"two\n")
        fake.log("t.stdout.1", b"three\n")  # rotated
        got = []
        while len(got) < 2:
            frame = json.loads(await asyncio.wait_for(response.content.readline(), 2))
            if frame:
                got.append((frame["File"], base64.b64decode(frame["Data"])))
        assert got == [("alloc/logs/t.stdout.0", b"two\n"), ("alloc/logs/t.stdout.1", b"three\n")]
        response.close()  # the caller hangs up: the stream ends within a poll
        for _ in range(100):
            if not client.server.app[STREAMS]:
                break
            await asyncio.sleep(0.02)
        assert not client.server.app[STREAMS]
        plain = await client.get(f"/v1/client/fs/logs/{ALLOC}?task=t&type=stdout&follow=true&plain=true&"
                                 "origin=end&offset=6")
        assert await plain.content.readexactly(6) == b"three\n"
        fake.log("t.stdout.1", b"four\n")
        assert await asyncio.wait_for(plain.content.readexactly(5), 2) == b"four\n"
        for path in sorted((fake.dir / "alloc/logs").iterdir()):
            path.unlink()
        (fake.dir / "alloc/logs").rmdir()  # the allocation was removed: the follower ends
        assert await asyncio.wait_for(plain.content.read(), 2) == b""

    run(tmp_path, scenario)


def test_fs_stream_frames_one_file_and_ends_when_it_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(client_fs, "POLL", 0.02)

    async def scenario(client, fake):
        log = fake.log("app.log", b"0123456789")
        base = f"/v1/client/fs/stream/{ALLOC}?path=alloc/logs/app.log"
        frames = frames_of(await (await client.get(f"{base}&follow=false&offset=4")).read())
        assert frames == [{"Offset": 10, "Data": base64.b64encode(b"456789").decode(), "File": "alloc/logs/app.log"}]
        response = await client.get(f"{base}&origin=end&offset=2")  # follows by default
        assert json.loads(await response.content.readline())["Data"] == base64.b64encode(b"89").decode()
        log.unlink()
        assert json.loads(await asyncio.wait_for(response.content.readline(), 2)) == {
            "Offset": 10, "File": "alloc/logs/app.log", "FileEvent": "file deleted"}
        assert await asyncio.wait_for(response.content.read(), 2) == b""

    run(tmp_path, scenario)


def test_find_closest_walks_files_as_nomad():
    entries = [(3, 10), (4, 10), (5, 4)]
    assert client_fs.find_closest(entries, 0, 0) == (0, 0)
    assert client_fs.find_closest(entries, 0, 15) == (1, 5)
    assert client_fs.find_closest(entries, 0, 100) == (2, 4)
    assert client_fs.find_closest(entries, 1 << 62, -4) == (2, 0)
    assert client_fs.find_closest(entries, 1 << 62, -5) == (1, 9)
    assert client_fs.find_closest(entries, 1 << 62, -100) == (0, 0)
    assert client_fs.find_closest(entries, 4, 0) == (1, 0)


def test_go_file_modes():
    import stat

    assert client_fs.go_file_mode(stat.S_IFDIR | 0o755) == "drwxr-xr-x"
    assert client_fs.go_file_mode(stat.S_IFREG | 0o4755) == "urwxr-xr-x"
    assert client_fs.go_file_mode(stat.S_IFCHR | 0o666) == "Dcrw-rw-rw-"
    assert client_fs.go_file_mode(stat.S_IFLNK | 0o777) == "Lrwxrwxrwx"
    assert client_fs.go_file_mode(stat.S_IFDIR | 0o1777) == "dtrwxrwxrwx"
    assert client_fs.go_time(1_500_000_000_000_000_000)[:4] == "2017"


def test_stats_shapes(tmp_path):
    async def scenario(client, fake):
        stats = await (await client.get(f"/v1/client/allocation/{ALLOC}/stats")).json()
        assert list(stats) == ["ResourceUsage", "Tasks", "Timestamp"] and list(stats["Tasks"]) == ["t"]
        usage = stats["Tasks"]["t"]["ResourceUsage"]
        assert usage["MemoryStats"]["RSS"] > 0 and usage["CpuStats"]["Measured"] == [
            "System Mode", "User Mode", "Percent"]
        assert usage["CpuStats"]["TotalTicks"] == usage["CpuStats"]["Percent"] / 100 * 2000
        assert stats["ResourceUsage"]["MemoryStats"]["RSS"] == usage["MemoryStats"]["RSS"]
        host = await (await client.get("/v1/client/stats?node_id=node-1")).json()
        assert list(host) == ["Memory", "CPU", "DiskStats", "AllocDirStats", "DeviceStats", "Uptime", "Timestamp",
                              "CPUTicksConsumed"]
        assert list(host["Memory"]) == ["Total", "Available", "Used", "Free"] and host["CPU"][0]["CPU"] == "cpu0"
        assert host["AllocDirStats"]["Size"] > 0
        assert await text(client, "/v1/client/stats?node_id=other") == (404, 'Unknown node "other"')

    run(tmp_path, scenario)


def test_signal_and_restart(tmp_path):
    async def scenario(client, fake):
        path = f"/v1/client/allocation/{ALLOC}"
        assert await text(client, f"{path}/signal", "PUT", json={"Task": "t", "Signal": "SIGUSR1"}) == (
            200, '{"Index":0}')
        assert await text(client, f"{path}/signal", "POST", json={"Signal": "usr2"}) == (200, '{"Index":0}')
        assert await text(client, f"{path}/signal", "PUT", json={"Task": "t", "Signal": "SIGNOPE"}) == (
            400, 'unknown signal "SIGNOPE"')
        assert await text(client, f"{path}/signal", "PUT", json={"Task": "idle"}) == (400, "Task not running")
        assert await text(client, f"{path}/signal", "PUT", json={"Task": 3}) == (
            400, "json: cannot unmarshal number into Go struct field AllocSignalRequest.Task of type string")
        assert await text(client, f"{path}/restart", "PUT", json={"TaskName": "nope"}) == (
            400, "Could not find task runner for task: nope")
        assert await text(client, f"{path}/restart", "PUT") == (200, '{"Index":0}')
        assert fake.signals == [(ALLOC, "t", signal.SIGUSR1), (ALLOC, "t", signal.SIGUSR2),
                                (ALLOC, "t", signal.SIGKILL)]

    run(tmp_path, scenario)


def test_methods_other_paths_and_agents_without_a_client(tmp_path):
    async def scenario(client, fake):
        assert await text(client, f"/v1/client/fs/logs/{ALLOC}", "PUT") == (405, "Invalid method")
        assert await text(client, f"/v1/client/allocation/{ALLOC}/signal") == (405, "Invalid method")
        assert await text(client, "/v1/client/nope") == (404, "404 page not found")
        assert (await text(client, "/v1/client/gc"))[0] == 501
        fake.client_node = lambda: None  # a server-only agent
        assert await text(client, "/v1/client/stats") == (501, "no client agent")
        assert await text(client, f"/v1/client/fs/ls/{ALLOC}") == (501, "no client agent")

    run(tmp_path, scenario)
