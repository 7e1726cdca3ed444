"""The docs convention as tests/docs/blocks.py reads it (docs/README.md, "Writing docs")."""

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs.blocks import Command, ConventionError, output_matches, read


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    """Writes a Markdown file of its own each call."""
    made = iter(range(1_000))

    def make(text: str) -> Path:
        path = tmp_path / f"doc-{next(made)}.md"
        path.write_text(text)
        return path

    return make


def test_a_block_without_a_language_is_refused(write: Callable[[str], Path]) -> None:
    path = write("Intro\n\n```\ntrackway sources list\n```\n")
    with pytest.raises(ConventionError, match=r"doc-0\.md:3: a code block needs a language"):
        read(path)


def test_a_skip_needs_its_reason(write: Callable[[str], Path]) -> None:
    path = write("<!-- docs-test: skip -->\n```sh\ntrackway serve\n```\n")
    with pytest.raises(ConventionError, match="needs its skip argument"):
        read(path)
    path = write("<!-- docs-test: ignore (x) -->\n```sh\ntrackway serve\n```\n")
    with pytest.raises(ConventionError, match="unknown directive"):
        read(path)


def test_what_runs_and_what_is_shown(write: Callable[[str], Path]) -> None:
    path = write(
        "<!-- docs-test: skip (serves forever) -->\n```sh\ntrackway serve\n```\n\n"
        "<!-- docs-test: file functions/f.py -->\n```python\ndef transform(e, s): ...\n```\n\n"
        "```text\nReady.\n```\n\n```yaml\nsources: []\n```\n"
    )
    skipped, written, shown, applied = read(path)
    assert (skipped.skip, skipped.runs) == ("serves forever", False)
    assert (written.file, written.runs) == ("functions/f.py", True)
    assert (shown.lang, shown.runs) == ("text", False)
    assert (applied.line, applied.runs) == (15, True)


def test_shell_and_console_commands(write: Callable[[str], Path]) -> None:
    path = write(
        "```sh\n# a comment\ntrackway sources create web \\\n  --type segment\n"
        "trackway sources list\n```\n"
        "  ```console\n  $ trackway sql 'SELECT 1'\n  1\n  2\n  $ trackway check\n  ```\n"
    )
    shell, console = read(path)
    assert shell.commands == [
        Command(3, "trackway sources create web \\\n  --type segment"),
        Command(5, "trackway sources list"),
    ]
    assert console.commands == [
        Command(8, "trackway sql 'SELECT 1'", "1\n2\n"),
        Command(11, "trackway check", "\n"),
    ]


def test_output_matching() -> None:
    assert output_matches(
        "a: schema version 1, up to date\n", "a: schema version 1, up to date  \n"
    )
    assert not output_matches("a: 1\n", "a: 2\n")
    assert output_matches("run ... succeeded\n", "run 7 (manual) succeeded\n")
    assert output_matches("first\n...\nlast\n", "first\nx\ny\nlast\n")
    assert output_matches("first\n...\nlast\n", "first\nlast\n")
    assert not output_matches("first\n", "first\nmore\n")
