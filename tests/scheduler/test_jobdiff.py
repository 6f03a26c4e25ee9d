"""Nomad's job diff rules: flattening, Added/Deleted/Edited/None, contextual objects, annotations."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.scheduler.jobdiff import (
    FORCES_CREATE,
    FORCES_DESTROY,
    FORCES_DESTRUCTIVE,
    FORCES_INPLACE,
    annotate,
    diff_to_api,
    flatten,
    flatten_value,
    job_diff,
    string_set_diff,
)
from orchestrator.structs import Constraint, DesiredUpdates, Job, Resources, Service, Task, TaskGroup
from tests.scheduler.builders import dynamic_port, make_job


def sleeper(**changes) -> Job:
    """The reference transcript's `sleeper`: one group g, one raw_exec task sleep."""
    job = make_job("sleeper", count=1, cpu=20, memory=16, config={"command": "/bin/sleep", "args": ["3600"]})
    group = job.task_groups[0]
    task = replace(group.tasks[0], name="sleep")
    job = replace(job, task_groups=[replace(group, tasks=[task])])
    return replace(job, **changes)


def with_task(job: Job, **changes) -> Job:
    group = job.task_groups[0]
    return replace(job, task_groups=[replace(group, tasks=[replace(group.tasks[0], **changes)])])


def with_group(job: Job, **changes) -> Job:
    return replace(job, task_groups=[replace(job.task_groups[0], **changes)])


def fields(diff) -> list[tuple[str, str, str, str]]:
    return [(f.type, f.name, f.old, f.new) for f in diff.fields]


def test_the_reference_destructive_change():
    """`nomad job plan svc-changed.nomad` of the reference transcripts, field for field."""
    old = sleeper()
    new = with_task(with_group(sleeper(), count=3), env={"GREETING": "hi"},
                    config={"command": "/bin/sleep", "args": ["7200"]}, resources=Resources(cpu=20, memory_mb=32))
    diff = annotate(job_diff(old, new), {"g": DesiredUpdates(destructive_update=1, ignore=2)})
    assert (diff.type, diff.id, diff.fields, diff.objects) == ("Edited", "sleeper", [], [])
    (tg,) = diff.task_groups
    assert tg.updates == {"create/destroy update": 1, "ignore": 2}
    assert fields(tg) == [("Edited", "Count", "1", "3")] and tg.fields[0].annotations == [FORCES_CREATE]
    (task,) = tg.tasks
    assert (task.type, task.name, task.annotations) == ("Edited", "sleep", [FORCES_DESTRUCTIVE])
    assert fields(task) == [("Added", "Env[GREETING]", "", "hi")]
    config, resources = task.objects
    assert (config.type, config.name) == ("Edited", "Config")
    assert fields(config) == [("Edited", "args[0]", "3600", "7200"), ("None", "command", "/bin/sleep", "/bin/sleep")]
    assert (resources.type, resources.name) == ("Edited", "Resources")
    assert fields(resources) == [("None", "CPU", "20", "20"), ("None", "DiskMB", "0", "0"), ("None", "IOPS", "0", "0"),
                                 ("Edited", "MemoryMB", "16", "32")]


def test_a_new_job_is_added_without_server_fields_or_empty_strings():
    diff = annotate(job_diff(None, sleeper()), {"g": DesiredUpdates(place=1)})
    assert diff.type == "Added" and {f.type for f in diff.fields} == {"Added"}
    names = [f.name for f in diff.fields]
    assert names == sorted(names)
    assert {"AllAtOnce", "Name", "Namespace", "Priority", "Region", "Stop", "Type"} <= set(names)
    assert not {"ID", "Version", "Status", "SubmitTime", "JobModifyIndex", "ParentID"} & set(names)
    assert ("Added", "Datacenters", "", "dc1") in fields(diff.objects[0])
    (tg,) = diff.task_groups
    assert tg.type == "Added" and tg.updates == {"create": 1}
    assert fields(tg)[0] == ("Added", "Count", "", "1") and tg.fields[0].annotations == [FORCES_CREATE]
    assert tg.tasks[0].annotations == [FORCES_CREATE]


def test_a_deleted_job_and_group():
    diff = annotate(job_diff(sleeper(), None), {"g": DesiredUpdates(stop=1)})
    assert diff.type == "Deleted" and {f.type for f in diff.fields} == {"Deleted"}
    (tg,) = diff.task_groups
    assert (tg.type, tg.updates, tg.tasks[0].annotations) == ("Deleted", {"destroy": 1}, [FORCES_DESTROY])
    assert tg.fields[0].annotations == [FORCES_DESTROY]


def test_server_side_fields_make_no_difference():
    old = sleeper()
    new = replace(old, version=4, status="running", stable=True, submit_time=99, create_index=3, modify_index=9,
                  job_modify_index=9)
    diff = job_diff(old, new)
    assert diff.type == "None" and diff.task_groups[0].type == "None" and diff.task_groups[0].tasks[0].type == "None"
    assert diff_to_api(diff) == {"Type": "None", "ID": "sleeper", "Fields": None, "Objects": None, "TaskGroups": [
        {"Type": "None", "Name": "g", "Fields": None, "Objects": None, "Updates": None, "Tasks": [
            {"Type": "None", "Name": "sleep", "Fields": None, "Objects": None, "Annotations": None}]}]}


def test_jobs_with_different_ids_cannot_be_diffed():
    with pytest.raises(ValueError, match='can not diff jobs with different IDs: "sleeper" and "other"'):
        job_diff(sleeper(), sleeper(id="other"))


def test_constraints_are_a_set_a_change_is_one_deleted_and_one_added():
    old = sleeper(constraints=[Constraint("${attr.kernel.name}", "linux", "=")])
    new = sleeper(constraints=[Constraint("${attr.kernel.name}", "darwin", "=")])
    diff = job_diff(old, new)
    assert diff.type == "Edited"
    assert [(o.type, o.name) for o in diff.objects] == [("Added", "Constraint"), ("Deleted", "Constraint")]
    assert ("Added", "RTarget", "", "darwin") in fields(diff.objects[0])
    assert ("Deleted", "RTarget", "linux", "") in fields(diff.objects[1])


def test_datacenters_and_string_sets():
    diff = job_diff(sleeper(), sleeper(datacenters=["dc1", "dc2"]))
    (dcs,) = diff.objects
    # Sorted by name, then old value, as Nomad sorts: the added one (no old value) first.
    assert (dcs.type, fields(dcs)) == ("Added", [("Added", "Datacenters", "", "dc2"),
                                                 ("None", "Datacenters", "dc1", "dc1")])
    edited = string_set_diff(["a", "b"], ["b", "c"], "Tags", contextual=False)
    assert edited.type == "Edited" and fields(edited) == [("Added", "Tags", "", "c"), ("Deleted", "Tags", "a", "")]
    assert string_set_diff(["a"], ["a"], "Tags", contextual=False) is None


def test_group_meta_and_optional_durations_are_fields():
    old = sleeper()
    new = with_group(sleeper(), meta={"team": "db"}, shutdown_delay=5_000_000_000)
    (tg,) = job_diff(old, new).task_groups
    assert fields(tg) == [("Added", "Meta[team]", "", "db"), ("Added", "ShutdownDelay", "", "5000000000")]


def test_task_annotations_follow_the_schedulers_notion_of_destructive():
    old = sleeper()
    cases = {
        FORCES_INPLACE: with_task(sleeper(), kill_timeout=30_000_000_000),
        FORCES_DESTRUCTIVE: with_task(sleeper(), meta={"v": "2"}),
    }
    for annotation, new in cases.items():
        (task,) = annotate(job_diff(old, new), None).task_groups[0].tasks
        assert task.annotations == [annotation], annotation
    services = with_task(sleeper(), services=[Service(name="web", tags=["a"])])
    (task,) = annotate(job_diff(old, services), None).task_groups[0].tasks
    assert task.annotations == [FORCES_INPLACE]
    (service,) = task.objects
    assert (service.type, service.name) == ("Added", "Service")
    assert [(o.name, o.type) for o in service.objects] == [("Tags", "Added")]


def test_a_task_added_to_an_existing_group_forces_a_destructive_update():
    old = sleeper()
    group = old.task_groups[0]
    new = with_group(old, tasks=[*group.tasks, Task(name="side", driver="raw_exec")])
    (tg,) = annotate(job_diff(old, new), None).task_groups
    assert [(t.name, t.type, t.annotations) for t in tg.tasks] == [("side", "Added", [FORCES_DESTRUCTIVE]),
                                                                  ("sleep", "None", [])]


def test_groups_are_matched_by_name_and_sorted():
    old = sleeper()
    extra = TaskGroup(name="a", count=2, tasks=[Task(name="t", driver="raw_exec")])
    new = replace(old, task_groups=[old.task_groups[0], extra])
    diff = annotate(job_diff(old, new), {"a": DesiredUpdates(place=2), "g": DesiredUpdates(ignore=1)})
    assert [(g.name, g.type, g.updates) for g in diff.task_groups] == [("a", "Added", {"create": 2}),
                                                                       ("g", "None", {"ignore": 1})]


def test_resources_show_cores_and_memory_max_only_when_used():
    old = sleeper()
    new = with_task(sleeper(), resources=Resources(cpu=20, memory_mb=16, memory_max_mb=64))
    (resources,) = job_diff(old, new).task_groups[0].tasks[0].objects
    names = [f.name for f in resources.fields]
    assert "MemoryMaxMB" in names and "Cores" not in names
    assert ("Edited", "MemoryMaxMB", "0", "64") in fields(resources)


def test_networks_are_a_set_with_ports_by_label():
    old = with_group(sleeper(), networks=[dynamic_port("http")])
    new = with_group(sleeper(), networks=[dynamic_port("http", to=8080)])
    (tg,) = job_diff(old, new).task_groups
    assert [(o.type, o.name) for o in tg.objects] == [("Added", "Network"), ("Deleted", "Network")]
    (port,) = tg.objects[0].objects
    assert port.name == "Dynamic Port" and ("Added", "To", "", "8080") in fields(port)
    assert "Value" not in [f.name for f in port.fields]


def test_flattening_matches_gos_formatting():
    assert flatten(Constraint("a", "b", "=")) == {"LTarget": "a", "RTarget": "b", "Operand": "="}
    assert flatten(TaskGroup(name="g", count=2, meta={"k": "v"}), ("Name",)) == {"Count": "2", "Meta[k]": "v"}
    assert flatten(None) == {}
    assert flatten_value({"port_map": [{"db": 6379}], "privileged": True, "ratio": 1.0, "x": None}) == {
        "port_map[0][db]": "6379", "privileged": "true", "ratio": "1"}
