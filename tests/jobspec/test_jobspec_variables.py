"""Input variables, var files, locals, functions and run-time interpolations."""

import pytest

from orchestrator.jobspec import JobspecError, parse_job

VARS = """\
variable "dc" {
  type        = string
  default     = "dc1"
  description = "where to run"
}
variable "image" {
  type = string
}
variable "replicas" {
  type    = number
  default = 1
}
variable "tags" {
  type    = list(string)
  default = ["a"]
}
"""

JOB = """\
job "web" {
  datacenters = [var.dc]
  group "g" {
    count = var.replicas
    task "t" {
      driver = "docker"
      config {
        image = "${var.image}:latest"
        args  = var.tags
      }
    }
  }
}
"""


def task_of(job: dict) -> dict:
    return job["TaskGroups"][0]["Tasks"][0]


def meta_of(expressions: dict[str, str], prefix: str = "") -> dict:
    lines = "\n".join(f"    {k} = {v}" for k, v in expressions.items())
    tail = '  group "g" {\n    task "t" {\n      driver = "x"\n    }\n  }\n}\n'
    text = f'{prefix}job "j" {{\n  meta {{\n{lines}\n  }}\n' + tail
    return parse_job(text, "m.nomad")["Meta"]


def test_defaults_and_cli_vars():
    job = parse_job(VARS + JOB, variables={"image": "redis", "replicas": "3"})
    assert job["Datacenters"] == ["dc1"]
    assert job["TaskGroups"][0]["Count"] == 3
    assert task_of(job)["Config"] == {"image": "redis:latest", "args": ["a"]}


def test_cli_var_overrides_default_and_parses_complex_types():
    job = parse_job(VARS + JOB, variables={"image": "x", "dc": "eu", "tags": '["p", "q"]'})
    assert job["Datacenters"] == ["eu"]
    assert task_of(job)["Config"]["args"] == ["p", "q"]


def test_var_files_hcl_and_json(tmp_path):
    hcl = tmp_path / "prod.vars.hcl"
    hcl.write_text('image = "nginx"\nreplicas = 4\nunrelated = "ignored"\n')
    json_file = tmp_path / "more.json"
    json_file.write_text('{"dc": "us-west"}')
    job = parse_job(VARS + JOB, var_files=[str(hcl), str(json_file)])
    assert job["Datacenters"] == ["us-west"]
    assert job["TaskGroups"][0]["Count"] == 4
    assert task_of(job)["Config"]["image"] == "nginx:latest"
    # -var beats -var-file
    assert (
        parse_job(VARS + JOB, variables={"replicas": "9"}, var_files=[str(hcl)])["TaskGroups"][0]["Count"]
        == 9
    )


def test_missing_variable_is_one_error_naming_it():
    with pytest.raises(JobspecError) as info:
        parse_job(VARS + JOB, "web.nomad")
    (diag,) = info.value.diagnostics
    assert diag.line == 6 and 'required variable "image"' in diag.message
    assert "-var image=" in diag.message


def test_missing_var_file_and_bad_values():
    with pytest.raises(JobspecError, match="var file not found"):
        parse_job(VARS + JOB, var_files=["/nonexistent/vars.hcl"])
    with pytest.raises(JobspecError, match="is not a number"):
        parse_job(VARS + JOB, variables={"image": "x", "replicas": "many"})
    with pytest.raises(JobspecError, match=r'no variable "imag" is declared.*did you mean "image"'):
        parse_job(VARS + JOB, variables={"imag": "x"})


def test_undeclared_reference_suggests_a_name():
    text = 'variable "image" { default = "x" }\n' + JOB.replace("var.image", "var.imag").replace(
        "var.dc", '"dc1"'
    ).replace("var.replicas", "1").replace("var.tags", "[]")
    with pytest.raises(JobspecError, match=r'undeclared input variable "var\.imag".*did you mean "image"'):
        parse_job(text)


def test_variable_validation_block():
    prefix = (
        'variable "n" {\n  default = 0\n  validation {\n    condition     = var.n > 0\n'
        '    error_message = "n must be positive"\n  }\n}\n'
    )
    with pytest.raises(JobspecError, match="n must be positive"):
        meta_of({"v": "var.n"}, prefix)
    assert meta_of({"v": "var.n"}, prefix.replace("default = 0", "default = 2")) == {"v": "2"}


def test_locals_can_use_vars_functions_and_each_other():
    prefix = (
        'variable "env" { default = "prod" }\n'
        'locals {\n  base = "app-${var.env}"\n  full = upper(local.base)\n}\n'
    )
    assert meta_of({"a": "local.full", "b": '"${local.base}-x"'}, prefix) == {
        "a": "APP-PROD",
        "b": "app-prod-x",
    }


def test_local_cycles_are_reported():
    prefix = "locals {\n  a = local.b\n  b = local.a\n}\n"
    with pytest.raises(JobspecError, match="cycle"):
        meta_of({"x": "local.a"}, prefix)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('upper("a")', "A"),
        ('lower("AB")', "ab"),
        ('format("%s-%d", "x", 5)', "x-5"),
        ('format("%05.1f|%q|%t|%%", 3.14159, "q", true)', '003.1|"q"|true|%'),
        ('join(",", ["a", "b"])', "a,b"),
        ('join("-", split(",", "a,b,c"))', "a-b-c"),
        ('length(concat(["a"], ["b", "c"]))', "3"),
        ("min(3, 1, 2)", "1"),
        ("max(3, 1, 2)", "3"),
        ("abs(-4)", "4"),
        ("ceil(1.2)", "2"),
        ("floor(1.8)", "1"),
        ('trimspace("  x ")', "x"),
        ('replace("a-b-c", "-", "+")', "a+b+c"),
        ('replace("v1.2", "/v(\\\\d)/", "V$1")', "V1.2"),
        ('substr("hello", 1, 3)', "ell"),
        ('lookup({a = "1"}, "b", "dflt")', "dflt"),
        ("jsonencode(merge({a = 1}, {b = [true]}))", '{"a":1,"b":[true]}'),
        ('join(",", keys({b = 1, a = 2}))', "a,b"),
        ('join(",", values({b = 1, a = 2}))', "2,1"),
        ('contains(["a"], "a")', "true"),
        ('coalesce("", "x")', "x"),
        ("tostring(5)", "5"),
        ('tonumber("42") + 1', "43"),
        ('join(",", tolist(toset(["b", "a", "b"])))', "a,b"),
        ('jsondecode("{\\"k\\": \\"v\\"}").k', "v"),
        ("1 + 2 * 3", "7"),
        ("10 / 4", "2.5"),
        ('true && !false ? "yes" : "no"', "yes"),
        ('["a", "b"][1]', "b"),
        ("max([4, 9]...)", "9"),
    ],
)
def test_functions_and_operators(expression, expected):
    assert meta_of({"v": expression}) == {"v": expected}


def test_unknown_function_suggests_a_name():
    with pytest.raises(JobspecError, match=r'unknown function "uppr".*did you mean "upper"'):
        meta_of({"v": 'uppr("a")'})


def test_bad_function_arguments_are_located():
    with pytest.raises(JobspecError) as info:
        meta_of({"v": 'tonumber("x")'})
    (diag,) = info.value.diagnostics
    assert diag.line == 3 and "tonumber()" in diag.message


def test_file_function_reads_next_to_the_jobspec(tmp_path):
    (tmp_path / "tmpl.txt").write_text("hello {{ env }}\n")
    jobspec = tmp_path / "j.nomad"
    jobspec.write_text(
        'job "j" {\n  meta {\n    f = file("tmpl.txt")\n  }\n  group "g" {\n    task "t" {\n'
        '      driver = "x"\n    }\n  }\n}\n'
    )
    from orchestrator.jobspec import parse_job_file

    assert parse_job_file(str(jobspec))["Meta"] == {"f": "hello {{ env }}\n"}


def test_runtime_interpolations_are_kept_verbatim():
    meta = meta_of(
        {
            "a": '"${node.class}"',
            "b": '"${attr.kernel.name}-${meta.rack}"',
            "c": '"${NOMAD_META_x}"',
            "d": '"$${escaped}"',
            "e": '"${upper("x")}-${node.unique.name}"',
        }
    )
    assert meta == {
        "a": "${node.class}",
        "b": "${attr.kernel.name}-${meta.rack}",
        "c": "${NOMAD_META_x}",
        "d": "${escaped}",
        "e": "X-${node.unique.name}",
    }


def test_constraint_keeps_runtime_attribute_and_shorthands():
    text = """job "c" {
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  constraint {
    attribute = "${attr.nomad.version}"
    version   = ">= 1.0"
  }
  constraint {
    distinct_hosts = true
  }
  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
    weight    = 50
  }
  spread {
    attribute = "${node.datacenter}"
    weight    = 100
    target "dc1" {
      percent = 70
    }
  }
  group "g" {
    task "t" {
      driver = "x"
    }
  }
}
"""
    job = parse_job(text)
    assert job["Constraints"] == [
        {"LTarget": "${attr.kernel.name}", "RTarget": "linux"},
        {"LTarget": "${attr.nomad.version}", "Operand": "version", "RTarget": ">= 1.0"},
        {"Operand": "distinct_hosts"},
    ]
    assert job["Affinities"] == [{"LTarget": "${node.datacenter}", "RTarget": "dc1", "Weight": 50}]
    assert job["Spreads"] == [
        {"Attribute": "${node.datacenter}", "Weight": 100, "SpreadTarget": [{"Value": "dc1", "Percent": 70}]}
    ]


def test_heredocs_plain_and_indented_with_interpolation():
    text = (
        'variable "who" { default = "world" }\n'
        'job "h" {\n  meta {\n'
        "    plain = <<EOH\n  keep ${var.who}\n    indent ${NOMAD_TASK_NAME}\nEOH\n"
        "    trimmed = <<-EOH\n      a\n        b $${x} ${VAR:-default}\n      EOH\n"
        '  }\n  group "g" {\n    task "t" {\n      driver = "x"\n    }\n  }\n}\n'
    )
    meta = parse_job(text)["Meta"]
    assert meta["plain"] == "  keep world\n    indent ${NOMAD_TASK_NAME}\n"
    assert meta["trimmed"] == "a\n  b ${x} ${VAR:-default}\n"
