"""The agent configuration: HCL or JSON files decoded with located errors, merged the way Nomad merges them."""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from orchestrator.client.agent import ClientConfig
from orchestrator.jobspec.decoder import coerce
from orchestrator.jobspec.diagnostics import Collector, Diagnostic, JobspecError, did_you_mean
from orchestrator.jobspec.evaluator import EvalError, RuntimeReference, Scope, evaluate
from orchestrator.jobspec.loader import read_text
from orchestrator.jobspec.nodes import Attribute, Block, Body, Expr, ObjectExpr, TupleExpr
from orchestrator.scheduler.config import SchedulerConfig
from orchestrator.server.config import ServerConfig
from orchestrator.server.gc import GCThresholds
from orchestrator.structs.timefmt import NS, parse_duration

HOUR = 3600.0
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERR", "ERROR")


class ConfigError(ValueError):
    """Every problem found in the agent's configuration; str() lists them one per line."""

    def __init__(self, diagnostics: list[Diagnostic] | str):
        if isinstance(diagnostics, str):
            # A whole-configuration problem (no file to point at), worded as Nomad words it.
            diagnostics = [Diagnostic("", None, None, "", diagnostics)]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) if d.filename else d.message for d in self.diagnostics))


# ---- the configuration ------------------------------------------------------------------------------
# Field names are the HCL keys; keys yurt accepts but has no field for land in `other`.


@dataclass(slots=True)
class Ports:
    http: int = 4646
    rpc: int = 4647
    serf: int = 4648


@dataclass(slots=True)
class Addresses:
    """`addresses` (bind IP per service) or `advertise` ("host[:port]" per service); "" falls back."""

    http: str = ""
    rpc: str = ""
    serf: str = ""


@dataclass(slots=True)
class ServerJoin:
    start_join: list[str] = field(default_factory=list)
    retry_join: list[str] = field(default_factory=list)
    retry_max: int = 0
    retry_interval: float = 30.0


@dataclass(slots=True)
class Preemption:
    system_scheduler_enabled: bool = True
    sysbatch_scheduler_enabled: bool = False
    batch_scheduler_enabled: bool = False
    service_scheduler_enabled: bool = False


@dataclass(slots=True)
class SchedulerDefaults:
    scheduler_algorithm: str = "binpack"
    preemption_config: Preemption = field(default_factory=Preemption)
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ServerBlock:
    enabled: bool = False
    bootstrap_expect: int = 0
    data_dir: str = ""
    server_join: ServerJoin = field(default_factory=ServerJoin)
    default_scheduler_config: SchedulerDefaults = field(default_factory=SchedulerDefaults)
    heartbeat_grace: float = 10.0
    min_heartbeat_ttl: float = 10.0
    max_heartbeats_per_second: float = 50.0
    failover_heartbeat_ttl: float = 300.0
    raft_multiplier: int = 1
    raft_protocol: int = 2
    raft_snapshot_threshold: int = 8192
    raft_snapshot_interval: float = 120.0
    num_schedulers: int | None = None
    enabled_schedulers: list[str] = field(default_factory=list)
    job_gc_interval: float = 300.0
    job_gc_threshold: float = 4 * HOUR
    eval_gc_threshold: float = 1 * HOUR
    batch_eval_gc_threshold: float = 24 * HOUR
    node_gc_threshold: float = 24 * HOUR
    deployment_gc_threshold: float = 1 * HOUR
    encrypt: str = ""
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Reserved:
    cpu: int = 0
    memory: int = 0
    disk: int = 0
    reserved_ports: str = ""
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class HostVolume:
    path: str = ""
    read_only: bool = False


@dataclass(slots=True)
class ClientBlock:
    enabled: bool = False
    state_dir: str = ""
    alloc_dir: str = ""
    servers: list[str] = field(default_factory=list)
    server_join: ServerJoin = field(default_factory=ServerJoin)
    node_class: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    reserved: Reserved = field(default_factory=Reserved)
    host_volumes: dict[str, HostVolume] = field(default_factory=dict)
    network_interface: str = ""
    cpu_total_compute: int = 0
    memory_total_mb: int = 0
    max_kill_timeout: float = 30.0
    gc_max_allocs: int = 50
    gc_interval: float = 60.0  # how often disk and inode usage are checked (Nomad's defaults below)
    gc_disk_usage_threshold: float = 80.0  # percent of the alloc dir's filesystem
    gc_inode_usage_threshold: float = 70.0
    other: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class PluginConfig:
    args: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class AgentConfig:
    """Nomad's agent configuration; defaults are Nomad's DefaultConfig(). Durations are seconds."""

    region: str = "global"
    datacenter: str = "dc1"
    name: str = ""
    data_dir: str | None = None
    plugin_dir: str = ""
    bind_addr: str = "0.0.0.0"
    log_level: str = "INFO"
    log_json: bool = False
    log_file: str = ""
    enable_debug: bool = False
    disable_update_check: bool = False
    leave_on_interrupt: bool = False
    leave_on_terminate: bool = False
    ports: Ports = field(default_factory=Ports)
    addresses: Addresses = field(default_factory=Addresses)
    advertise: Addresses = field(default_factory=Addresses)
    server: ServerBlock = field(default_factory=ServerBlock)
    client: ClientBlock = field(default_factory=ClientBlock)
    plugins: dict[str, PluginConfig] = field(default_factory=dict)
    # Accepted, validated and kept, not acted on yet: plain dicts of their HCL keys.
    acl: dict[str, Any] = field(default_factory=dict)
    telemetry: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, Any] = field(default_factory=dict)
    consul: dict[str, Any] = field(default_factory=dict)
    vault: dict[str, Any] = field(default_factory=dict)
    autopilot: dict[str, Any] = field(default_factory=dict)
    ui: dict[str, Any] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    dev_mode: bool = False
    files: list[str] = field(default_factory=list)  # config files loaded, in order (Nomad's Config.Files)


# ---- the schema -------------------------------------------------------------------------------------
# Words are "key:kind"; a bare key is a string. Kinds: str int num bool dur strs map any cfg, "!x" (an
# explicit false/0 still overrides, Nomad's pointer fields), "+strs" (lists appended across files),
# "{s}" (block merged key by key), "={s}" (block replaced whole), "[s]" (labeled blocks, replaced per label).


def _keys(acted: str, passive: str = "") -> dict[str, tuple[str, bool]]:
    out: dict[str, tuple[str, bool]] = {}
    for words, is_acted in ((acted, True), (passive, False)):
        for word in words.split():
            name, _, kind = word.partition(":")
            out[name] = (kind or "str", is_acted)
    return out


_DUR_TELEMETRY = "collection_interval:dur in_memory_collection_interval:dur in_memory_retention_period:dur"
SCHEMAS: dict[str, dict[str, tuple[str, bool]]] = {
    "agent": _keys(
        "region datacenter name data_dir bind_addr log_level log_json:bool log_file leave_on_interrupt:bool "
        "leave_on_terminate:bool ports:{ports} addresses:{addresses} advertise:{addresses} server:{server} "
        "client:{client} plugin:[plugin] disable_update_check:!bool disable_anonymous_signature:bool",
        "plugin_dir log_rotate_duration:dur log_rotate_bytes:int log_rotate_max_files:int enable_debug:bool "
        "log_include_location:bool enable_syslog:bool syslog_facility http_api_response_headers:map acl:{acl} "
        "telemetry:{telemetry} limits:{limits} tls:{tls} consul:{consul} vault:{vault} autopilot:{autopilot} "
        "ui:{ui} sentinel:any audit:any",
    ),
    "ports": _keys("http:int rpc:int serf:int"),
    "addresses": _keys("http rpc serf"),
    "server": _keys(
        "enabled:bool bootstrap_expect:int data_dir server_join:{join} default_scheduler_config:={scheduler} "
        "heartbeat_grace:dur min_heartbeat_ttl:dur max_heartbeats_per_second:num failover_heartbeat_ttl:dur "
        "raft_multiplier:!int raft_snapshot_threshold:int raft_snapshot_interval:dur job_gc_interval:dur "
        "job_gc_threshold:dur eval_gc_threshold:dur batch_eval_gc_threshold:dur node_gc_threshold:dur "
        "deployment_gc_threshold:dur start_join:strs retry_join:strs retry_max:int retry_interval:dur",
        "raft_protocol:int num_schedulers:!int enabled_schedulers:+strs encrypt authoritative_region "
        "protocol_version:int rejoin_after_leave:bool non_voting_server:bool redundancy_zone upgrade_version "
        "license_path enable_event_broker:!bool event_buffer_size:!int csi_volume_claim_gc_threshold:dur "
        "csi_plugin_gc_threshold:dur acl_token_gc_threshold:dur search:any raft_boltdb:any "
        "plan_rejection_tracker:any raft_trailing_logs:int job_max_priority:int "
        "job_default_priority:int deployment_query_rate_limit:num oidc_issuer start_timeout:dur",
    ),
    "join": _keys("start_join:strs retry_join:strs retry_max:int retry_interval:dur"),
    "scheduler": _keys(
        "scheduler_algorithm preemption_config:{preemption}",
        "memory_oversubscription_enabled:bool reject_job_registration:bool pause_eval_broker:bool",
    ),
    "preemption": _keys(
        "system_scheduler_enabled:bool sysbatch_scheduler_enabled:bool batch_scheduler_enabled:bool "
        "service_scheduler_enabled:bool"
    ),
    "client": _keys(
        "enabled:bool state_dir alloc_dir servers:+strs server_join:{join} node_class meta:map options:map "
        "reserved:{reserved} host_volume:[host_volume] network_interface cpu_total_compute:int "
        "memory_total_mb:int max_kill_timeout:dur gc_max_allocs:int gc_interval:dur gc_disk_usage_threshold:num "
        "gc_inode_usage_threshold:num",
        "node_pool chroot_env:map network_speed:int reservable_cores client_min_port:int "
        "client_max_port:int min_dynamic_port:int max_dynamic_port:int gc_parallel_destroys:int "
        "no_host_uuid:!bool disable_remote_exec:bool "
        "template:any host_network:[host_network] cni_path cni_config_dir bridge_network_name "
        "bridge_network_subnet bridge_network_hairpin_mode:bool bind_wildcard_default_host_network:bool "
        "cgroup_parent artifact:any drain_on_shutdown:any nomad_service_discovery:bool "
        "cpu_disable_dmidecode:bool preferred_address_family alloc_mounts_dir",
    ),
    "reserved": _keys("cpu:int memory:int disk:int reserved_ports", "cores"),
    "host_volume": _keys("path read_only:bool"),
    "host_network": _keys("cidr interface reserved_ports"),
    "plugin": _keys("args:strs config:cfg"),
    # Whole blocks yurt does not act on: their keys are still checked, so a typo is not silent.
    "acl": _keys("enabled:bool token_ttl:dur policy_ttl:dur role_ttl:dur replication_token "
                 "token_min_expiration_ttl:dur token_max_expiration_ttl:dur"),
    "autopilot": _keys("cleanup_dead_servers:bool last_contact_threshold:dur max_trailing_logs:int min_quorum:int "
                       "server_stabilization_time:dur enable_redundancy_zones:bool disable_upgrade_migration:bool "
                       "enable_custom_upgrades:bool"),
    "consul": _keys(
        "address allow_unauthenticated:bool auth auto_advertise:bool ca_file cert_file key_file grpc_address "
        "grpc_ca_file checks_use_advertise:bool client_auto_join:bool client_service_name client_http_check_name "
        "server_auto_join:bool server_service_name server_http_check_name server_serf_check_name "
        "server_rpc_check_name client_failures_before_critical:int client_failures_before_warning:int "
        "server_failures_before_critical:int server_failures_before_warning:int name namespace share_ssl:bool "
        "ssl:bool verify_ssl:bool tags:strs timeout:dur token service_identity:any task_identity:any "
        "service_auth_method task_auth_method"),
    "vault": _keys("enabled:bool address allow_unauthenticated:bool create_from_role namespace task_token_ttl token "
                   "ca_file ca_path cert_file key_file tls_server_name tls_skip_verify:bool jwt_auth_backend_path "
                   "name default_identity:any"),
    "tls": _keys("http:bool rpc:bool ca_file cert_file key_file rpc_upgrade_mode:bool verify_server_hostname:bool "
                 "verify_https_client:bool tls_cipher_suites tls_min_version tls_prefer_server_cipher_suites:bool"),
    "telemetry": _keys(
        f"{_DUR_TELEMETRY} statsite_address statsd_address datadog_address datadog_tags:strs "
        "prometheus_metrics:bool disable_hostname:bool use_node_name:bool publish_allocation_metrics:bool "
        "publish_node_metrics:bool prefix_filter:strs filter_default:bool include_alloc_metadata_in_metrics:bool "
        "disable_dispatched_job_summary_metrics:bool disable_allocation_hook_metrics:bool "
        "disable_quota_utilization_metrics:bool allowed_metadata_keys_in_metrics:strs "
        "disable_rpc_rate_metrics_labels:bool "
        "circonus_api_token circonus_api_app circonus_api_url circonus_submission_interval "
        "circonus_submission_url circonus_check_id circonus_check_force_metric_activation "
        "circonus_check_instance_id circonus_check_search_tag circonus_check_tags circonus_check_display_name "
        "circonus_broker_id circonus_broker_select_tag"),
    "limits": _keys("https_handshake_timeout:dur http_max_conns_per_client:int rpc_handshake_timeout:dur "
                    "rpc_max_conns_per_client:int rpc_default_write_rate:int"),
    "ui": _keys("enabled:bool content_security_policy:any consul:any vault:any label:any show_cli_hints:bool"),
}
# Built-in task drivers' plugin `config` keys; other plugins' configs are taken as written.
DRIVER_KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "raw_exec": _keys("enabled:bool no_cgroups:bool denied_host_uids denied_host_gids"),
    "exec": _keys("no_pivot_root:bool default_pid_mode default_ipc_mode allow_caps:strs denied_host_uids "
                  "denied_host_gids"),
    "java": _keys("default_pid_mode default_ipc_mode allow_caps:strs"),
    "qemu": _keys("image_paths:strs args_allowlist:strs"),
    "docker": _keys("endpoint auth:any tls:any gc:any volumes:any allow_privileged:bool allow_caps:strs "
                    "allow_runtimes:strs pull_activity_timeout infra_image infra_image_pull_timeout pids_limit:int "
                    "disable_log_collection:bool extra_labels:strs logging:any nvidia_runtime "
                    "windows_allow_insecure_container_admin:bool"),
}
_CLASSES: dict[str, type] = {"ports": Ports, "addresses": Addresses, "server": ServerBlock, "join": ServerJoin,
                             "scheduler": SchedulerDefaults, "preemption": Preemption, "client": ClientBlock,
                             "reserved": Reserved, "host_volume": HostVolume, "plugin": PluginConfig}
_FIELD = {"plugin": "plugins", "host_volume": "host_volumes"}  # HCL key -> attribute, where Nomad's names differ
_RANGES = {("ports", k): (1, 65535) for k in ("http", "rpc", "serf")} | {
    ("server", "bootstrap_expect"): (0, None), ("server", "raft_multiplier"): (1, 10),
    ("server", "raft_protocol"): (1, 3), ("server", "num_schedulers"): (0, None), ("join", "retry_max"): (0, None),
    ("server", "retry_max"): (0, None), ("server", "raft_snapshot_threshold"): (1, None)}
_CHOICES = {("agent", "log_level"): LOG_LEVELS, ("scheduler", "scheduler_algorithm"): ("binpack", "spread")}
_PORT_RANGES = re.compile(r"\s*(\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*)?\s*")
_DEPRECATED_JOIN = ("start_join", "retry_join", "retry_max", "retry_interval")
_MISSING = object()
_SCOPE = Scope()


def is_acted_on(path: str) -> bool:
    """Whether yurt acts on a dotted key ("server.encrypt", "consul.token"); unknown keys are not."""
    schema = "agent"
    for part in path.split("."):
        spec = SCHEMAS.get(schema, {}).get(part)
        if spec is None or not spec[1]:
            return False
        schema = spec[0].strip("={}[]")
    return True


# ---- decoding: syntax tree -> layer (nested dict of the keys a file sets) --------------------------------


class _Decoder:
    def __init__(self, filename: str, collector: Collector, warnings: list[str]):
        self.filename = filename
        self.collector = collector
        self.warnings = warnings
        self.labels: list[str] = []

    def error(self, node: Any, message: str) -> None:
        self.collector.error(node.line, node.column, "", message)

    def body(self, body: Body, schema: str, path: str, report: bool) -> dict[str, Any]:
        keys = SCHEMAS[schema] if not schema.startswith("driver:") else DRIVER_KEYS[schema[7:]]
        where = f" in {path} block" if path else ""
        out: dict[str, Any] = {}
        seen: dict[str, Any] = {}
        for node in sorted([*body.attributes, *body.blocks], key=lambda n: (n.line, n.column)):
            name = node.name if isinstance(node, Attribute) else node.type
            what = "key" if isinstance(node, Attribute) else "block"
            if name not in keys:
                self.error(node, f'unknown {what} "{name}"{where}' + did_you_mean(name, keys))
                continue
            kind, acted = keys[name]
            if name in seen and not kind.startswith("["):
                self.error(node, f'"{name}" is set more than once{where} (first at line {seen[name].line})')
                continue
            seen[name] = node
            dotted = f"{path}.{name}" if path else name
            if schema == "server" and name in _DEPRECATED_JOIN:
                self.warnings.append(f'{self.filename}:{node.line}: "server.{name}" is deprecated; write it '
                                     f"inside server_join {{ }}")
            if report and not acted:
                self.warnings.append(f'{self.filename}:{node.line}: "{dotted}" is accepted but not acted on yet')
            value = self.value(node, kind, dotted, report and acted)
            if value is _MISSING:
                continue
            value = self.check(node, schema, name, dotted, value)
            if kind.startswith("[") and value is not _MISSING:
                for label in value.keys() & out.get(name, {}).keys():
                    self.error(node, f'{name} "{label}" is defined more than once{where}')
                out.setdefault(name, {}).update(value)
            elif value is not _MISSING:
                out[name] = value
        if schema == "server":
            # Nomad 0.10 moved these into server_join and still reads the old spelling.
            for key in _DEPRECATED_JOIN:
                if key in out:
                    out.setdefault("server_join", {}).setdefault(key, out.pop(key))
        return out

    def value(self, node: Any, kind: str, dotted: str, report: bool) -> Any:
        if kind.startswith(("{", "={")):
            sub = self.as_body(node, dotted)
            return _MISSING if sub is None else self.body(sub, kind.strip("={}"), dotted, report)
        if kind.startswith("["):
            return self.labeled(node, kind[1:-1], dotted, report)
        if kind == "cfg":  # a plugin's config: checked against the driver's keys when yurt knows it
            label = self.labels[-1] if self.labels else ""
            if label in DRIVER_KEYS:
                sub = self.as_body(node, dotted)
                return _MISSING if sub is None else self.body(sub, f"driver:{label}", dotted, False)
            kind = "any"
        if kind in ("map", "any") and isinstance(node, Block):
            return self.freeform(node.body, kind == "map", dotted)
        if isinstance(node, Block):
            self.error(node, f'"{node.type}" is an argument, not a block: write {node.type} = ...')
            return _MISSING
        raw = self.eval(node.expr)
        if raw is _MISSING or raw is None:
            return _MISSING  # null leaves the key unset, as in HCL2
        try:
            return _convert(raw, kind.lstrip("!+"))
        except ValueError as exc:
            self.error(node.expr, f'invalid value for "{dotted}": {exc}')
            return _MISSING

    def labeled(self, node: Any, schema: str, dotted: str, report: bool) -> Any:
        # `name "label" { }`, or the JSON / nested form `name { label { } }` and `name = { label = { } }`.
        if isinstance(node, Block) and len(node.labels) == 1:
            pairs = [(node.labels[0], node.body)]
        elif isinstance(node, Block) and len(node.labels) > 1:
            self.error(node, f'a {node.type} block takes one label: {node.type} "name" {{ ... }}')
            return _MISSING
        else:
            outer = self.as_body(node, dotted)
            if outer is None:
                return _MISSING
            pairs = [(inner.name if isinstance(inner, Attribute) else inner.type, self.as_body(inner, dotted))
                     for inner in [*outer.attributes, *outer.blocks]]
        out = {}
        for label, sub in pairs:
            if sub is None:
                continue
            self.labels.append(label)
            out[label] = self.body(sub, schema, f"{dotted}.{label}", report)
            self.labels.pop()
            if schema == "host_volume" and not out[label].get("path"):
                self.error(node, f'Missing path in host_volume "{label}" config')
        return out

    def as_body(self, node: Any, dotted: str) -> Body | None:
        if isinstance(node, Block):
            if node.labels:
                self.error(node, f'a "{node.type}" block takes no label (found "{node.labels[0]}")')
            return node.body
        if isinstance(node.expr, TupleExpr) and len(node.expr.items) == 1:
            node = Attribute(node.line, node.column, node.name, node.expr.items[0])  # HCL JSON: [{...}] is a block
        if isinstance(node.expr, ObjectExpr):
            body = Body()
            for key, expr in node.expr.items:
                if not isinstance(key, str):
                    self.error(expr, f'keys in "{dotted}" must be plain names')
                else:
                    body.attributes.append(Attribute(expr.line, expr.column, key, expr))
            return body
        self.error(node, f'"{dotted}" is a block: write {node.name} {{ ... }}')
        return None

    def freeform(self, body: Body, strings: bool, dotted: str) -> Any:
        out: dict[str, Any] = {}
        for attr in body.attributes:
            raw = self.eval(attr.expr)
            if raw is not _MISSING:
                try:
                    out[attr.name] = coerce(raw, "string") if strings else raw
                except ValueError as exc:
                    self.error(attr.expr, f'invalid value for "{attr.name}" in {dotted}: {exc}')
        for block in body.blocks:
            if strings:
                self.error(block, f'"{dotted}" is a map of strings; "{block.type}" cannot be a block')
                continue
            inner = self.freeform(block.body, False, f"{dotted}.{block.type}")
            for label in reversed(block.labels):
                inner = {label: inner}
            previous = out.get(block.type)
            # A block given twice becomes a list, as Nomad's plugin config decoding does.
            out[block.type] = inner if previous is None else [*_as_list(previous), inner]
        return out

    def eval(self, expr: Expr) -> Any:
        try:
            return evaluate(expr, _SCOPE)
        except EvalError as exc:
            self.collector.error(exc.line, exc.column, "", exc.message.replace("jobspecs", "agent configuration"))
        except RuntimeReference as ref:
            hint = "; did you mean null?" if ref.node.name == "nil" else ""
            self.error(ref.node, f'unknown name "{ref.node.name}": agent configuration takes values (strings, '
                                 f"numbers, true/false, lists and maps), not references{hint}")
        return _MISSING

    def check(self, node: Any, schema: str, name: str, dotted: str, value: Any) -> Any:
        low, high = _RANGES.get((schema, name), (None, None))
        expr = getattr(node, "expr", node)
        if isinstance(value, int) and low is not None and (value < low or (high is not None and value > high)):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.error(expr, f'"{dotted}" must be {bound}, got {value}')
            return _MISSING
        choices = _CHOICES.get((schema, name))
        if choices and value and value.upper() not in {c.upper() for c in choices}:
            allowed = ", ".join(choices)
            self.error(expr, f'invalid value "{value}" for "{dotted}": must be one of {allowed}'
                             + did_you_mean(value, choices).replace(";", ","))
            return _MISSING
        if name == "reserved_ports" and not _PORT_RANGES.fullmatch(value):
            self.error(expr, f'reserved_ports "{value}" is not a list of ports and ranges like "22,80,8000-8100"')
            return _MISSING
        return value


def _convert(raw: Any, kind: str) -> Any:
    """An evaluated value as the kind a key takes; ValueError says why it is not one."""
    if kind == "dur":
        if not isinstance(raw, str):
            raise ValueError(f'a duration like "30s" is required, not {raw!r}')
        seconds = parse_duration(raw) / NS
        if seconds < 0:
            raise ValueError(f'a duration must not be negative, got "{raw}"')
        return seconds
    if kind == "strs" and isinstance(raw, str):
        return [raw]  # HCL1 took a lone string where a list was expected
    names = {"str": "string", "int": "int", "num": "number", "bool": "bool", "strs": "strings",
             "map": "string_map", "any": "any", "cfg": "any"}
    return coerce(raw, names[kind])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- reading files ----------------------------------------------------------------------------------

_QUOTED_KEY = re.compile(r'^(\s*)("(?:[^"\\\n]|\\.)*")(\s*=(?!=))')
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\s*$")


def _unquote_keys(text: str) -> tuple[str, dict[str, str]]:
    """Nomad's agent config is HCL1, which allows `"key" = value` in blocks (chroot_env, options); HCL2 does
    not. Such keys become same-length placeholder names (columns stay right), restored after parsing."""
    names: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    heredoc = None
    for i, line in enumerate(lines):
        if heredoc is not None:
            heredoc = None if line.strip() == heredoc else heredoc
            continue
        match = _QUOTED_KEY.match(line)
        if match:
            quoted = match.group(2)
            try:
                key = json.loads(quoted)
            except ValueError:
                key = quoted[1:-1]
            token = f"_q{len(names):x}".ljust(len(quoted), "_")
            names[token] = key
            lines[i] = match.group(1) + token + line[match.end(2):]
        found = _HEREDOC.search(line)
        heredoc = found.group(1) if found else None
    return "".join(lines), names


def _restore(body: Body, names: dict[str, str]) -> Body:
    for attr in body.attributes:
        attr.name = names.get(attr.name, attr.name)
        _restore_expr(attr.expr, names)
    for block in body.blocks:
        block.type = names.get(block.type, block.type)
        _restore(block.body, names)
    return body


def _restore_expr(expr: Expr, names: dict[str, str]) -> None:
    if isinstance(expr, ObjectExpr):
        expr.items = [(names.get(k, k) if isinstance(k, str) else k, v) for k, v in expr.items]
        for _, value in expr.items:
            _restore_expr(value, names)
    elif isinstance(expr, TupleExpr):
        for item in expr.items:
            _restore_expr(item, names)


def _parse_file(path: str) -> Body:
    from orchestrator.jobspec.syntax import parse_body, parse_expression  # python-hcl2: only for a config file

    text = read_text(path, purpose="config")
    if not (path.endswith(".json") or text.lstrip().startswith("{")):
        hcl, names = _unquote_keys(text)
        return _restore(parse_body(hcl, path), names)
    # JSON: checked by the json module for its exact error, then read as an HCL2 object expression (JSON
    # objects are valid HCL2 objects), which gives every value its line and column.
    try:
        json.loads(text)
        body = text.lstrip()
        skipped = text[: len(text) - len(body)]  # HCL wants the object right after "x = ": keep positions
        document = parse_expression(body.rstrip(), skipped.count("\n") + 1, len(skipped.rsplit("\n", 1)[-1]) + 1)
    except json.JSONDecodeError as exc:
        raise ConfigError([Diagnostic(path, exc.lineno, exc.colno, "", f"invalid JSON: {exc.msg}")]) from None
    except ValueError as exc:
        raise ConfigError([Diagnostic(path, None, None, "", f"unsupported JSON: {exc}")]) from None
    if not isinstance(document, ObjectExpr):
        raise ConfigError([Diagnostic(path, 1, 1, "", "a JSON agent configuration must be an object")])
    return Body(attributes=[Attribute(v.line, v.column, k, v) for k, v in document.items if isinstance(k, str)])


def parse_config_file(path: str) -> tuple[dict[str, Any], list[str]]:
    """One file's layer (the keys it sets, decoded) and its warnings; ConfigError lists all its problems."""
    collector = Collector(path)
    warnings: list[str] = []
    try:
        body = _parse_file(path)
    except JobspecError as exc:
        raise ConfigError(exc.diagnostics) from None
    layer = _Decoder(path, collector, warnings).body(body, "agent", "", True)
    if collector.diagnostics:
        raise ConfigError(sorted(collector.diagnostics, key=lambda d: (d.line or 0, d.column or 0)))
    return layer, warnings


def _config_paths(path: str, warnings: list[str]) -> list[str]:
    if not os.path.isdir(path):
        return [os.path.normpath(path)]
    # A directory: its .hcl and .json files in lexical order, skipping editors' backup and lock files.
    names = sorted(n for n in os.listdir(path) if n.endswith((".hcl", ".json")) and not n.startswith(".#")
                   and not (n.startswith("#") and n.endswith("#")) and os.path.isfile(os.path.join(path, n)))
    if not names:
        warnings.append(f"No configuration loaded from {path}")
    return [os.path.join(path, n) for n in names]


def load_config_files(paths: list[str], base: AgentConfig | None = None) -> tuple[AgentConfig, list[str]]:
    """Merge each file (or directory of files) over `base` (Nomad's defaults) in order; every file's
    problems are reported together in one ConfigError."""
    config = copy.deepcopy(base) if base is not None else AgentConfig()
    warnings: list[str] = []
    problems: list[Diagnostic] = []
    for path in paths:
        for file in _config_paths(path, warnings):
            try:
                layer, found = parse_config_file(file)
            except ConfigError as exc:
                problems.extend(exc.diagnostics)
                continue
            warnings.extend(found)
            apply_layer(config, layer)
            config.files.append(file)
    if problems:
        raise ConfigError(problems)
    return config, warnings


# ---- merging, as Nomad's Config.Merge -------------------------------------------------------------------


def apply_layer(config: AgentConfig, layer: dict[str, Any]) -> None:
    """Merge a layer (from a file or from flags) over `config`: a later non-empty value wins, maps merge,
    server lists append, and blocks Nomad replaces whole (plugins, default_scheduler_config) are replaced."""
    _apply(config, layer, "agent", force=False)


def _apply(target: Any, layer: dict[str, Any], schema: str, force: bool) -> None:
    for name, new in layer.items():
        kind = SCHEMAS[schema][name][0]
        attr = _FIELD.get(name, name)
        if isinstance(target, dict) or attr not in target.__dataclass_fields__:
            holder = target if isinstance(target, dict) else target.other
            holder[name] = _merged(holder.get(name), new, kind, force)
        else:
            setattr(target, attr, _merged(getattr(target, attr), new, kind, force))


def _merged(current: Any, new: Any, kind: str, force: bool) -> Any:
    if kind.startswith("{"):
        target = current if current is not None else _fresh(kind[1:-1])
        _apply(target, new, kind[1:-1], force)
        return target
    # A replaced block starts from its defaults, and what it says applies even when false or 0.
    if kind.startswith("={"):
        target = _fresh(kind[2:-1])
        _apply(target, new, kind[2:-1], True)
        return target
    if kind.startswith("["):
        out = dict(current or {})
        for label, sub in new.items():
            out[label] = _fresh(kind[1:-1])
            _apply(out[label], sub, kind[1:-1], True)
        return out
    if kind == "map":
        return {**(current or {}), **new}
    if kind.startswith("+"):
        return [*(current or []), *new]
    # Nomad's rule: an empty value ("", 0, false) does not override; a key set nowhere before still takes it.
    if force or current is None or kind.startswith("!") or new not in ("", 0, False, None, [], {}):
        return copy.deepcopy(new)
    return current


def _fresh(schema: str) -> Any:
    return _CLASSES[schema]() if schema in _CLASSES else {}


# ---- defaults, addresses and what the server and client take -----------------------------------------


def dev_config() -> AgentConfig:
    """`-dev`: server and client in one process on 127.0.0.1, state in memory, raw_exec enabled."""
    config = AgentConfig(name=socket.gethostname(), bind_addr="127.0.0.1", log_level="DEBUG", enable_debug=True,
                         dev_mode=True, data_dir=None)
    config.server.enabled = True
    config.server.bootstrap_expect = 1
    config.client.enabled = True
    config.client.network_interface = "lo0" if sys.platform == "darwin" else "lo"
    config.client.options = {"driver.raw_exec.enable": "true", "driver.docker.volumes": "true"}
    config.plugins["raw_exec"] = PluginConfig(config={"enabled": True})
    return config


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised(config: AgentConfig, service: str) -> str:
    """The "ip:port" a service is advertised at. build_agent_config resolves advertise addresses the way
    Nomad does (flags.normalize_addresses); before that this falls back to the bind address."""
    given = getattr(config.advertise, service)
    if re.search(r":\d+$", given) and (given.count(":") == 1 or given.startswith("[")):
        return given
    host = given or getattr(config.addresses, service) or config.bind_addr
    return join_host_port(host.strip("[]"), getattr(config.ports, service))


def to_server_config(config: AgentConfig) -> ServerConfig:
    """The server's tunables; its id is the advertised RPC address (Raft protocol 2 style)."""
    server = config.server
    preempt = server.default_scheduler_config.preemption_config
    scheduler = SchedulerConfig(algorithm=server.default_scheduler_config.scheduler_algorithm,
                                preempt_system=preempt.system_scheduler_enabled,
                                preempt_batch=preempt.batch_scheduler_enabled,
                                preempt_service=preempt.service_scheduler_enabled,
                                preempt_sysbatch=preempt.sysbatch_scheduler_enabled)
    # raft_multiplier stretches every Raft timeout alike: scaling the tick keeps their ratios.
    tick = ServerConfig.__dataclass_fields__["tick_interval"].default * max(1, server.raft_multiplier)
    return ServerConfig(id=advertised(config, "rpc"), bootstrap_expect=max(1, server.bootstrap_expect),
                        region=config.region, datacenter=config.datacenter, tick_interval=tick,
                        snapshot_threshold=server.raft_snapshot_threshold,
                        snapshot_interval=server.raft_snapshot_interval,
                        min_heartbeat_ttl=server.min_heartbeat_ttl,
                        max_heartbeats_per_second=server.max_heartbeats_per_second,
                        heartbeat_grace=server.heartbeat_grace, failover_heartbeat_ttl=server.failover_heartbeat_ttl,
                        scheduler=scheduler, gc_interval=server.job_gc_interval)


def gc_thresholds(config: AgentConfig) -> GCThresholds:
    """The server block's *_gc_threshold settings (ServerConfig has no place for them yet)."""
    s = config.server
    return GCThresholds(eval_gc_threshold=s.eval_gc_threshold, job_gc_threshold=s.job_gc_threshold,
                        node_gc_threshold=s.node_gc_threshold, deployment_gc_threshold=s.deployment_gc_threshold,
                        batch_eval_gc_threshold=s.batch_eval_gc_threshold)


def to_client_config(config: AgentConfig) -> ClientConfig:
    """The client's servers ("host:port", port 4647 when left out) and kill timeout cap; an agent that is
    also a server talks to itself when no servers are listed."""
    servers = [*config.client.servers, *config.client.server_join.retry_join]
    servers = [s if re.search(r":\d+$", s) else join_host_port(s, 4647) for s in dict.fromkeys(servers)]
    if not servers and config.server.enabled:
        servers = [advertised(config, "rpc")]
    return ClientConfig(servers=servers, max_kill_timeout=config.client.max_kill_timeout)

