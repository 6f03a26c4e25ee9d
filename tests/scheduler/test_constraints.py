"""Each constraint operator and target interpolation, as the feasibility checker evaluates them."""

import pytest
from builders import make_node

from orchestrator.scheduler.constraints import check_constraint, check_version, resolve_target
from orchestrator.structs import Constraint

NODE = make_node(1, node_class="gpu", meta={"rack": "r1", "zones": "a,b,c"},
                 attrs={"kernel.version": "6.1.0", "cpu.numcores": "8", "os.name": "debian"})


@pytest.mark.parametrize(("l_target", "operand", "r_target", "expected"), [
    ("${attr.kernel.name}", "=", "linux", True),
    ("${attr.kernel.name}", "==", "windows", False),
    ("${attr.kernel.name}", "is", "linux", True),
    ("${attr.kernel.name}", "!=", "windows", True),
    ("${attr.missing}", "!=", "windows", True),
    ("${attr.kernel.name}", "not", "linux", False),
    ("${attr.cpu.numcores}", ">", "4", True),
    ("${attr.cpu.numcores}", ">=", "8", True),
    ("${attr.cpu.numcores}", "<", "10", True),  # numeric, not lexical ("8" > "10" as strings)
    ("${attr.cpu.numcores}", "<=", "7", False),
    ("${attr.os.name}", "<", "fedora", True),  # lexical when not numbers
    ("${attr.os.name}", "regexp", "^deb", True),
    ("${attr.os.name}", "regexp", "ubuntu", False),
    ("${attr.kernel.version}", "version", ">= 5.10, < 7", True),
    ("${attr.kernel.version}", "version", "~> 6.0", True),
    ("${attr.kernel.version}", "version", "< 6", False),
    ("${attr.kernel.version}", "semver", ">= 6.1.0", True),
    ("${meta.zones}", "set_contains", "a,c", True),
    ("${meta.zones}", "set_contains_all", "a,d", False),
    ("${meta.zones}", "set_contains_any", "d,b", True),
    ("${meta.zones}", "set_contains_any", "x,y", False),
    ("${meta.rack}", "is_set", "", True),
    ("${meta.nope}", "is_set", "", False),
    ("${meta.nope}", "is_not_set", "", True),
    ("${node.class}", "=", "gpu", True),
    ("${node.datacenter}", "=", "dc1", True),
    ("${node.unique.name}", "=", "node-1", True),
    ("${attr.missing}", "=", "x", False),
    ("${attr.missing}", ">", "1", False),
    ("${attr.kernel.name}", "distinct_hosts", "", True),  # placement-wide: checked by the ranker
])
def test_operator(l_target, operand, r_target, expected):
    assert check_constraint(Constraint(l_target=l_target, operand=operand, r_target=r_target), NODE) is expected


def test_resolve_target_reports_missing_attributes():
    assert resolve_target("${attr.kernel.name}", NODE) == ("linux", True)
    assert resolve_target("${attr.nope}", NODE) == (None, False)
    assert resolve_target("literal", NODE) == ("literal", True)


def test_version_prereleases_sort_before_release():
    assert check_version("1.2.0-beta1", "< 1.2.0")
    assert not check_version("garbage", ">= 1")
    assert not check_version("1.0", "not-a-constraint !!")
