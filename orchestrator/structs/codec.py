"""Generic encoding of yurt's dataclasses to and from Nomad's API JSON (CamelCase field names)."""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar, Union, get_args, get_origin

T = TypeVar("T")

# Words Nomad spells in capitals inside field names (MemoryMB, NodeID, CPU, IOPS...).
_ACRONYMS = {"id": "ID", "cpu": "CPU", "mb": "MB", "ip": "IP", "iops": "IOPS", "tls": "TLS", "ttl": "TTL",
             "url": "URL", "dc": "DC", "http": "HTTP", "mhz": "MHz", "uuid": "UUID", "ids": "IDs"}


def api_field(name: str, **kwargs: Any) -> Any:
    """A dataclass field whose API name is given explicitly rather than derived from the Python name."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["api"] = name
    return dataclasses.field(metadata=metadata, **kwargs)


def api_name(python_name: str) -> str:
    """`memory_mb` -> `MemoryMB`, `node_id` -> `NodeID`, `task_groups` -> `TaskGroups`."""
    return "".join(_ACRONYMS.get(part, part.capitalize()) for part in python_name.split("_"))


class DecodeError(ValueError):
    """A JSON document does not fit the structure it was decoded into; the message names the path."""


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    api: str
    kind: str  # "plain", "dataclass", "list", "dict", "optional-..."
    inner: Any
    default_empty: Any  # what a JSON null decodes to (a fresh container or None)


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


@cache
def _plan(cls: type) -> tuple[_FieldPlan, ...]:
    hints = typing.get_type_hints(cls)
    plans = []
    for f in dataclasses.fields(cls):
        if f.metadata.get("skip_api"):
            continue
        hint, _optional = _strip_optional(hints[f.name])
        origin = get_origin(hint)
        if dataclasses.is_dataclass(hint):
            kind, inner = "dataclass", hint
        elif origin is list:
            (item,) = get_args(hint) or (Any,)
            item, _ = _strip_optional(item)
            kind, inner = ("list-dc", item) if dataclasses.is_dataclass(item) else ("list", item)
        elif origin is dict:
            _k, value = get_args(hint) or (str, Any)
            value, _ = _strip_optional(value)
            kind, inner = ("dict-dc", value) if dataclasses.is_dataclass(value) else ("dict", value)
        else:
            kind, inner = "plain", hint
        plans.append(_FieldPlan(f.name, f.metadata.get("api", api_name(f.name)), kind, inner, None))
    return tuple(plans)


def encode(obj: Any) -> Any:
    """Encode a dataclass (or a list/dict of them) into Nomad-style JSON-ready data.

    Empty lists and maps become null, as Nomad's Go encoder prints nil slices and maps.
    """
    if dataclasses.is_dataclass(obj):
        out = {}
        for p in _plan(type(obj)):
            value = getattr(obj, p.name)
            if p.kind in ("list", "dict"):
                # Free-form values (driver config, meta) are copied as they are, empties inside kept.
                out[p.api] = value if value else None
            else:
                out[p.api] = encode(value)
        return out
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj] if obj else None
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()} if obj else None
    return obj


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _decode_value(kind: str, inner: Any, value: Any, parent: str, key: str) -> Any:
    # The path (for error messages) is built only when needed: decoding is on every server's apply path.
    if kind == "plain":
        if type(value) is inner and inner is not float:
            return value  # the common case: already the right type
        return _check_plain(inner, value, _join(parent, key))
    path = _join(parent, key)
    if kind == "dataclass":
        return decode(inner, value, path)
    if kind == "list-dc":
        if not isinstance(value, list):
            raise DecodeError(f"{path}: expected a list, got {type(value).__name__}")
        return [decode(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind == "list":
        if not isinstance(value, list):
            raise DecodeError(f"{path}: expected a list, got {type(value).__name__}")
        return list(value)
    if kind == "dict-dc":
        if not isinstance(value, dict):
            raise DecodeError(f"{path}: expected an object, got {type(value).__name__}")
        return {k: decode(inner, v, f"{path}.{k}") for k, v in value.items()}
    if not isinstance(value, dict):
        raise DecodeError(f"{path}: expected an object, got {type(value).__name__}")
    return dict(value)


def _check_plain(hint: Any, value: Any, path: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"{path}: expected a bool, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(f"{path}: expected a number, got {value!r}")
        if isinstance(value, float):
            if value != int(value):
                raise DecodeError(f"{path}: expected an integer, got {value!r}")
            value = int(value)
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(f"{path}: expected a number, got {value!r}")
        value = float(value)
    elif hint is str and not isinstance(value, str):
        raise DecodeError(f"{path}: expected a string, got {value!r}")
    return value


def decode(cls: type[T], data: Any, path: str = "") -> T:
    """Build `cls` from Nomad-style JSON; unknown keys are ignored, missing or null keys take defaults."""
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise DecodeError(f"{path or cls.__name__}: expected an object, got {type(data).__name__}")
    kwargs = {}
    for p in _plan(cls):
        value = data.get(p.api)
        if value is None:
            continue
        kwargs[p.name] = _decode_value(p.kind, p.inner, value, path, p.api)
    return cls(**kwargs)
