"""The start-up banner: Nomad's layout, line for line, with yurt's name and values."""

import re
from pathlib import Path

from orchestrator.agent.banner import STARTING, config_files_line, startup_banner
from orchestrator.agent.flags import build_agent_config

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agent"

# Nomad 1.0's `agent -dev` block: keys sorted, right-aligned to column 22, a blank line after the
# heading and another before the "started!" line (command/agent/command.go).
NOMAD_DEV_BANNER = """\
==> Nomad agent configuration:

       Advertise Addrs: HTTP: 127.0.0.1:4646; RPC: 127.0.0.1:4647; Serf: 127.0.0.1:4648
            Bind Addrs: HTTP: 127.0.0.1:4646; RPC: 127.0.0.1:4647; Serf: 127.0.0.1:4648
                Client: true
             Log Level: DEBUG
                Region: global (DC: dc1)
                Server: true
               Version: 1.0.18

==> Nomad agent started! Log data will stream in below:

"""


def as_yurt(nomad_text: str, version: str) -> str:
    return nomad_text.replace("Nomad agent", "Yurt agent").replace("1.0.18", version)


def test_dev_banner_matches_nomads_line_for_line():
    config, _ = build_agent_config(["-dev"])
    assert startup_banner(config, "0.1.0").splitlines() == as_yurt(NOMAD_DEV_BANNER, "0.1.0").splitlines()
    assert startup_banner(config, "0.1.0") == as_yurt(NOMAD_DEV_BANNER, "0.1.0")
    assert config_files_line(config) == "==> No configuration files loaded"
    assert STARTING == "==> Starting Yurt agent..."


def test_seed_transcript_banners_line_for_line():
    # Seed 000 captured three real banners from Nomad 0.8, which had no address lines (and, in -dev, no
    # version line): with those lines left out, ours must be the same text for the same settings.
    text = (FIXTURES / "seed000" / "banners.txt").read_text()
    captured = [block + "\n" for block in re.findall(r"==> Nomad agent configuration:.*?below:\n", text, re.S)]
    roles = [["-dev"], ["-server", "-log-level", "INFO"], ["-client", "-log-level", "DEBUG"]]
    for argv, nomad in zip(roles, captured, strict=True):
        config, _ = build_agent_config([*argv, "-data-dir", "/tmp/yurt", "-bind", "10.0.0.1"])
        ours = as_yurt(startup_banner(config, "0.8.1"), "0.8.1").replace("Yurt agent", "Nomad agent")
        kept = [line for line in ours.split("\n") if "Addrs:" not in line]
        if "Version:" not in nomad:
            kept = [line for line in kept if "Version:" not in line]
        assert "\n".join(kept) == nomad


def test_server_only_and_client_only_agents(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    server, _ = build_agent_config(["-config", str(FIXTURES / "reference" / "s1.hcl")])
    lines = startup_banner(server, "0.1.0").splitlines()
    assert lines[2] == "       Advertise Addrs: HTTP: 127.0.0.1:4646; RPC: 127.0.0.1:4647; Serf: 127.0.0.1:4648"
    assert lines[4:6] == ["                Client: false", "             Log Level: DEBUG"]
    assert config_files_line(server) == f"==> Loaded configuration from {FIXTURES / 'reference' / 's1.hcl'}"
    client, _ = build_agent_config(["-config", str(FIXTURES / "reference" / "c1.hcl")])
    lines = startup_banner(client, "0.1.0").splitlines()
    # Nomad shows RPC and Serf only for servers.
    assert lines[2:4] == ["       Advertise Addrs: HTTP: 127.0.0.1:7646",
                          "            Bind Addrs: HTTP: 127.0.0.1:7646"]
    assert lines[7] == "                Server: false"
