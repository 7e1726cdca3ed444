"""Options and error handling shared by every `trackway` command group."""

import functools
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from trackway.settings import DEFAULT_DATA_DIR, Settings, parse_duration
from trackway.storage.base import NoDataDirectory, NotFound, StorageUnavailable
from trackway.storage.postgres.connect import describe

F = TypeVar("F", bound=Callable[..., Any])


_DATABASE = "trackway.database_url"


def data_dir_option(fn: F) -> F:
    """`--data-dir` (env `TRACKWAY_DATA_DIR`) and `--database` (env `TRACKWAY_DATABASE_URL`).

    Every command that opens the data directory can be pointed at PostgreSQL instead;
    `storage_settings(data_dir)` gives the command both.
    """
    fn = click.option(
        "--database",
        metavar="URL",
        envvar="TRACKWAY_DATABASE_URL",
        show_envvar=True,
        expose_value=False,
        callback=_remember_database,
        help="PostgreSQL (postgresql://...) for the event log and the workspace state "
        "instead of SQLite files in the data directory.",
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_DATA_DIR,
        envvar="TRACKWAY_DATA_DIR",
        show_default=True,
        show_envvar=True,
        help="Directory holding Trackway's data.",
    )(fn)


def _remember_database(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    ctx.meta[_DATABASE] = value or None


def database_url() -> str | None:
    """The `--database` of the running command (None: SQLite in the data directory)."""
    ctx = click.get_current_context(silent=True)
    url: str | None = ctx.meta.get(_DATABASE) if ctx is not None else None
    return url


def storage_settings(data_dir: Path) -> Settings:
    """Where a command's log and state live: its `--data-dir` and `--database`."""
    return Settings(data_dir=data_dir, database_url=database_url())


def json_option(fn: F) -> F:
    """`--json`, passed as `as_json`."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(fn)


def actor_option(fn: F) -> F:
    """`--actor` (env `TRACKWAY_ACTOR`): who makes the change, named in the Feature Flag
    Changed events; passed as `actor` (None: the OS user)."""
    return click.option(
        "--actor",
        envvar="TRACKWAY_ACTOR",
        metavar="NAME",
        help="Who makes the change, e.g. 'Ada Lovelace (ada@example.com)' (default: the OS user).",
    )(fn)


def friendly(*expected: type[Exception]) -> Callable[[F], F]:
    """Turn the `expected` failures (and unreachable storage, a missing data directory,
    a name that is not there) into one clear line on stderr and exit status 1.

    A missing data directory or a name not found says where the command looked, and how
    to point it elsewhere.
    """
    expected = (*expected, StorageUnavailable, NoDataDirectory, NotFound)

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except expected as exc:
                message = str(exc.args[0] if exc.args else exc)
                if isinstance(exc, NoDataDirectory):
                    message += f" ({_DATA_DIR_HINT}; `trackway serve` creates one)"
                elif isinstance(exc, NotFound) and "data_dir" in kwargs:
                    message += f"; looked in {_looked_in(kwargs['data_dir'])}"
                raise click.ClickException(message) from exc

        return wrapper  # type: ignore[return-value]

    return decorate


_DATA_DIR_HINT = "set --data-dir or TRACKWAY_DATA_DIR"


def _looked_in(data_dir: Path) -> str:
    """Where the workspace state of the running command is, and how to point elsewhere."""
    url = database_url()
    if url:
        return f"{describe(url)} (set --database or TRACKWAY_DATABASE_URL)"
    return f"{data_dir.resolve()} ({_DATA_DIR_HINT})"


def parse_since(text: str) -> int:
    """Epoch ms of `--since`: an ISO 8601 time with an offset, or a duration ago (`2h`)."""
    try:
        return int((time.time() - parse_duration(text)) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since: not a time or a duration: {text!r} (e.g. 2026-11-22T10:00:00Z or 24h)"
        ) from None
    if parsed.tzinfo is None:
        raise ValueError(f"--since: add a UTC offset or Z to {text!r}")
    return int(parsed.timestamp() * 1000)
