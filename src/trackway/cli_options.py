"""Options and error handling shared by every `trackway` command group."""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from trackway.settings import DEFAULT_DATA_DIR

F = TypeVar("F", bound=Callable[..., Any])


def data_dir_option(fn: F) -> F:
    """`--data-dir` (env `TRACKWAY_DATA_DIR`)."""
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DATA_DIR,
        envvar="TRACKWAY_DATA_DIR",
        show_default=True,
        show_envvar=True,
        help="Directory holding Trackway's data.",
    )(fn)


def json_option(fn: F) -> F:
    """`--json`, passed as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def friendly(*expected: type[Exception]) -> Callable[[F], F]:
    """Turn the `expected` failures into one clear line on stderr and exit status 1."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except expected as exc:
                raise click.ClickException(str(exc.args[0] if exc.args else exc)) from exc

        return wrapper  # type: ignore[return-value]

    return decorate
