"""Inventories: the YAML file naming a cluster's hosts and settings, loaded and validated with located errors."""

from __future__ import annotations

import argparse
import functools
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from orchestrator.agent.config import Ports  # the agent's own ports block: same defaults
from orchestrator.jobspec.diagnostics import Collector, Diagnostic, did_you_mean

ROLES = ("server", "client")
TOP_KEYS = ("cluster", "defaults", "hosts", "groups", "known_hosts", "accept_unknown_host_keys")
CLUSTER_KEYS = ("region", "datacenter", "ports", "data_dir", "install_dir", "python", "agent_config", "service")
SERVICE_MODES = ("auto", "systemd", "daemon")
PORT_KEYS = ("http", "rpc", "serf")
DEFAULT_KEYS = ("user", "port", "key")
HOST_KEYS = ("name", "address", "user", "port", "key", "roles", "datacenter", "node_class", "meta", "host_volumes")
VOLUME_KEYS = ("path", "read_only")
# Implicit groups every inventory has; a file may not redefine them or `-g servers` would become ambiguous.
IMPLICIT_GROUPS = ("all", "servers", "clients")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


@dataclass(slots=True)
class HostVolume:
    path: str
    read_only: bool = False


@dataclass(slots=True)
class Cluster:
    region: str = "global"
    datacenter: str = "dc1"
    ports: Ports = field(default_factory=Ports)
    data_dir: str = "/opt/yurt/data"
    install_dir: str = "/opt/yurt"
    python: str = "python3"
    # How agents run: systemd where it runs in the host's own namespaces (auto), always, or a pid-file daemon.
    service: str = "auto"
    # Merged over the generated agent config: a YAML mapping of HCL keys, or HCL text used verbatim.
    agent_config: dict[str, Any] | str = field(default_factory=dict)


@dataclass(slots=True)
class Host:
    name: str
    address: str
    roles: tuple[str, ...]
    datacenter: str
    user: str | None = None  # None: Fabric's default (the local user / ssh_config)
    port: int = 22
    key: str | None = None  # absolute: relative paths are resolved against the inventory's directory
    node_class: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    host_volumes: dict[str, HostVolume] = field(default_factory=dict)
    line: int | None = None

    def ip(self) -> str:
        """The address as an IP: what the agent binds to and advertises (an agent's bind_addr takes no names,
        as Nomad's); a host name is resolved here, once. ValueError when it does not resolve."""
        return resolve_ip(self.address)

    @property
    def is_server(self) -> bool:
        return "server" in self.roles

    @property
    def is_client(self) -> bool:
        return "client" in self.roles


@functools.lru_cache(maxsize=256)
def resolve_ip(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise ValueError(f"host address {address!r} does not resolve: {exc}") from None
    return str(infos[0][4][0])


def hostport(ip: str, port: int) -> str:
    """"ip:port", with an IPv6 address in brackets."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(slots=True)
class Inventory:
    path: str
    cluster: Cluster
    hosts: list[Host]
    groups: dict[str, list[str]] = field(default_factory=dict)
    known_hosts: str | None = None
    accept_unknown_host_keys: bool = False
    warnings: list[Diagnostic] = field(default_factory=list)

    @property
    def servers(self) -> list[Host]:
        return [h for h in self.hosts if h.is_server]

    @property
    def clients(self) -> list[Host]:
        return [h for h in self.hosts if h.is_client]

    @property
    def bootstrap_expect(self) -> int:
        return len(self.servers)

    def host(self, name: str) -> Host:
        return {h.name: h for h in self.hosts}[name]

    def group(self, name: str) -> list[Host]:
        """Hosts of a named group; "all", "servers" and "clients" always exist."""
        implicit = {"all": list(self.hosts), "servers": self.servers, "clients": self.clients}
        return implicit[name] if name in implicit else [self.host(n) for n in self.groups[name]]


def format_diagnostic(d: Diagnostic, severity: str = "") -> str:
    """`file:line:col: field: message`, the form editors and CI annotations jump to."""
    where = d.filename
    if d.line is not None:
        where += f":{d.line}:{d.column}" if d.column is not None else f":{d.line}"
    prefix = f"{d.path}: " if d.path else ""
    return f"{where}: {prefix}{severity + ': ' if severity else ''}{d.message}"


class InventoryError(ValueError):
    """Every problem found in one inventory; str() lists them one per line."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(format_diagnostic(d) for d in self.diagnostics))


_MISSING = object()
_Pair = tuple[yaml.Node, yaml.Node]  # a mapping entry: key node (for "unknown key" marks), value node


def _describe(value: Any) -> str:
    # bool before int: YAML's true is an int to isinstance.
    for kind, word in ((bool, "a boolean"), (int, "an integer"), (float, "a number")):
        if isinstance(value, kind):
            return f"{word} ({str(value).lower() if kind is bool else value})"
    return f'a string ("{value}")' if isinstance(value, str) else "null" if value is None else type(value).__name__


def _node_kind(node: yaml.Node) -> str:
    return {yaml.MappingNode: "a mapping", yaml.SequenceNode: "a list"}.get(type(node), "a scalar")


class _Reader:
    """Walks composed YAML nodes so that every problem keeps the line and column it came from."""

    def __init__(self, filename: str):
        self.collector = Collector(filename)
        self.warnings: list[Diagnostic] = []
        # Only scalars are constructed here, so one loader serves the whole file.
        self._loader = yaml.SafeLoader("")

    def error(self, node: yaml.Node | None, path: str, message: str) -> None:
        self.collector.error(*_position(node), path, message)

    def warn(self, node: yaml.Node | None, path: str, message: str) -> None:
        self.warnings.append(Diagnostic(self.collector.filename, *_position(node), path, message))

    def mapping(self, node: yaml.Node | None, path: str, allowed: Iterable[str] | None) -> dict[str, _Pair]:
        """Keys to (key node, value node); unknown and repeated keys reported. allowed=None takes any key."""
        if node is None:  # an optional section left out
            return {}
        if not isinstance(node, yaml.MappingNode):
            self.error(node, path, f"expected a mapping, got {self.what(node)}")
            return {}
        names = tuple(allowed) if allowed is not None else None
        out: dict[str, _Pair] = {}
        for key_node, value_node in node.value:
            key = self.plain(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.error(key_node, path, f"keys must be strings, got {self.what(key_node)}")
                continue
            where = f"{path}.{key}" if path else key
            if key in out:
                first = out[key][0].start_mark.line + 1
                self.error(key_node, where, f"duplicate key (first at line {first})")
            elif names is not None and key not in names:
                self.error(key_node, where, f'unknown key "{key}"{did_you_mean(key, names)}')
            else:
                out[key] = (key_node, value_node)
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, path, f"expected a list, got {self.what(node)}")
            return []
        return list(node.value)

    def scalar(self, node: yaml.Node, path: str, kind: str) -> Any:
        """A non-empty str, a port or a bool; _MISSING (after reporting) when the node holds something else."""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, path, f"expected {_KIND_WORDS[kind]}, got {_node_kind(node)}")
            return _MISSING
        value = self.plain(node)
        ok = {"str": isinstance(value, str) and value != "", "bool": isinstance(value, bool),
              "port": isinstance(value, int) and not isinstance(value, bool)}[kind]
        if not ok:
            got = "an empty string" if value == "" else _describe(value)
            self.error(node, path, f"expected {_KIND_WORDS[kind]}, got {got}")
            return _MISSING
        if kind == "port" and not 1 <= value <= 65535:
            self.error(node, path, f"port {value} is out of range 1-65535")
            return _MISSING
        return value

    def text_value(self, node: yaml.Node, path: str) -> str | None:
        """Meta values: Nomad keeps strings, so YAML numbers and booleans (`version: 1.2`) are turned back."""
        value = self.plain(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, bool | int | float | str):
            # The source text, not str(value): "1.10" must stay "1.10", not become "1.1"; "true" stays "true".
            return str(value).lower() if isinstance(value, bool) else node.value
        self.error(node, path, f"expected a string, got {self.what(node)}")
        return None

    def plain(self, node: yaml.Node) -> Any:
        """A subtree as Python values (agent_config overrides are left to the agent's own config checks)."""
        return self._loader.construct_object(node, deep=True)

    def what(self, node: yaml.Node) -> str:
        return _describe(self.plain(node)) if isinstance(node, yaml.ScalarNode) else _node_kind(node)


_KIND_WORDS = {"str": "a non-empty string", "port": "a port number", "bool": "a boolean"}


def _position(node: yaml.Node | None) -> tuple[int | None, int | None]:
    # PyYAML's marks count from zero; editors count from one.
    return (None, None) if node is None else (node.start_mark.line + 1, node.start_mark.column + 1)


def _resolve_path(value: str, base_dir: str) -> str:
    # Relative paths follow the inventory, not the caller's working directory, so `fab` works from anywhere.
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))


def _valid_address(value: str) -> bool:
    try:
        return ipaddress.ip_address(value) is not None
    except ValueError:
        return bool(_HOSTNAME.match(value))


def _raw_fields(node: yaml.Node) -> dict[str, yaml.Node]:
    """A mapping node's values by key text, before validation (for names and duplicates next to other errors)."""
    return {k.value: v for k, v in getattr(node, "value", ()) if isinstance(k, yaml.ScalarNode)}


# Checks of a string field's shape beyond its type: (predicate, what is wrong otherwise).
_SHAPES = {"address": (_valid_address, "is neither an IP address nor a host name"),
           "name": (lambda v: bool(_NAME.match(v)), 'is not a valid host name (letters, digits, ".", "_", "-")')}


class _Parser(_Reader):
    """The inventory's schema, over the node reader."""

    def __init__(self, filename: str, base_dir: str, check_files: bool):
        super().__init__(filename)
        self.base_dir = base_dir
        self.check_files = check_files
        self.declared: set[str] = set()  # every host name written, valid or not: groups may name them

    def file_path(self, node: yaml.Node, path: str, what: str) -> str | None:
        value = self.scalar(node, path, "str")
        resolved = None if value is _MISSING else _resolve_path(value, self.base_dir)
        if resolved and self.check_files and not os.path.isfile(resolved):
            self.error(node, path, f"{what} not found: {resolved}")
        return resolved

    def cluster(self, node: yaml.Node | None) -> Cluster:
        """Cluster settings; whatever is left out keeps the defaults of `Cluster`."""
        cluster = Cluster()
        for key, (_, value) in self.mapping(node, "cluster", CLUSTER_KEYS).items():
            where = f"cluster.{key}"
            if key == "ports":
                for port_key, (_, port_node) in self.mapping(value, where, PORT_KEYS).items():
                    port = self.scalar(port_node, f"{where}.{port_key}", "port")
                    if port is not _MISSING:
                        setattr(cluster.ports, port_key, port)
                numbers = [getattr(cluster.ports, k) for k in PORT_KEYS]
                if len(set(numbers)) < len(numbers):
                    self.error(value, where, f"http, rpc and serf need three different ports, got {numbers}")
            elif key == "agent_config":
                plain = self.plain(value)
                if not isinstance(plain, dict | str):
                    self.error(value, where, f"expected a mapping or HCL text, got {self.what(value)}")
                cluster.agent_config = plain if isinstance(plain, dict | str) else {}
            else:
                text = self.scalar(value, where, "str")
                if key == "service" and text is not _MISSING and text not in SERVICE_MODES:
                    hint = did_you_mean(str(text), SERVICE_MODES)
                    self.error(value, where, f"expected one of {', '.join(SERVICE_MODES)}, got {text!r}{hint}")
                elif text is not _MISSING:
                    setattr(cluster, key, text)
        return cluster

    def defaults(self, node: yaml.Node | None) -> dict[str, Any]:
        """SSH settings every host gets unless it sets its own."""
        fields = self.mapping(node, "defaults", DEFAULT_KEYS)
        parsed = {key: self.host_field(key, value, f"defaults.{key}") for key, (_, value) in fields.items()}
        return {key: value for key, value in parsed.items() if value is not _MISSING}

    def host_field(self, key: str, value: yaml.Node, where: str) -> Any:
        if key == "port":
            return self.scalar(value, where, "port")
        if key == "key":
            return self.file_path(value, where, "key file") or _MISSING
        return self.scalar(value, where, "str")

    def roles(self, node: yaml.Node, where: str) -> tuple[str, ...] | None:
        roles: list[str] = []
        items = [node] if isinstance(node, yaml.ScalarNode) else self.sequence(node, where)
        for item in items:
            role = self.scalar(item, where, "str")
            if role in roles:
                self.error(item, where, f'role "{role}" is listed twice')
            elif role is not _MISSING and role not in ROLES:
                self.error(item, where, f'unknown role "{role}"{did_you_mean(role, ROLES)}; roles are server, client')
            elif role is not _MISSING:
                roles.append(role)
        if not items and isinstance(node, yaml.SequenceNode):
            self.error(node, where, "a host needs at least one role (server, client)")
        # None on any problem, so that the host is dropped and the server count is not judged from a typo.
        return tuple(roles) if roles and len(roles) == len(items) else None

    def host_volumes(self, node: yaml.Node, where: str) -> dict[str, HostVolume]:
        volumes: dict[str, HostVolume] = {}
        for name, (_, value) in self.mapping(node, where, None).items():
            at = f"{where}.{name}"
            fields = self.mapping(value, at, VOLUME_KEYS)
            if isinstance(value, yaml.MappingNode) and "path" not in fields:
                self.error(value, at, 'missing "path"')
            path = self.scalar(fields["path"][1], f"{at}.path", "str") if "path" in fields else _MISSING
            flag = fields.get("read_only")
            read_only = self.scalar(flag[1], f"{at}.read_only", "bool") if flag else False
            if path is not _MISSING and read_only is not _MISSING:
                volumes[name] = HostVolume(path, read_only)
        return volumes

    def host(self, node: yaml.Node, index: int, cluster: Cluster, defaults: dict[str, Any]) -> Host | None:
        # Problems are named after the host ("hosts.s2.port") when it has a usable name, so find it first.
        name_node = _raw_fields(node).get("name")
        guess = name_node.value if isinstance(name_node, yaml.ScalarNode) and _NAME.match(name_node.value) else None
        base = f"hosts.{guess}" if guess else f"hosts[{index}]"
        fields = self.mapping(node, base, HOST_KEYS)
        ok = isinstance(node, yaml.MappingNode)
        for required in ("name", "address", "roles") if ok else ():
            if required not in fields:
                self.error(node, base, f'missing "{required}"')
                ok = False
        values: dict[str, Any] = dict(defaults)
        for key, (_, value) in fields.items():
            where = f"{base}.{key}"
            if key == "roles":
                parsed: Any = self.roles(value, where)
            elif key == "meta":
                entries = self.mapping(value, where, None).items()
                texts = {k: self.text_value(v, f"{where}.{k}") for k, (_, v) in entries}
                parsed = {k: text for k, text in texts.items() if text is not None}
            elif key == "host_volumes":
                parsed = self.host_volumes(value, where)
            else:
                parsed = self.host_field(key, value, where)
                valid, problem = _SHAPES.get(key, (None, ""))
                if valid and parsed is not _MISSING and not valid(parsed):
                    self.error(value, where, f'"{parsed}" {problem}')
                    parsed = _MISSING
            if parsed is _MISSING or parsed is None:
                ok = False
            else:
                values[key] = parsed
        values.setdefault("datacenter", cluster.datacenter)
        return Host(line=node.start_mark.line + 1, **values) if ok else None

    def groups(self, node: yaml.Node | None, names: set[str]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, (key_node, value) in self.mapping(node, "groups", None).items():
            where = f"groups.{group}"
            if group in IMPLICIT_GROUPS:
                self.error(key_node, where, f'"{group}" is a built-in group ({", ".join(IMPLICIT_GROUPS)})')
                continue
            if group in names:
                self.error(key_node, where, f'group "{group}" has the name of a host')
            members: list[str] = []
            for item in self.sequence(value, where):
                member = self.scalar(item, where, "str")
                if member is not _MISSING and member not in names:
                    self.error(item, where, f'unknown host "{member}"{did_you_mean(member, names)}')
                elif member is not _MISSING and member not in members:
                    members.append(member)
            groups[group] = members
        return groups

    def inventory(self, root: yaml.Node | None, filename: str) -> Inventory:
        if root is None:
            self.error(None, "", "the inventory is empty")
        section = {key: value for key, (_, value) in self.mapping(root, "", TOP_KEYS).items()}
        cluster = self.cluster(section.get("cluster"))
        defaults = self.defaults(section.get("defaults"))
        hosts = self.host_list(section["hosts"], cluster, defaults) if "hosts" in section else []
        if "hosts" not in section and isinstance(root, yaml.MappingNode):
            self.error(root, "hosts", 'missing "hosts"')
        inventory = Inventory(filename, cluster, hosts)
        inventory.groups = self.groups(section.get("groups"), self.declared)
        if "known_hosts" in section:
            inventory.known_hosts = self.file_path(section["known_hosts"], "known_hosts", "known_hosts file")
        if "accept_unknown_host_keys" in section:
            accept = section["accept_unknown_host_keys"]
            inventory.accept_unknown_host_keys = self.scalar(accept, "accept_unknown_host_keys", "bool") is True
        return inventory

    def host_list(self, node: yaml.Node, cluster: Cluster, defaults: dict[str, Any]) -> list[Host]:
        hosts: list[Host] = []
        # Duplicates are looked for in the raw nodes, so that they are found even next to other errors.
        first: dict[tuple[str, str], yaml.Node] = {}
        items = self.sequence(node, "hosts")
        for index, item in enumerate(items):
            host = self.host(item, index, cluster, defaults)
            fields = _raw_fields(item)
            name = fields["name"].value if isinstance(fields.get("name"), yaml.ScalarNode) else f"[{index}]"
            duplicate = False
            for key, word in (("name", "host name"), ("address", "address")):
                value_node = fields.get(key)
                if not isinstance(value_node, yaml.ScalarNode):
                    continue
                self.declared.update([name] if key == "name" else [])
                seen = first.setdefault((key, value_node.value), value_node)
                if seen is not value_node:
                    message = f'duplicate {word} "{value_node.value}" (first at line {seen.start_mark.line + 1})'
                    self.error(value_node, f"hosts.{name}.{key}", message)
                    duplicate = True
            if host is not None and not duplicate:
                hosts.append(host)
        # Judge the server count only when every host parsed: otherwise a typo in one role would also
        # produce a misleading "no server" or "even number" on top of the real error.
        if len(hosts) == len(items) and isinstance(node, yaml.SequenceNode):
            servers = sum(h.is_server for h in hosts)
            if servers == 0:
                self.error(node, "hosts", 'no host has the "server" role; a cluster needs at least one')
            elif servers % 2 == 0:
                self.warn(node, "hosts", f"{servers} servers: an even number tolerates no more failures than "
                          f"{servers - 1}; use an odd number")
        return hosts


def parse_inventory(text: str, filename: str = "<inventory>", base_dir: str | None = None,
                    check_files: bool = False) -> Inventory:
    """An inventory from YAML text; InventoryError lists every problem, warnings come back on the result."""
    parser = _Parser(filename, base_dir or os.path.dirname(os.path.abspath(filename)), check_files)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (None, None)
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise InventoryError([Diagnostic(filename, line, col, "", f"invalid YAML: {problem}")]) from None
    inventory = parser.inventory(root, filename)
    diagnostics = parser.collector.diagnostics
    if diagnostics:
        raise InventoryError(sorted(diagnostics, key=lambda d: (d.line or 0, d.column or 0)))
    inventory.warnings = parser.warnings
    return inventory


def load_inventory(path: str | os.PathLike[str], check_files: bool = False) -> Inventory:
    """Load and validate an inventory file; check_files=True also requires key and known_hosts files to exist."""
    filename = os.fspath(path)
    try:
        with open(filename, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise InventoryError([Diagnostic(filename, None, None, "", exc.strerror or str(exc))]) from None
    return parse_inventory(text, filename, os.path.dirname(os.path.abspath(filename)), check_files)


def summary(inventory: Inventory) -> str:
    """The one line `validate` prints for a good inventory."""
    counts = {k: len(getattr(inventory, k + "s")) for k in ("host", "server", "client")}
    host, server, client = (f"{n} {k}{'' if n == 1 else 's'}" for k, n in counts.items())
    return (f"{inventory.path}: ok: {host}, {server} (bootstrap_expect {inventory.bootstrap_expect}), {client}, "
            f"region {inventory.cluster.region}, datacenter {inventory.cluster.datacenter}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remote.inventory", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check an inventory and print every problem with its line")
    validate.add_argument("file")
    validate.add_argument("--check-files", action="store_true", help="also require key and known_hosts files")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(args.file, check_files=args.check_files)
    except InventoryError as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in inventory.warnings:
        print(format_diagnostic(warning, "warning"), file=sys.stderr)
    print(summary(inventory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
