"""The thin IO layer: reading jobspecs, var files and file() arguments from disk."""

from __future__ import annotations

from pathlib import Path

from .diagnostics import Diagnostic, JobspecError


def read_text(path: str, *, purpose: str = "jobspec") -> str:
    """The UTF-8 text of `path`; a missing or unreadable file raises JobspecError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        message = f"{purpose} file not found"
    except IsADirectoryError:
        message = f"{purpose} path is a directory, not a file"
    except UnicodeDecodeError:
        message = f"{purpose} file is not valid UTF-8 text"
    except OSError as exc:
        message = f"cannot read {purpose} file: {exc.strerror}"
    raise JobspecError([Diagnostic(path, None, None, "", message)])


def file_reader(base_dir: str):
    """The HCL file() function, reading paths relative to the jobspec's directory."""

    def file(path: str) -> str:
        target = Path(path)
        if not target.is_absolute():
            target = Path(base_dir) / target
        try:
            return target.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f'cannot read "{path}": {exc.strerror}') from None

    return file
