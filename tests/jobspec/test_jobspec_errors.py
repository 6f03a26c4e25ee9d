"""Syntax and validation errors: located, worded for people, all reported together."""

from pathlib import Path

import pytest

from orchestrator.jobspec import Diagnostic, JobspecError, parse_job, parse_job_file

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "jobs"


def errors(text: str, filename: str = "example.nomad", **kwargs) -> list[Diagnostic]:
    with pytest.raises(JobspecError) as info:
        parse_job(text, filename, **kwargs)
    return info.value.diagnostics


def one_error(text: str, **kwargs) -> Diagnostic:
    found = errors(text, **kwargs)
    assert len(found) == 1, [str(d) for d in found]
    return found[0]


def job(group_body: str = "", task_body: str = '      driver = "raw_exec"', job_body: str = "") -> str:
    """A minimal job: the job body starts on line 2, the group body on line 4 and the task body on
    line 6 when the bodies before them are one line long (empty bodies still take their line)."""
    return (
        'job "example" {\n'
        f"{job_body}\n"
        f'  group "cache" {{\n'
        f"{group_body}\n"
        '    task "redis" {\n'
        f"{task_body}\n"
        "    }\n"
        "  }\n"
        "}\n"
    )


def test_diagnostic_str_formats():
    full = Diagnostic("example.nomad", 12, 7, 'job "example"', "bad")
    assert str(full) == 'example.nomad:12,7: job "example": bad'
    assert str(Diagnostic("example.nomad", 12, None, "", "bad")) == "example.nomad:12: bad"
    assert str(Diagnostic("x.nomad", None, None, "", "gone")) == "x.nomad: gone"


def test_error_str_joins_lines():
    exc = JobspecError([Diagnostic("a", 1, 1, "", "one"), Diagnostic("a", 2, 1, "", "two")])
    assert str(exc) == "a:1,1: one\na:2,1: two"


def test_bad_fixture_syntax_error_names_line_3():
    with pytest.raises(JobspecError) as info:
        parse_job_file(str(FIXTURES / "bad.nomad"))
    exc = info.value
    (diag,) = exc.diagnostics
    assert (diag.line, diag.column, diag.end_column) == (3, 3, 8)
    assert diag.filename.endswith("bad.nomad")
    # Word for word what Nomad 1.0.18 prints for this file (TRANSCRIPTS.md, "HCL syntax error").
    assert str(diag).endswith(
        "bad.nomad:3,3-8: Missing item separator; Expected a comma to mark the beginning of the next item.")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('job "x" {\n  a = 1\n', 3, "Unclosed configuration block"),
        ('job "x" {\n  a = "abc\n}\n', 2, "Unterminated template string"),
        ('job "x" {\n  a = @\n}\n', 2, "Invalid expression"),
        ('job "x" {\n  a = 1\n}\n}\n', 4, "extra '}'"),
        ('job "x" {\n  a = f(1 2)\n}\n', 2, "Missing argument separator"),
    ],
)
def test_syntax_errors_in_plain_words(text, line, words):
    diag = one_error(text)
    assert diag.line == line and diag.column is not None
    assert words in diag.message


def test_bad_semantic_fixture_reports_both_problems():
    with pytest.raises(JobspecError) as info:
        parse_job_file(str(FIXTURES / "bad-semantic.nomad"))
    exc = info.value
    lines = {(d.line, d.path) for d in exc.diagnostics}
    assert lines == {(3, 'job "semantic-bad"'), (5, 'job "semantic-bad" group "g"')}
    assert "nonsense" in str(exc) and "must not be negative" in str(exc)


def test_unknown_config_key_matches_the_documented_format():
    text = job(task_body='      driver = "docker"\n      config {\n        imgae = "redis:3.2"\n      }')
    diag = one_error(text)
    assert str(diag) == (
        'example.nomad:8,9: job "example" group "cache" task "redis": '
        'unknown key "imgae" in config block; did you mean "image"?'
    )


def test_missing_required_driver_config_key():
    diag = one_error(
        job(task_body='      driver = "docker"\n      config {\n        ports = ["db"]\n      }')
    )
    assert 'missing required key "image"' in diag.message and diag.line == 7


def test_unknown_driver_config_is_free_form():
    parsed = parse_job(
        job(task_body='      driver = "podman"\n      config {\n        whatever = 1\n      }')
    )
    assert parsed["TaskGroups"][0]["Tasks"][0]["Config"] == {"whatever": 1}


@pytest.mark.parametrize(
    ("task_body", "line", "message"),
    [
        ('driver = "raw_exec"\n      drivr = "x"', 7, 'unknown key "drivr"; did you mean "driver"?'),
        (
            'driver = "raw_exec"\n      resourcs {\n      }',
            7,
            'unknown block "resourcs"; did you mean "resources"?',
        ),
        (
            'driver = "raw_exec"\n      resources {\n        memroy = 5\n      }',
            8,
            'unknown key "memroy" in resources block; did you mean "memory"?',
        ),
        (
            'driver = "raw_exec"\n      restart {\n        mode = "retry"\n      }',
            8,
            'invalid value "retry" for "mode"',
        ),
        (
            'driver = "raw_exec"\n      lifecycle {\n        hook = "prerun"\n      }',
            8,
            '"prerun" for "hook"',
        ),
        ('driver = "raw_exec"\n      kill_timeout = "5 seconds"', 7, "invalid duration"),
        ('driver = "raw_exec"\n      kill_timeout = "5"', 7, "missing unit"),
        (
            'driver = "raw_exec"\n      constraint {\n        operator = "equals"\n      }',
            8,
            '"equals" for "operator"',
        ),
        ('driver = "raw_exec"\n      leader = "yes"', 7, "true or false is required"),
        ('driver = "raw_exec"\n      resources {\n        cpu = [1]\n      }', 8, "a number is required"),
    ],
)
def test_task_level_errors(task_body, line, message):
    diag = one_error(job(task_body="      " + task_body))
    assert diag.line == line, str(diag)
    assert message in diag.message, str(diag)
    assert diag.path.startswith('job "example" group "cache"')


@pytest.mark.parametrize(
    ("group_body", "line", "message"),
    [
        ('    count = "three"', 4, 'invalid value for "count": a number is required, not "three"'),
        ("    count = -1", 4, '"count" must not be negative, got -1'),
        ('    reschedule {\n      delay_function = "linear"\n    }', 5, '"linear" for "delay_function"'),
        ('    restart {\n      interval = "forever"\n    }', 5, "invalid duration"),
        (
            '    network {\n      port "a" {}\n      port "a" {}\n    }',
            6,
            'port "a" is defined more than once',
        ),
        ("    restart {\n    }\n    restart {\n    }", 6, 'only one "restart" block is allowed'),
        ("    count = 1\n    count = 2", 5, '"count" is set more than once'),
    ],
)
def test_group_level_errors(group_body, line, message):
    diag = one_error(job(group_body=group_body))
    assert diag.line == line, str(diag)
    assert message in diag.message, str(diag)


@pytest.mark.parametrize(
    ("job_body", "line", "message"),
    [
        ('  type = "servce"', 2, 'did you mean "service"?'),
        ("  priority = 0", 2, '"priority" must be between 1 and 100, got 0'),
        ("  priority = 101", 2, "between 1 and 100"),
        ('  parameterized {\n    payload = "sometimes"\n  }', 3, '"sometimes" for "payload"'),
        ('  datacenters = "dc1"', 2, "a list of strings is required"),
        ("  periodic {\n  }", 2, 'missing required key "cron" in periodic block'),
    ],
)
def test_job_level_errors(job_body, line, message):
    diag = one_error(job(job_body=job_body))
    assert diag.line == line, str(diag)
    assert message in diag.message, str(diag)


def test_structural_errors():
    text = (
        'job "a" {\n'  # 1
        '  group "g" {\n'  # 2
        '    task "t" {\n'  # 3
        '      user = "x"\n'  # 4
        "    }\n"  # 5
        '    task "t" {\n'  # 6
        '      driver = "exec"\n'  # 7
        '      config { command = "x" }\n'  # 8
        "    }\n"  # 9
        "  }\n"  # 10
        '  group "g" {\n'  # 11
        "  }\n"  # 12
        "}\n"  # 13
        'job "b" {\n'  # 14
        "}\n"
    )
    found = {(d.line, d.message.split(" (")[0].split(":")[0]) for d in errors(text)}
    assert (3, 'missing required key "driver"') in found
    assert (6, 'duplicate task name "t"') in found
    assert (11, 'duplicate group name "g"') in found
    assert (11, "a group needs at least one task block") in found
    assert (14, "only one job block is allowed per file") in found


def test_empty_file_and_unknown_top_level_block():
    assert "no job block" in one_error("").message
    diag = errors('jbo "x" {\n}\n')[0]
    assert 'unknown block "jbo"' in diag.message and 'did you mean "job"?' in diag.message


def test_all_errors_are_reported_at_once_in_line_order():
    text = job(
        job_body='  type = "nope"\n  priority = 500',
        group_body="    count = -2",
        task_body='      driver = "raw_exec"\n      kill_timeout = "soon"\n      envv { }',
    )
    found = errors(text)
    assert len(found) == 5
    assert [d.line for d in found] == sorted(d.line for d in found)
    assert len(str(JobspecError(found)).splitlines()) == 5


def test_runtime_reference_outside_a_string_is_explained():
    diag = one_error(job(task_body='      driver = "raw_exec"\n      user = node.class'))
    assert 'unknown variable "node"' in diag.message and diag.line == 7


def test_labels_are_checked():
    assert (
        "exactly one label" in one_error('job {\n  group "g" {\n task "t" { driver = "x" }\n }\n}\n').message
    )
    diag = one_error(job(task_body='      driver = "raw_exec"\n      resources "big" {\n      }'))
    assert "takes no label" in diag.message
