"""`yurt agent` flags parsed as Nomad's (Go's flag package), and the agent configuration built from them."""

from __future__ import annotations

import binascii
import ipaddress
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from orchestrator.structs.timefmt import NS, parse_duration

from .config import (
    LOG_LEVELS,
    AgentConfig,
    ConfigError,
    apply_layer,
    dev_config,
    is_acted_on,
    join_host_port,
    load_config_files,
)

AGENT_HELP = """Usage: yurt agent [options]

  Starts the yurt agent and runs until an interrupt is received.
  The agent may be a client and/or server.

  The agent's configuration mostly comes from the config files given with
  -config; a subset of it can be set with the flags below, which override
  the files.

General Options (clients and servers):

  -bind=<addr>         Address all of the agent's services bind to.
  -config=<path>       A config file, or a directory of .hcl and .json files
                       (merged in lexical order). May be repeated; later
                       files override earlier ones.
  -data-dir=<path>     Where the agent keeps its state.
  -plugin-dir=<path>   Where plugins are looked up (<data-dir>/plugins).
  -dc=<datacenter>     The agent's datacenter. Defaults to "dc1".
  -log-level=<level>   TRACE, DEBUG, INFO, WARN or ERR. Defaults to INFO.
  -log-json            Write logs as JSON.
  -node=<name>         This agent's name, unique in its region. Defaults to
                       the host name.
  -region=<region>     The agent's region. Defaults to "global".
  -dev                 Development mode: a server and a client in one
                       process on 127.0.0.1, state in memory, raw_exec on.
  -dev-connect         -dev bound to 0.0.0.0 (Linux, root only).

Server Options:

  -server              Run a server.
  -bootstrap-expect=<num>
                       Servers to wait for before electing a leader.
  -encrypt=<key>       Gossip encryption key.
  -join=<address>      A server to join at start. May be repeated.
  -raft-protocol=<num> The Raft protocol version.
  -retry-join=<address>
                       A server to join, retrying until it answers. May be
                       repeated.
  -retry-max=<num>     Join attempts before giving up; 0 retries forever.
  -retry-interval=<dur>
                       Time between join attempts.
  -rejoin              Rejoin the cluster after leaving it.

Client Options:

  -client              Run a client.
  -state-dir=<path>    Where the client keeps its state.
  -alloc-dir=<path>    Where allocations' directories are made.
  -servers=<list>      Servers to register with, "host:port" separated by
                       commas.
  -node-class=<class>  The node's class.
  -meta=<key=value>    Node metadata. May be repeated.
  -network-interface=<name>
                       The interface to fingerprint.
  -network-speed=<mbits>
                       Link speed when it cannot be detected.

ACL, Consul and Vault Options (accepted, not acted on yet):

  -acl-enabled, -acl-replication-token=<token>, -consul-<key>=<value> and
  -vault-<key>=<value> as in Nomad, for example -consul-address=<addr>."""

# flag -> (kind, target): a dotted config key, or "@name" for what is not configuration.
_FLAGS: dict[str, tuple[str, str]] = {
    "dev": ("bool", "@dev"), "dev-connect": ("bool", "@dev_connect"), "config": ("list", "@config"),
    "server": ("bool", "server.enabled"), "client": ("bool", "client.enabled"),
    "bootstrap-expect": ("int", "server.bootstrap_expect"), "encrypt": ("str", "server.encrypt"),
    "raft-protocol": ("int", "server.raft_protocol"), "rejoin": ("bool", "server.rejoin_after_leave"),
    "join": ("list", "server.server_join.start_join"), "retry-join": ("list", "server.server_join.retry_join"),
    "retry-max": ("int", "server.server_join.retry_max"),
    "retry-interval": ("dur", "server.server_join.retry_interval"),
    "state-dir": ("str", "client.state_dir"), "alloc-dir": ("str", "client.alloc_dir"),
    "node-class": ("str", "client.node_class"), "servers": ("csv", "client.servers"), "meta": ("list", "@meta"),
    "network-interface": ("str", "client.network_interface"), "network-speed": ("int", "client.network_speed"),
    "bind": ("str", "bind_addr"), "region": ("str", "region"), "data-dir": ("str", "data_dir"),
    "plugin-dir": ("str", "plugin_dir"), "dc": ("str", "datacenter"), "log-level": ("str", "log_level"),
    "log-json": ("bool", "log_json"), "node": ("str", "name"),
    "acl-enabled": ("bool", "acl.enabled"), "acl-replication-token": ("str", "acl.replication_token"),
}
# Nomad's Consul and Vault flags: strings, and booleans that apply even when false (its FuncBoolVar).
for _block, _strings, _bools in (
    ("consul", "address auth ca-file cert-file key-file client-service-name client-http-check-name "
               "server-service-name server-http-check-name server-serf-check-name server-rpc-check-name token",
     "auto-advertise checks-use-advertise client-auto-join server-auto-join ssl verify-ssl allow-unauthenticated"),
    ("vault", "token address namespace create-from-role ca-file ca-path cert-file key-file tls-server-name",
     "enabled allow-unauthenticated tls-skip-verify"),
):
    for _kind, _names in (("str", _strings), ("bool", _bools)):
        _FLAGS.update({f"{_block}-{n}": (_kind, f"{_block}.{n.replace('-', '_')}") for n in _names.split()})

_GO_BOOLS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
             "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


class FlagError(Exception):
    """A command line Nomad refuses. `output` is what to write to stderr, then exit with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    @property
    def output(self) -> str:
        if self.exit_code == 0:
            return AGENT_HELP + "\n"  # -help: the help alone, and success
        # Go's flag package prints the error; Nomad's usage then goes through its "==> " error prefix.
        return f"{self.message}\n==> {AGENT_HELP}\n"


@dataclass(slots=True)
class AgentFlags:
    dev: bool = False
    dev_connect: bool = False
    config_paths: list[str] = field(default_factory=list)
    layer: dict[str, Any] = field(default_factory=dict)  # merged over the config files
    warnings: list[str] = field(default_factory=list)


def parse_agent_flags(argv: list[str]) -> AgentFlags:
    """Single or double dash, `-flag value` or `-flag=value`; parsing stops at the first argument that is
    not a flag, or after "--", as Go's does. FlagError for anything Nomad would refuse."""
    end = argv.index("--") if "--" in argv else len(argv)
    if any(arg in ("-h", "-help", "--help") for arg in argv[:end]):
        raise FlagError("", exit_code=0)
    values: dict[str, Any] = {}
    args = list(argv)
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        args.pop(0)
        if arg == "--":
            break
        name = arg[2:] if arg[1] == "-" else arg[1:]
        if not name or name[0] in "-=":
            raise FlagError(f"bad flag syntax: {arg}")
        name, has_value, value = name.partition("=")
        if name not in _FLAGS:
            raise FlagError(f"flag provided but not defined: -{name}")
        kind, target = _FLAGS[name]
        if kind == "bool":
            if has_value and value not in _GO_BOOLS:
                raise FlagError(f'invalid boolean value "{value}" for -{name}: parse error')
            values[target] = _GO_BOOLS[value] if has_value else True
            continue
        if not has_value:
            if not args:
                raise FlagError(f"flag needs an argument: -{name}")
            value = args.pop(0)
        try:
            parsed = _parse_value(kind, value)
        except ValueError as exc:
            raise FlagError(f'invalid value "{value}" for flag -{name}: {exc}') from None
        values[target] = [*values.get(target, []), parsed] if kind == "list" else parsed
    flags = AgentFlags(dev=values.pop("@dev", False), dev_connect=values.pop("@dev_connect", False),
                       config_paths=values.pop("@config", []))
    if args:
        flags.warnings.append(f"ignoring arguments after the flags: {' '.join(args)}")
    for kv in values.pop("@meta", []):
        key, has_value, value = kv.partition("=")
        if not has_value:
            raise ConfigError(f"Error parsing Client.Meta value: {kv}")
        values.setdefault("client.meta", {})[key] = value
    for target, value in values.items():
        *parents, last = target.split(".")
        node = flags.layer
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
        if not is_acted_on(target):
            flag = next(n for n, (_, t) in _FLAGS.items() if t == target)
            flags.warnings.append(f'flag -{flag}: "{target}" is accepted but not acted on yet')
    return flags


def _parse_value(kind: str, value: str) -> Any:
    if kind == "int":
        # Go's strconv.ParseInt(s, 0, 64) reads 0x, 0o, 0b and underscores as Python's int(s, 0) does,
        # and also a leading 0 as octal, which Python refuses.
        octal = re.fullmatch(r"[+-]?0[0-7]+", value)
        try:
            number = int(value, 8) if octal else int(value, 0)
        except ValueError:
            raise ValueError("parse error") from None
        if not -(2**63) <= number < 2**63:
            raise ValueError("value out of range")
        return number
    if kind == "dur":
        try:
            return parse_duration(value) / NS
        except ValueError as exc:
            unit = "missing unit in" if "missing unit" in str(exc) else "invalid"
            raise ValueError(f'time: {unit} duration "{value}"') from None
    if kind == "csv":
        return value.split(",")
    return value


# ---- building the configuration: Nomad's readConfig --------------------------------------------------


def build_agent_config(argv: list[str]) -> tuple[AgentConfig, list[str]]:
    """-dev defaults (or Nomad's), then the -config files in order, then the flags; addresses resolved and
    the result checked as Nomad checks it. FlagError for a bad command line, ConfigError for a bad
    configuration (print it after "==> " and exit 1). Warnings carry no prefix: print each after "==> WARNING: "."""
    flags = parse_agent_flags(argv)
    warnings = list(flags.warnings)
    dev = flags.dev or flags.dev_connect
    base = dev_config() if dev else AgentConfig()
    if flags.dev_connect:
        if not sys.platform.startswith("linux"):
            raise ConfigError("-dev-connect is only supported on linux.")
        if os.geteuid() != 0:
            raise ConfigError("-dev-connect uses network namespaces and is only supported for root.")
        base.bind_addr = "0.0.0.0"
        base.client.network_interface = ""
        warnings.append('flag -dev-connect: Consul Connect is not supported by yurt yet; binding to "0.0.0.0"')
    config, found = load_config_files(flags.config_paths, base)
    warnings.extend(found)
    apply_layer(config, flags.layer)
    config.name = config.name or socket.gethostname()
    if config.log_level.upper() not in LOG_LEVELS:
        levels = " ".join(LOG_LEVELS[:5])
        raise ConfigError(f"Invalid log level: {config.log_level.upper()}. Valid log levels are: [{levels}]")
    _absolute_dirs(config, warnings)
    if config.data_dir and not config.plugin_dir:
        config.plugin_dir = os.path.join(config.data_dir, "plugins")
    if not dev:
        _validate(config, warnings)
    normalize_addresses(config)
    return config, warnings


def _validate(config: AgentConfig, warnings: list[str]) -> None:
    """Nomad's checks outside -dev, in its order and words."""
    server = config.server
    if server.encrypt:
        bad = _base64_problem(server.encrypt)
        if bad:
            raise ConfigError(f"Invalid encryption key: {bad}")
    if not (server.enabled or config.client.enabled):
        raise ConfigError("Must specify either server, client or dev mode for the agent.")
    if server.enabled and not config.data_dir:
        raise ConfigError("Must specify data directory")
    if config.client.enabled and not config.data_dir and not (config.client.alloc_dir and config.client.state_dir):
        raise ConfigError("Must specify both the state and alloc dir if data-dir is omitted.")
    if server.bootstrap_expect > 0 and not server.enabled:
        raise ConfigError("Bootstrap requires server mode to be enabled")
    if server.enabled and server.bootstrap_expect == 1:
        warnings.append("Bootstrap mode enabled! Potentially unsafe operation.")
    elif server.enabled and server.bootstrap_expect % 2 == 0 and server.bootstrap_expect:
        warnings.append("Number of bootstrap servers should ideally be set to an odd number.")
    elif server.enabled and server.bootstrap_expect == 0:
        # Nomad would wait for an operator to bootstrap; yurt's server has no such state and starts alone.
        warnings.append('"server.bootstrap_expect" is not set: this server bootstraps by itself')


def _base64_problem(key: str) -> str:
    try:
        binascii.a2b_base64(key.encode(), strict_mode=True)
    except (binascii.Error, ValueError):
        at = next((i for i, ch in enumerate(key) if not re.match(r"[A-Za-z0-9+/=]", ch)), len(key))
        return f"illegal base64 data at input byte {at}"
    return ""


def _absolute_dirs(config: AgentConfig, warnings: list[str]) -> None:
    # Nomad refuses relative directories; yurt resolves them against the working directory instead, so
    # the reference cluster configs (data_dir = "./data/s1") run as they are, and says so.
    for owner, key, label in ((config, "data_dir", "data-dir"), (config, "plugin_dir", "plugin-dir"),
                              (config.client, "alloc_dir", "alloc-dir"), (config.client, "state_dir", "state-dir")):
        path = getattr(owner, key)
        if path and not os.path.isabs(path):
            setattr(owner, key, os.path.abspath(path))
            warnings.append(f"{label} {path!r} is relative; using {getattr(owner, key)}")


# ---- addresses: Nomad's normalizeAddrs -------------------------------------------------------------------

_LABELS = {"http": "HTTP", "rpc": "RPC", "serf": "Serf"}


def normalize_addresses(config: AgentConfig) -> None:
    """Fill `addresses` with each service's bind IP and `advertise` with each "ip:port" to advertise, as
    Nomad does before it starts anything; ConfigError in Nomad's words when an address will not do."""
    config.bind_addr = _ip(config.bind_addr, "Bind address resolution failed")
    for service, label in _LABELS.items():
        given = getattr(config.addresses, service)
        setattr(config.addresses, service, _ip(given, f"Failed to parse {label} address") if given else
                config.bind_addr)
    # Serf is only advertised by servers.
    for service in ("http", "rpc", "serf") if config.server.enabled else ("http", "rpc"):
        setattr(config.advertise, service, _advertise(config, service))


def _ip(text: str, problem: str) -> str:
    if "{{" in text:
        raise ConfigError(f'{problem}: yurt does not evaluate go-sockaddr templates ("{text}") yet')
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise ConfigError(f'{problem}: "{text}" is not an IP address') from None


def _advertise(config: AgentConfig, service: str) -> str:
    label = _LABELS[service]
    port = getattr(config.ports, service)
    given = getattr(config.advertise, service)
    if "{{" in given:
        raise ConfigError(f"Failed to parse {label} advertise address: yurt does not evaluate go-sockaddr "
                          f'templates ("{given}") yet')
    if given:
        # A port may be given ("1.2.3.4:5648", "[::1]:4647"); otherwise the service's own port is added.
        if re.fullmatch(r"\[.*\]:\d+|[^:]*:\d+", given):
            return given
        return join_host_port(given.strip("[]"), port)
    bind = getattr(config.addresses, service)
    ip = ipaddress.ip_address(bind)
    if ip.is_loopback and not config.dev_mode:
        reason = "Defaulting advertise to localhost is unsafe, please set advertise manually"
        detail = f" ({given}, {bind}, {port}, false)" if service == "http" else ""  # as Nomad's HTTP message
        raise ConfigError(f"Failed to parse {label} advertise address{detail}: {reason}")
    if ip.is_unspecified or ip.is_multicast:
        return join_host_port(private_ip(), port)
    return join_host_port(bind, port)


def private_ip() -> str:
    """This machine's private IP on its default route (go-sockaddr's GetPrivateIP)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))  # a UDP connect sends nothing: it only picks the route
            candidate = ipaddress.ip_address(sock.getsockname()[0])
        except OSError:
            candidate = ipaddress.ip_address("127.0.0.1")
    if candidate.is_private and not candidate.is_loopback and not candidate.is_link_local:
        return str(candidate)
    raise ConfigError("No private IP address found, and explicit IP not provided")
