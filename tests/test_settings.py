"""Durations as the CLI, the YAML and the admin API take them."""

import subprocess

import pytest

from tests.support import TRACKWAY
from trackway.settings import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("7d", 604800)]
)
def test_a_duration_is_read_in_its_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1e400h", "nan", "inf", "-inf", "1e300d", "101y", "soon"])
def test_no_endless_or_unreadable_duration_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_an_endless_since_is_one_clear_line_not_a_crash() -> None:
    done = subprocess.run(
        [*TRACKWAY, "destinations", "replay", "hook", "--since", "1e400h"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "Error: --since: not a time or a duration: '1e400h' (e.g. 2026-11-22T10:00:00Z or 24h)"
    )
