"""Diagnostics: located error messages, the error that carries them, and a collector."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a jobspec, located by file, line, column and block path."""

    filename: str
    line: int | None
    column: int | None
    path: str
    message: str
    end_column: int | None = None  # the offending token's end on the same line, as HCL prints "3,3-8"

    def __str__(self) -> str:
        where = self.filename
        if self.line is not None:
            where += f":{self.line}"
            if self.column is None:
                where += ":"
            elif self.end_column is not None:
                where += f",{self.column}-{self.end_column}:"
            else:
                where += f",{self.column}:"
        else:
            where += ":"
        prefix = f"{self.path}: " if self.path else ""
        return f"{where} {prefix}{self.message}"


class JobspecError(ValueError):
    """Raised with every diagnostic found in one jobspec; str() lists them one per line."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(str(d) for d in self.diagnostics))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A '; did you mean "x"?' suffix when a candidate is close to `name`, else ''."""
    close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    if not close:
        # Case slips ("Image" for "image") are common and difflib scores them low.
        lowered = {c.lower(): c for c in candidates}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    return f'; did you mean "{close[0]}"?' if close else ""


@dataclass
class Collector:
    """Gathers diagnostics for one file so that all of them can be reported at once."""

    filename: str
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def error(self, line: int | None, column: int | None, path: str, message: str) -> None:
        self.diagnostics.append(Diagnostic(self.filename, line, column, path, message))

    def raise_if_any(self) -> None:
        if self.diagnostics:
            ordered = sorted(self.diagnostics, key=lambda d: (d.line or 0, d.column or 0))
            raise JobspecError(ordered)
