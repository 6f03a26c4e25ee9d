"""The java driver on an event loop: a class compiled here runs (isolated as root) and its output is logged."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_exec_driver import ALLOC_ID, Bench, host_mounts_under, leftover_cgroups

from orchestrator.client.task_driver import DriverError
from orchestrator.drivers.java import JavaDriver, parse_java_version

pytestmark = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("jar") is None,
                                reason="no JDK (javac, jar) on this machine")

HELLO = """
public class Hello {
    public static void main(String[] args) throws Exception {
        long heap = Runtime.getRuntime().maxMemory() >> 20;
        System.out.println("hello " + String.join(",", args) + " from " + System.getProperty("user.name")
                           + " in " + System.getenv("NOMAD_TASK_DIR") + " heap<=" + heap);
        System.err.println("to stderr " + System.getProperty("greeting"));
        System.exit(args.length);
    }
}
"""


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Hello.class and hello.jar (Main-Class: Hello), compiled once."""
    out = tmp_path_factory.mktemp("java")
    (out / "Hello.java").write_text(HELLO)
    subprocess.run(["javac", "-d", str(out), str(out / "Hello.java")], check=True)
    subprocess.run(["jar", "cfe", str(out / "hello.jar"), "Hello", "-C", str(out), "Hello.class"], check=True)
    return out


def test_parse_java_version_reads_nomads_attributes():
    text = ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n'
            'OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n')
    assert parse_java_version(text) == {
        "driver.java": "true", "driver.java.version": "17.0.15",
        "driver.java.runtime": "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)",
        "driver.java.vm": "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)"}
    with pytest.raises(ValueError):
        parse_java_version("bash: java: command not found")


def test_java_runs_a_class_and_a_jar_and_logs_their_output(tmp_path, classes, cgroup_parent):
    async def run():
        bench = Bench(tmp_path, asyncio.get_running_loop(), JavaDriver, {"cgroup_parent": cgroup_parent})
        info = bench.drivers.fingerprint()[0]["java"]
        assert info.healthy and info.attributes["driver.java.version"].split(".")[0] == "17"
        with pytest.raises(DriverError, match="jar_path"):
            bench.start({"args": ["x"]})
        local = tmp_path / ALLOC_ID / "t" / "local"
        local.mkdir(parents=True)
        shutil.copy(classes / "Hello.class", local)
        shutil.copy(classes / "hello.jar", local)
        bench.start({"class": "Hello", "class_path": "local", "args": ["a", "${NOMAD_TASK_NAME}"],
                     "jvm_options": ["-Xmx48m", "-Dgreeting=hi"]}, Resources={"CPU": 500, "MemoryMB": 256})
        result = await bench.exit(30.0)
        assert (result.exit_code, result.signal) == (2, 0), bench.logs("stderr")
        user, task_dir = ("nobody", "/local") if bench.driver.isolated else (os.environ.get("USER", ""), str(local))
        assert bench.logs("stdout").startswith(f"hello a,t from {user} in {task_dir} heap<=")
        assert bench.logs("stderr") == "to stderr hi\n"
        bench.start({"jar_path": "local/hello.jar"}, Resources={"CPU": 500, "MemoryMB": 256})
        result = await bench.exit(30.0)
        assert (result.exit_code, result.failed) == (0, False), bench.logs("stderr")
        assert bench.logs("stdout").count("hello ") == 2
        await bench.drivers.shutdown(kill=True)
        assert not leftover_cgroups(bench.driver) and host_mounts_under(tmp_path) == []

    asyncio.run(run())
