"""The progress bar: silent off a terminal or when disabled; a plain text bar otherwise."""

import io

import pytest
import simpy

from sim.progress import ProgressBar, run

pytestmark = pytest.mark.sim


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_silent_when_not_a_tty_or_disabled():
    for stream, enabled in ((io.StringIO(), True), (FakeTerminal(), False)):
        with ProgressBar(100, stream=stream, enabled=enabled) as bar:
            bar.update(50)
            bar.update(100)
        assert stream.getvalue() == ""


def test_plain_text_bar_on_a_terminal():
    stream = FakeTerminal()
    with ProgressBar(100, stream=stream, use_rich=False, min_interval=0) as bar:
        bar.update(50)
    text = stream.getvalue()
    assert "50.0%" in text and text.startswith("\r") and text.endswith("\n")


def test_run_in_chunks_reaches_the_end_and_changes_nothing():
    def ticks(progress):
        env = simpy.Environment()
        seen = []

        def clock():
            while True:
                seen.append(env.now)
                yield env.timeout(0.7)

        env.process(clock())
        run(env, 100, progress=progress, stream=FakeTerminal(), chunks=13)
        return env.now, seen

    assert ticks(True) == ticks(False)
    assert ticks(True)[0] == 100
