"""A progress bar for long simulation runs on stderr: rich when installed, plain text otherwise, silent off a TTY."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import simpy


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """Shows how much of `total` virtual seconds has been simulated, and the wall time so far.

    With `total` None (a scenario whose length is not known ahead) it shows the virtual seconds done only.
    """

    def __init__(self, total: float | None, *, label: str = "simulating", enabled: bool = True,
                 stream: TextIO | None = None, min_interval: float = 0.2, use_rich: bool = True):
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        # Logs and CI output stay clean: nothing at all is written unless a person is watching.
        self.active = enabled and (total is None or total > 0) and _is_tty(self.stream)
        self.min_interval = min_interval
        self._started = time.monotonic()
        self._last_draw = float("-inf")
        self._rich: Any = None
        self._task: Any = None
        if self.active and use_rich:
            self._start_rich()

    def _start_rich(self) -> None:
        try:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
        except ImportError:
            return
        if self.total is None:
            columns: tuple[Any, ...] = (TextColumn("{task.description}"), BarColumn(),
                                        TextColumn("{task.completed:,.0f} s virtual"), TimeElapsedColumn())
        else:
            columns = (TextColumn("{task.description}"), BarColumn(),
                       TextColumn("{task.percentage:>5.1f}% {task.completed:,.0f}/{task.total:,.0f} s"),
                       TimeElapsedColumn(), TimeRemainingColumn())
        self._rich = Progress(*columns, console=Console(file=self.stream), transient=False, auto_refresh=False)
        self._task = self._rich.add_task(self.label, total=self.total)
        self._rich.start()

    def update(self, done: float) -> None:
        if not self.active:
            return
        now = time.monotonic()
        total = self.total
        if now - self._last_draw < self.min_interval and (total is None or done < total):
            return
        self._last_draw = now
        if self._rich is not None:
            # Refreshed here rather than by rich's own thread: the simulation stays single-threaded.
            self._rich.update(self._task, completed=done if total is None else min(done, total), refresh=True)
            return
        if total is None:
            self.stream.write(f"\r{self.label} {done:,.0f} s virtual, {now - self._started:,.1f} s wall")
            self.stream.flush()
            return
        fraction = min(1.0, max(0.0, done / total))
        width = 30
        filled = int(fraction * width)
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {fraction:6.1%} {done:,.0f}/{total:,.0f} s "
                          f"virtual, {now - self._started:,.1f} s wall")
        self.stream.flush()

    def close(self) -> None:
        if not self.active:
            return
        self.active = False
        if self._rich is not None:
            self._rich.stop()
        else:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run(env: simpy.Environment, until: float, *, progress: bool = True, label: str = "simulating",
        stream: TextIO | None = None, chunks: int = 200) -> None:
    """env.run(until) in chunks, updating a progress bar between them (the chunking changes no outcome)."""
    start = env.now
    if until <= start:
        return
    with ProgressBar(until - start, label=label, enabled=progress, stream=stream) as bar:
        if not bar.active:
            env.run(until=until)
            return
        run_in_chunks(env, until, lambda now: bar.update(now - start), chunks)


def run_in_chunks(env: simpy.Environment, until: float, after_chunk: Callable[[float], None],
                  chunks: int = 200) -> None:
    """env.run(until) in `chunks` equal slices, calling after_chunk(env.now) after each (no outcome changes:
    SimPy's stop event at a slice's end runs before any event due at that instant)."""
    start = env.now
    if until <= start:
        return
    step = (until - start) / chunks
    for i in range(1, chunks + 1):
        end = until if i == chunks else start + i * step
        if end > env.now:
            env.run(until=end)
        after_chunk(env.now)
