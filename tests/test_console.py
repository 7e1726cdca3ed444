"""Console lines of background work: at most one per key per interval, with a count of
the lines held back."""

import logging

import pytest

from trackway.console import ConsoleLines


def test_at_most_one_line_per_key_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    lines = ConsoleLines(logging.getLogger("trackway.test"), every_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="trackway.test"):
        assert lines.line("hook", "a failed")
        now[0] += 3
        assert not lines.line("hook", "b failed")
        assert lines.line("other", "c failed")  # another key has its own limit
        now[0] += 5
        assert not lines.line("hook", "d failed")
        now[0] += 2
        assert lines.line("hook", "e failed", logging.INFO)
        assert not lines.line("hook", "f failed")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "a failed"),
        (logging.WARNING, "c failed"),
        (logging.INFO, "e failed (2 similar line(s) suppressed since the last one)"),
    ]
