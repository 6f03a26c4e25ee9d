"""What `yurt agent` prints as it starts, laid out line for line as Nomad's agent command prints it."""

from __future__ import annotations

from .config import AgentConfig, advertised, join_host_port

STARTING = "==> Starting Yurt agent..."
STARTED = "==> Yurt agent started! Log data will stream in below:"
_PADDING = 18  # Nomad right-aligns every key to 18 columns after a 4-space info prefix


def config_files_line(config: AgentConfig) -> str:
    """The first line Nomad prints: which files were loaded (after config.files was filled)."""
    if config.files:
        return f"==> Loaded configuration from {', '.join(config.files)}"
    return "==> No configuration files loaded"


def bind_synopsis(config: AgentConfig) -> str:
    """"HTTP: ip:port" and, for servers only, "; RPC: ...; Serf: ..." (Nomad's getBindAddrSynopsis)."""
    def bound(service: str) -> str:
        host = getattr(config.addresses, service) or config.bind_addr
        return join_host_port(host, getattr(config.ports, service))

    return _synopsis(config, bound)


def advertise_synopsis(config: AgentConfig) -> str:
    """The advertised "ip:port" of each service, as bind_synopsis (Nomad's getAdvertiseAddrSynopsis)."""
    return _synopsis(config, lambda service: advertised(config, service))


def _synopsis(config: AgentConfig, address) -> str:
    text = f"HTTP: {address('http')}"
    if config.server.enabled:
        text += f"; RPC: {address('rpc')}; Serf: {address('serf')}"
    return text


def startup_banner(config: AgentConfig, version: str) -> str:
    """From "==> Yurt agent configuration:" to the "started!" line and the blank line after it.

    `config` should come from build_agent_config, whose addresses are resolved. Keys are sorted and
    title-cased as Nomad's are; the values are yurt's.
    """
    info = {
        "advertise addrs": advertise_synopsis(config),
        "bind addrs": bind_synopsis(config),
        "client": _go_bool(config.client.enabled),
        "log level": config.log_level,
        "region": f"{config.region} (DC: {config.datacenter})",
        "server": _go_bool(config.server.enabled),
        "version": version,
    }
    lines = ["==> Yurt agent configuration:", ""]
    lines += [f"    {' ' * (_PADDING - len(key))}{key.title()}: {info[key]}" for key in sorted(info)]
    lines += ["", STARTED, ""]
    return "\n".join(lines) + "\n"


def _go_bool(value: bool) -> str:
    return "true" if value else "false"
