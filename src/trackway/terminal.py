"""How command output meets where it goes: cut to fit a terminal, whole anywhere else.

On a terminal, lines and tables are fitted to its width. Written to a pipe or a file,
nothing is cut or wrapped: a table is as wide as its widest row.
"""

import io
import shutil
import sys

from rich.console import Console, RenderableType

_UNBOUNDED = 1_000_000
"""The width of a console when the output is not a terminal (rich needs a number)."""


def width() -> int | None:
    """The width of the terminal stdout writes to, or None when it is not a terminal."""
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def fit(line: str, columns: int | None) -> str:
    """The line cut to `columns` characters (ending in `…` when cut); None: as it is."""
    if columns is None or len(line) <= columns:
        return line
    return line[: max(columns - 1, 0)] + "…"


def console() -> Console:
    """A console that renders into a string (`text`): as wide as the terminal, or
    unbounded when stdout is not a terminal; no colours."""
    return Console(
        width=width() or _UNBOUNDED,
        file=io.StringIO(),
        force_terminal=False,
        no_color=True,
        highlight=False,
    )


def text(out: Console) -> str:
    """What a `console()` rendered."""
    file = out.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def too_wide(out: Console, renderable: RenderableType) -> bool:
    """Whether the renderable needs more columns than the console has (and is squeezed)."""
    whole = out.options.update(max_width=_UNBOUNDED)
    return out.measure(renderable, options=whole).maximum > out.width
