"""Inventories: the examples load, every problem is reported with its file, line, column and field."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from remote.inventory import InventoryError, load_inventory, main, parse_inventory

ROOT = Path(__file__).resolve().parents[2]

GOOD = """\
cluster:
  region: west
  datacenter: dc2
  ports: {http: 5646, rpc: 5647, serf: 5648}
defaults:
  user: yurt
  key: keys/id
hosts:
  - name: a
    address: 10.0.0.1
    roles: [server]
  - name: b
    address: 10.0.0.2
    roles: [server, client]
    datacenter: dc3
    port: 2222
    node_class: big
    meta: {version: 1.10, gpu: true, rack: r1}
    host_volumes:
      data: {path: /srv/data}
      logs: {path: /var/log, read_only: true}
  - name: c
    address: c.example.org
    roles: client
groups:
  edge: [b, c]
"""


def errors(text: str, **kwargs) -> list[str]:
    with pytest.raises(InventoryError) as info:
        parse_inventory(textwrap.dedent(text), "inv.yml", base_dir="/base", **kwargs)
    assert str(info.value) == "\n".join(lines(info.value))
    return lines(info.value)


def lines(exc: InventoryError) -> list[str]:
    return str(exc).splitlines()


def test_examples_load():
    lab = load_inventory(ROOT / "inventory" / "lab.yml")
    assert [(h.name, h.address) for h in lab.hosts] == [("s1", "10.250.0.11"), ("s2", "10.250.0.12"),
                                                        ("s3", "10.250.0.13")]
    assert [h.name for h in lab.servers] == ["s1", "s2", "s3"]
    assert [h.name for h in lab.clients] == ["s2", "s3"]
    assert lab.bootstrap_expect == 3 and lab.warnings == []
    # The key follows the inventory file, wherever pytest or fab is started from.
    assert lab.hosts[0].key == str(ROOT / "inventory" / ".lab" / "yurt_lab")
    assert lab.known_hosts == str(ROOT / "inventory" / ".lab" / "known_hosts")
    assert lab.accept_unknown_host_keys is False

    local = load_inventory(ROOT / "inventory" / "local.yml")
    assert local.bootstrap_expect == 1 and local.clients == local.servers == local.hosts
    assert isinstance(local.cluster.agent_config, str) and "raw_exec" in local.cluster.agent_config


def test_parsed_fields_and_derived():
    inv = parse_inventory(GOOD, "inv.yml", base_dir="/base")
    assert inv.cluster.region == "west" and inv.cluster.ports.rpc == 5647
    assert inv.cluster.install_dir == "/opt/yurt"  # default kept
    a, b, c = inv.hosts
    assert (a.user, a.port, a.key, a.datacenter) == ("yurt", 22, "/base/keys/id", "dc2")
    assert (b.port, b.datacenter, b.node_class) == (2222, "dc3", "big")
    # Meta keeps the text as written: Nomad's meta are strings and 1.10 is not 1.1.
    assert b.meta == {"version": "1.10", "gpu": "true", "rack": "r1"}
    assert b.host_volumes["data"].path == "/srv/data" and not b.host_volumes["data"].read_only
    assert b.host_volumes["logs"].read_only
    assert c.roles == ("client",)
    assert [h.name for h in inv.servers] == ["a", "b"] and [h.name for h in inv.clients] == ["b", "c"]
    assert inv.bootstrap_expect == 2
    assert [h.name for h in inv.group("edge")] == ["b", "c"]
    assert inv.group("all") == inv.hosts and inv.group("servers") == inv.servers
    assert inv.host("b") is b


def test_even_servers_is_a_warning_not_an_error():
    inv = parse_inventory(GOOD, "inv.yml", base_dir="/base")
    [warning] = inv.warnings
    assert (warning.line, warning.column, warning.path) == (9, 3, "hosts")
    assert "2 servers" in warning.message and "odd" in warning.message


@pytest.mark.parametrize(("text", "expected"), [
    ("hosts:\n  - name: a\n    roles: [server]\n",
     'inv.yml:2:5: hosts.a: missing "address"'),
    ("hosts:\n  - name: a\n    address: 10.0.0.1\n    roles: [server, sever]\n",
     'inv.yml:4:21: hosts.a.roles: unknown role "sever"; did you mean "server"?; roles are server, client'),
    ("hosts:\n  - name: a\n    adress: 10.0.0.1\n    roles: [server]\n",
     'inv.yml:3:5: hosts.a.adress: unknown key "adress"; did you mean "address"?'),
    ("clustr: {}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:1:1: clustr: unknown key "clustr"; did you mean "cluster"?'),
    ("hosts:\n  - name: a\n    address: 10.0.0.1\n    port: ssh\n    roles: [server]\n",
     'inv.yml:4:11: hosts.a.port: expected a port number, got a string ("ssh")'),
    ("hosts:\n  - name: a\n    address: 10.0.0.1\n    port: 70000\n    roles: [server]\n",
     "inv.yml:4:11: hosts.a.port: port 70000 is out of range 1-65535"),
    ("cluster:\n  region: [a]\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     "inv.yml:2:11: cluster.region: expected a non-empty string, got a list"),
    ("accept_unknown_host_keys: yes please\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:1:27: accept_unknown_host_keys: expected a boolean, got a string ("yes please")'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n  - {name: a, address: 10.0.0.2, roles: [client]}\n",
     'inv.yml:3:12: hosts.a.name: duplicate host name "a" (first at line 2)'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n  - {name: b, address: 10.0.0.1, roles: [client]}\n",
     'inv.yml:3:24: hosts.b.address: duplicate address "10.0.0.1" (first at line 2)'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\ngroups:\n  g: [a, b]\n",
     'inv.yml:4:10: groups.g: unknown host "b"'),
    ("hosts:\n  - {name: ab, address: 10.0.0.1, roles: [server]}\ngroups:\n  g: [abc]\n",
     'inv.yml:4:7: groups.g: unknown host "abc"; did you mean "ab"?'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [client]}\n",
     'inv.yml:2:3: hosts: no host has the "server" role; a cluster needs at least one'),
    ("hosts:\n  - {name: a, address: 'bad host', roles: [server]}\n",
     'inv.yml:2:24: hosts.a.address: "bad host" is neither an IP address nor a host name'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: []}\n",
     "inv.yml:2:41: hosts.a.roles: a host needs at least one role (server, client)"),
    ("hosts:\n  - {name: a, address: 10.0.0.1, address: 10.0.0.2, roles: [server]}\n",
     "inv.yml:2:34: hosts.a.address: duplicate key (first at line 2)"),
    ("cluster:\n  ports: {http: 4646, rpc: 4646}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     "inv.yml:2:10: cluster.ports: http, rpc and serf need three different ports, got [4646, 4646, 4648]"),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\ngroups:\n  servers: [a]\n",
     'inv.yml:4:3: groups.servers: "servers" is a built-in group (all, servers, clients)'),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server], host_volumes: {v: {read_only: true}}}\n",
     'inv.yml:2:69: hosts.a.host_volumes.v: missing "path"'),
    ("hosts:\n  - {name: 'a b', address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:2:12: hosts[0].name: "a b" is not a valid host name'),
    ("hosts:\n  - {address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:2:5: hosts[0]: missing "name"'),
    ("hosts: {a: 10.0.0.1}\n",
     "inv.yml:1:8: hosts: expected a list, got a mapping"),
    ("cluster:\n  agent_config: [1]\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     "inv.yml:2:17: cluster.agent_config: expected a mapping or HCL text, got a list"),
    ("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server], meta: {k: [1]}}\n",
     "inv.yml:2:61: hosts.a.meta.k: expected a string, got a list"),
    ("defaults: {usr: root}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:1:12: defaults.usr: unknown key "usr"; did you mean "user"?'),
    ("cluster: {service: sysd}\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n",
     'inv.yml:1:20: cluster.service: expected one of auto, systemd, daemon, got \'sysd\'; did you mean "systemd"?'),
    ("hosts: [\n", "inv.yml:2:1: invalid YAML"),
    ("", 'inv.yml: the inventory is empty'),
    ("cluster: {}\n", 'inv.yml:1:1: hosts: missing "hosts"'),
])
def test_each_problem_is_located(text, expected):
    found = errors(text)
    # One problem per case, except where a typo also leaves a required key missing (reported too).
    assert len(found) == 1 or "did you mean" in expected, found
    assert any(line.startswith(expected) for line in found), found


def test_missing_files_are_checked_only_when_asked(tmp_path):
    text = "known_hosts: kh\nhosts:\n  - {name: a, address: 10.0.0.1, roles: [server], key: id_a}\n"
    inv = parse_inventory(text, "inv.yml", base_dir=str(tmp_path))
    assert inv.hosts[0].key == str(tmp_path / "id_a")
    found = errors(text.replace("/base", ""), check_files=True)
    assert found == ["inv.yml:1:14: known_hosts: known_hosts file not found: /base/kh",
                     "inv.yml:3:56: hosts.a.key: key file not found: /base/id_a"]
    (tmp_path / "id_a").write_text("key")
    (tmp_path / "kh").write_text("")
    path = tmp_path / "inv.yml"
    path.write_text(text)
    assert load_inventory(path, check_files=True).hosts[0].key == str(tmp_path / "id_a")


def test_home_is_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/u")
    inv = parse_inventory("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server], key: ~/.ssh/k}\n", "i.yml",
                          base_dir="/base")
    assert inv.hosts[0].key == "/home/u/.ssh/k"


def test_every_problem_of_a_file_at_once_in_line_order():
    text = """\
    cluster:
      regoin: west
    hosts:
      - name: a
        roles: [server]
      - name: b
        address: 10.0.0.2
        roles: [clinet]
      - name: c
        address: 10.0.0.2
        roles: [server]
    groups:
      g: [a, d]
    """
    found = errors(text)
    assert found == [
        'inv.yml:2:3: cluster.regoin: unknown key "regoin"; did you mean "region"?',
        'inv.yml:4:5: hosts.a: missing "address"',
        'inv.yml:8:13: hosts.b.roles: unknown role "clinet"; did you mean "client"?; roles are server, client',
        'inv.yml:10:14: hosts.c.address: duplicate address "10.0.0.2" (first at line 7)',
        'inv.yml:13:10: groups.g: unknown host "d"',
    ]
    with pytest.raises(InventoryError) as info:
        parse_inventory(textwrap.dedent(text), "inv.yml")
    assert [(d.line, d.column) for d in info.value.diagnostics] == [(2, 3), (4, 5), (8, 13), (10, 14), (13, 10)]


def test_unreadable_file(tmp_path):
    with pytest.raises(InventoryError, match=r"nope\.yml"):
        load_inventory(tmp_path / "nope.yml")


def test_validate_command(tmp_path, capsys):
    assert main(["validate", os.path.join(ROOT, "inventory", "lab.yml")]) == 0
    out = capsys.readouterr().out
    assert "ok: 3 hosts, 3 servers (bootstrap_expect 3), 2 clients" in out

    bad = tmp_path / "bad.yml"
    bad.write_text("hosts:\n  - {name: a, roles: [server]}\n")
    assert main(["validate", str(bad)]) == 1
    assert f'{bad}:2:5: hosts.a: missing "address"' in capsys.readouterr().err

    even = tmp_path / "even.yml"
    even.write_text("hosts:\n  - {name: a, address: 10.0.0.1, roles: [server]}\n"
                    "  - {name: b, address: 10.0.0.2, roles: [server]}\n")
    assert main(["validate", str(even)]) == 0
    captured = capsys.readouterr()
    assert "2:3: hosts: warning: 2 servers" in captured.err and "ok: 2 hosts" in captured.out
