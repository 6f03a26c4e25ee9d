"""What a host runs, rendered from the inventory: the agent's HCL config, its systemd unit, and the file layout."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from remote.inventory import Host, Inventory, hostport

# Blocks that carry a label in HCL (`host_volume "scratch" { ... }`): a YAML mapping of label -> body.
LABELED_BLOCKS = frozenset({"host_volume", "plugin"})
# Maps written as `meta = { "k" = "v" }` attributes: their keys ("driver.raw_exec.enable") need not be identifiers.
MAP_ATTRIBUTES = frozenset({"meta", "options", "chroot_env", "env"})
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
SERVICE_NAME = "yurt"
# The agent reads its config directory in lexical order, as nomad reads /etc/nomad.d.
AGENT_FILE = "00-agent.hcl"
OVERRIDES_FILE = "50-overrides.hcl"
RETRY_INTERVAL = "2s"  # Nomad's default 30s would leave servers started together waiting for their first retry


@dataclass(frozen=True, slots=True)
class Layout:
    """Paths on a host; everything the deployment writes lives under install_dir and data_dir."""

    install_dir: str
    data_dir: str

    @property
    def venv(self) -> str:
        return f"{self.install_dir}/venv"

    @property
    def wheels(self) -> str:
        return f"{self.install_dir}/wheels"

    @property
    def config_dir(self) -> str:
        return f"{self.install_dir}/config"

    @property
    def release_file(self) -> str:
        return f"{self.install_dir}/state/release"

    @property
    def mode_file(self) -> str:
        return f"{self.install_dir}/state/mode"

    @property
    def pid_file(self) -> str:
        return f"{self.install_dir}/run/agent.pid"

    @property
    def log_file(self) -> str:
        return f"{self.install_dir}/logs/agent.log"

    @property
    def agent(self) -> str:
        return f"{self.venv}/bin/yurt"

    @property
    def unit_file(self) -> str:
        return f"/etc/systemd/system/{SERVICE_NAME}.service"

    def command(self) -> str:
        return f"{self.agent} agent -config {self.config_dir}"


def layout(inventory: Inventory) -> Layout:
    return Layout(inventory.cluster.install_dir.rstrip("/"), inventory.cluster.data_dir.rstrip("/"))


# -- the agent's configuration --------------------------------------------------------------------------


def agent_settings(inventory: Inventory, host: Host, interface: str = "") -> dict[str, Any]:
    """The generated configuration of `host` as a mapping of HCL keys (before the inventory's overrides)."""
    cluster, ports = inventory.cluster, inventory.cluster.ports
    config: dict[str, Any] = {
        "name": host.name,
        "region": cluster.region,
        "datacenter": host.datacenter,
        "data_dir": cluster.data_dir,
        # Bound to the inventory's address, not 0.0.0.0: lab hosts share ports across namespaces only by address,
        # and what peers are told (advertise) must be the address they can reach.
        "bind_addr": host.ip(),
        "advertise": {"http": host.ip(), "rpc": host.ip(), "serf": host.ip()},
        "ports": {"http": ports.http, "rpc": ports.rpc, "serf": ports.serf},
    }
    if host.is_server:
        config["server"] = {
            "enabled": True,
            "bootstrap_expect": inventory.bootstrap_expect,
            "server_join": {"retry_join": [hostport(s.ip(), ports.serf) for s in inventory.servers],
                            "retry_interval": RETRY_INTERVAL},
        }
    if host.is_client:
        client: dict[str, Any] = {"enabled": True, "servers": [hostport(s.ip(), ports.rpc) for s in inventory.servers]}
        if interface:
            # The fingerprinter otherwise takes the default route's interface, which lab hosts do not have.
            client["network_interface"] = interface
        if host.node_class:
            client["node_class"] = host.node_class
        if host.meta:
            client["meta"] = dict(host.meta)
        if host.host_volumes:
            client["host_volume"] = {name: {"path": v.path, "read_only": v.read_only}
                                     for name, v in sorted(host.host_volumes.items())}
        config["client"] = client
        config["plugin"] = {"raw_exec": {"config": {"enabled": True}}}
    return config


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Mappings merge key by key (so `client: {meta: {...}}` adds to the generated block); anything else replaces."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def render_config_files(inventory: Inventory, host: Host, interface: str = "") -> dict[str, str]:
    """The agent's config directory (file name -> HCL): generated settings with a YAML agent_config merged in,
    or HCL agent_config text as a second file, which the agent merges by its own (Nomad's) rules: appended to
    the first file, a repeated block such as `client` would be an error."""
    settings = agent_settings(inventory, host, interface)
    overrides = inventory.cluster.agent_config
    # No inventory path in it: the files are hashed to tell a change, and `./inv.yml` is `inv.yml`.
    header = f"# Written by yurt's deployment for host {host.name}; edits are overwritten.\n"
    if isinstance(overrides, dict):
        return {AGENT_FILE: header + to_hcl(merge(settings, overrides))}
    files = {AGENT_FILE: header + to_hcl(settings)}
    if overrides.strip():
        files[OVERRIDES_FILE] = "# the inventory's agent_config\n" + overrides.rstrip("\n") + "\n"
    return files


def _key(name: str) -> str:
    return name if _IDENT.match(name) else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(v)}" for k, v in value.items()) + " }"
    # JSON string escapes are HCL's; "${" would start an interpolation, so it is doubled the HCL way.
    return json.dumps(str(value)).replace("${", "$${").replace("%{", "%%{")


def to_hcl(settings: dict[str, Any], indent: int = 0) -> str:
    """A mapping as HCL: nested mappings become blocks, LABELED_BLOCKS labeled blocks, MAP_ATTRIBUTES maps."""
    pad = "  " * indent
    attributes = [(k, v) for k, v in settings.items() if not isinstance(v, dict) or k in MAP_ATTRIBUTES]
    blocks = [(k, v) for k, v in settings.items() if isinstance(v, dict) and k not in MAP_ATTRIBUTES]
    width = max((len(_key(k)) for k, _ in attributes), default=0)
    lines = [f"{pad}{_key(k).ljust(width)} = {_value(v)}" for k, v in attributes]
    for name, body in blocks:
        labeled = [(label, sub) for label, sub in body.items()] if name in LABELED_BLOCKS else [(None, body)]
        for label, sub in labeled:
            if lines:
                lines.append("")
            title = f"{name} {json.dumps(label)}" if label is not None else name
            if not isinstance(sub, dict):
                raise ValueError(f"{name} {label!r}: expected a mapping, got {type(sub).__name__}")
            inner = to_hcl(sub, indent + 1)
            lines.append(f"{pad}{title} {{\n{inner}{pad}}}" if inner else f"{pad}{title} {{}}")
    return "".join(line + "\n" for line in lines)


# -- the service -----------------------------------------------------------------------------------------


def render_unit(lay: Layout) -> str:
    """Seed 002's systemd unit for nomad, pointed at the venv's yurt; output appended to the same log file
    the daemon mode writes, so `logs` reads one place whatever runs the agent."""
    return f"""[Unit]
Description=yurt agent
Documentation=https://developer.hashicorp.com/nomad/docs
Wants=network-online.target
After=network-online.target

[Service]
ExecReload=/bin/kill -HUP $MAINPID
ExecStart={lay.command()}
StandardOutput=append:{lay.log_file}
StandardError=append:{lay.log_file}
KillMode=process
KillSignal=SIGINT
LimitNOFILE=infinity
LimitNPROC=infinity
Restart=on-failure
RestartSec=2
StartLimitBurst=3
StartLimitIntervalSec=10
TasksMax=infinity

[Install]
WantedBy=multi-user.target
"""


def sha256_text(text: str) -> str:
    """What `sha256sum FILE` prints for a file holding `text`: compared with the host's copy to skip rewrites."""
    return hashlib.sha256(text.encode()).hexdigest()
