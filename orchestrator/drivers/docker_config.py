"""The docker driver's task and plugin configuration, turned into the engine's container-create arguments."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.client.task_driver import DriverError
from orchestrator.structs import Allocation, Task

MIB = 1024 * 1024
LABEL_PREFIX = "com.hashicorp.nomad."
LABEL_ALLOC_ID = LABEL_PREFIX + "alloc_id"
LABEL_TASK_NAME = LABEL_PREFIX + "task_name"
_VARIABLE = re.compile(r"\$\{([^}]+)\}")

# Task config keys this driver acts on, and keys Nomad accepts that have no effect here (offline engine, no
# registry auth, Nomad-only logging plumbing). Any other key is refused, as Nomad's config schema refuses it.
HANDLED_KEYS = frozenset({
    "image", "command", "args", "entrypoint", "work_dir", "ports", "port_map", "labels", "volumes", "mounts",
    "mount", "network_mode", "hostname", "dns_servers", "dns_search_domains", "dns_options", "extra_hosts",
    "privileged", "cap_add", "cap_drop", "tty", "interactive", "shm_size", "init", "sysctl", "security_opt",
    "ipc_mode", "pid_mode", "uts_mode", "readonly_rootfs", "pids_limit", "memory_hard_limit", "ulimit",
    "mac_address", "force_pull",
})
IGNORED_KEYS = frozenset({
    "auth", "auth_soft_fail", "image_pull_timeout", "load", "logging", "cpu_hard_limit", "cpu_cfs_period",
    "advertise_ipv6_address", "storage_opt", "devices", "volume_driver", "userns_mode", "ipv4_address",
    "ipv6_address", "network_aliases", "cpuset_cpus", "isolation", "runtime", "healthchecks",
})


def block(value: Any) -> dict[str, Any]:
    """A config block as a dict: HCL decoders give `labels { a = "b" }` as a dict or a list of dicts."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(block(item))
        return merged
    raise ValueError(f"expected a block, got {value!r}")


def _blocks(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [block(item) for item in value]


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(slots=True)
class PluginConfig:
    """`plugin "docker" { config { ... } }`: the engine endpoint and what tasks are allowed to do."""

    endpoint: str = ""  # empty: DOCKER_HOST and the other DOCKER_* variables, else the default socket
    volumes_enabled: bool = False  # host paths outside the task dir, as Nomad's volumes.enabled
    allow_privileged: bool = False
    gc_container: bool = True  # remove a task's container once it has exited
    tls: dict[str, str] = field(default_factory=dict)  # cert, key, ca

    @classmethod
    def parse(cls, config: dict[str, Any] | None) -> PluginConfig:
        config = block(config)
        volumes = block(config.get("volumes"))
        gc = block(config.get("gc"))
        return cls(endpoint=str(config.get("endpoint") or ""),
                   volumes_enabled=_bool(volumes.get("enabled", False)),
                   allow_privileged=_bool(config.get("allow_privileged", False)),
                   gc_container=_bool(gc.get("container", True)),
                   tls={k: str(v) for k, v in block(config.get("tls")).items()})


def task_limits(alloc: Allocation, task: Task) -> tuple[int, int, int]:
    """(cpu shares, memory MB, memory max MB) from the allocation's resources, else the task's."""
    allocated = alloc.allocated_resources.tasks.get(task.name)
    cpu = memory = memory_max = 0
    if allocated is not None:
        cpu = int(allocated.cpu.get("CpuShares", 0) or 0)
        memory = int(allocated.memory.get("MemoryMB", 0) or 0)
        memory_max = int(allocated.memory.get("MemoryMaxMB", 0) or 0)
    return (cpu or task.resources.cpu, memory or task.resources.memory_mb,
            memory_max or task.resources.memory_max_mb)


def nomad_labels(alloc: Allocation, task: Task) -> dict[str, str]:
    job = alloc.job
    return {
        LABEL_ALLOC_ID: alloc.id,
        LABEL_PREFIX + "job_id": alloc.job_id or (job.id if job else ""),
        LABEL_PREFIX + "job_name": job.name if job else alloc.job_id,
        LABEL_PREFIX + "task_group_name": alloc.task_group,
        LABEL_TASK_NAME: task.name,
        LABEL_PREFIX + "namespace": alloc.namespace,
        LABEL_PREFIX + "node_id": alloc.node_id,
        LABEL_PREFIX + "node_name": alloc.node_name,
    }


def port_bindings(alloc: Allocation, task: Task, config: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """`{"6379/tcp": [(host_ip, host_port)], ...}`: the group ports named in `ports`, else the task's legacy
    network ports (through `port_map`); published on tcp and udp on the node address, as Nomad does."""
    bindings: dict[str, list[tuple[str, int]]] = {}

    def publish(host_ip: str, host_port: int, container_port: int) -> None:
        for proto in ("tcp", "udp"):
            bindings.setdefault(f"{container_port}/{proto}", []).append((host_ip or "0.0.0.0", host_port))

    shared = alloc.allocated_resources.shared
    for label in config.get("ports") or []:
        mapping = next((p for p in shared.ports if p.label == label), None)
        if mapping is None:  # older allocations carry group ports only in the shared networks
            net = next((n for n in shared.networks for p in n.all_ports() if p.label == label), None)
            port = next((p for p in net.all_ports() if p.label == label), None) if net else None
            if port is None:
                raise ValueError(f"Port {label!r} not found, check network block")
            publish(net.ip, port.value, port.to if port.to > 0 else port.value)
            continue
        publish(mapping.host_ip, mapping.value, mapping.to if mapping.to > 0 else mapping.value)
    port_map = {str(k): int(v) for k, v in block(config.get("port_map")).items()}
    allocated = alloc.allocated_resources.tasks.get(task.name)
    networks = allocated.networks if allocated is not None else []
    if port_map and not networks:
        raise ValueError("Trying to map ports but no network interface is available")
    if networks and not config.get("ports"):
        net = networks[0]  # Nomad maps the first task network only
        for port in net.all_ports():
            publish(net.ip, port.value, port_map.get(port.label, port.value))
    return bindings


def mounts(config: dict[str, Any], task_dir: Path | None, plugin: PluginConfig) -> tuple[list[Any], list[str]]:
    """(docker Mount objects from `mount`/`mounts`, `host:container[:mode]` binds from `volumes`)."""
    from docker.types import Mount

    result = []
    for spec in _blocks(config.get("mounts")) + _blocks(config.get("mount")):
        kind = str(spec.get("type") or "volume")
        target = str(spec.get("target") or "")
        if not target:
            raise ValueError("mount needs a target")
        source = str(spec.get("source") or "")
        if kind == "bind":
            source = _host_path(source, task_dir, plugin)
        bind = block(spec.get("bind_options"))
        vol = block(spec.get("volume_options"))
        tmpfs = block(spec.get("tmpfs_options"))
        driver = block(vol.get("driver_config"))
        result.append(Mount(target=target, source=source or None, type=kind,
                            read_only=_bool(spec.get("readonly", False)),
                            propagation=bind.get("propagation") if kind == "bind" else None,
                            no_copy=_bool(vol.get("no_copy", False)) if kind == "volume" else None,
                            labels=block(vol.get("labels")) or None,
                            driver_config=(driver.get("name"), block(driver.get("options"))) if driver else None,
                            tmpfs_size=tmpfs.get("size"), tmpfs_mode=tmpfs.get("mode")))
    binds = []
    for volume in config.get("volumes") or []:
        parts = str(volume).split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"invalid docker volume: {volume!r}")
        parts[0] = _host_path(parts[0], task_dir, plugin)
        binds.append(":".join(parts))
    return result, binds


def _host_path(source: str, task_dir: Path | None, plugin: PluginConfig) -> str:
    # Nomad: relative host paths live in the task directory and are always allowed; absolute ones need
    # `volumes { enabled = true }` in the plugin config.
    if Path(source).is_absolute():
        if not plugin.volumes_enabled:
            raise ValueError(f"volumes are not enabled; cannot mount host path: {source!r}")
        return source
    if task_dir is None:
        raise ValueError(f"relative host path {source!r} needs the task directory")
    return str((task_dir / source).resolve())


def interpolate_env(text: str, env: Mapping[str, str]) -> str:
    """`${NAME}` replaced by the task environment's value; unknown names are left as written."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def interpolated(value: Any, fn: Callable[[str], str]) -> Any:
    """Every string in a config value (nested lists and blocks too) through `fn`, as Nomad interpolates."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, list):
        return [interpolated(v, fn) for v in value]
    if isinstance(value, dict):
        return {k: interpolated(v, fn) for k, v in value.items()}
    return value


def create_kwargs(alloc: Allocation, task: Task, plugin: PluginConfig, *, alloc_dir: Path | None,
                  env: Mapping[str, str] | None = None,
                  interpolate: Callable[[str, Mapping[str, str]], str] | None = None) -> dict[str, Any]:
    """The keyword arguments of `client.containers.create` for `task`; ValueError when the config is invalid.

    `env` is the task's environment (default: its `env` block as is); the config's strings are interpolated
    with it through `interpolate` (default: `${NAME}` from the environment).
    """
    env = {str(k): str(v) for k, v in (task.env if env is None else env).items()}
    fn = interpolate or interpolate_env
    config = interpolated(dict(task.config or {}), lambda text: fn(text, env))
    unknown = sorted(set(config) - HANDLED_KEYS - IGNORED_KEYS)
    if unknown:
        raise ValueError(f"unknown docker config key(s): {', '.join(unknown)}")
    image = str(config.get("image") or "")
    if not image:
        raise ValueError("image is required")
    args = [str(a) for a in config.get("args") or []]
    command = str(config.get("command") or "")
    cpu, memory_mb, memory_max_mb = task_limits(alloc, task)
    task_dir = alloc_dir / task.name if alloc_dir is not None else None
    mount_list, binds = mounts(config, task_dir, plugin)
    if alloc_dir is not None and task_dir is not None:
        # Nomad's docker driver shares the alloc dir and the task's local/secrets dirs at fixed paths.
        for host, inside in ((alloc_dir / "alloc", "/alloc"), (task_dir / "local", "/local"),
                             (task_dir / "secrets", "/secrets")):
            host.mkdir(parents=True, exist_ok=True)
            binds.append(f"{host}:{inside}")
        env.update(NOMAD_ALLOC_DIR="/alloc", NOMAD_TASK_DIR="/local", NOMAD_SECRETS_DIR="/secrets")
    labels = {str(k): str(v) for k, v in block(config.get("labels")).items()}
    labels.update(nomad_labels(alloc, task))  # the driver's own labels win: it finds its containers by them
    network_mode = str(config.get("network_mode") or "")
    privileged = _bool(config.get("privileged", False))
    if privileged and not plugin.allow_privileged:
        raise ValueError("Docker privileged mode is disabled on this Nomad agent")
    kwargs: dict[str, Any] = {
        "image": image,
        "name": f"{task.name}-{alloc.id}",
        "command": [command, *args] if command else (args or None),
        "environment": env,
        "labels": labels,
        "detach": True,
        "mounts": mount_list,
        "volumes": binds,
        "log_config": {"type": "json-file", "config": {"max-size": "10m", "max-file": "2"}},
    }
    if memory_mb > 0:
        hard = max(memory_mb, memory_max_mb, int(config.get("memory_hard_limit") or 0))
        kwargs["mem_limit"] = hard * MIB
        kwargs["memswap_limit"] = hard * MIB  # no swap: a task at its limit is OOM-killed, as under Nomad
        if hard > memory_mb:
            kwargs["mem_reservation"] = memory_mb * MIB
    if cpu > 0:
        kwargs["cpu_shares"] = max(2, cpu)  # the kernel's minimum
    if network_mode != "host":
        ports = port_bindings(alloc, task, config)
        if ports:
            kwargs["ports"] = ports
    if network_mode:
        kwargs["network_mode"] = network_mode
    if config.get("entrypoint"):
        kwargs["entrypoint"] = [str(e) for e in config["entrypoint"]]
    if config.get("work_dir"):
        kwargs["working_dir"] = str(config["work_dir"])
    if task.user:
        kwargs["user"] = task.user
    if task.kill_signal:
        kwargs["stop_signal"] = task.kill_signal
    _optional(kwargs, config, privileged)
    return kwargs


def _optional(kwargs: dict[str, Any], config: dict[str, Any], privileged: bool) -> None:
    from docker.types import Ulimit

    simple = {"hostname": "hostname", "dns_servers": "dns", "dns_search_domains": "dns_search",
              "dns_options": "dns_opt", "cap_add": "cap_add", "cap_drop": "cap_drop", "security_opt": "security_opt",
              "ipc_mode": "ipc_mode", "pid_mode": "pid_mode", "uts_mode": "uts_mode", "pids_limit": "pids_limit",
              "mac_address": "mac_address", "shm_size": "shm_size"}
    for key, arg in simple.items():
        if config.get(key) not in (None, "", []):
            kwargs[arg] = config[key]
    for key, arg in (("tty", "tty"), ("interactive", "stdin_open"), ("init", "init"),
                     ("readonly_rootfs", "read_only")):
        if _bool(config.get(key, False)):
            kwargs[arg] = True
    if privileged:
        kwargs["privileged"] = True
    if config.get("sysctl"):
        kwargs["sysctls"] = {str(k): str(v) for k, v in block(config["sysctl"]).items()}
    if config.get("extra_hosts"):
        hosts = {}
        for entry in config["extra_hosts"]:
            name, _, ip = str(entry).partition(":")
            hosts[name] = ip
        kwargs["extra_hosts"] = hosts
    if config.get("ulimit"):
        limits = []
        for name, value in block(config["ulimit"]).items():
            soft, _, hard = str(value).partition(":")
            limits.append(Ulimit(name=name, soft=int(soft), hard=int(hard or soft)))
        kwargs["ulimits"] = limits


def config_error(err: Exception) -> DriverError:
    return DriverError(f"failed to create container configuration: {err}", recoverable=False)
