"""`yurt job validate`, `job run -output` and `job init` work with no agent, with Nomad's exit codes."""

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jobs"


def yurt(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli.main", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=60)


def test_validate_success_and_failures():
    ok = yurt("job", "validate", str(FIXTURES / "example.nomad"))
    assert (ok.returncode, ok.stdout) == (0, "Job validation successful\n")
    bad = yurt("job", "validate", str(FIXTURES / "bad.nomad"))
    assert bad.returncode == 1
    assert "Error parsing job file from" in bad.stderr and "bad.nomad:3," in bad.stderr
    semantic = yurt("validate", str(FIXTURES / "bad-semantic.nomad"))
    assert semantic.returncode == 1
    assert "nonsense" in semantic.stderr and "must not be negative" in semantic.stderr
    missing = yurt("job", "validate", "does-not-exist.nomad")
    assert missing.returncode == 1 and "no such file or directory" in missing.stderr


def test_run_output_prints_the_canonical_json_job():
    result = yurt("job", "run", "-output", str(FIXTURES / "svc.nomad"))
    assert result.returncode == 0
    job = json.loads(result.stdout)["Job"]
    assert job["ID"] == "sleeper" and job["TaskGroups"][0]["Tasks"][0]["KillTimeout"] == 5_000_000_000
    assert job["TaskGroups"][0]["RestartPolicy"]["Attempts"] == 2


def test_init_writes_example_once(tmp_path):
    first = yurt("job", "init", "-short", cwd=tmp_path)
    assert (first.returncode, first.stdout) == (0, "Example job file written to example.nomad\n")
    assert yurt("job", "validate", "example.nomad", cwd=tmp_path).returncode == 0
    again = yurt("job", "init", "-short", cwd=tmp_path)
    assert (again.returncode, again.stderr) == (1, "Job 'example.nomad' already exists\n")
