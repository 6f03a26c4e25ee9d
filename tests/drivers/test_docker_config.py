"""The docker driver's pure parts, without an engine: container arguments from task config, log file rotation."""

from __future__ import annotations

from pathlib import Path

import pytest
from docker_helpers import make_alloc, make_task

from orchestrator.drivers.docker_config import PluginConfig, create_kwargs
from orchestrator.drivers.docker_logs import RotatingWriter, catch_up, epoch_seconds
from orchestrator.structs import NetworkResource, Port
from orchestrator.structs.alloc import AllocatedPortMapping, AllocatedTaskResources

PLUGIN = PluginConfig()


def test_command_args_entrypoint_limits_labels_and_name():
    task = make_task({"command": "sh", "args": ["-c", "true"], "entrypoint": ["/bin/env"], "work_dir": "/tmp",
                      "labels": [{"team": "a"}]}, env={"A": "1"}, memory_mb=64, kill_signal="SIGINT")
    alloc = make_alloc(task)
    kwargs = create_kwargs(alloc, task, PLUGIN, alloc_dir=None)
    assert kwargs["name"] == f"t-{alloc.id}" and kwargs["image"] == "yurt/busybox:1"
    assert kwargs["command"] == ["sh", "-c", "true"] and kwargs["entrypoint"] == ["/bin/env"]
    assert kwargs["working_dir"] == "/tmp" and kwargs["stop_signal"] == "SIGINT"
    assert kwargs["environment"] == {"A": "1"}
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 64 * 1024 * 1024 and kwargs["cpu_shares"] == 100
    assert kwargs["labels"]["team"] == "a" and kwargs["labels"]["com.hashicorp.nomad.alloc_id"] == alloc.id
    assert "ports" not in kwargs and "mem_reservation" not in kwargs


def test_args_without_command_replace_the_images_cmd():
    task = make_task({"args": ["echo", "hi"]})
    assert create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)["command"] == ["echo", "hi"]


def test_allocated_resources_win_and_memory_max_becomes_the_hard_limit():
    task = make_task({}, memory_mb=64)
    alloc = make_alloc(task)
    alloc.allocated_resources.tasks["t"] = AllocatedTaskResources(cpu={"CpuShares": 250},
                                                                  memory={"MemoryMB": 128, "MemoryMaxMB": 256})
    kwargs = create_kwargs(alloc, task, PLUGIN, alloc_dir=None)
    assert kwargs["cpu_shares"] == 250 and kwargs["mem_limit"] == 256 * 1024 * 1024
    assert kwargs["mem_reservation"] == 128 * 1024 * 1024


def test_group_ports_use_to_or_the_host_port_on_tcp_and_udp():
    task = make_task({"ports": ["http", "db"]})
    alloc = make_alloc(task, ports=[AllocatedPortMapping(label="http", value=25000, to=8080, host_ip="10.0.0.5"),
                                    AllocatedPortMapping(label="db", value=6379, to=0, host_ip="10.0.0.5")])
    ports = create_kwargs(alloc, task, PLUGIN, alloc_dir=None)["ports"]
    assert ports == {"8080/tcp": [("10.0.0.5", 25000)], "8080/udp": [("10.0.0.5", 25000)],
                     "6379/tcp": [("10.0.0.5", 6379)], "6379/udp": [("10.0.0.5", 6379)]}


def test_an_unknown_port_label_is_an_error():
    task = make_task({"ports": ["nope"]})
    with pytest.raises(ValueError, match="Port 'nope' not found"):
        create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)


def test_legacy_task_network_ports_go_through_port_map():
    task = make_task({"port_map": [{"db": 6379}]})
    alloc = make_alloc(task)
    net = NetworkResource(ip="127.0.0.1", dynamic_ports=[Port(label="db", value=28646)],
                          reserved_ports=[Port(label="admin", value=9000)])
    alloc.allocated_resources.tasks["t"] = AllocatedTaskResources(networks=[net])
    ports = create_kwargs(alloc, task, PLUGIN, alloc_dir=None)["ports"]
    assert ports["6379/tcp"] == [("127.0.0.1", 28646)] and ports["9000/udp"] == [("127.0.0.1", 9000)]
    bare = make_task({"port_map": {"db": 6379}})
    with pytest.raises(ValueError, match="no network interface"):
        create_kwargs(make_alloc(bare), bare, PLUGIN, alloc_dir=None)


def test_host_network_mode_publishes_nothing():
    task = make_task({"ports": ["http"], "network_mode": "host"})
    alloc = make_alloc(task, ports=[AllocatedPortMapping(label="http", value=25000, to=80)])
    kwargs = create_kwargs(alloc, task, PLUGIN, alloc_dir=None)
    assert kwargs["network_mode"] == "host" and "ports" not in kwargs


def test_volumes_relative_to_the_task_dir_and_absolute_only_when_enabled(tmp_path: Path):
    task = make_task({"volumes": ["data:/data", "/etc/hosts:/h:ro"]})
    alloc = make_alloc(task)
    with pytest.raises(ValueError, match="volumes are not enabled"):
        create_kwargs(alloc, task, PLUGIN, alloc_dir=tmp_path)
    kwargs = create_kwargs(alloc, task, PluginConfig.parse({"volumes": [{"enabled": True}]}), alloc_dir=tmp_path)
    assert kwargs["volumes"][:2] == [f"{tmp_path}/t/data:/data", "/etc/hosts:/h:ro"]
    assert f"{tmp_path}/alloc:/alloc" in kwargs["volumes"] and f"{tmp_path}/t/local:/local" in kwargs["volumes"]
    assert kwargs["environment"]["NOMAD_TASK_DIR"] == "/local" and (tmp_path / "t" / "secrets").is_dir()


def test_mounts_of_each_type():
    task = make_task({"mount": [{"type": "tmpfs", "target": "/scratch", "tmpfs_options": {"size": 1000000}},
                                {"type": "volume", "target": "/v", "source": "vol", "readonly": True}]})
    mounts = create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)["mounts"]
    assert mounts[0]["Type"] == "tmpfs" and mounts[0]["TmpfsOptions"]["SizeBytes"] == 1000000
    assert (mounts[1]["Type"], mounts[1]["Source"], mounts[1]["ReadOnly"]) == ("volume", "vol", True)


def test_unknown_keys_and_privileged_are_refused_but_offline_keys_ignored():
    task = make_task({"imagee": "x"})
    with pytest.raises(ValueError, match="unknown docker config key"):
        create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)
    task = make_task({"privileged": True})
    with pytest.raises(ValueError, match="privileged mode is disabled"):
        create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)
    task = make_task({"auth": {"username": "u"}, "force_pull": True})
    assert create_kwargs(make_alloc(task), task, PLUGIN, alloc_dir=None)["image"] == "yurt/busybox:1"


def test_rotating_writer_rotates_keeps_max_files_and_resumes(tmp_path: Path):
    writer = RotatingWriter(tmp_path, "t.stdout", max_files=2, max_bytes=10)
    writer.write(b"0123456789abcdef")  # fills .0, spills into .1
    writer.write(b"ghijklmnop")  # .1 full at 10 bytes, then .2
    writer.write(b"q")
    writer.close()
    assert writer.indexes() == [1, 2]  # .0 deleted: only the newest two kept
    assert (tmp_path / "t.stdout.1").read_bytes() == b"abcdefghij"
    assert (tmp_path / "t.stdout.2").read_bytes() == b"klmnopq"
    again = RotatingWriter(tmp_path, "t.stdout", max_files=2, max_bytes=10)
    again.write(b"rs")
    again.close()
    assert (tmp_path / "t.stdout.2").read_bytes() == b"klmnopqrs"


def test_catch_up_skips_what_the_file_already_ends_with(tmp_path: Path):
    writer = RotatingWriter(tmp_path, "t.stdout")
    writer.write(b"tick 0\ntick 1\ntick 2\n")
    stamp = b"2026-01-01T00:00:0%d.000000000Z"
    frames = [stamp % 1 + b" tick 1\n", stamp % 2 + b" tick 2\n", stamp % 3 + b" tick 3\n"]
    assert catch_up(frames, writer) == stamp % 3
    assert catch_up([], writer) == b""
    writer.close()
    assert (tmp_path / "t.stdout.0").read_bytes() == b"tick 0\ntick 1\ntick 2\ntick 3\n"
    assert epoch_seconds(b"2026-01-01T00:00:01.500000000Z") == 1767225601.5


def test_config_strings_are_interpolated_with_the_task_environment():
    task = make_task({"args": ["--port", "${NOMAD_PORT_http}", "${unknown}"], "labels": {"id": "${NOMAD_ALLOC_ID}"}})
    alloc = make_alloc(task)
    env = {"NOMAD_PORT_http": "8080", "NOMAD_ALLOC_ID": alloc.id}
    kwargs = create_kwargs(alloc, task, PLUGIN, alloc_dir=None, env=env)
    assert kwargs["command"] == ["--port", "8080", "${unknown}"] and kwargs["labels"]["id"] == alloc.id
    assert kwargs["environment"] == env
    upper = create_kwargs(alloc, task, PLUGIN, alloc_dir=None, env=env, interpolate=lambda text, _env: text.upper())
    assert upper["command"] == ["--PORT", "${NOMAD_PORT_HTTP}", "${UNKNOWN}"]


def test_unreachable_engine_is_described_once():
    from orchestrator.drivers.docker import DockerDriver

    down = DockerDriver({"endpoint": "unix:///nonexistent/docker.sock"}).fingerprint()
    assert not down["detected"] and not down["healthy"]
    description = down["health_description"]
    assert description.startswith("Failed to connect to docker daemon: ")
    assert description.count("Failed to connect to docker daemon") == 1, description
