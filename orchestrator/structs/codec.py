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
    encoder = _ENCODERS.get(type(obj))
    if encoder is not None:
        return encoder(obj)
    if dataclasses.is_dataclass(obj):
        if isinstance(obj, type):
            return _encode_generic(obj)
        return _encoder(type(obj))(obj)
    if isinstance(obj, list | tuple):
        return [encode(v) for v in obj] if obj else None
    if isinstance(obj, dict):
        return {k: encode(v) for k, v in obj.items()} if obj else None
    return obj


def _encode_generic(obj: Any) -> Any:
    """The reference encoding of a dataclass, field by field through the plan; the generated encoders
    below must give exactly this (tests compare the two)."""
    out = {}
    for p in _plan(type(obj)):
        value = getattr(obj, p.name)
        if p.kind in ("list", "dict"):
            # Free-form values (driver config, meta) are copied as they are, empties inside kept.
            out[p.api] = value if value else None
        else:
            out[p.api] = encode(value)
    return out


# -- generated codecs ------------------------------------------------------------------------------------
#
# Encoding and decoding run on every server for every command (and over the whole store for a Raft
# snapshot), and walking the plan generically costs a function call and several type checks per field.
# Each dataclass gets a function generated from its plan instead, with the common case inline (a value
# already of the declared type) and anything else handed to the generic code, so the result is always
# the generic one. Decoders skip error paths altogether: on any failure `decode` runs the generic decoder,
# which raises the located error (or succeeds the same way).

# Values the generic encoder returns unchanged (no dataclass, list, tuple or dict).
_PASS = frozenset({str, int, bool, float, type(None)})
_ENCODERS: dict[type, Any] = {}
_DECODERS: dict[type, Any] = {}


def _generated(cache: dict[type, Any], build: Any, cls: type) -> Any:
    """The generated function for `cls`. Those of one generation (a class and the classes it contains, which
    may contain it again) are published together once they all refer to each other, so that code running
    meanwhile (another thread) never calls one half made; two generating at once is harmless."""
    function = cache.get(cls)
    if function is None:
        made: dict[type, Any] = {}
        function = build(cls, made)
        cache.update(made)
    return function


def _encoder(cls: type) -> Any:
    return _generated(_ENCODERS, _build_encoder, cls)


def _decoder(cls: type) -> Any:
    return _generated(_DECODERS, _build_decoder, cls)


def _build_encoder(cls: type, made: dict[type, Any]) -> Any:
    encoder = _ENCODERS.get(cls) or made.get(cls)
    if encoder is not None:
        return encoder
    namespace: dict[str, Any] = {"_PASS": _PASS, "encode": encode}
    inner: dict[str, type] = {}
    items = []
    for i, p in enumerate(_plan(cls)):
        value = f"o.{p.name}"
        if p.kind in ("list", "dict"):
            expr = f"({value} or None)"
        elif p.kind == "plain":
            expr = f"(v if (v := {value}).__class__ in _PASS else encode(v))"
        else:
            cls_name, enc_name = f"C{i}", f"E{i}"
            namespace[cls_name] = p.inner
            inner[enc_name] = p.inner
            one = f"({enc_name}(x) if x.__class__ is {cls_name} else encode(x))"
            if p.kind == "dataclass":
                expr = f"(None if (x := {value}) is None else {one})"
            elif p.kind == "list-dc":
                expr = f"(([{one} for x in v] if v else None) if (v := {value}).__class__ is list else encode(v))"
            else:  # dict-dc
                expr = (f"(({{k: {one} for k, x in v.items()}} if v else None) if (v := {value}).__class__ is dict "
                        f"else encode(v))")
        items.append(f"        {p.api!r}: {expr},")
    source = "def encode_one(o):\n    return {\n" + "\n".join(items) + "\n    }\n"
    exec(compile(source, f"<encoder {cls.__qualname__}>", "exec"), namespace)
    encoder = made[cls] = namespace["encode_one"]
    for name, inner_cls in inner.items():  # after `made`: a class may (indirectly) contain itself
        namespace[name] = _build_encoder(inner_cls, made)
    return encoder


def _fills_defaults(cls: type) -> bool:
    """Whether passing every field's default explicitly is the same as leaving it out of the call."""
    if hasattr(cls, "__post_init__"):
        return False
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.init:
        return False
    return all(f.init and not f.kw_only
               and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
               for f in dataclasses.fields(cls))


def _build_decoder(cls: type, made: dict[type, Any]) -> Any:
    decoder = _DECODERS.get(cls) or made.get(cls)
    if decoder is not None:
        return decoder
    namespace: dict[str, Any] = {"cls": cls, "decode": decode, "_check_plain": _check_plain,
                                 "_not_a": _not_a, "list": list, "dict": dict}
    explicit = _fills_defaults(cls)
    inner: dict[str, type] = {}
    lines = ["def decode_one(d):", "    g = d.get"]
    if not explicit:
        lines.append("    kw = {}")
    values: dict[str, str] = {}  # field name -> the variable holding its value
    for i, p in enumerate(_plan(cls)):
        if p.kind == "plain":
            if p.inner in (bool, int, str):
                namespace[f"T{i}"] = p.inner
                conv = f"v if v.__class__ is T{i} else _check_plain(T{i}, v, '')"
            elif p.inner is float:
                conv = "_check_plain(float, v, '')"
            else:
                namespace[f"T{i}"] = p.inner
                conv = f"_check_plain(T{i}, v, '')"
        elif p.kind == "list":
            conv = "list(v) if isinstance(v, list) else _not_a()"
        elif p.kind == "dict":
            conv = "dict(v) if isinstance(v, dict) else _not_a()"
        else:
            namespace[f"C{i}"] = p.inner
            inner[f"D{i}"] = p.inner
            one = f"(D{i}(x) if x.__class__ is dict else decode(C{i}, x))"
            if p.kind == "dataclass":
                conv = f"D{i}(v) if v.__class__ is dict else decode(C{i}, v)"
            elif p.kind == "list-dc":
                conv = f"[{one} for x in v] if isinstance(v, list) else _not_a()"
            else:  # dict-dc
                conv = f"{{k: {one} for k, x in v.items()}} if isinstance(v, dict) else _not_a()"
        lines.append(f"    v = g({p.api!r})")
        if explicit:
            lines.append(f"    a{i} = {_default_expr(namespace, p.name, cls)} if v is None else ({conv})")
            values[p.name] = f"a{i}"
        else:
            lines.append(f"    if v is not None: kw[{p.name!r}] = {conv}")
    if explicit:
        # Every field positionally, in declaration order: fields the API does not carry take their defaults.
        args = [values.get(f.name) or _default_expr(namespace, f.name, cls) for f in dataclasses.fields(cls)]
        lines.append(f"    return cls({', '.join(args)})")
    else:
        lines.append("    return cls(**kw)")
    exec(compile("\n".join(lines) + "\n", f"<decoder {cls.__qualname__}>", "exec"), namespace)
    decoder = made[cls] = namespace["decode_one"]
    for name, inner_cls in inner.items():  # after `made`: a class may (indirectly) contain itself
        namespace[name] = _build_decoder(inner_cls, made)
    return decoder


def _default_expr(namespace: dict[str, Any], name: str, cls: type) -> str:
    """The expression giving field `name`'s default in a generated decoder (a fresh value from a factory)."""
    f = cls.__dataclass_fields__[name]
    if f.default_factory is not dataclasses.MISSING:
        namespace[f"F_{name}"] = f.default_factory
        return f"F_{name}()"
    namespace[f"F_{name}"] = f.default
    return f"F_{name}"


_REPLACERS: dict[type, Any] = {}
_UNSET: Any = object()


def replace(obj: T, /, **changes: Any) -> T:
    """`dataclasses.replace`, generated per class: the generic one looks every field up by name on each
    call, and the state store replaces a job or an evaluation several times per command on every server."""
    replacer = _REPLACERS.get(type(obj))
    if replacer is None:
        replacer = _replacer(type(obj))
    return replacer(obj, **changes)


def _replacer(cls: type) -> Any:
    if not dataclasses.is_dataclass(cls) or not _fills_defaults(cls):
        replacer: Any = dataclasses.replace
    else:
        # The generated names start with "_yurt_" so that no field name (a keyword parameter) can shadow them.
        names = [f.name for f in dataclasses.fields(cls)]
        params = ", ".join(f"{n}=_yurt_unset" for n in names)
        args = ", ".join(f"_yurt_obj.{n} if {n} is _yurt_unset else {n}" for n in names)
        source = f"def replace_one(_yurt_obj, /, *, {params}):\n    return _yurt_cls({args})\n"
        namespace: dict[str, Any] = {"_yurt_cls": cls, "_yurt_unset": _UNSET}
        exec(compile(source, f"<replace {cls.__qualname__}>", "exec"), namespace)
        replacer = namespace["replace_one"]
        # A misspelt field then fails with the very message dataclasses.replace gives (from __init__).
        replacer.__qualname__ = f"{cls.__qualname__}.__init__"
    _REPLACERS[cls] = replacer
    return replacer


def _not_a() -> Any:
    raise DecodeError("not of the declared type")  # the generic decoder then says where and what


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
    try:
        return _decoder(cls)(data)
    except Exception:
        pass  # whatever went wrong, the generic decoder says it (located) as it always has
    return _decode_generic(cls, data, path)


def _decode_generic(cls: type[T], data: dict[str, Any], path: str) -> T:
    """The reference decoding, field by field through the plan, with located errors."""
    kwargs = {}
    for p in _plan(cls):
        value = data.get(p.api)
        if value is None:
            continue
        kwargs[p.name] = _decode_value(p.kind, p.inner, value, path, p.api)
    return cls(**kwargs)
