"""Nomad's JSON job format: both wrappings, located syntax errors, and HCL -> JSON round trips."""

import json
from pathlib import Path

import pytest

from orchestrator.jobspec import JobspecError, parse_job, parse_job_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jobs"
GOOD = sorted(p for p in FIXTURES.iterdir() if p.is_file() and not p.name.startswith("bad"))
REFERENCE = Path("/work/shared/reference/nomad-1.0.18/api/job-sleeper.json")


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_round_trip_through_api_json(path: Path):
    job = parse_job_file(str(path))
    wrapped = json.dumps({"Job": job}, indent=2)
    assert parse_job(wrapped, "job.json") == job
    assert parse_job(json.dumps(job)) == job


def test_bare_job_object_with_leading_whitespace():
    job = parse_job('\n   {"ID": "x", "Name": "x", "TaskGroups": []}')
    assert job["ID"] == "x"


def test_name_only_job_gets_its_id():
    assert parse_job('{"Name": "n"}')["ID"] == "n"


@pytest.mark.skipif(not REFERENCE.exists(), reason="Nomad reference captures not present")
def test_reference_nomad_job_json_is_accepted():
    text = REFERENCE.read_text()
    job = parse_job(text)
    assert job["ID"] == "sleeper" and job["TaskGroups"][0]["Count"] == 3


def test_json_syntax_error_has_line_and_column():
    with pytest.raises(JobspecError) as info:
        parse_job('{\n  "Job": {\n    "ID": "x",\n    nope\n  }\n}', "job.json")
    (diag,) = info.value.diagnostics
    assert (diag.filename, diag.line, diag.column) == ("job.json", 4, 5)
    assert "invalid JSON" in diag.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"Job": 3}', '"Job" must hold an object'),
        ('{"job": {"example": {}}}', "HCL JSON syntax"),
        ('{"Type": "service"}', 'no "ID"'),
        ('{"ID": "x", "TaskGroups": {}}', '"TaskGroups" must be a list'),
    ],
)
def test_json_shape_errors(text, message):
    with pytest.raises(JobspecError, match=message):
        parse_job(text)
