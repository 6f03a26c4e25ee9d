"""`yurt agent` flags as Nomad parses them, and the configuration built from -dev, files and flags."""

import textwrap
from pathlib import Path

import pytest

from orchestrator.agent import flags as agent_flags
from orchestrator.agent.config import ConfigError
from orchestrator.agent.flags import AGENT_HELP, FlagError, build_agent_config, parse_agent_flags

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agent"


def write(tmp_path: Path, text: str, name: str = "agent.hcl") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def server_file(tmp_path: Path, extra: str = "") -> str:
    return write(tmp_path, f"""
        data_dir = "{tmp_path}/data"
        advertise {{
          http = "10.0.0.1"
          rpc  = "10.0.0.1"
          serf = "10.0.0.1"
        }}
        server {{
          enabled          = true
          bootstrap_expect = 3
        }}
        {extra}
    """)


def refused(argv: list[str]) -> FlagError:
    with pytest.raises(FlagError) as info:
        parse_agent_flags(argv)
    return info.value


def invalid(argv: list[str]) -> str:
    with pytest.raises(ConfigError) as info:
        build_agent_config(argv)
    return str(info.value)


# ---- parsing ------------------------------------------------------------------------------------------


def test_both_value_forms_and_dashes():
    flags = parse_agent_flags(["-server", "--bootstrap-expect=3", "-region", "eu", "-config=a.hcl", "--config",
                               "dir", "-retry-join", "a:4648", "-retry-join=b:4648", "-meta", "rack=r1",
                               "-meta=zone=z=1", "-servers", "s1:4647,s2:4647", "-retry-interval", "5s", "-dev=false"])
    assert flags.config_paths == ["a.hcl", "dir"] and not flags.dev
    assert flags.layer == {
        "server": {"enabled": True, "bootstrap_expect": 3,
                   "server_join": {"retry_join": ["a:4648", "b:4648"], "retry_interval": 5.0}},
        "region": "eu",
        "client": {"servers": ["s1:4647", "s2:4647"], "meta": {"rack": "r1", "zone": "z=1"}},
    }


def test_go_number_and_bool_syntax():
    assert parse_agent_flags(["-bootstrap-expect=0x3"]).layer["server"]["bootstrap_expect"] == 3
    assert parse_agent_flags(["-bootstrap-expect", "010"]).layer["server"]["bootstrap_expect"] == 8
    assert parse_agent_flags(["-client=T"]).layer["client"]["enabled"] is True
    # A bool flag never takes the next argument: Go stops at the first non-flag, and Nomad ignores the rest.
    flags = parse_agent_flags(["-dev", "true", "-server"])
    assert flags.dev and flags.layer == {} and flags.warnings == ["ignoring arguments after the flags: true -server"]


@pytest.mark.parametrize(("argv", "message"), [
    (["-http-port", "8080"], "flag provided but not defined: -http-port"),
    (["-dev", "-bogus"], "flag provided but not defined: -bogus"),
    (["-config"], "flag needs an argument: -config"),
    (["-bootstrap-expect", "three"], 'invalid value "three" for flag -bootstrap-expect: parse error'),
    (["-retry-max=99999999999999999999"],
     'invalid value "99999999999999999999" for flag -retry-max: value out of range'),
    (["-retry-interval=15"], 'invalid value "15" for flag -retry-interval: time: missing unit in duration "15"'),
    (["-retry-interval=soon"], 'invalid value "soon" for flag -retry-interval: time: invalid duration "soon"'),
    (["-dev=maybe"], 'invalid boolean value "maybe" for -dev: parse error'),
    (["---dev"], "bad flag syntax: ---dev"),
])
def test_refused_command_lines_print_the_error_then_usage_and_exit_1(argv, message):
    error = refused(argv)
    assert error.exit_code == 1 and error.message == message
    lines = error.output.splitlines()
    assert lines[0] == message and lines[1] == "==> Usage: yurt agent [options]"
    assert error.output.endswith(AGENT_HELP.splitlines()[-1] + "\n")


def test_help_is_not_an_error():
    for argv in (["-h"], ["-dev", "-help"], ["--help"]):
        error = refused(argv)
        assert error.exit_code == 0 and error.output.startswith("Usage: yurt agent [options]\n")
    assert parse_agent_flags(["--", "-help"]).warnings == ["ignoring arguments after the flags: -help"]


def test_flags_yurt_does_not_act_on_are_accepted_with_a_warning():
    flags = parse_agent_flags(["-encrypt", "c2VjcmV0", "-consul-address=127.0.0.1:8500", "-vault-enabled",
                               "-network-speed", "100", "-node", "n1"])
    assert flags.layer["consul"] == {"address": "127.0.0.1:8500"} and flags.layer["vault"] == {"enabled": True}
    assert flags.warnings == [
        'flag -encrypt: "server.encrypt" is accepted but not acted on yet',
        'flag -consul-address: "consul.address" is accepted but not acted on yet',
        'flag -vault-enabled: "vault.enabled" is accepted but not acted on yet',
        'flag -network-speed: "client.network_speed" is accepted but not acted on yet',
    ]


def test_bad_meta_is_refused_as_nomad_words_it():
    with pytest.raises(ConfigError, match=r"^Error parsing Client\.Meta value: rack$"):
        parse_agent_flags(["-meta", "rack"])


# ---- building -----------------------------------------------------------------------------------------


def test_flags_override_files(tmp_path):
    path = server_file(tmp_path, 'region = "file"\nclient {\n  servers = ["f:4647"]\n  meta { rack = "file" }\n}')
    config, warnings = build_agent_config([
        "-config", path, "-region", "flag", "-node=n7", "-bootstrap-expect", "5", "-client", "-servers", "x:4647",
        "-meta", "rack=flag", "-retry-join", "1.1.1.1", "-log-level", "debug", "-dc=fra"])
    assert (config.region, config.name, config.datacenter, config.log_level) == ("flag", "n7", "fra", "debug")
    assert config.server.bootstrap_expect == 5 and config.client.enabled
    assert config.client.servers == ["f:4647", "x:4647"]  # Nomad appends -servers to the files' servers
    assert config.client.meta == {"rack": "flag"}
    assert config.server.server_join.retry_join == ["1.1.1.1"]
    assert config.files == [path] and config.plugin_dir == f"{tmp_path}/data/plugins"
    assert (config.advertise.rpc, config.addresses.rpc) == ("10.0.0.1:4647", "0.0.0.0")
    assert warnings == []


def test_dev_defaults_then_files_then_flags(tmp_path):
    ports = write(tmp_path, "ports {\n  http = 5646\n  rpc = 5647\n  serf = 5648\n}\n")
    config, warnings = build_agent_config(["-dev", "-config", ports, "-node", "devnode"])
    assert config.dev_mode and config.server.enabled and config.client.enabled and config.data_dir is None
    assert (config.bind_addr, config.name, config.log_level) == ("127.0.0.1", "devnode", "DEBUG")
    assert (config.advertise.http, config.advertise.rpc, config.advertise.serf) == (
        "127.0.0.1:5646", "127.0.0.1:5647", "127.0.0.1:5648")
    assert config.plugins["raw_exec"].config == {"enabled": True} and warnings == []


def test_dev_bound_to_all_interfaces_advertises_the_private_ip(monkeypatch):
    monkeypatch.setattr(agent_flags, "private_ip", lambda: "192.168.1.20")
    config, _ = build_agent_config(["-dev", "-bind", "0.0.0.0"])
    assert config.advertise.http == "192.168.1.20:4646" and config.addresses.http == "0.0.0.0"


def test_reference_cluster_config_runs_with_its_relative_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, warnings = build_agent_config(["-config", str(FIXTURES / "reference" / "s1.hcl")])
    assert config.data_dir == str(tmp_path / "data" / "s1")
    assert warnings == [f"data-dir './data/s1' is relative; using {tmp_path / 'data' / 's1'}"]
    assert config.advertise.serf == "127.0.0.1:4648" and config.name == "s1"


def test_bootstrap_warnings(tmp_path):
    single = write(tmp_path, f'data_dir = "{tmp_path}"\nbind_addr = "10.1.1.1"\nserver {{\n  enabled = true\n'
                             "  bootstrap_expect = 1\n}\n")
    assert build_agent_config(["-config", single])[1] == [
        "Bootstrap mode enabled! Potentially unsafe operation."]
    assert build_agent_config(["-config", single, "-bootstrap-expect", "4"])[1] == [
        "Number of bootstrap servers should ideally be set to an odd number."]


@pytest.mark.parametrize(("argv", "message"), [
    ([], "Must specify either server, client or dev mode for the agent."),
    (["-server", "-bind", "10.0.0.1"], "Must specify data directory"),
    (["-client", "-bind", "10.0.0.1"], "Must specify both the state and alloc dir if data-dir is omitted."),
    (["-client", "-data-dir", "/d", "-bootstrap-expect", "3"], "Bootstrap requires server mode to be enabled"),
    (["-server", "-data-dir", "/d", "-encrypt", "no key!"],
     "Invalid encryption key: illegal base64 data at input byte 2"),
    (["-dev", "-log-level", "loud"], "Invalid log level: LOUD. Valid log levels are: [TRACE DEBUG INFO WARN ERR]"),
    (["-dev", "-bind", "localhost:80"], 'Bind address resolution failed: "localhost:80" is not an IP address'),
    (["-dev", "-bind", "{{ GetPrivateIP }}"],
     'Bind address resolution failed: yurt does not evaluate go-sockaddr templates ("{{ GetPrivateIP }}") yet'),
    (["-server", "-data-dir", "/d", "-bind", "127.0.0.1"],
     "Failed to parse HTTP advertise address (, 127.0.0.1, 4646, false): "
     "Defaulting advertise to localhost is unsafe, please set advertise manually"),
])
def test_invalid_configurations_as_nomad_words_them(argv, message):
    assert invalid(argv) == message


def test_dev_connect_is_linux_and_root_only(monkeypatch):
    monkeypatch.setattr(agent_flags.sys, "platform", "darwin")
    assert invalid(["-dev-connect"]) == "-dev-connect is only supported on linux."
    monkeypatch.setattr(agent_flags.sys, "platform", "linux")
    monkeypatch.setattr(agent_flags.os, "geteuid", lambda: 1000)
    assert invalid(["-dev-connect"]) == "-dev-connect uses network namespaces and is only supported for root."
    monkeypatch.setattr(agent_flags.os, "geteuid", lambda: 0)
    monkeypatch.setattr(agent_flags, "private_ip", lambda: "10.9.8.7")
    config, warnings = build_agent_config(["-dev-connect"])
    assert config.dev_mode and config.bind_addr == "0.0.0.0" and config.advertise.rpc == "10.9.8.7:4647"
    assert warnings == ['flag -dev-connect: Consul Connect is not supported by yurt yet; binding to "0.0.0.0"']
