"""The fenced code blocks of the README and docs/*.md, read by the convention of
docs/README.md ("Writing docs"): what each block is, and whether and how the docs test
runs it.

`python -m tests.docs.blocks` lists the blocks the test does not run, with their reasons.
"""

import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

SHELL = {"sh", "bash", "shell"}
RUN = {*SHELL, "console", "python", "yaml"}
"""Languages the docs test runs; any other language is shown only (text, json, ...)."""

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)(?P<lang>[^\s`]*)\s*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>\w+)\s*(?P<arg>.*?)\s*-->\s*$")


class ConventionError(ValueError):
    """A block the convention does not allow: no language, a directive without its
    argument, an unknown directive, or an unclosed fence."""


@dataclass(frozen=True)
class Command:
    """One command of a shell or console block and the output the doc shows for it."""

    line: int
    text: str
    expected: str | None = None  # console blocks: what the doc shows after `$ command`


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, text and directive."""

    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    skip: str | None = None  # the reason of `docs-test: skip REASON`
    file: str | None = None  # the path of `docs-test: file PATH`
    commands: list[Command] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{name(self.doc)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.skip is None and (self.file is not None or self.lang in RUN)


def name(doc: Path) -> str:
    """How failures name a doc: relative to the repository."""
    return str(doc.relative_to(REPO)) if doc.is_relative_to(REPO) else str(doc)


def read(doc: Path) -> list[Block]:
    """The blocks of one Markdown file; raises ConventionError naming file and line."""
    lines = doc.read_text().splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        where = f"{name(doc)}:{i + 1}"
        if not opening["lang"]:
            raise ConventionError(
                f"{where}: a code block needs a language: sh, console, python or yaml to"
                " run it, text (or json, js, ...) to show it only (docs/README.md)"
            )
        indent, fence = len(opening["indent"]), opening["fence"]
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if end == len(lines):
            raise ConventionError(f"{where}: the code block is never closed")
        text = "\n".join(line[indent:] for line in lines[i + 1 : end]) + "\n"
        skip, file = _directive(lines[:i], where)
        lang = opening["lang"]
        commands = _commands(text, i + 2, lang == "console") if lang in {*SHELL, "console"} else []
        blocks.append(Block(doc, i + 1, lang, text, skip, file, commands))
        i = end + 1
    return blocks


def _directive(before: list[str], where: str) -> tuple[str | None, str | None]:
    """The `<!-- docs-test: ... -->` on the last non-blank line before a block."""
    previous = next((line for line in reversed(before) if line.strip()), "")
    found = _DIRECTIVE.match(previous)
    if not found:
        if "docs-test" in previous:
            raise ConventionError(f"{where}: not a directive: {previous.strip()}")
        return None, None
    what, arg = found["what"], found["arg"].strip("() ")
    if what not in ("skip", "file"):
        raise ConventionError(f"{where}: unknown directive 'docs-test: {what}' (skip, file)")
    if not arg:
        raise ConventionError(f"{where}: 'docs-test: {what}' needs its {what} argument")
    return (arg, None) if what == "skip" else (None, arg)


def _commands(text: str, first_line: int, console: bool) -> list[Command]:
    """Shell blocks: each line a command (`\\` continues it, `#` lines are comments).
    Console blocks: `$ ` lines are commands, the lines after one its output."""
    commands: list[Command] = []
    pending: list[str] = []
    start = 0
    output: list[str] | None = None
    for n, raw in enumerate(text.splitlines(), first_line):
        if pending:
            pending.append(raw)
        elif console and not raw.startswith("$ "):
            if output is not None:
                output.append(raw)
            continue
        elif not raw.strip() or raw.lstrip().startswith("#"):
            continue
        else:
            if output is not None and commands:
                commands[-1] = _with_output(commands[-1], output)
            output = [] if console else None
            start, pending = n, [raw[2:] if console else raw]
        if not pending[-1].endswith("\\"):
            commands.append(Command(start, "\n".join(pending)))
            pending = []
    if output is not None and commands:
        commands[-1] = _with_output(commands[-1], output)
    return commands


def _with_output(command: Command, output: list[str]) -> Command:
    return Command(command.line, command.text, "\n".join(output).rstrip("\n") + "\n")


def output_matches(expected: str, actual: str) -> bool:
    """Whether `actual` is what the doc shows: line by line, trailing spaces ignored,
    `...` in a line matches any text, a line of only `...` any number of lines."""
    parts = []
    for line in expected.rstrip("\n").splitlines():
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            parts.append("[^\n]*?".join(map(re.escape, line.rstrip().split("..."))) + r"\n")
    got = "".join(line.rstrip() + "\n" for line in actual.rstrip().splitlines())
    return re.fullmatch("".join(parts), got) is not None


def main() -> None:
    """Print the blocks that do not run, with the reasons, and a count by language."""
    shown: Counter[str] = Counter()
    for doc in DOCS:
        for block in read(doc):
            if block.skip is not None:
                print(f"{block.where}: ```{block.lang} skipped: {block.skip}")
            elif not block.runs:
                shown[block.lang] += 1
    counts = ", ".join(f"{n} {lang}" for lang, n in sorted(shown.items()))
    print(f"shown only (not run by their language): {counts}", file=sys.stdout)


if __name__ == "__main__":
    main()
