"""Whether a job update can be applied to running allocations in place or needs new ones."""

from __future__ import annotations

from orchestrator.structs import NetworkResource, Task, TaskGroup


def _network_key(networks: list[NetworkResource]) -> list[tuple]:
    return [(n.mode, n.mbits, sorted((p.label, p.value, p.to) for p in n.reserved_ports),
             sorted((p.label, p.to) for p in n.dynamic_ports)) for n in networks]


def _task_key(task: Task) -> tuple:
    r = task.resources
    return (task.driver, task.user, repr(sorted(task.config.items())), sorted(task.env.items()),
            sorted(task.meta.items()), repr(task.templates), repr(task.artifacts), repr(task.vault),
            repr(task.lifecycle), repr(task.volume_mounts), repr(task.dispatch_payload),
            r.cpu, r.cores, r.memory_mb, r.memory_max_mb, r.disk_mb, _network_key(r.networks), repr(r.devices))


def tasks_updated(old: TaskGroup, new: TaskGroup) -> bool:
    """True when running allocations of `old` must be replaced to become `new` (Nomad's tasksUpdated).

    Count, update/restart/reschedule policies, services and kill timeouts change in place; anything a
    running task was started with (driver, config, env, resources, ports, volumes...) does not.
    """
    if len(old.tasks) != len(new.tasks):
        return True
    if _network_key(old.networks) != _network_key(new.networks):
        return True
    old_disk = old.ephemeral_disk.size_mb if old.ephemeral_disk else 0
    new_disk = new.ephemeral_disk.size_mb if new.ephemeral_disk else 0
    if old_disk != new_disk or repr(old.volumes) != repr(new.volumes) or old.meta != new.meta:
        return True
    for task in new.tasks:
        previous = old.task(task.name)
        if previous is None or _task_key(previous) != _task_key(task):
            return True
    return False
