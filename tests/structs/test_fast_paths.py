"""The fast paths give exactly what the generic code gives: generated encoders and decoders (the same
objects, JSON and located errors, on well-formed and malformed input alike), the generated `replace`, the
JSON copy in `with_defaults`, and applying the defaults once rather than twice."""

import copy
import dataclasses
import json
import random
from pathlib import Path

import pytest

import orchestrator.structs as structs
from orchestrator.jobspec import parse_job_file
from orchestrator.state.records import Namespace, PeriodicLaunch
from orchestrator.state.summary import JobSummary
from orchestrator.structs import Evaluation, Job, codec, decode, encode, job_from_api, with_defaults
from orchestrator.structs.defaults import _copy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted(p for p in (ROOT / "tests" / "fixtures" / "jobs").iterdir() if not p.name.startswith("bad"))


def _classes() -> list[type]:
    seen: dict[type, None] = {}

    def walk(cls: type) -> None:
        if cls in seen:
            return
        seen[cls] = None
        for p in codec._plan(cls):
            if p.kind in ("dataclass", "list-dc", "dict-dc"):
                walk(p.inner)

    for name in sorted(dir(structs)):
        obj = getattr(structs, name)
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            walk(obj)
    for cls in (JobSummary, Namespace, PeriodicLaunch):
        walk(cls)
    return list(seen)


CLASSES = _classes()
ODD = [None, "", "x", 0, 7, -1, 2.0, 2.5, True, False, [], [1], {}, {"a": 1}, [None], {"k": None}]


def _value(rng: random.Random, p, depth: int, wrong: float) -> object:
    if rng.random() < wrong:
        return rng.choice(ODD)
    if p.kind == "plain":
        return {bool: rng.random() < 0.5, int: rng.randint(-3, 10**12), str: rng.choice(["", "a", "ü"]),
                float: rng.choice([0.5, 3, 1e9])}.get(p.inner, rng.choice(ODD))
    if p.kind == "list":
        return rng.choice([[], ["a", "b"], [{"x": [1, 2]}], [1]])
    if p.kind == "dict":
        return rng.choice([{}, {"a": "b"}, {"nested": {"x": [1, {}]}}])
    if depth > 3:
        return None
    if p.kind == "dataclass":
        return _data(rng, p.inner, depth + 1, wrong)
    if p.kind == "list-dc":
        return [_data(rng, p.inner, depth + 1, wrong) for _ in range(rng.randint(0, 2))]
    return {f"k{i}": _data(rng, p.inner, depth + 1, wrong) for i in range(rng.randint(0, 2))}


def _data(rng: random.Random, cls: type, depth: int, wrong: float) -> object:
    if rng.random() < wrong / 4:
        return rng.choice(ODD)
    return {p.api: _value(rng, p, depth, wrong) for p in codec._plan(cls) if rng.random() < 0.8}


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("error", type(exc), str(exc))


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_generated_decoder_and_encoder_match_the_generic_ones(cls):
    rng = random.Random(cls.__name__)
    for round_ in range(150):
        wrong = 0.0 if round_ < 50 else 0.15
        data = _data(rng, cls, 0, wrong)
        generic = _outcome(codec._decode_generic, cls, data, "Top") if isinstance(data, dict) else None
        fast = _outcome(decode, cls, data, "Top")
        if generic is not None:
            assert fast == generic, data
        if fast[0] == "ok":
            obj = fast[1]
            assert encode(obj) == codec._encode_generic(obj)
            assert decode(cls, json.loads(json.dumps(encode(obj)))) == \
                codec._decode_generic(cls, json.loads(json.dumps(encode(obj))), "")


def test_encoder_hands_unexpected_values_to_the_generic_encoder():
    job = job_from_api(parse_job_file(str(FIXTURES[0])))
    odd = dataclasses.replace(job, name=["not", "a", "string"], datacenters=(), task_groups=tuple(job.task_groups),
                              update={"Stagger": 1}, meta={})
    assert encode(odd) == codec._encode_generic(odd)
    assert encode(odd)["Name"] == ["not", "a", "string"] and encode(odd)["Datacenters"] is None


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_jobs_encode_and_decode_as_before(path):
    api = parse_job_file(str(path))
    job = job_from_api(api)
    assert encode(job) == codec._encode_generic(job)
    assert decode(Job, encode(job)) == codec._decode_generic(Job, encode(job), "")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_generated_replace_is_dataclasses_replace(cls):
    obj = decode(cls, _data(random.Random(cls.__name__), cls, 0, 0.0))
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    for name in names[:3] + names[-2:]:
        changed = codec.replace(obj, **{name: getattr(cls(), name)})
        assert changed == dataclasses.replace(obj, **{name: getattr(cls(), name)})
        assert changed is not obj
    assert codec.replace(obj) == dataclasses.replace(obj)
    for fn in (codec.replace, dataclasses.replace):
        with pytest.raises(TypeError) as caught:
            fn(obj, no_such_field=1)
        assert str(caught.value) == f"{cls.__name__}.__init__() got an unexpected keyword argument 'no_such_field'"


def test_replace_of_anything_else_fails_as_dataclasses_replace_does():
    for fn in (codec.replace, dataclasses.replace):
        with pytest.raises(TypeError, match="dataclass instances"):
            fn({"a": 1}, a=2)
    evaluation = Evaluation(id="e")
    assert codec.replace(evaluation, status="complete").status == "complete" and evaluation.status == "pending"


def test_json_copy_is_deepcopy():
    shared = {"a": [1, {"b": None}]}
    data = {"x": [shared, shared], "y": shared, "t": (1, [2]), 3: 4.5, "s": "é", "n": None, "f": False}
    data["self"] = data
    copied = _copy(data, {})
    reference = copy.deepcopy(data)
    assert copied["x"][0] is copied["x"][1] is copied["y"] and copied["self"] is copied
    assert copied["t"] == reference["t"] and copied["t"][1] is not data["t"][1]
    assert copied["y"] is not shared and copied["y"] == shared
    del copied["self"], reference["self"]
    assert copied == reference


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_defaults_applied_twice_change_nothing(path):
    api = parse_job_file(str(path))
    once = with_defaults(api)
    assert with_defaults(once) == once
    assert api == parse_job_file(str(path))  # the input is left as it was
    rng = random.Random(path.name)
    for _ in range(20):
        sparse = json.loads(json.dumps(api))
        for group in sparse.get("TaskGroups") or []:
            for key in rng.sample(sorted(group), k=min(3, len(group))):
                if key not in ("Name", "Tasks"):
                    group[key] = None
            for task in group.get("Tasks") or []:
                for key in rng.sample(sorted(task), k=min(3, len(task))):
                    if key not in ("Name", "Driver"):
                        task[key] = rng.choice([None, {}])
        once = with_defaults(sparse)
        assert with_defaults(once) == once


@dataclasses.dataclass
class _Tree:
    name: str = ""
    children: list["_Tree"] = dataclasses.field(default_factory=list)
    parent: "_Tree | None" = None


def test_a_class_that_contains_itself_gets_codecs_too():
    data = {"Name": "root", "Children": [{"Name": "a", "Children": [{"Name": "b"}]}], "Parent": {"Name": "p"}}
    tree = decode(_Tree, data)
    assert tree == codec._decode_generic(_Tree, data, "")
    assert tree.children[0].children[0].name == "b" and tree.parent.name == "p"
    assert encode(tree) == codec._encode_generic(tree)
    assert decode(_Tree, encode(tree)) == tree
    with pytest.raises(codec.DecodeError, match=r"Children\[0\]\.Children\[0\]\.Name: expected a string"):
        decode(_Tree, {"Children": [{"Children": [{"Name": 5}]}]})
