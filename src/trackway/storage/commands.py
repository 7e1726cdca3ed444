"""`trackway db`: the schema of the event log, the workspace state, the delivery
bookkeeping, the leases and the reverse ETL sync state."""

from pathlib import Path

import click

from trackway.cli_options import data_dir_option, friendly, storage_settings
from trackway.destinations.state import open_delivery_store
from trackway.destinations.state.sqlite import FILE as DELIVERY_FILE
from trackway.reverse_etl.state.sqlite import SQLiteSyncStore
from trackway.server.run import open_leases, open_log, open_state
from trackway.storage.postgres.connect import connect, describe
from trackway.storage.postgres.migrations import migrate
from trackway.storage.sqlite.connect import schema_version
from trackway.storage.sqlite.leases import FILE as LEASES_FILE


@click.group(name="db")
def db_group() -> None:
    """The storage of the event log and the workspace state."""


@db_group.command(name="migrate")
@data_dir_option
@friendly()
def db_migrate(data_dir: Path) -> None:
    """Bring the storage schema to this version of Trackway (serve does it on start)."""
    settings = storage_settings(data_dir)
    if settings.database_url:
        conn = connect(settings.database_url)
        try:
            before, after = migrate(conn)
        finally:
            conn.close()
        click.echo(_line(describe(settings.database_url), before, after))
        return
    paths = (
        settings.log_path,
        settings.state_path,
        data_dir / DELIVERY_FILE,
        data_dir / LEASES_FILE,
        SQLiteSyncStore.state_path(data_dir),
    )
    versions = [schema_version(path) for path in paths]
    open_log(settings, create=True).close()  # opening a SQLite file migrates it
    open_state(settings, create=True).close()
    open_delivery_store(settings).close()
    open_leases(settings).close()
    SQLiteSyncStore.in_data_dir(data_dir).close()
    for path, version in zip(paths, versions, strict=True):
        click.echo(_line(str(path), version, schema_version(path)))


def _line(where: str, before: int, after: int) -> str:
    if before == after:
        return f"{where}: schema version {after}, up to date"
    return f"{where}: schema version {before} -> {after}"
