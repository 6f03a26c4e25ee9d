"""Agent config files: the seeds' configs, Nomad's merge order, warnings for what yurt ignores, located errors."""

import re
import textwrap
from pathlib import Path

import pytest

from orchestrator.agent.config import (
    AgentConfig,
    ConfigError,
    dev_config,
    gc_thresholds,
    is_acted_on,
    load_config_files,
    to_client_config,
    to_server_config,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agent"
WARNING = re.compile(r'^(?P<file>[^:]+):(?P<line>\d+): "(?P<key>[^"]+)" is accepted but not acted on yet$')


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)


def problems(tmp_path: Path, text: str, name: str = "agent.hcl") -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_files([write(tmp_path, name, text)])
    return [str(d).replace(str(tmp_path) + "/", "") for d in info.value.diagnostics]


# ---- the seeds' configurations ----------------------------------------------------------------------


def test_seed_003_full_configuration_is_accepted():
    path = str(FIXTURES / "seed003" / "full.hcl")
    config, warnings = load_config_files([path])
    assert config.files == [path]
    assert (config.data_dir, config.bind_addr, config.name) == ("/var/lib/nomad", "0.0.0.0", "nomad1")
    assert (config.advertise.http, config.advertise.serf) == ("1.2.3.4", "1.2.3.4:5648")
    server = config.server
    assert (server.enabled, server.bootstrap_expect, server.data_dir) == (True, 3, "/opt/nomad/server")
    assert (server.num_schedulers, server.enabled_schedulers) == (7, ["batch", "service"])
    assert server.server_join.retry_join == ["1.1.1.1", "2.2.2.2"]
    assert (server.server_join.retry_max, server.server_join.retry_interval) == (3, 15.0)
    scheduler = server.default_scheduler_config
    assert scheduler.scheduler_algorithm == "spread"
    assert scheduler.preemption_config.batch_scheduler_enabled and scheduler.preemption_config.service_scheduler_enabled
    client = config.client
    assert client.servers == ["1.2.3.4:4647", "5.6.7.8:4647"]
    assert client.max_kill_timeout == 30.0
    assert client.options["driver.allowlist"] == "docker,qemu"
    assert client.options["fingerprint.network.disallow_link_local"] == "true"
    assert client.other["chroot_env"]["/etc/ld.so.conf.d"] == "/etc/ld.so.conf.d"  # HCL1 "quoted" = keys
    assert client.reserved.reserved_ports == "22,80,8500-8600"
    assert client.host_volumes["ca-certificates"].path == "/etc/ssl/certs"
    assert client.host_volumes["ca-certificates"].read_only is True
    assert client.other["host_network"]["public"]["cidr"] == "203.0.113.0/24"
    assert client.gc_interval == 60.0 and client.other["template"] == {}
    assert config.plugins["raw_exec"].config == {"enabled": True}
    assert config.acl == {"enabled": True, "token_ttl": 30.0, "policy_ttl": 60.0, "replication_token": ""}
    assert config.autopilot["last_contact_threshold"] == pytest.approx(0.2)
    assert config.limits["rpc_max_conns_per_client"] == 100
    assert config.telemetry["prometheus_metrics"] is True
    assert config.tls == {} and config.vault["address"] == "https://vault.company.internal:8200"
    assert config.other["log_rotate_duration"] == 86400.0

    found = [WARNING.match(w) for w in warnings]
    assert all(found), warnings
    keys = [m["key"] for m in found]
    assert len(keys) == len(set(keys))  # each key named by exactly one warning
    for key in ("consul", "acl", "autopilot", "tls", "vault", "telemetry", "limits", "plugin_dir",
                "enable_syslog", "server.num_schedulers", "client.chroot_env", "client.host_network"):
        assert key in keys
    assert not {"consul.token", "acl.enabled", "server.enabled", "client.servers", "plugin"} & set(keys)
    lines = (FIXTURES / "seed003" / "full.hcl").read_text().splitlines()
    for match in found:
        # Each warning points at the line that sets its key.
        assert lines[int(match["line"]) - 1].strip().startswith(match["key"].split(".")[-1]), match.string


def test_seed_003_verbatim_reports_its_first_invalid_line():
    # The blog's version has pseudo-code values; the syntax error is located, not a traceback.
    with pytest.raises(ConfigError) as info:
        load_config_files([str(FIXTURES / "seed003" / "full_verbatim.hcl")])
    (problem,) = info.value.diagnostics
    assert problem.filename.endswith("full_verbatim.hcl") and problem.line in (179, 180)


@pytest.mark.parametrize("name", ["server.hcl", "client.hcl"])
def test_seed_003_getting_started_configs(name):
    config, warnings = load_config_files([str(FIXTURES / "seed003" / name)])
    assert config.log_level == "DEBUG" and not warnings
    assert config.server.enabled == (name == "server.hcl")
    assert config.client.servers == ([] if name == "server.hcl" else ["127.0.0.1:4647"])


def test_seed_000_and_004_configs():
    client, _ = load_config_files([str(FIXTURES / "seed000" / "client1.hcl")])
    assert (client.name, client.ports.http, client.ports.rpc) == ("client1", 5656, 4647)
    local, _ = load_config_files([str(FIXTURES / "seed004" / "nomad-local-config-client-1.hcl")])
    assert (local.ports.http, local.ports.rpc, local.ports.serf) == (5641, 5642, 5643)
    assert local.data_dir == "/tmp/nomad-workshop/local-cluster-data-1"


def test_seed_002_directory_as_the_systemd_unit_loads_it():
    unit = (FIXTURES / "seed002_nomad.service").read_text()
    assert "nomad agent -config /etc/nomad.d" in unit
    directory = FIXTURES / "seed002_nomad.d"
    config, warnings = load_config_files([str(directory)])
    assert config.files == [str(directory / n) for n in ("client.hcl", "nomad.hcl", "server.hcl")]
    assert (config.datacenter, config.data_dir) == ("home", "/opt/nomad")
    assert config.server.enabled and config.client.enabled and config.server.bootstrap_expect == 3
    assert len(config.server.server_join.retry_join) == 3 and not warnings


def test_reference_cluster_configs():
    s1, _ = load_config_files([str(FIXTURES / "reference" / "s1.hcl")])
    assert s1.server.server_join.retry_interval == 1.0 and s1.ports.rpc == 4647
    dev, warnings = load_config_files([str(FIXTURES / "reference" / "dev.hcl")], dev_config())
    assert dev.plugins["docker"].config == {"gc": {"image": False}} and not warnings


# ---- merging ------------------------------------------------------------------------------------------


def test_later_files_win_and_collections_merge_as_nomad_merges(tmp_path):
    first = write(tmp_path, "a.hcl", """
        region = "eu"
        log_level = "DEBUG"
        server {
          enabled = true
          enabled_schedulers = ["service"]
          server_join { retry_join = ["a:4648"] }
        }
        client {
          servers = ["s1:4647"]
          meta {
            rack = "r1"
            zone = "z1"
          }
          host_volume "certs" { path = "/etc/ssl" }
          host_volume "data" { path = "/data" }
        }
        plugin "docker" { config { allow_privileged = true } }
    """)
    second = write(tmp_path, "b.hcl", """
        region = "us"
        log_level = ""
        server {
          enabled = false
          enabled_schedulers = ["batch"]
          server_join { retry_join = ["b:4648"] }
        }
        client {
          servers = ["s2:4647"]
          meta { zone = "z2" }
          host_volume "data" { path = "/mnt" }
        }
        plugin "docker" { config { pids_limit = 10 } }
    """)
    config, _ = load_config_files([first, second])
    assert config.region == "us"  # later wins
    assert config.log_level == "DEBUG"  # an empty value does not override
    assert config.server.enabled  # so false cannot disable server mode once enabled
    assert config.server.enabled_schedulers == ["service", "batch"]  # appended
    assert config.server.server_join.retry_join == ["b:4648"]  # server_join lists are replaced
    assert config.client.servers == ["s1:4647", "s2:4647"]  # appended
    assert config.client.meta == {"rack": "r1", "zone": "z2"}  # maps merge
    assert {k: v.path for k, v in config.client.host_volumes.items()} == {"certs": "/etc/ssl", "data": "/mnt"}
    assert config.plugins["docker"].config == {"pids_limit": 10}  # a plugin block replaces the earlier one
    assert config.files == [first, second]


def test_directory_is_read_in_lexical_order_with_json_and_only_config_files(tmp_path):
    write(tmp_path, "conf.d/20-client.json", '{"client": {"enabled": true, "servers": ["j:4647"]}, "region": '
                                             '"json", "plugin": {"raw_exec": {"config": {"enabled": true}}}}')
    write(tmp_path, "conf.d/10-base.hcl", 'region = "hcl"\ndata_dir = "/d"\n')
    write(tmp_path, "conf.d/30-last.hcl", 'datacenter = "last"\n')
    write(tmp_path, "conf.d/notes.txt", "not a config")
    write(tmp_path, "conf.d/.#30-last.hcl", "editor lock file")
    extra = write(tmp_path, "extra.hcl", 'region = "extra"\n')
    config, _ = load_config_files([str(tmp_path / "conf.d"), extra])
    assert [Path(f).name for f in config.files] == ["10-base.hcl", "20-client.json", "30-last.hcl", "extra.hcl"]
    assert (config.region, config.datacenter, config.data_dir) == ("extra", "last", "/d")
    assert config.client.servers == ["j:4647"] and config.plugins["raw_exec"].config == {"enabled": True}


def test_empty_directory_warns(tmp_path):
    (tmp_path / "empty").mkdir()
    config, warnings = load_config_files([str(tmp_path / "empty")])
    assert warnings == [f"No configuration loaded from {tmp_path / 'empty'}"] and config.files == []


def test_json_block_lists_and_nested_labels(tmp_path):
    path = write(tmp_path, "agent.json", """
        {
          "server": [{"enabled": true, "bootstrap_expect": 3}],
          "client": {"host_volume": {"ca": {"path": "/etc/ssl", "read_only": true}}},
          "vault": {"enabled": false}
        }
    """)
    config, warnings = load_config_files([path])
    assert config.server.bootstrap_expect == 3 and config.client.host_volumes["ca"].read_only
    assert warnings == [f'{path}:5: "vault" is accepted but not acted on yet']


# ---- errors and warnings ------------------------------------------------------------------------------


def test_all_errors_of_a_file_at_once_with_line_column_and_did_you_mean(tmp_path):
    found = problems(tmp_path, """\
        server {
          bootstrap_expct = 3
          heartbeat_grace = "10"
          raft_multiplier = 20
          default_scheduler_config { scheduler_algorithm = "sprad" }
        }
        client {
          enabled = "yes"
          meta = nil
          reserved { reserved_ports = "22,x" }
          host_volume "empty" { read_only = true }
        }
        ports { http = "x" }
        log_level = "LOUD"
        vault { adress = "x" }
        plugin "raw_exec" { config { enabeld = true } }
        clinet { }
        server { }
    """)
    assert found == [
        'agent.hcl:2,3: unknown key "bootstrap_expct" in server block; did you mean "bootstrap_expect"?',
        'agent.hcl:3,21: invalid value for "server.heartbeat_grace": missing unit in duration "10" (use e.g. "10s")',
        'agent.hcl:4,21: "server.raft_multiplier" must be between 1 and 10, got 20',
        'agent.hcl:5,52: invalid value "sprad" for "server.default_scheduler_config.scheduler_algorithm": '
        'must be one of binpack, spread, did you mean "spread"?',
        'agent.hcl:8,13: invalid value for "client.enabled": true or false is required, not "yes"',
        'agent.hcl:9,10: unknown name "nil": agent configuration takes values (strings, numbers, true/false, '
        "lists and maps), not references; did you mean null?",
        'agent.hcl:10,31: reserved_ports "22,x" is not a list of ports and ranges like "22,80,8000-8100"',
        'agent.hcl:11,3: Missing path in host_volume "empty" config',
        'agent.hcl:13,16: invalid value for "ports.http": a number is required, not "x"',
        'agent.hcl:14,13: invalid value "LOUD" for "log_level": must be one of TRACE, DEBUG, INFO, WARN, ERR, ERROR',
        'agent.hcl:15,9: unknown key "adress" in vault block; did you mean "address"?',
        'agent.hcl:16,30: unknown key "enabeld" in plugin.raw_exec.config block; did you mean "enabled"?',
        'agent.hcl:17,1: unknown block "clinet"; did you mean "client"?',
        'agent.hcl:18,1: "server" is set more than once (first at line 1)',
    ]


def test_errors_of_every_file_are_reported_together(tmp_path):
    first = write(tmp_path, "a.hcl", "regoin = 1\n")
    second = write(tmp_path, "b.json", '{\n  "datacenter": ["dc1"]\n}\n')
    with pytest.raises(ConfigError) as info:
        load_config_files([first, second, str(tmp_path / "missing.hcl")])
    assert str(info.value).splitlines() == [
        f'{first}:1,1: unknown key "regoin"; did you mean "region"?',
        f'{second}:2,17: invalid value for "datacenter": a string is required, not a list',
        f"{tmp_path / 'missing.hcl'}: config file not found",
    ]


def test_syntax_errors_are_located(tmp_path):
    assert problems(tmp_path, 'server {\n  enabled = true\n') == [
        "agent.hcl:3,1: Unclosed configuration block; There is no closing brace for this block before the end of "
        "the file. This may be caused by incorrect brace nesting elsewhere in this file."]
    assert problems(tmp_path, '{\n  "server": {"enabled": true,}\n}', name="agent.json") == [
        "agent.json:2,30: invalid JSON: Expecting property name enclosed in double quotes"]


def test_argument_and_block_confusion(tmp_path):
    assert problems(tmp_path, 'server = true\nregion { }\nports "x" { }\n') == [
        'agent.hcl:1,1: "server" is a block: write server { ... }',
        'agent.hcl:2,1: "region" is an argument, not a block: write region = ...',
        'agent.hcl:3,1: a "ports" block takes no label (found "x")',
    ]


def test_each_unsupported_key_is_warned_once_where_it_is_set(tmp_path):
    path = write(tmp_path, "agent.hcl", """\
        server {
          enabled = true
          encrypt = "c2VjcmV0"
          raft_protocol = 3
        }
        vault {
          enabled = true
          address = "https://vault:8200"
        }
        tls {}
        enable_syslog = true
    """)
    _, warnings = load_config_files([path])
    assert warnings == [
        f'{path}:3: "server.encrypt" is accepted but not acted on yet',
        f'{path}:4: "server.raft_protocol" is accepted but not acted on yet',
        f'{path}:6: "vault" is accepted but not acted on yet',
        f'{path}:10: "tls" is accepted but not acted on yet',
        f'{path}:11: "enable_syslog" is accepted but not acted on yet',
    ]


def test_deprecated_server_join_keys_fold_into_server_join(tmp_path):
    path = write(tmp_path, "agent.hcl", 'server {\n  retry_join = ["a:4648"]\n  retry_interval = "5s"\n}\n')
    config, warnings = load_config_files([path])
    assert (config.server.server_join.retry_join, config.server.server_join.retry_interval) == (["a:4648"], 5.0)
    assert warnings[0] == f'{path}:2: "server.retry_join" is deprecated; write it inside server_join {{ }}'


def test_is_acted_on():
    assert is_acted_on("server.server_join.retry_join") and is_acted_on("client.meta")
    assert not is_acted_on("server.encrypt") and not is_acted_on("consul.address") and not is_acted_on("bogus")


# ---- defaults and what the server and client take -----------------------------------------------------


def test_dev_defaults():
    config = dev_config()
    assert config.server.enabled and config.client.enabled and config.dev_mode
    assert (config.server.bootstrap_expect, config.bind_addr, config.data_dir) == (1, "127.0.0.1", None)
    assert (config.log_level, config.region, config.datacenter) == ("DEBUG", "global", "dc1")
    assert config.name and config.plugins["raw_exec"].config == {"enabled": True}
    assert AgentConfig().log_level == "INFO" and AgentConfig().ports.http == 4646


def test_to_server_config_maps_what_applies(tmp_path):
    path = write(tmp_path, "agent.hcl", """
        region = "eu"
        datacenter = "fra"
        ports { rpc = 5647 }
        advertise { rpc = "10.0.0.5" }
        server {
          enabled = true
          bootstrap_expect = 3
          raft_multiplier = 5
          heartbeat_grace = "30s"
          min_heartbeat_ttl = "20s"
          max_heartbeats_per_second = 25.5
          job_gc_interval = "10m"
          job_gc_threshold = "1h"
          eval_gc_threshold = "30m"
          default_scheduler_config {
            scheduler_algorithm = "spread"
            preemption_config { batch_scheduler_enabled = true }
          }
        }
    """)
    config, _ = load_config_files([path])
    server = to_server_config(config)
    assert server.id == "10.0.0.5:5647"
    assert (server.bootstrap_expect, server.region, server.datacenter) == (3, "eu", "fra")
    assert server.tick_interval == pytest.approx(0.5)  # raft_multiplier 5 stretches Raft's timing 5x
    assert (server.heartbeat_grace, server.min_heartbeat_ttl, server.max_heartbeats_per_second) == (30, 20, 25.5)
    assert server.gc_interval == 600.0
    # Inside a replaced block the documented defaults apply to what is left out (system stays on).
    assert (server.scheduler.algorithm, server.scheduler.preempt_batch, server.scheduler.preempt_system) == (
        "spread", True, True)
    thresholds = gc_thresholds(config)
    assert (thresholds.job_gc_threshold, thresholds.eval_gc_threshold, thresholds.node_gc_threshold) == (
        3600.0, 1800.0, 86400.0)


def test_to_client_config_defaults_ports_and_talks_to_itself_in_dev():
    config = dev_config()
    assert to_client_config(config).servers == ["127.0.0.1:4647"]
    config.client.servers = ["10.0.0.1", "10.0.0.2:5647"]
    config.client.max_kill_timeout = 60.0
    client = to_client_config(config)
    assert client.servers == ["10.0.0.1:4647", "10.0.0.2:5647"] and client.max_kill_timeout == 60.0
