"""Rendered agent configs are what the agent itself loads: servers join each other, clients find the servers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orchestrator.agent.config import load_config_files
from remote.inventory import load_inventory, parse_inventory
from remote.render import AGENT_FILE, OVERRIDES_FILE, layout, render_config_files, render_unit, sha256_text, to_hcl

ROOT = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config, _ = load_config_files([str(tmp_path)])
    return config


@pytest.fixture
def lab():
    return load_inventory(ROOT / "inventory" / "lab.yml")


def test_server_only_host(lab, tmp_path):
    files = render_config_files(lab, lab.host("s1"))
    assert list(files) == [AGENT_FILE]
    config = _load(tmp_path, files)
    assert config.name == "s1" and config.bind_addr == "10.250.0.11"
    assert (config.advertise.http, config.advertise.rpc, config.advertise.serf) == ("10.250.0.11",) * 3
    assert config.server.enabled and config.server.bootstrap_expect == 3
    assert config.server.server_join.retry_join == ["10.250.0.11:4648", "10.250.0.12:4648", "10.250.0.13:4648"]
    assert not config.client.enabled and "raw_exec" not in config.plugins
    # The inventory's agent_config mapping is merged in.
    assert config.log_level == "INFO" and config.leave_on_terminate is True
    assert config.data_dir == "/opt/yurt/data"


def test_client_host(lab, tmp_path):
    config = _load(tmp_path, render_config_files(lab, lab.host("s3"), interface="eth0"))
    assert config.client.enabled and config.server.enabled
    assert config.client.servers == ["10.250.0.11:4647", "10.250.0.12:4647", "10.250.0.13:4647"]
    assert config.client.node_class == "worker" and config.client.meta == {"rack": "r2"}
    assert config.client.network_interface == "eth0"
    assert {n: (v.path, v.read_only) for n, v in config.client.host_volumes.items()} == {
        "scratch": ("/opt/yurt/volumes/scratch", False), "shared": ("/opt/yurt/volumes/shared", True)}
    assert config.plugins["raw_exec"].config == {"enabled": True}


def test_mapping_overrides_merge_into_generated_blocks(tmp_path):
    inv = parse_inventory("""
cluster:
  agent_config:
    log_level: DEBUG
    client: {meta: {extra: "1"}, options: {"driver.raw_exec.enable": "1"}}
    server: {server_join: {retry_interval: 5s}}
hosts:
  - {name: a, address: 10.0.0.1, roles: [server, client], meta: {rack: r1}}
""", "inv.yml", base_dir=str(tmp_path))
    config = _load(tmp_path, render_config_files(inv, inv.host("a")))
    assert config.log_level == "DEBUG"
    assert config.client.meta == {"rack": "r1", "extra": "1"}
    assert config.client.options == {"driver.raw_exec.enable": "1"}
    assert config.server.server_join.retry_interval == 5.0
    assert config.server.server_join.retry_join == ["10.0.0.1:4648"]


def test_hcl_overrides_are_a_second_file_the_agent_merges(tmp_path):
    inv = load_inventory(ROOT / "inventory" / "local.yml")
    files = render_config_files(inv, inv.host("local"))
    assert list(files) == [AGENT_FILE, OVERRIDES_FILE]
    config = _load(tmp_path, files)
    assert config.log_level == "DEBUG"
    assert config.client.options == {"driver.raw_exec.enable": "1"} and config.client.enabled


def test_hcl_strings_are_escaped():
    text = to_hcl({"name": 'a "b" ${c}', "meta": {"x.y": "1"}, "list": ["p", 2, True]})
    assert 'name = "a \\"b\\" $${c}"' in text
    assert 'meta = { "x.y" = "1" }' in text
    assert 'list = ["p", 2, true]' in text


def test_unit_runs_the_venv_agent_on_the_config_dir(lab):
    unit = render_unit(layout(lab))
    assert "ExecStart=/opt/yurt/venv/bin/yurt agent -config /opt/yurt/config" in unit
    assert "StandardOutput=append:/opt/yurt/logs/agent.log" in unit
    assert "Restart=on-failure" in unit and "KillSignal=SIGINT" in unit


def test_rendering_is_deterministic(lab):
    # Idempotence rests on this: the same inventory gives byte-identical files, so hashes match on the host.
    first = render_config_files(lab, lab.host("s2"), "eth0")
    assert first == render_config_files(load_inventory(ROOT / "inventory" / "lab.yml"), lab.host("s2"), "eth0")
    assert sha256_text(first[AGENT_FILE]) == hashlib.sha256(first[AGENT_FILE].encode()).hexdigest()
    # Nor does how the inventory's path was spelled: `./inventory/lab.yml` is the same inventory.
    spelled = load_inventory(f"{ROOT}/inventory/./lab.yml")
    assert render_config_files(spelled, spelled.host("s2"), "eth0") == first


def test_host_names_are_rendered_as_ips_and_ipv6_in_brackets(tmp_path):
    # The agent binds to an IP only (as Nomad's bind_addr); a host name is resolved when rendering.
    text = ("hosts:\n  - {name: a, address: localhost, roles: [server]}\n"
            "  - {name: b, address: '::1', roles: [server, client]}\n")
    inventory = parse_inventory(text, "inv.yml", str(tmp_path))
    config = " ".join(render_config_files(inventory, inventory.host("a"))[AGENT_FILE].split())  # unpadded
    assert 'bind_addr = "127.0.0.1"' in config or 'bind_addr = "::1"' in config
    assert '"[::1]:4648"' in config
    client = " ".join(render_config_files(inventory, inventory.host("b"))[AGENT_FILE].split())
    assert '"[::1]:4647"' in client and 'bind_addr = "::1"' in client
