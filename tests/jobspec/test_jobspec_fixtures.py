"""Every fixture jobspec parses, and the seed jobs decode to the API shapes Nomad produces."""

from pathlib import Path

import pytest

from orchestrator.jobspec import JobspecError, parse_job_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jobs"
GOOD = sorted(p for p in FIXTURES.iterdir() if p.is_file() and not p.name.startswith("bad"))
SECOND = 1_000_000_000


def load(name: str) -> dict:
    return parse_job_file(str(FIXTURES / name))


def only_task(job: dict) -> dict:
    (group,) = job["TaskGroups"]
    (task,) = group["Tasks"]
    return task


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_every_good_fixture_parses(path: Path):
    job = parse_job_file(str(path))
    assert job["ID"] and job["Name"] == job["ID"]
    assert job["TaskGroups"]
    for group in job["TaskGroups"]:
        assert group["Tasks"]
        for task in group["Tasks"]:
            assert task["Driver"]


@pytest.mark.parametrize("name", ["bad.nomad", "bad-semantic.nomad"])
def test_bad_fixtures_fail(name: str):
    with pytest.raises(JobspecError):
        load(name)


def test_seed_000_example_count_3_with_old_style_network():
    job = load("seed-000-example.nomad")
    group = job["TaskGroups"][0]
    assert (job["ID"], group["Name"], group["Count"]) == ("example", "cache", 3)
    assert group["RestartPolicy"] == {
        "Attempts": 2,
        "Interval": 1800 * SECOND,
        "Delay": 15 * SECOND,
        "Mode": "fail",
    }
    assert group["EphemeralDisk"] == {"SizeMB": 300}
    assert job["Update"]["HealthyDeadline"] == 180 * SECOND
    assert job["Migrate"]["HealthCheck"] == "checks"
    task = group["Tasks"][0]
    assert task["Config"] == {"image": "redis:3.2", "port_map": [{"db": 6379}]}
    assert task["Resources"]["Networks"] == [{"MBits": 10, "DynamicPorts": [{"Label": "db"}]}]


def test_seed_001_redis_service_and_dynamic_port():
    job = load("seed-001-pytechco-redis.nomad.hcl")
    assert job["Type"] == "service"
    group = job["TaskGroups"][0]
    assert group["Networks"] == [{"DynamicPorts": [{"Label": "redis", "To": 6379}]}]
    assert group["Services"] == [{"Name": "redis-svc", "PortLabel": "redis", "Provider": "nomad"}]
    assert only_task(job)["Config"] == {"image": "redis:7.0.7-alpine", "ports": ["redis"]}
    assert "Datacenters" not in job  # absent stays absent: defaults belong to the structs layer


def test_seed_001_web_static_port_and_template_text():
    job = load("seed-001-pytechco-web.nomad.hcl")
    assert job["TaskGroups"][0]["Networks"] == [{"ReservedPorts": [{"Label": "web", "Value": 5000}]}]
    (template,) = only_task(job)["Templates"]
    assert template == {
        "EmbeddedTmpl": (
            '{{ range nomadService "redis-svc" }}\n'
            "REDIS_HOST={{ .Address }}\n"
            "REDIS_PORT={{ .Port }}\n"
            "FLASK_HOST=0.0.0.0\n"
            "REFRESH_INTERVAL=500\n"
            "{{ end }}\n"
        ),
        "DestPath": "local/env.txt",
        "Envvars": True,
    }


def test_seed_001_setup_is_parameterized_with_meta_required():
    job = load("seed-001-pytechco-setup.nomad.hcl")
    assert job["Type"] == "batch"
    assert job["ParameterizedJob"] == {"MetaRequired": ["budget"]}
    text = only_task(job)["Templates"][0]["EmbeddedTmpl"]
    assert text.endswith('PTC_BUDGET={{ env "NOMAD_META_budget" }}\n')


def test_seed_001_employee_periodic_restart_and_commented_args():
    job = load("seed-001-pytechco-employee.nomad.hcl")
    assert job["Periodic"] == {"Spec": "0/3 * * * * * *", "SpecType": "cron", "ProhibitOverlap": False}
    task = only_task(job)
    assert task["RestartPolicy"] == {
        "Attempts": 2,
        "Delay": 15 * SECOND,
        "Interval": 10 * SECOND,
        "Mode": "fail",
    }
    assert "args" not in task["Config"]  # the // comments hide them
    assert 'PTC_EMPLOYEE_ID={{ env "NOMAD_SHORT_ALLOC_ID"}}\n' in task["Templates"][0]["EmbeddedTmpl"]


def test_seed_002_httpecho_port_map_attribute_and_task_network():
    job = load("seed-002-httpecho.nomad")
    assert (job["Region"], job["Datacenters"], job["TaskGroups"][0]["Count"]) == ("global", ["home"], 2)
    task = only_task(job)
    assert task["Config"]["port_map"] == [{"http": 5678}]
    assert task["Config"]["args"] == ["-text", "hello world"]
    assert task["Resources"] == {"Networks": [{"MBits": 250, "DynamicPorts": [{"Label": "http"}]}]}


def test_seed_004_example_port_map_block_and_tcp_check():
    job = load("seed-004-example.nomad")
    task = only_task(job)
    assert task["Config"]["port_map"] == [{"db": 6379}]
    assert task["Resources"]["CPU"] == 500 and task["Resources"]["MemoryMB"] == 256
    (service,) = task["Services"]
    assert service["Name"] == "redis-cache" and service["Tags"] == ["global", "cache"]
    assert service["Checks"] == [
        {"Name": "alive", "Type": "tcp", "Interval": 10 * SECOND, "Timeout": 2 * SECOND}
    ]


def test_both_port_map_spellings_decode_the_same():
    block = load("seed-004-example.nomad")
    attribute = load("seed-002-httpecho.nomad")
    assert type(only_task(block)["Config"]["port_map"]) is type(only_task(attribute)["Config"]["port_map"])


def test_existing_fixtures_key_facts():
    assert load("periodic.nomad")["Periodic"]["Spec"] == "*/15 * * * *"
    param = load("param.nomad")["ParameterizedJob"]
    assert param == {"Payload": "optional", "MetaRequired": ["k"], "MetaOptional": ["opt"]}
    assert load("svc-count3.nomad")["TaskGroups"][0]["Count"] == 3
    assert only_task(load("svc-changed.nomad"))["Env"] == {"GREETING": "hi"}
    assert load("example.nomad")["TaskGroups"][0]["Networks"][0]["DynamicPorts"] == [
        {"Label": "db", "To": 6379}
    ]


def test_missing_file_is_a_jobspec_error(tmp_path):
    with pytest.raises(JobspecError, match="not found"):
        parse_job_file(str(tmp_path / "nope.nomad"))


def test_kitchen_sink_api_names_and_conversions():
    job = load("kitchen-sink.nomad.hcl")
    assert job["Reschedule"]["Interval"] == 5400 * SECOND and job["Reschedule"]["Delay"] == 500_000_000
    assert job["Meta"] == {"owner": "team-a", "level": "3"}  # meta values become strings, as in Nomad
    group = job["TaskGroups"][0]
    assert group["Volumes"]["data"] == {
        "Name": "data",
        "Type": "host",
        "Source": "data-vol",
        "ReadOnly": False,
    }
    assert group["Scaling"]["Policy"] == {"cooldown": "1m"}
    (network,) = group["Networks"]
    assert network["ReservedPorts"] == [{"Label": "http", "Value": 8080, "To": 80, "HostNetwork": "public"}]
    assert network["DynamicPorts"] == [{"Label": "metrics"}]
    init, app = group["Tasks"]
    assert init["Lifecycle"] == {"Hook": "prestart", "Sidecar": False}
    assert app["Config"]["labels"] == [{"tier": "web"}]
    assert app["Env"] == {"PORT": "${NOMAD_PORT_http}"}
    assert app["Artifacts"][0]["GetterOptions"] == {"checksum": "sha256:abc"}
    assert app["Templates"][0]["Wait"] == {"Min": 2 * SECOND, "Max": 10 * SECOND}
    assert app["Resources"]["Devices"][0]["Constraints"][0]["Operand"] == ">="
    check = app["Services"][0]["Checks"][0]
    assert check["Header"] == {"Authorization": ["Basic x"]}
    assert check["CheckRestart"] == {"Limit": 3, "Grace": 90 * SECOND}
    assert app["LogConfig"] == {"MaxFiles": 3, "MaxFileSizeMB": 15}
