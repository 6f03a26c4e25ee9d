"""A task's environment as Nomad's taskenv builds it: NOMAD_* variables, meta, ports, and `${...}` interpolation."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestrator.structs import Allocation, Node, Task
from orchestrator.structs.resources import NetworkResource, Port

# Host variables a task never inherits (Nomad's default `env.denylist` client option).
DEFAULT_ENV_DENYLIST = ("CONSUL_TOKEN", "CONSUL_HTTP_TOKEN", "VAULT_TOKEN", "NOMAD_LICENSE", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS")
# Keys under these prefixes are cleaned of characters an environment variable name cannot hold (Nomad #2405).
_CLEANED_PREFIXES = ("NOMAD_ADDR_", "NOMAD_IP_", "NOMAD_PORT_", "NOMAD_HOST_PORT_", "NOMAD_META_")
_VARIABLE = re.compile(r"\$\{([^{}]+)\}")
_NOT_ENV_CHAR = re.compile(r"[^A-Za-z0-9_.]")


@dataclass(frozen=True, slots=True)
class TaskPaths:
    """The directories as the task sees them: host paths for raw_exec, /alloc, /local, /secrets in a container."""

    alloc_dir: str
    local_dir: str
    secrets_dir: str


CONTAINER_PATHS = TaskPaths("/alloc", "/local", "/secrets")


def clean_env_var(name: str) -> str:
    """Nomad's helper.CleanEnvVar: characters other than letters, digits, `_` and `.` become `_`."""
    return _NOT_ENV_CHAR.sub("_", name)


def node_variables(node: Node, region: str) -> dict[str, str]:
    """What `${node.*}`, `${attr.*}` and `${meta.*}` interpolate to on this node."""
    out = {"node.unique.id": node.id, "node.unique.name": node.name, "node.class": node.node_class,
           "node.datacenter": node.datacenter, "node.region": region}
    out.update((f"attr.{k}", v) for k, v in node.attributes.items())
    out.update((f"meta.{k}", v) for k, v in node.meta.items())
    return out


def interpolate(text: str, *scopes: Mapping[str, str]) -> str:
    """Replace every `${name}` found in one of `scopes` (first wins); unknown names are left as written."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        for scope in scopes:
            if name in scope:
                return scope[name]
        return match.group(0)

    return _VARIABLE.sub(value, text) if "${" in text else text


def combined_meta(alloc: Allocation, task: Task) -> dict[str, str]:
    """Job meta, overridden by the group's, overridden by the task's (Nomad's CombinedTaskMeta)."""
    job = alloc.job
    group = job.group(alloc.task_group) if job is not None else None
    out: dict[str, str] = {}
    for layer in (job.meta if job is not None else {}, group.meta if group is not None else {}, task.meta):
        out.update(layer or {})
    return out


def _port_env(env: dict[str, str], port: Port, ip: str) -> None:
    """A task network's port: host IP, host port and address; NOMAD_PORT is the host's (no driver port map)."""
    value = str(port.value)
    env[f"NOMAD_IP_{port.label}"] = ip
    env[f"NOMAD_HOST_PORT_{port.label}"] = value
    env[f"NOMAD_ADDR_{port.label}"] = _join(ip, value)
    env[f"NOMAD_PORT_{port.label}"] = value


def _join(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _networks(networks: Iterable[NetworkResource]) -> Iterable[tuple[NetworkResource, Port]]:
    for network in networks:
        for port in network.all_ports():
            yield network, port


def _alloc_variables(env: dict[str, str], alloc: Allocation, task: Task) -> None:
    job = alloc.job
    env["NOMAD_ALLOC_ID"] = alloc.id
    env["NOMAD_SHORT_ALLOC_ID"] = alloc.id[:8]
    if alloc.name:
        env["NOMAD_ALLOC_NAME"] = alloc.name
    env["NOMAD_GROUP_NAME"] = alloc.task_group
    env["NOMAD_ALLOC_INDEX"] = str(alloc.index())
    env["NOMAD_TASK_NAME"] = task.name
    if job is not None:
        env["NOMAD_JOB_ID"] = job.id
        env["NOMAD_JOB_NAME"] = job.name or job.id
        if job.parent_id:
            env["NOMAD_JOB_PARENT_ID"] = job.parent_id
    env["NOMAD_NAMESPACE"] = alloc.namespace


def _resource_variables(env: dict[str, str], alloc: Allocation, task: Task) -> None:
    allocated = alloc.allocated_resources.tasks.get(task.name)
    cpu = int(allocated.cpu.get("CpuShares", 0)) if allocated is not None else 0
    memory = int(allocated.memory.get("MemoryMB", 0)) if allocated is not None else 0
    memory_max = int(allocated.memory.get("MemoryMaxMB", 0)) if allocated is not None else 0
    cpu, memory = cpu or task.resources.cpu, memory or task.resources.memory_mb
    memory_max = memory_max or task.resources.memory_max_mb
    if cpu:
        env["NOMAD_CPU_LIMIT"] = str(cpu)
    if memory:
        env["NOMAD_MEMORY_LIMIT"] = str(memory)
    if memory_max:
        env["NOMAD_MEMORY_MAX_LIMIT"] = str(memory_max)


def _port_variables(env: dict[str, str], alloc: Allocation, task: Task) -> None:
    resources = alloc.allocated_resources
    own = resources.tasks.get(task.name)
    for network, port in _networks(own.networks if own is not None else []):
        _port_env(env, port, network.ip)
    # Other tasks' ports, named after their task (Nomad's otherPorts).
    for name, other in resources.tasks.items():
        if name == task.name:
            continue
        for network, port in _networks(other.networks):
            env[f"NOMAD_ADDR_{name}_{port.label}"] = _join(network.ip, str(port.value))
            env[f"NOMAD_IP_{name}_{port.label}"] = network.ip
            env[f"NOMAD_PORT_{name}_{port.label}"] = str(port.value)
    # Group network ports: NOMAD_PORT is the port inside the task (`to`) when mapped.
    for _, port in _networks(resources.shared.networks):
        env[f"NOMAD_PORT_{port.label}"] = str(port.to if port.to > 0 else port.value)
        env[f"NOMAD_HOST_PORT_{port.label}"] = str(port.value)
    for mapping in resources.shared.ports:
        value, inside = str(mapping.value), str(mapping.to if mapping.to > 0 else mapping.value)
        address = _join(mapping.host_ip, value)
        env[f"NOMAD_ADDR_{mapping.label}"] = env[f"NOMAD_HOST_ADDR_{mapping.label}"] = address
        env[f"NOMAD_IP_{mapping.label}"] = env[f"NOMAD_HOST_IP_{mapping.label}"] = mapping.host_ip
        env[f"NOMAD_PORT_{mapping.label}"] = env[f"NOMAD_ALLOC_PORT_{mapping.label}"] = inside
        env[f"NOMAD_HOST_PORT_{mapping.label}"] = value


def build_env(node: Node, alloc: Allocation, task: Task, paths: TaskPaths, *, region: str,
              host_env: Mapping[str, str] | None = None,
              denylist: Iterable[str] = DEFAULT_ENV_DENYLIST) -> dict[str, str]:
    """The task's environment, in Nomad's order: directories, limits, identity, ports, meta, then the host's
    variables (never overriding Nomad's), then the task's `env` block (overriding everything), interpolated."""
    nodevars = node_variables(node, region)
    env: dict[str, str] = {"NOMAD_ALLOC_DIR": paths.alloc_dir, "NOMAD_TASK_DIR": paths.local_dir,
                           "NOMAD_SECRETS_DIR": paths.secrets_dir}
    _resource_variables(env, alloc, task)
    _alloc_variables(env, alloc, task)
    env["NOMAD_DC"] = node.datacenter
    env["NOMAD_REGION"] = region
    _port_variables(env, alloc, task)
    meta = combined_meta(alloc, task)
    job = alloc.job
    if job is not None and job.dispatched and job.parameterized_job is not None:
        for key in job.parameterized_job.meta_optional:  # optional meta is always defined for dispatched jobs
            env.setdefault(f"NOMAD_META_{key.upper()}", "")
            env.setdefault(f"NOMAD_META_{key}", "")
    for key, value in meta.items():
        value = interpolate(value, nodevars, env)
        env[f"NOMAD_META_{key.upper()}"] = value
        env[f"NOMAD_META_{key}"] = value
    denied = set(denylist)
    for key, value in (host_env or {}).items():
        if key not in denied and key not in env:
            env[key] = interpolate(value, nodevars, env)
    for key, value in task.env.items():
        env[key] = interpolate(str(value), nodevars, env)
    return {(clean_env_var(k) if k.startswith(_CLEANED_PREFIXES) else k): v for k, v in env.items()}
