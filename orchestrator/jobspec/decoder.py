"""Decodes a job block into Nomad's API JSON dict, checking keys and values against the schema."""

from __future__ import annotations

from typing import Any

from orchestrator.structs.timefmt import parse_duration

from .diagnostics import Collector, did_you_mean
from .drivers import DRIVER_CONFIG_KEYS, DRIVER_REQUIRED
from .evaluator import EvalError, RuntimeReference, Scope, evaluate
from .functions import to_hcl_number, to_hcl_string, type_name
from .nodes import Attribute, Block, Body, Node
from .schema import CONSTRAINT_SHORTHANDS, FREEFORM, SCHEMAS, STRING_MAP, Field, Sub

_MISSING = object()


class Decoder:
    """Walks blocks with the schema tables; every problem goes to the collector, decoding goes on."""

    def __init__(self, collector: Collector, scope: Scope):
        self.collector = collector
        self.scope = scope

    def error(self, node: Node | None, path: str, message: str) -> None:
        self.collector.error(node.line if node else None, node.column if node else None, path, message)

    # ---- blocks ----------------------------------------------------------------------------------

    def job(self, block: Block) -> dict[str, Any]:
        name = block.labels[0] if block.labels else ""
        path = f'job "{name}"'
        if len(block.labels) != 1:
            self.error(block, path, 'a job block needs exactly one label, its ID: job "example" { ... }')
        out: dict[str, Any] = {"ID": name, "Name": name}
        out.update(self.body(block.body, "job", path, path, ""))
        self._after_job(out, block, path)
        return out

    def body(self, body: Body, schema_name: str, msg_path: str, nest_path: str, where: str) -> dict[str, Any]:
        """Decode one block body. `where` is " in X block" for unlabeled blocks, for messages."""
        schema = SCHEMAS[schema_name]
        out: dict[str, Any] = {}
        seen: dict[str, Node] = {}
        for attr in body.attributes:
            if attr.name in seen:
                self.error(
                    attr,
                    msg_path,
                    f'"{attr.name}" is set more than once{where} (first at line {seen[attr.name].line})',
                )
                continue
            seen[attr.name] = attr
            if attr.name in schema.fields:
                spec = schema.fields[attr.name]
                value = self.value(attr, spec, msg_path, where)
                if value is not _MISSING:
                    out[spec.api] = value
            elif attr.name in schema.blocks and schema.blocks[attr.name].schema in (FREEFORM, STRING_MAP):
                # HCL2 style `meta = { ... }` / `config = { ... }` for map-like blocks.
                sub = schema.blocks[attr.name]
                value = self.map_attribute(attr, sub, msg_path, where)
                if value is not _MISSING:
                    out[sub.api] = value
            elif attr.name in schema.blocks:
                self.error(
                    attr,
                    msg_path,
                    f'"{attr.name}" is a block, not an argument{where}: write {attr.name} {{ ... }}',
                )
            else:
                names = set(schema.fields) | set(schema.blocks)
                self.error(
                    attr, msg_path, f'unknown key "{attr.name}"{where}' + did_you_mean(attr.name, names)
                )
        for block in body.blocks:
            sub = schema.blocks.get(block.type)
            if sub is None:
                if block.type in schema.fields:
                    self.error(
                        block,
                        msg_path,
                        f'"{block.type}" is an argument, not a block{where}: write {block.type} = ...',
                    )
                else:
                    names = set(schema.fields) | set(schema.blocks)
                    self.error(
                        block,
                        msg_path,
                        f'unknown block "{block.type}"{where}' + did_you_mean(block.type, names),
                    )
                continue
            if block.type in seen and sub.mode == "single":
                self.error(
                    block,
                    msg_path,
                    f'only one "{block.type}" block is allowed{where} '
                    f"(first at line {seen[block.type].line})",
                )
                continue
            seen.setdefault(block.type, block)
            self.sub_block(block, sub, out, msg_path, nest_path, where)
        return out

    def sub_block(self, block: Block, sub: Sub, out: dict, msg_path: str, nest_path: str, where: str) -> None:
        if sub.label is None and block.labels:
            self.error(
                block, msg_path, f'a "{block.type}" block takes no label{where} (found "{block.labels[0]}")'
            )
        if sub.label is not None and len(block.labels) != 1:
            self.error(
                block,
                msg_path,
                f'a "{block.type}" block needs exactly one label{where}: {block.type} "name" {{ ... }}',
            )
            return
        if sub.label is not None:
            child_path = f'{nest_path} {block.type} "{block.labels[0]}"'.strip()
            child_msg, child_where = child_path, ""
        else:
            child_path = f"{nest_path} {block.type}".strip()
            child_msg, child_where = nest_path, f" in {block.type} block"

        if sub.schema == FREEFORM:
            value: dict[str, Any] = self.freeform(block.body, child_msg, child_where)
        elif sub.schema == STRING_MAP:
            value = self.string_map(block.body, child_msg, child_where)
        else:
            value = {}
            if sub.label is not None:
                value[sub.label] = block.labels[0]
            value.update(self.body(block.body, sub.schema, child_msg, child_path, child_where))
            hook = getattr(self, f"_after_{sub.schema}", None)
            if hook is not None:
                hook(value, block, child_msg, child_where)

        if sub.mode == "single":
            out[sub.api] = value
        elif sub.mode == "list":
            out.setdefault(sub.api, []).append(value)
        else:
            volumes = out.setdefault(sub.api, {})
            if block.labels[0] in volumes:
                self.error(block, msg_path, f'{block.type} "{block.labels[0]}" is defined more than once')
            volumes[block.labels[0]] = value

    # ---- values ----------------------------------------------------------------------------------

    def eval(self, attr: Attribute, msg_path: str) -> Any:
        try:
            return evaluate(attr.expr, self.scope)
        except EvalError as exc:
            if not exc.quiet:
                self.collector.error(exc.line, exc.column, msg_path, exc.message)
        except RuntimeReference as ref:
            name = ref.node.name
            self.collector.error(
                ref.node.line,
                ref.node.column,
                msg_path,
                f'unknown variable "{name}": values Nomad fills in at run time must be '
                f'written inside a string, like "${{{name}...}}"; input variables are var.NAME',
            )
        return _MISSING

    def value(self, attr: Attribute, spec: Field, msg_path: str, where: str) -> Any:
        raw = self.eval(attr, msg_path)
        if raw is _MISSING or raw is None:
            return _MISSING  # null means "not set", as in HCL2
        try:
            value = coerce(raw, spec.kind)
        except ValueError as exc:
            self.error(attr.expr, msg_path, f'invalid value for "{attr.name}"{where}: {exc}')
            return _MISSING
        if spec.choices and value not in spec.choices:
            allowed = ", ".join(f'"{c}"' for c in spec.choices)
            self.error(
                attr.expr,
                msg_path,
                f'invalid value "{value}" for "{attr.name}"{where}: must be one of '
                f"{allowed}" + did_you_mean(str(value), spec.choices).replace(";", ","),
            )
            return _MISSING
        low, high = spec.minimum, spec.maximum
        if isinstance(value, int) and not isinstance(value, bool):
            if low is not None and high is not None and not low <= value <= high:
                self.error(
                    attr.expr, msg_path, f'"{attr.name}"{where} must be between {low} and {high}, got {value}'
                )
                return _MISSING
            if low is not None and value < low:
                rule = "must not be negative" if low == 0 else f"must be at least {low}"
                self.error(attr.expr, msg_path, f'"{attr.name}"{where} {rule}, got {value}')
                return _MISSING
        return value

    def map_attribute(self, attr: Attribute, sub: Sub, msg_path: str, where: str) -> Any:
        raw = self.eval(attr, msg_path)
        if raw is _MISSING:
            return raw
        if not isinstance(raw, dict):
            self.error(attr.expr, msg_path, f'"{attr.name}"{where} must be a map, not a {type_name(raw)}')
            return _MISSING
        if sub.schema == STRING_MAP:
            out = {}
            for key, item in raw.items():
                try:
                    out[key] = to_hcl_string(item)
                except ValueError as exc:
                    self.error(attr.expr, msg_path, f'invalid value for "{key}" in {attr.name}: {exc}')
            return out
        return {k: _hcl1_shape(v) for k, v in raw.items()}

    def string_map(self, body: Body, msg_path: str, where: str) -> dict[str, str]:
        """env/meta style blocks: any key, values must be strings (numbers and bools are converted)."""
        out: dict[str, str] = {}
        for attr in body.attributes:
            raw = self.eval(attr, msg_path)
            if raw is _MISSING:
                continue
            try:
                out[attr.name] = to_hcl_string(raw)
            except ValueError as exc:
                self.error(attr.expr, msg_path, f'invalid value for "{attr.name}"{where}: {exc}')
        for block in body.blocks:
            self.error(block, msg_path, f'blocks are not allowed{where}; found "{block.type}"')
        return out

    def freeform(self, body: Body, msg_path: str, where: str) -> dict[str, Any]:
        """Driver config and opaque blocks, shaped as Nomad's HCL1 parser did (see _hcl1_shape)."""
        out: dict[str, Any] = {}
        for attr in body.attributes:
            raw = self.eval(attr, msg_path)
            if raw is not _MISSING:
                if attr.name in out:
                    self.error(attr, msg_path, f'"{attr.name}" is set more than once{where}')
                out[attr.name] = _hcl1_shape(raw)
        for block in body.blocks:
            inner = self.freeform(block.body, msg_path, f" in {block.type} block")
            for label in reversed(block.labels):
                inner = {label: [inner]}
            existing = out.setdefault(block.type, [])
            if not isinstance(existing, list):
                self.error(block, msg_path, f'"{block.type}" is set both as an argument and a block{where}')
                continue
            existing.append(inner)
        return out

    # ---- per-block checks that need more than one field ---------------------------------------------

    def _after_job(self, out: dict, block: Block, path: str) -> None:
        groups = [b for b in block.body.blocks if b.type == "group"]
        if not groups:
            self.error(
                block, path, 'a job needs at least one group block: group "name" { task "name" { ... } }'
            )
        self._duplicates(groups, path, "group")

    def _after_group(self, out: dict, block: Block, path: str, where: str) -> None:
        tasks = [b for b in block.body.blocks if b.type == "task"]
        if not tasks:
            self.error(block, path, 'a group needs at least one task block: task "name" { driver = ... }')
        self._duplicates(tasks, path, "task")

    def _after_task(self, out: dict, block: Block, path: str, where: str) -> None:
        driver = out.get("Driver")
        if "driver" not in {a.name for a in block.body.attributes}:
            self.error(block, path, 'missing required key "driver" (e.g. driver = "docker")')
        config_block = next((b for b in block.body.blocks if b.type == "config"), None)
        if not isinstance(driver, str) or driver not in DRIVER_CONFIG_KEYS or config_block is None:
            return
        allowed = DRIVER_CONFIG_KEYS[driver]
        suggested: set[str] = set()
        for item in [*config_block.body.attributes, *config_block.body.blocks]:
            key = item.name if isinstance(item, Attribute) else item.type
            if key not in allowed:
                hint = did_you_mean(key, allowed)
                suggested.add(hint.split('"')[1] if hint else "")
                self.error(item, path, f'unknown key "{key}" in config block' + hint)
        # Keys as written, not as decoded: a value that failed to evaluate was already reported.
        present = {a.name for a in config_block.body.attributes} | {b.type for b in config_block.body.blocks}
        for options in DRIVER_REQUIRED.get(driver, ()):
            # A misspelt required key was already reported with its did-you-mean; say it once.
            if not present.intersection(options) and not suggested.intersection(options):
                wanted = " or ".join(f'"{o}"' for o in options)
                self.error(
                    config_block, path, f'missing required key {wanted} in config block for driver "{driver}"'
                )

    def _after_network(self, out: dict, block: Block, path: str, where: str) -> None:
        # Nomad's API keeps ports with a static value apart from dynamically assigned ones.
        ports = out.pop("Ports", [])
        blocks = {b.labels[0]: b for b in block.body.blocks if b.type == "port" and b.labels}
        seen: set[str] = set()
        for port in ports:
            if port["Label"] in seen:
                self.error(
                    blocks.get(port["Label"]),
                    path,
                    f'port "{port["Label"]}" is defined more than once{where}',
                )
            seen.add(port["Label"])
            key = "ReservedPorts" if port.get("Value") else "DynamicPorts"
            out.setdefault(key, []).append(port)

    def _after_constraint(self, out: dict, block: Block, path: str, where: str) -> None:
        for name in CONSTRAINT_SHORTHANDS:
            if f"@{name}" not in out:
                continue
            value = out.pop(f"@{name}")
            if "Operand" in out:
                self.error(block, path, f'"{name}" already names the operator; remove "operator"{where}')
            out["Operand"] = name
            if name == "distinct_hosts":
                if value is not True and value != "true":
                    out.pop("Operand")  # distinct_hosts = false means no constraint at all
            elif name == "distinct_property":
                out["LTarget"] = to_hcl_string(value)
            else:
                out["RTarget"] = to_hcl_string(value)

    _after_affinity = _after_constraint

    def _after_periodic(self, out: dict, block: Block, path: str, where: str) -> None:
        if "Spec" in out or "Specs" in out:
            out["SpecType"] = "cron"
        else:
            self.error(block, path, f'missing required key "cron"{where}')

    def _duplicates(self, blocks: list[Block], path: str, kind: str) -> None:
        first: dict[str, Block] = {}
        for b in blocks:
            if len(b.labels) != 1:
                continue
            if b.labels[0] in first:
                self.error(
                    b,
                    path,
                    f'duplicate {kind} name "{b.labels[0]}" (first defined at line '
                    f"{first[b.labels[0]].line})",
                )
            else:
                first[b.labels[0]] = b


def _hcl1_shape(value: Any) -> Any:
    """A map assigned to a key becomes a one-element list of maps, as Nomad's HCL1 parser produced.

    So `port_map { db = 6379 }` and `port_map = { db = 6379 }` both give [{"db": 6379}]. Maps
    inside lists stay maps (a list of objects is already a list of maps).
    """
    if isinstance(value, dict):
        return [{k: _hcl1_shape(v) for k, v in value.items()}]
    if isinstance(value, list):
        return [{k: _hcl1_shape(v) for k, v in v.items()} if isinstance(v, dict) else v for v in value]
    return value


def coerce(value: Any, kind: str) -> Any:
    """Convert an evaluated value to a field's kind the way HCL2 would, or raise ValueError."""
    if kind == "any":
        return value
    if kind == "string":
        if isinstance(value, list | dict):
            raise ValueError(f"a string is required, not a {type_name(value)}")
        return to_hcl_string(value)
    if kind in ("int", "number"):
        if isinstance(value, list | dict | bool):
            raise ValueError(f"a number is required, not a {type_name(value)}")
        try:
            number = to_hcl_number(value)
        except ValueError:
            raise ValueError(f"a number is required, not {_show(value)}") from None
        if kind == "int":
            if isinstance(number, float) and not number.is_integer():
                raise ValueError(f"a whole number is required, not {number}")
            return int(number)
        return number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError(f"true or false is required, not {_show(value)}")
    if kind == "duration":
        if isinstance(value, bool | list | dict):
            raise ValueError(f'a duration like "30s" is required, not a {type_name(value)}')
        if isinstance(value, int | float):
            return int(value)  # a bare number is already nanoseconds
        return parse_duration(value)
    if kind == "strings":
        if not isinstance(value, list):
            raise ValueError(f'a list of strings is required, like ["a", "b"], not {_show(value)}')
        return [coerce(v, "string") for v in value]
    if kind == "string_map":
        if not isinstance(value, dict):
            raise ValueError(f"a map of strings is required, not a {type_name(value)}")
        return {k: coerce(v, "string") for k, v in value.items()}
    raise AssertionError(f"unknown field kind {kind}")


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else f"a {type_name(value)}"
