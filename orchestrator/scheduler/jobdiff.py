"""Nomad's structured job diff (what `nomad job plan` prints), and its annotation with the plan's updates."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, get_args, get_origin, get_type_hints

from orchestrator.structs import (
    DesiredUpdates,
    Job,
    NetworkResource,
    ParameterizedJobConfig,
    Resources,
    Service,
    Task,
    TaskGroup,
    encode,
)
from orchestrator.structs.codec import api_name
from orchestrator.structs.job import ServiceCheck

from .diff import tasks_updated

DIFF_NONE = "None"
DIFF_ADDED = "Added"
DIFF_DELETED = "Deleted"
DIFF_EDITED = "Edited"

# Nomad's scheduler annotations (scheduler/annotate.go): on tasks, and on a task group's Count.
FORCES_CREATE = "forces create"
FORCES_DESTROY = "forces destroy"
FORCES_INPLACE = "forces in-place update"
FORCES_DESTRUCTIVE = "forces create/destroy update"

# Keys of a task group diff's Updates, from the plan's DesiredTGUpdates; zero counts are left out.
UPDATE_KEYS = (("ignore", "ignore"), ("place", "create"), ("migrate", "migrate"), ("stop", "destroy"),
               ("canary", "canary"), ("in_place_update", "in-place update"),
               ("destructive_update", "create/destroy update"))

# Fields Nomad leaves out of a job's diff: set by the servers, or secrets.
JOB_SKIP = frozenset({"ID", "Status", "StatusDescription", "Version", "Stable", "CreateIndex", "ModifyIndex",
                      "JobModifyIndex", "SubmitTime", "NomadTokenID", "VaultToken", "ConsulToken"})
# Shown only when set on either side: Nomad 1.0's Resources diff has neither, newer ones have both.
_OPTIONAL_RESOURCES = ("Cores", "MemoryMaxMB")
_TYPE_RANK = {DIFF_EDITED: 0, DIFF_ADDED: 1, DIFF_DELETED: 2, DIFF_NONE: 3}


@dataclass(slots=True)
class FieldDiff:
    type: str
    name: str
    old: str = ""
    new: str = ""
    annotations: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ObjectDiff:
    type: str
    name: str
    fields: list[FieldDiff] = field(default_factory=list)
    objects: list[ObjectDiff] = field(default_factory=list)


@dataclass(slots=True)
class TaskDiff:
    type: str
    name: str
    fields: list[FieldDiff] = field(default_factory=list)
    objects: list[ObjectDiff] = field(default_factory=list)
    annotations: list[str] = field(default_factory=list)
    # Whether running allocations must be replaced for this change (scheduler/diff.py); not in the API.
    destructive: bool = field(default=False, metadata={"skip_api": True})


@dataclass(slots=True)
class TaskGroupDiff:
    type: str
    name: str
    fields: list[FieldDiff] = field(default_factory=list)
    objects: list[ObjectDiff] = field(default_factory=list)
    tasks: list[TaskDiff] = field(default_factory=list)
    updates: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class JobDiff:
    type: str
    id: str = ""
    fields: list[FieldDiff] = field(default_factory=list)
    objects: list[ObjectDiff] = field(default_factory=list)
    task_groups: list[TaskGroupDiff] = field(default_factory=list)


# -- flattening, as Nomad's flatmap ----------------------------------------------------------------------


def _text(value: Any) -> str:
    """A primitive as Go's %v prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)
    return str(value)


@cache
def _primitive_fields(cls: type) -> tuple[tuple[str, str, bool], ...]:
    """(attribute, API name, is a string map) of the fields flatmap sees with primitiveOnly: plain values
    and string-to-string maps; pointers (Optional), nested structs, lists and free-form maps are skipped."""
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("skip_api"):
            continue
        hint = hints[f.name]
        api = f.metadata.get("api", api_name(f.name))
        if hint in (bool, int, float, str):
            out.append((f.name, api, False))
        elif get_origin(hint) is dict and get_args(hint) == (str, str):
            out.append((f.name, api, True))
    return tuple(out)


def flatten(obj: Any, skip: Iterable[str] = ()) -> dict[str, str]:
    """The primitive fields of a struct by API name, maps as `Meta[key]`; empty for None."""
    if obj is None:
        return {}
    skipped = set(skip)
    flat: dict[str, str] = {}
    for attr, api, is_map in _primitive_fields(type(obj)):
        if api in skipped:
            continue
        value = getattr(obj, attr)
        if is_map:
            flat.update((f"{api}[{k}]", _text(v)) for k, v in value.items())
        else:
            flat[api] = _text(value)
    return flat


def flatten_value(value: Any, prefix: str = "", out: dict[str, str] | None = None) -> dict[str, str]:
    """Free-form data (a driver's config) flattened whole: `args[0]`, `port_map[0][db]`."""
    out = {} if out is None else out
    if isinstance(value, Mapping):
        for key, item in value.items():
            flatten_value(item, f"{prefix}[{key}]" if prefix else str(key), out)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            flatten_value(item, f"{prefix}[{i}]", out)
    elif value is not None:
        out[prefix] = _text(value)
    return out


# -- the generic diffs (Nomad's fieldDiffs, primitiveObjectDiff, stringSetDiff, ...) ----------------------


def _field(old: str, new: str, name: str, contextual: bool) -> FieldDiff | None:
    if old == new:
        return FieldDiff(DIFF_NONE, name, old, new) if contextual else None
    if not old:
        return FieldDiff(DIFF_ADDED, name, new=new)
    if not new:
        return FieldDiff(DIFF_DELETED, name, old=old)
    return FieldDiff(DIFF_EDITED, name, old, new)


def field_diffs(old: Mapping[str, str], new: Mapping[str, str], contextual: bool) -> list[FieldDiff]:
    diffs = [_field(old.get(k, ""), new.get(k, ""), k, contextual) for k in {*old, *new}]
    return sorted((d for d in diffs if d is not None), key=lambda d: (d.name, d.old, d.new))


def _sorted_objects(objects: Iterable[ObjectDiff]) -> list[ObjectDiff]:
    return sorted(objects, key=lambda o: (o.name, _TYPE_RANK[o.type], len(o.fields), len(o.objects),
                                          [(f.name, f.old, f.new) for f in o.fields]))


def _type_of(fields: list[FieldDiff]) -> str | None:
    """An object's type from its fields' (Nomad's primitiveObjectDiff); None when nothing changed."""
    kinds = {f.type for f in fields}
    if DIFF_EDITED in kinds or {DIFF_ADDED, DIFF_DELETED} <= kinds:
        return DIFF_EDITED
    if DIFF_ADDED in kinds:
        return DIFF_ADDED
    return DIFF_DELETED if DIFF_DELETED in kinds else None


def object_diff(old: Any, new: Any, name: str, contextual: bool, skip: Iterable[str] = (),
                flat: Callable[[Any], dict[str, str]] | None = None) -> ObjectDiff | None:
    """Two structs' primitive fields as one object diff; None when they agree."""
    flat = flat or (lambda obj: flatten(obj, skip))
    fields = field_diffs(flat(old), flat(new), contextual)
    kind = _type_of(fields)
    return ObjectDiff(kind, name, fields) if kind is not None else None


def _edit_kind(old: Any, new: Any) -> str:
    if old is None:
        return DIFF_ADDED
    return DIFF_DELETED if new is None else DIFF_EDITED


def object_set_diff(old: Iterable[Any], new: Iterable[Any], name: str, contextual: bool,
                    skip: Iterable[str] = ()) -> list[ObjectDiff]:
    """Structs compared as a set: a changed one is a deleted one and an added one (by value, as Nomad
    hashes them)."""
    old_set = {repr(o): o for o in old}
    new_set = {repr(n): n for n in new}
    diffs = [object_diff(o, None, name, contextual, skip) for k, o in old_set.items() if k not in new_set]
    diffs += [object_diff(None, n, name, contextual, skip) for k, n in new_set.items() if k not in old_set]
    return _sorted_objects(d for d in diffs if d is not None)


def string_set_diff(old: Iterable[str], new: Iterable[str], name: str, contextual: bool) -> ObjectDiff | None:
    old_set, new_set = set(old), set(new)
    if old_set == new_set and not contextual:
        return None
    fields = [FieldDiff(DIFF_DELETED, name, old=k) for k in old_set - new_set]
    fields += [FieldDiff(DIFF_ADDED, name, new=k) for k in new_set - old_set]
    if contextual:
        fields += [FieldDiff(DIFF_NONE, name, k, k) for k in old_set & new_set]
    fields.sort(key=lambda d: (d.name, d.old, d.new))
    added, removed = bool(new_set - old_set), bool(old_set - new_set)
    if added and removed:
        kind = DIFF_EDITED
    elif added or removed:
        kind = DIFF_ADDED if added else DIFF_DELETED
    elif fields:
        kind = DIFF_NONE
    else:
        return None
    return ObjectDiff(kind, name, fields)


def keyed_diffs(old: Iterable[Any], new: Iterable[Any], key: Callable[[Any], str],
                diff: Callable[[Any, Any], ObjectDiff | None]) -> list[ObjectDiff]:
    """Objects matched by a key (services by name, ports by label), each pair diffed."""
    old_map = {key(o): o for o in old}
    new_map = {key(n): n for n in new}
    pairs = [(old_map.get(k), new_map.get(k)) for k in {*old_map, *new_map}]
    return _sorted_objects(d for d in (diff(o, n) for o, n in pairs if o != n) if d is not None)


def _dict_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None, name: str,
               contextual: bool) -> ObjectDiff | None:
    """Free-form maps (driver config, a service's connect block) flattened whole (Nomad's configDiff)."""
    if (old or {}) == (new or {}):
        return None
    kind = DIFF_ADDED if not old else DIFF_DELETED if not new else DIFF_EDITED
    return ObjectDiff(kind, name, field_diffs(flatten_value(old or {}), flatten_value(new or {}), contextual))


def _nested(kind: str, name: str, fields: list[FieldDiff], objects: Iterable[ObjectDiff | None]) -> ObjectDiff:
    return ObjectDiff(kind, name, fields, _sorted_objects(o for o in objects if o is not None))


# -- resources, networks, services -------------------------------------------------------------------------


def resources_diff(old: Resources | None, new: Resources | None, contextual: bool) -> ObjectDiff | None:
    if old == new:
        return None
    old_flat, new_flat = flatten(old), flatten(new)
    for key in _OPTIONAL_RESOURCES:
        if old_flat.get(key, "0") == "0" and new_flat.get(key, "0") == "0":
            old_flat.pop(key, None)
            new_flat.pop(key, None)
    o, n = old or Resources(), new or Resources()
    objects = [*network_diffs(o.networks, n.networks, contextual),
               *keyed_diffs(o.devices, n.devices, lambda d: d.name,
                            lambda a, b: object_diff(a, b, "Device", contextual))]
    return _nested(_edit_kind(old, new), "Resources", field_diffs(old_flat, new_flat, contextual), objects)


_NETWORK_SKIP = ("Device", "CIDR", "IP")


def network_diff(old: NetworkResource | None, new: NetworkResource | None, contextual: bool) -> ObjectDiff:
    o, n = old or NetworkResource(), new or NetworkResource()

    def ports(a: list, b: list, name: str, skip: tuple[str, ...]) -> list[ObjectDiff]:
        return keyed_diffs(a, b, lambda p: p.label, lambda x, y: object_diff(x, y, name, contextual, skip))

    objects = [*ports(o.reserved_ports, n.reserved_ports, "Static Port", ()),
               *ports(o.dynamic_ports, n.dynamic_ports, "Dynamic Port", ("Value",)),
               _dict_diff(o.dns, n.dns, "DNS", contextual)]
    fields = field_diffs(flatten(old, _NETWORK_SKIP), flatten(new, _NETWORK_SKIP), contextual)
    return _nested(_edit_kind(old, new), "Network", fields, objects)


def network_diffs(old: list[NetworkResource], new: list[NetworkResource], contextual: bool) -> list[ObjectDiff]:
    """Networks compared as a set, as Nomad does: a changed network is one deleted and one added."""
    old_set = {repr(o): o for o in old}
    new_set = {repr(n): n for n in new}
    diffs = [network_diff(o, None, contextual) for k, o in old_set.items() if k not in new_set]
    diffs += [network_diff(None, n, contextual) for k, n in new_set.items() if k not in old_set]
    return _sorted_objects(diffs)


def check_diff(old: ServiceCheck | None, new: ServiceCheck | None, contextual: bool) -> ObjectDiff:
    o, n = old or ServiceCheck(), new or ServiceCheck()
    return _nested(_edit_kind(old, new), "Check", field_diffs(flatten(old), flatten(new), contextual),
                   [_dict_diff(o.header, n.header, "Header", contextual),
                    _dict_diff(o.check_restart, n.check_restart, "CheckRestart", contextual)])


def service_diff(old: Service | None, new: Service | None, contextual: bool) -> ObjectDiff:
    o, n = old or Service(), new or Service()
    objects = [string_set_diff(o.canary_tags, n.canary_tags, "CanaryTags", contextual),
               string_set_diff(o.tags, n.tags, "Tags", contextual),
               *keyed_diffs(o.checks, n.checks, lambda c: c.name, lambda a, b: check_diff(a, b, contextual)),
               _dict_diff(o.connect, n.connect, "ConsulConnect", contextual)]
    return _nested(_edit_kind(old, new), "Service", field_diffs(flatten(old), flatten(new), contextual), objects)


def _services(old: list[Service], new: list[Service], contextual: bool) -> list[ObjectDiff]:
    return keyed_diffs(old, new, lambda s: s.name, lambda a, b: service_diff(a, b, contextual))


def _vault_diff(old: dict[str, Any] | None, new: dict[str, Any] | None, contextual: bool) -> ObjectDiff | None:
    if (old or {}) == (new or {}):
        return None

    def plain(block: dict[str, Any] | None) -> dict[str, str]:
        return {k: _text(v) for k, v in (block or {}).items() if isinstance(v, str | int | float)}

    policies = string_set_diff((old or {}).get("Policies") or (), (new or {}).get("Policies") or (), "Policies",
                               contextual)
    kind = DIFF_ADDED if not old else DIFF_DELETED if not new else DIFF_EDITED
    return _nested(kind, "Vault", field_diffs(plain(old), plain(new), contextual), [policies])


# -- tasks, groups, jobs -----------------------------------------------------------------------------------


def _kind(old: Any, new: Any) -> str:
    if old is None or new is None:
        return _edit_kind(old, new)
    return DIFF_EDITED if old != new else DIFF_NONE


def task_diff(old: Task | None, new: Task | None, contextual: bool = True) -> TaskDiff:
    if old is not None and new is not None and old.name != new.name:
        raise ValueError(f'can not diff tasks with different names: "{old.name}" and "{new.name}"')
    kind = _kind(old, new)
    o, n = old or Task(), new or Task()
    objects = [*object_set_diff(o.constraints, n.constraints, "Constraint", contextual),
               *object_set_diff(o.affinities, n.affinities, "Affinity", contextual),
               _dict_diff(o.config, n.config, "Config", contextual),
               resources_diff(old.resources if old else None, new.resources if new else None, contextual),
               object_diff(o.log_config, n.log_config, "LogConfig", contextual),
               object_diff(o.dispatch_payload, n.dispatch_payload, "DispatchPayload", contextual),
               *object_set_diff(o.artifacts, n.artifacts, "Artifact", contextual),
               *_services(o.services, n.services, contextual),
               _vault_diff(o.vault, n.vault, contextual),
               *object_set_diff(o.templates, n.templates, "Template", contextual),
               object_diff(o.lifecycle, n.lifecycle, "Lifecycle", contextual),
               *object_set_diff(o.volume_mounts, n.volume_mounts, "VolumeMount", contextual)]
    # Whether the change replaces running allocations is the scheduler's call (the same rule it updates by).
    destructive = kind in (DIFF_ADDED, DIFF_DELETED) or (
        kind == DIFF_EDITED and tasks_updated(TaskGroup(tasks=[o]), TaskGroup(tasks=[n])))
    return TaskDiff(kind, (new or old or o).name, field_diffs(flatten(old, ("Name",)), flatten(new, ("Name",)), False),
                    _sorted_objects(x for x in objects if x is not None), destructive=destructive)


def _optional_ints(group: TaskGroup, flat: dict[str, str]) -> dict[str, str]:
    """Nomad compares these pointer fields only between two versions of a group, "" standing for unset."""
    flat["ShutdownDelay"] = "" if group.shutdown_delay is None else str(group.shutdown_delay)
    flat["StopAfterClientDisconnect"] = ("" if group.stop_after_client_disconnect is None
                                         else str(group.stop_after_client_disconnect))
    return flat


def group_diff(old: TaskGroup | None, new: TaskGroup | None, contextual: bool = True) -> TaskGroupDiff:
    if old is not None and new is not None and old.name != new.name:
        raise ValueError(f'can not diff task groups with different names: "{old.name}" and "{new.name}"')
    kind = _kind(old, new)
    old_flat, new_flat = flatten(old, ("Name",)), flatten(new, ("Name",))
    if old is not None and new is not None:
        old_flat, new_flat = _optional_ints(old, old_flat), _optional_ints(new, new_flat)
    o, n = old or TaskGroup(), new or TaskGroup()
    volumes = keyed_diffs(o.volumes.items(), n.volumes.items(), lambda kv: kv[0],
                          lambda a, b: object_diff(a[1] if a else None, b[1] if b else None, "Volume", contextual))
    objects = [*object_set_diff(o.constraints, n.constraints, "Constraint", contextual),
               *object_set_diff(o.affinities, n.affinities, "Affinity", contextual),
               *object_set_diff(o.spreads, n.spreads, "Spread", contextual),
               object_diff(o.restart_policy, n.restart_policy, "RestartPolicy", contextual),
               object_diff(o.reschedule_policy, n.reschedule_policy, "ReschedulePolicy", contextual),
               object_diff(o.ephemeral_disk, n.ephemeral_disk, "EphemeralDisk", contextual),
               object_diff(o.update, n.update, "Update", contextual, ("Stagger",)),
               object_diff(o.migrate, n.migrate, "Migrate", contextual),
               object_diff(o.scaling, n.scaling, "Scaling", contextual),
               *network_diffs(o.networks, n.networks, contextual),
               *_services(o.services, n.services, contextual),
               *volumes]
    old_tasks = {t.name: t for t in o.tasks}
    new_tasks = {t.name: t for t in n.tasks}
    tasks = [task_diff(old_tasks.get(name), new_tasks.get(name), contextual)
             for name in sorted({*old_tasks, *new_tasks})]
    return TaskGroupDiff(kind, (new or old or o).name, field_diffs(old_flat, new_flat, False),
                         _sorted_objects(x for x in objects if x is not None), tasks)


def _parameterized_diff(old: Any, new: Any, contextual: bool) -> ObjectDiff | None:
    if old == new:
        return None
    o, n = old or ParameterizedJobConfig(), new or ParameterizedJobConfig()
    return _nested(_edit_kind(old, new), "ParameterizedJob", field_diffs(flatten(old), flatten(new), contextual),
                   [string_set_diff(o.meta_optional, n.meta_optional, "MetaOptional", contextual),
                    string_set_diff(o.meta_required, n.meta_required, "MetaRequired", contextual)])


def job_diff(old: Job | None, new: Job | None, contextual: bool = True) -> JobDiff:
    """Nomad's Job.Diff: what changes from the registered job `old` (None: a new job) to `new`.

    With `contextual`, an object that changed also lists its unchanged fields (Type "None"), as the plan
    endpoint asks; the fields of the job, groups and tasks themselves list only changes.
    """
    if old is None and new is None:
        return JobDiff(DIFF_NONE)
    if old is not None and new is not None and old.id != new.id:
        raise ValueError(f'can not diff jobs with different IDs: "{old.id}" and "{new.id}"')
    o, n = old or Job(), new or Job()
    datacenters = string_set_diff(o.datacenters, n.datacenters, "Datacenters", contextual)
    objects = [datacenters if datacenters is not None and datacenters.type != DIFF_NONE else None,
               *object_set_diff(o.constraints, n.constraints, "Constraint", contextual),
               *object_set_diff(o.affinities, n.affinities, "Affinity", contextual),
               *object_set_diff(o.spreads, n.spreads, "Spread", contextual),
               object_diff(o.periodic, n.periodic, "Periodic", contextual),
               _parameterized_diff(o.parameterized_job, n.parameterized_job, contextual)]
    old_groups = {g.name: g for g in o.task_groups}
    new_groups = {g.name: g for g in n.task_groups}
    groups = [group_diff(old_groups.get(name), new_groups.get(name), contextual)
              for name in sorted({*old_groups, *new_groups})]
    diff = JobDiff(_edit_kind(old, new) if old is None or new is None else DIFF_NONE, (new or old or o).id,
                   field_diffs(flatten(old, JOB_SKIP), flatten(new, JOB_SKIP), False),
                   _sorted_objects(x for x in objects if x is not None), groups)
    if diff.type == DIFF_NONE and any(x.type != DIFF_NONE for x in (*diff.fields, *diff.objects, *groups)):
        diff.type = DIFF_EDITED
    return diff


# -- annotations (Nomad's scheduler.Annotate) ---------------------------------------------------------------


def _count(text: str) -> int:
    return int(text) if text.lstrip("-").isdigit() else 0


def annotate(diff: JobDiff, desired: Mapping[str, DesiredUpdates] | None) -> JobDiff:
    """Add the plan's per-group update counts and Nomad's "forces ..." notes to a job diff, in place."""
    for group in diff.task_groups:
        counts = (desired or {}).get(group.name)
        if counts is not None:
            group.updates = {key: getattr(counts, attr) for attr, key in UPDATE_KEYS if getattr(counts, attr)}
        for f in group.fields:
            if f.name == "Count":
                before, after = _count(f.old), _count(f.new)
                if before != after:
                    f.annotations.append(FORCES_CREATE if before < after else FORCES_DESTROY)
        for task in group.tasks:
            if task.type == DIFF_NONE:
                continue
            if group.type in (DIFF_ADDED, DIFF_DELETED) and task.type in (DIFF_ADDED, DIFF_DELETED):
                task.annotations.append(FORCES_CREATE if task.type == DIFF_ADDED else FORCES_DESTROY)
            else:
                task.annotations.append(FORCES_DESTRUCTIVE if task.destructive else FORCES_INPLACE)
    return diff


def diff_to_api(diff: JobDiff) -> dict[str, Any]:
    """The JobDiff as Nomad's API JSON: Type, ID, Fields, Objects, TaskGroups (empty lists as null)."""
    return encode(diff)
