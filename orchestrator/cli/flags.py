"""Nomad's command-line conventions: Go-style flags, the general API options, help text and usage errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.api.client import ApiClient

GENERAL_OPTIONS = """General Options:

  -address=<addr>
    The address of the Nomad server.
    Overrides the YURT_ADDR and NOMAD_ADDR environment variables if set.
    Default = http://127.0.0.1:4646

  -region=<region>
    The region of the Nomad servers to forward commands to.
    Overrides the NOMAD_REGION environment variable if set.
    Defaults to the Agent's local region.

  -namespace=<namespace>
    The target namespace for queries and actions bound to a namespace.
    Overrides the NOMAD_NAMESPACE environment variable if set.
    Defaults to the "default" namespace.

  -no-color
    Disables colored command output.

  -tls-skip-verify
    Do not verify TLS certificate. This is highly not recommended.

  -token
    The SecretID of an ACL token to use to authenticate API requests with.
    Overrides the NOMAD_TOKEN environment variable if set."""

_API_STRINGS = ("address", "region", "namespace", "token", "ca-cert", "ca-path", "client-cert", "client-key",
                "tls-server-name")
_API_BOOLS = ("no-color", "tls-skip-verify")


class Exit(Exception):
    """Leave the command with this exit code; whatever had to be printed has been."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class CommandError(Exception):
    """A failure worth one message on stderr and an exit code (1 unless the command says otherwise)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def out(text: str = "") -> None:
    print(text, flush=True)


def err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def q(text: str | None) -> str:
    """Go's %q for the strings Nomad quotes (IDs, names): double quotes with escapes."""
    return json.dumps(text or "", ensure_ascii=False)


@contextmanager
def failing(context: str, code: int = 1) -> Iterator[None]:
    """Turn an API failure inside the block into Nomad's "<context>: <error>" message."""
    from orchestrator.api.client import ApiError

    try:
        yield
    except ApiError as exc:
        raise CommandError(f"{context}: {exc}", code) from exc


@dataclass(slots=True)
class _Flag:
    kind: str  # "bool", "string", "int", "list"
    default: Any


@dataclass
class Options:
    """Parsed flags as attributes (dashes become underscores) and the positional arguments in `args`."""

    values: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


class FlagSet:
    """Go's flag package as Nomad uses it: `-flag value`, `-flag=value`, `--flag`, flags before arguments."""

    def __init__(self, name: str, help_text: str, *, api: bool = True) -> None:
        self.name = name
        self.help_text = help_text.strip()
        self.flags: dict[str, _Flag] = {}
        if api:
            for flag in _API_STRINGS:
                self.string(flag)
            for flag in _API_BOOLS:
                self.bool(flag)

    def bool(self, name: str, default: bool = False) -> FlagSet:
        self.flags[name] = _Flag("bool", default)
        return self

    def string(self, name: str, default: str = "") -> FlagSet:
        self.flags[name] = _Flag("string", default)
        return self

    def int(self, name: str, default: int | None = None) -> FlagSet:
        self.flags[name] = _Flag("int", default)
        return self

    def strings(self, name: str) -> FlagSet:
        self.flags[name] = _Flag("list", None)
        return self

    def help(self) -> str:
        return self.help_text.replace("{general}", GENERAL_OPTIONS)

    def usage_error(self, *messages: str, code: int = 1) -> Exit:
        for message in messages:
            err(message)
        err(f"For additional help try 'yurt {self.name} -help'")
        return Exit(code)

    def parse(self, args: list[str]) -> Options:
        if any(arg in ("-h", "-help", "--help") for arg in _before_terminator(args)):
            out(self.help())
            raise Exit(0)
        values = {name.replace("-", "_"): ([] if f.kind == "list" else f.default) for name, f in self.flags.items()}
        rest = list(args)
        while rest:
            arg = rest[0]
            if arg == "--":
                rest.pop(0)
                break
            if len(arg) < 2 or not arg.startswith("-"):
                break
            rest.pop(0)
            name, has_value, value = arg.lstrip("-").partition("=")
            flag = self.flags.get(name)
            if flag is None or arg.startswith("---"):
                raise self._flag_error(f"flag provided but not defined: -{name}")
            if flag.kind == "bool":
                values[name.replace("-", "_")] = self._bool(name, value) if has_value else True
                continue
            if not has_value:
                if not rest:
                    raise self._flag_error(f"flag needs an argument: -{name}")
                value = rest.pop(0)
            key = name.replace("-", "_")
            if flag.kind == "int":
                try:
                    values[key] = int(value)
                except ValueError:
                    raise self._flag_error(f'invalid value "{value}" for flag -{name}: parse error') from None
            elif flag.kind == "list":
                values[key].append(value)
            else:
                values[key] = value
        return Options(values, rest)

    def _bool(self, name: str, value: str) -> bool:
        lowered = value.lower()
        if lowered in ("1", "t", "true"):
            return True
        if lowered in ("0", "f", "false"):
            return False
        raise self._flag_error(f'invalid boolean value "{value}" for -{name}: parse error')

    def _flag_error(self, message: str) -> Exit:
        err(message)
        err(self.help())
        return Exit(1)

    def client(self, opts: Options) -> ApiClient:
        from orchestrator.api.client import ApiClient

        client = ApiClient(opts.address, region=opts.region, namespace=opts.namespace, token=opts.token)
        client.tls_skip_verify = bool(opts.tls_skip_verify)
        return client


def _before_terminator(args: list[str]) -> Iterator[str]:
    for arg in args:
        if arg == "--":
            return
        yield arg


Command = Callable[[list[str]], int]


def command(fn: Callable[[list[str]], int | None]) -> Command:
    """Run a command body, turning Exit, CommandError and Ctrl-C into exit codes as Nomad's CLI does."""

    @functools.wraps(fn)
    def run(args: list[str]) -> int:
        try:
            return fn(args) or 0
        except Exit as exc:
            return exc.code
        except CommandError as exc:
            err(str(exc))
            return exc.code
        except KeyboardInterrupt:
            return 130
        except BrokenPipeError:
            # `yurt ... | head` closes the pipe early; Go's CLI dies of SIGPIPE without a traceback.
            return 141

    return run


def group(name: str, help_text: str, subcommands: dict[str, str]) -> Command:
    """A command made of subcommands ("module:function"), each imported only when it is run."""

    def run(args: list[str]) -> int:
        words = list(args)
        target = None
        # Longest match first, so "periodic force" wins over a would-be "periodic".
        for size in (2, 1):
            key = " ".join(words[:size])
            if len(words) >= size and key in subcommands:
                target, words = subcommands[key], words[size:]
                break
        if target is None:
            text = help_text.strip()
            if words and words[0] in ("-h", "-help", "--help"):
                out(text)
                return 0
            err(text)
            return 1
        module, _, function = target.partition(":")
        import importlib

        return getattr(importlib.import_module(module), function)(words)

    run.__name__ = name.replace(" ", "_")
    return run
