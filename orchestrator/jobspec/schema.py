"""The jobspec schema as data: each block's arguments and sub-blocks, with API names and value kinds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    """An argument: its API JSON name, value kind, and the values or range Nomad accepts."""

    api: str
    kind: str = "string"  # string, int, number, bool, duration, strings, string_map, any
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Sub:
    """A sub-block: API name, the schema of its body, and how repeats and labels are stored.

    mode: "single" (one dict), "list" (dict per block), "map" (dicts keyed by label).
    label: API key that receives the block's one label; None means the block takes no label.
    Schemas "freeform" (driver config, opaque blocks) and "string_map" (env, meta) are decoded
    without a table and may also be written as `name = { ... }`.
    """

    api: str
    schema: str
    mode: str = "single"
    label: str | None = None


@dataclass(frozen=True)
class BlockSchema:
    fields: dict[str, Field] = field(default_factory=dict)
    blocks: dict[str, Sub] = field(default_factory=dict)


FREEFORM = "freeform"
STRING_MAP = "string_map"

JOB_TYPES = ("service", "batch", "system", "sysbatch")
_COMPARISONS = (
    "=",
    "==",
    "is",
    "!=",
    "not",
    ">",
    ">=",
    "<",
    "<=",
    "regexp",
    "set_contains",
    "set_contains_all",
    "set_contains_any",
    "version",
    "semver",
)
CONSTRAINT_OPERATORS = (*_COMPARISONS, "distinct_hosts", "distinct_property", "is_set", "is_not_set")
AFFINITY_OPERATORS = _COMPARISONS
# Constraint arguments that name the operator themselves: `version = ">= 1.2"` is operator "version".
CONSTRAINT_SHORTHANDS = (
    "version",
    "semver",
    "regexp",
    "set_contains",
    "set_contains_any",
    "set_contains_all",
    "distinct_hosts",
    "distinct_property",
)

_CONSTRAINT_COMMON = {
    "attribute": Field("LTarget"),
    "value": Field("RTarget"),
}
_SHORTHAND_FIELDS = {name: Field(f"@{name}", "any") for name in CONSTRAINT_SHORTHANDS}

_CHECK_RESTART = BlockSchema(
    fields={
        "limit": Field("Limit", "int", minimum=0),
        "grace": Field("Grace", "duration"),
        "ignore_warnings": Field("IgnoreWarnings", "bool"),
    },
)

SCHEMAS: dict[str, BlockSchema] = {
    "job": BlockSchema(
        fields={
            "name": Field("Name"),
            "id": Field("ID"),
            "region": Field("Region"),
            "namespace": Field("Namespace"),
            "node_pool": Field("NodePool"),
            "type": Field("Type", choices=JOB_TYPES),
            "priority": Field("Priority", "int", minimum=1, maximum=100),
            "datacenters": Field("Datacenters", "strings"),
            "all_at_once": Field("AllAtOnce", "bool"),
            "vault_token": Field("VaultToken"),
            "consul_token": Field("ConsulToken"),
            "stop": Field("Stop", "bool"),
        },
        blocks={
            "group": Sub("TaskGroups", "group", "list", "Name"),
            "constraint": Sub("Constraints", "constraint", "list"),
            "affinity": Sub("Affinities", "affinity", "list"),
            "spread": Sub("Spreads", "spread", "list"),
            "update": Sub("Update", "update"),
            "migrate": Sub("Migrate", "migrate"),
            "reschedule": Sub("Reschedule", "reschedule"),
            "periodic": Sub("Periodic", "periodic"),
            "parameterized": Sub("ParameterizedJob", "parameterized"),
            "meta": Sub("Meta", STRING_MAP),
            "vault": Sub("Vault", "vault"),
            "multiregion": Sub("Multiregion", FREEFORM),
            "consul": Sub("Consul", FREEFORM),
            "ui": Sub("UI", FREEFORM),
        },
    ),
    "group": BlockSchema(
        fields={
            "count": Field("Count", "int", minimum=0),
            "shutdown_delay": Field("ShutdownDelay", "duration"),
            "stop_after_client_disconnect": Field("StopAfterClientDisconnect", "duration"),
            "max_client_disconnect": Field("MaxClientDisconnect", "duration"),
            "prevent_reschedule_on_lost": Field("PreventRescheduleOnLost", "bool"),
        },
        blocks={
            "task": Sub("Tasks", "task", "list", "Name"),
            "constraint": Sub("Constraints", "constraint", "list"),
            "affinity": Sub("Affinities", "affinity", "list"),
            "spread": Sub("Spreads", "spread", "list"),
            "network": Sub("Networks", "network", "list"),
            "service": Sub("Services", "service", "list"),
            "restart": Sub("RestartPolicy", "restart"),
            "reschedule": Sub("ReschedulePolicy", "reschedule"),
            "update": Sub("Update", "update"),
            "migrate": Sub("Migrate", "migrate"),
            "ephemeral_disk": Sub("EphemeralDisk", "ephemeral_disk"),
            "meta": Sub("Meta", STRING_MAP),
            "volume": Sub("Volumes", "volume", "map", "Name"),
            "scaling": Sub("Scaling", "scaling"),
            "vault": Sub("Vault", "vault"),
            "consul": Sub("Consul", FREEFORM),
            "disconnect": Sub("Disconnect", FREEFORM),
        },
    ),
    "task": BlockSchema(
        fields={
            "driver": Field("Driver"),
            "user": Field("User"),
            "kill_timeout": Field("KillTimeout", "duration"),
            "kill_signal": Field("KillSignal"),
            "shutdown_delay": Field("ShutdownDelay", "duration"),
            "leader": Field("Leader", "bool"),
            "kind": Field("Kind"),
        },
        blocks={
            "config": Sub("Config", FREEFORM),
            "env": Sub("Env", STRING_MAP),
            "meta": Sub("Meta", STRING_MAP),
            "resources": Sub("Resources", "resources"),
            "service": Sub("Services", "service", "list"),
            "constraint": Sub("Constraints", "constraint", "list"),
            "affinity": Sub("Affinities", "affinity", "list"),
            "restart": Sub("RestartPolicy", "restart"),
            "logs": Sub("LogConfig", "logs"),
            "artifact": Sub("Artifacts", "artifact", "list"),
            "template": Sub("Templates", "template", "list"),
            "vault": Sub("Vault", "vault"),
            "dispatch_payload": Sub("DispatchPayload", "dispatch_payload"),
            "lifecycle": Sub("Lifecycle", "lifecycle"),
            "volume_mount": Sub("VolumeMounts", "volume_mount", "list"),
            "csi_plugin": Sub("CSIPluginConfig", "csi_plugin"),
            "scaling": Sub("ScalingPolicies", FREEFORM, "list"),
            "consul": Sub("Consul", FREEFORM),
            "identity": Sub("Identities", FREEFORM, "list"),
            "action": Sub("Actions", FREEFORM, "list"),
            "schedule": Sub("Schedule", FREEFORM),
        },
    ),
    "resources": BlockSchema(
        fields={
            "cpu": Field("CPU", "int", minimum=0),
            "cores": Field("Cores", "int", minimum=0),
            "memory": Field("MemoryMB", "int", minimum=0),
            "memory_max": Field("MemoryMaxMB", "int", minimum=0),
            "disk": Field("DiskMB", "int", minimum=0),
            "iops": Field("IOPS", "int", minimum=0),
            "secrets": Field("SecretsMB", "int", minimum=0),
        },
        blocks={
            "network": Sub("Networks", "network", "list"),
            "device": Sub("Devices", "device", "list", "Name"),
            "numa": Sub("NUMA", FREEFORM),
        },
    ),
    "network": BlockSchema(
        fields={
            "mode": Field("Mode"),
            "mbits": Field("MBits", "int", minimum=0),
            "hostname": Field("Hostname"),
        },
        blocks={
            # Split into ReservedPorts/DynamicPorts after decoding (see decoder hooks).
            "port": Sub("Ports", "port", "list", "Label"),
            "dns": Sub("DNS", "dns"),
            "cni": Sub("CNI", FREEFORM),
        },
    ),
    "port": BlockSchema(
        fields={
            "static": Field("Value", "int", minimum=0, maximum=65535),
            "to": Field("To", "int", minimum=-1, maximum=65535),
            "host_network": Field("HostNetwork"),
            "ignore_collision": Field("IgnoreCollision", "bool"),
        },
    ),
    "dns": BlockSchema(
        fields={
            "servers": Field("Servers", "strings"),
            "searches": Field("Searches", "strings"),
            "options": Field("Options", "strings"),
        },
    ),
    "device": BlockSchema(
        fields={"count": Field("Count", "int", minimum=0)},
        blocks={
            "constraint": Sub("Constraints", "constraint", "list"),
            "affinity": Sub("Affinities", "affinity", "list"),
        },
    ),
    "constraint": BlockSchema(
        fields={
            **_CONSTRAINT_COMMON,
            "operator": Field("Operand", choices=CONSTRAINT_OPERATORS),
            **_SHORTHAND_FIELDS,
        },
    ),
    "affinity": BlockSchema(
        fields={
            **_CONSTRAINT_COMMON,
            "operator": Field("Operand", choices=AFFINITY_OPERATORS),
            "weight": Field("Weight", "int", minimum=-100, maximum=100),
            **{k: v for k, v in _SHORTHAND_FIELDS.items() if not k.startswith("distinct")},
        },
    ),
    "spread": BlockSchema(
        fields={"attribute": Field("Attribute"), "weight": Field("Weight", "int", minimum=0, maximum=100)},
        blocks={"target": Sub("SpreadTarget", "target", "list", "Value")},
    ),
    "target": BlockSchema(fields={"percent": Field("Percent", "int", minimum=0, maximum=100)}),
    "restart": BlockSchema(
        fields={
            "attempts": Field("Attempts", "int", minimum=0),
            "interval": Field("Interval", "duration"),
            "delay": Field("Delay", "duration"),
            "mode": Field("Mode", choices=("fail", "delay")),
            "render_templates": Field("RenderTemplates", "bool"),
        },
    ),
    "reschedule": BlockSchema(
        fields={
            "attempts": Field("Attempts", "int", minimum=0),
            "interval": Field("Interval", "duration"),
            "delay": Field("Delay", "duration"),
            "delay_function": Field("DelayFunction", choices=("constant", "exponential", "fibonacci")),
            "max_delay": Field("MaxDelay", "duration"),
            "unlimited": Field("Unlimited", "bool"),
        },
    ),
    "update": BlockSchema(
        fields={
            "max_parallel": Field("MaxParallel", "int", minimum=0),
            "health_check": Field("HealthCheck", choices=("checks", "task_states", "manual")),
            "min_healthy_time": Field("MinHealthyTime", "duration"),
            "healthy_deadline": Field("HealthyDeadline", "duration"),
            "progress_deadline": Field("ProgressDeadline", "duration"),
            "auto_revert": Field("AutoRevert", "bool"),
            "auto_promote": Field("AutoPromote", "bool"),
            "canary": Field("Canary", "int", minimum=0),
            "stagger": Field("Stagger", "duration"),
        },
    ),
    "migrate": BlockSchema(
        fields={
            "max_parallel": Field("MaxParallel", "int", minimum=0),
            "health_check": Field("HealthCheck", choices=("checks", "task_states")),
            "min_healthy_time": Field("MinHealthyTime", "duration"),
            "healthy_deadline": Field("HealthyDeadline", "duration"),
        },
    ),
    "periodic": BlockSchema(
        fields={
            "cron": Field("Spec"),
            "crons": Field("Specs", "strings"),
            "prohibit_overlap": Field("ProhibitOverlap", "bool"),
            "time_zone": Field("TimeZone"),
            "enabled": Field("Enabled", "bool"),
        },
    ),
    "parameterized": BlockSchema(
        fields={
            "payload": Field("Payload", choices=("optional", "required", "forbidden")),
            "meta_required": Field("MetaRequired", "strings"),
            "meta_optional": Field("MetaOptional", "strings"),
        },
    ),
    "service": BlockSchema(
        fields={
            "name": Field("Name"),
            "port": Field("PortLabel"),
            "tags": Field("Tags", "strings"),
            "canary_tags": Field("CanaryTags", "strings"),
            "enable_tag_override": Field("EnableTagOverride", "bool"),
            "address_mode": Field("AddressMode", choices=("alloc", "auto", "driver", "host")),
            "address": Field("Address"),
            "provider": Field("Provider", choices=("consul", "nomad")),
            "task": Field("TaskName"),
            "on_update": Field("OnUpdate", choices=("require_healthy", "ignore_warnings", "ignore")),
            "tagged_addresses": Field("TaggedAddresses", "string_map"),
            "cluster": Field("Cluster"),
            "kind": Field("Kind"),
        },
        blocks={
            "check": Sub("Checks", "check", "list"),
            "check_restart": Sub("CheckRestart", "check_restart"),
            "meta": Sub("Meta", STRING_MAP),
            "canary_meta": Sub("CanaryMeta", STRING_MAP),
            "connect": Sub("Connect", FREEFORM),
            "identity": Sub("Identity", FREEFORM),
            "weights": Sub("Weights", FREEFORM),
        },
    ),
    "check": BlockSchema(
        fields={
            "name": Field("Name"),
            "type": Field("Type", choices=("http", "tcp", "script", "grpc")),
            "command": Field("Command"),
            "args": Field("Args", "strings"),
            "path": Field("Path"),
            "protocol": Field("Protocol"),
            "port": Field("PortLabel"),
            "expose": Field("Expose", "bool"),
            "interval": Field("Interval", "duration"),
            "timeout": Field("Timeout", "duration"),
            "initial_status": Field("InitialStatus", choices=("passing", "warning", "critical")),
            "tls_server_name": Field("TLSServerName"),
            "tls_skip_verify": Field("TLSSkipVerify", "bool"),
            "method": Field("Method"),
            "body": Field("Body"),
            "address_mode": Field("AddressMode", choices=("alloc", "driver", "host")),
            "grpc_service": Field("GRPCService"),
            "grpc_use_tls": Field("GRPCUseTLS", "bool"),
            "task": Field("TaskName"),
            "on_update": Field("OnUpdate"),
            "success_before_passing": Field("SuccessBeforePassing", "int", minimum=0),
            "failures_before_critical": Field("FailuresBeforeCritical", "int", minimum=0),
            "failures_before_warning": Field("FailuresBeforeWarning", "int", minimum=0),
            "notes": Field("Notes"),
        },
        blocks={"check_restart": Sub("CheckRestart", "check_restart"), "header": Sub("Header", FREEFORM)},
    ),
    "check_restart": _CHECK_RESTART,
    "template": BlockSchema(
        fields={
            "data": Field("EmbeddedTmpl"),
            "destination": Field("DestPath"),
            "source": Field("SourcePath"),
            "env": Field("Envvars", "bool"),
            "change_mode": Field("ChangeMode", choices=("noop", "restart", "signal", "script")),
            "change_signal": Field("ChangeSignal"),
            "left_delimiter": Field("LeftDelim"),
            "right_delimiter": Field("RightDelim"),
            "perms": Field("Perms"),
            "uid": Field("Uid", "int"),
            "gid": Field("Gid", "int"),
            "splay": Field("Splay", "duration"),
            "vault_grace": Field("VaultGrace", "duration"),
            "error_on_missing_key": Field("ErrMissingKey", "bool"),
            "once": Field("Once", "bool"),
        },
        blocks={"wait": Sub("Wait", "wait"), "change_script": Sub("ChangeScript", FREEFORM)},
    ),
    "wait": BlockSchema(fields={"min": Field("Min", "duration"), "max": Field("Max", "duration")}),
    "artifact": BlockSchema(
        fields={
            "source": Field("GetterSource"),
            "destination": Field("RelativeDest"),
            "mode": Field("GetterMode", choices=("any", "file", "dir")),
            "chown": Field("Chown", "bool"),
        },
        blocks={"options": Sub("GetterOptions", STRING_MAP), "headers": Sub("GetterHeaders", STRING_MAP)},
    ),
    "volume": BlockSchema(
        fields={
            "type": Field("Type", choices=("host", "csi")),
            "source": Field("Source"),
            "read_only": Field("ReadOnly", "bool"),
            "per_alloc": Field("PerAlloc", "bool"),
            "sticky": Field("Sticky", "bool"),
            "access_mode": Field("AccessMode"),
            "attachment_mode": Field("AttachmentMode"),
        },
        blocks={"mount_options": Sub("MountOptions", "mount_options")},
    ),
    "mount_options": BlockSchema(
        fields={"fs_type": Field("FSType"), "mount_flags": Field("MountFlags", "strings")},
    ),
    "volume_mount": BlockSchema(
        fields={
            "volume": Field("Volume"),
            "destination": Field("Destination"),
            "read_only": Field("ReadOnly", "bool"),
            "propagation_mode": Field(
                "PropagationMode", choices=("private", "host-to-task", "bidirectional")
            ),
            "selinux_label": Field("SELinuxLabel"),
        },
    ),
    "lifecycle": BlockSchema(
        fields={
            "hook": Field("Hook", choices=("prestart", "poststart", "poststop")),
            "sidecar": Field("Sidecar", "bool"),
        },
    ),
    "ephemeral_disk": BlockSchema(
        fields={
            "sticky": Field("Sticky", "bool"),
            "size": Field("SizeMB", "int", minimum=0),
            "migrate": Field("Migrate", "bool"),
        },
    ),
    "logs": BlockSchema(
        fields={
            "max_files": Field("MaxFiles", "int", minimum=1),
            "max_file_size": Field("MaxFileSizeMB", "int", minimum=1),
            "disabled": Field("Disabled", "bool"),
            "enabled": Field("Enabled", "bool"),
        },
    ),
    "dispatch_payload": BlockSchema(fields={"file": Field("File")}),
    "scaling": BlockSchema(
        fields={
            "enabled": Field("Enabled", "bool"),
            "min": Field("Min", "int", minimum=0),
            "max": Field("Max", "int", minimum=0),
        },
        blocks={"policy": Sub("Policy", FREEFORM)},
    ),
    "vault": BlockSchema(
        fields={
            "policies": Field("Policies", "strings"),
            "env": Field("Env", "bool"),
            "disable_file": Field("DisableFile", "bool"),
            "change_mode": Field("ChangeMode", choices=("noop", "restart", "signal")),
            "change_signal": Field("ChangeSignal"),
            "namespace": Field("Namespace"),
            "role": Field("Role"),
            "cluster": Field("Cluster"),
        },
    ),
    "csi_plugin": BlockSchema(
        fields={
            "id": Field("ID"),
            "type": Field("Type", choices=("node", "controller", "monolith")),
            "mount_dir": Field("MountDir"),
            "stage_publish_base_dir": Field("StagePublishBaseDir"),
            "health_timeout": Field("HealthTimeout", "duration"),
        },
    ),
}
