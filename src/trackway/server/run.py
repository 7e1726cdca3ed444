"""Running `trackway serve`: first-start set-up, the banner, and uvicorn.

`--role` picks what this process runs: `api` (the tracking and admin APIs), `worker`
(the background workers: destinations, warehouse loaders, scheduled syncs, each under a
lease shared with every other worker process) or `all` (both).
"""

import gc
import signal
import socket
import threading
from types import FrameType

import click
import uvicorn
from prometheus_client.registry import Collector

from trackway.console import show_on_console
from trackway.destinations.worker import Deliveries
from trackway.reverse_etl.schedule import SchedulerThread
from trackway.server.app import Worker, create_app
from trackway.server.connections import ConnectionLimits, open_file_limit, protocol_class
from trackway.settings import Settings
from trackway.storage.base import EventLog, NoDataDirectory, StateStore
from trackway.storage.leases import Leases
from trackway.storage.postgres.connect import describe
from trackway.storage.postgres.leases import PostgresLeases
from trackway.storage.postgres.log import PostgresEventLog
from trackway.storage.postgres.state import PostgresStateStore
from trackway.storage.sqlite.leases import FILE as LEASES_FILE
from trackway.storage.sqlite.leases import SQLiteLeases
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore
from trackway.warehouse.loader import Loaders
from trackway.warehouse.yielding import IngestPressure
from trackway.workspace.keys import new_admin_token, token_hash

DEFAULT_SOURCE = "default"


def open_state(settings: Settings, *, create: bool = False) -> StateStore:
    """The state store: in PostgreSQL with a database URL, else in the data directory.

    Only with `create` is a missing data directory created (serve, commands that write);
    otherwise it raises NoDataDirectory, so that a command run from the wrong directory
    says so instead of leaving an empty data directory behind.
    """
    _data_dir(settings, create)
    if settings.database_url:
        return PostgresStateStore(settings.database_url)
    return SQLiteStateStore(settings.state_path)


def open_log(settings: Settings, *, create: bool = False) -> EventLog:
    """The event log: in PostgreSQL with a database URL, else in the data directory
    (`create` as for `open_state`)."""
    _data_dir(settings, create)
    if settings.database_url:
        return PostgresEventLog(
            settings.database_url,
            dedup_window_s=settings.dedup_window_s,
            retention_s=settings.retention_s,
        )
    return SQLiteEventLog(
        settings.log_path,
        synchronous=settings.synchronous,
        dedup_window_s=settings.dedup_window_s,
        retention_s=settings.retention_s,
    )


def _data_dir(settings: Settings, create: bool) -> None:
    if create:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    elif not settings.database_url and not settings.state_path.exists():
        # state.db is the first file any writer creates: without it there is nothing to read
        raise NoDataDirectory(settings.data_dir)


def open_leases(settings: Settings) -> Leases:
    """The leases of worker processes: in PostgreSQL with a database URL, else in the
    data directory (worker processes of one machine)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database_url:
        return PostgresLeases(settings.database_url)
    return SQLiteLeases(settings.data_dir / LEASES_FILE)


def serve(settings: Settings) -> None:
    """Start Trackway in this process and block until SIGINT/SIGTERM."""
    # The request path allocates many short-lived containers and creates no cycles; the
    # default threshold (700) ran a collection every few requests and freed nothing,
    # costing 13-15% of the CPU (bench/RESULTS.md).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    show_on_console()
    # Bind before anything else: a port in use fails the start before any data is created
    sock = _bind(settings.host, settings.port)
    store = open_state(settings, create=True)
    log = open_log(settings, create=True)
    if settings.role != "worker":
        _default_source(store)
    port = sock.getsockname()[1]
    url = f"http://{settings.host}:{port}"
    click.echo(f"Data directory: {settings.data_dir.resolve()}")
    durability = f"synchronous={settings.synchronous}"
    if settings.database_url:
        click.echo(f"Database:       {describe(settings.database_url)}")
        durability = "PostgreSQL, synchronous_commit=on"
    click.echo(f"Role:           {settings.role}")
    if settings.role != "worker":
        click.echo(f"Tracking API:   {url}/v1  (durability: {durability})")
        click.echo(f"Admin API:      {url}/api/v1  (OpenAPI: {url}/api/v1/openapi.json)")
    leases = open_leases(settings) if settings.role != "api" else None
    workers: list[Worker] = []
    collectors: list[Collector] = []
    if leases is not None:
        deliveries = Deliveries(settings, log, store, leases=leases)
        # This thread serves the tracking API (uvicorn runs here): the loaders give way
        # to it while it needs the CPU. A worker process serves no ingestion.
        api = settings.role != "worker"
        busy = IngestPressure(threading.current_thread()).busy if api else None
        loaders = Loaders(settings.data_dir, log, store, leases, busy)
        syncs = SchedulerThread(
            settings.data_dir, store, f"http://{_loopback(settings.host)}:{port}", leases=leases
        )
        workers = [loaders, deliveries, syncs]
        collectors += [deliveries.metrics, loaders.metrics, syncs.metrics]

    def started() -> None:
        # The admin token is shown once: only now that the server is up and serving
        if settings.role != "worker":
            _admin_token(settings, store)
        click.echo("Ready.")

    app = create_app(
        settings,
        log,
        store,
        on_started=started,
        workers=workers,
        collectors=collectors,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_class(_connection_limits(settings)),
        ws="none",  # nothing is served over WebSockets
        timeout_keep_alive=settings.idle_timeout_s,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For is honoured only for --trusted-proxy
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler
    # that was there before it; a no-op handler lets `run()` return so we exit 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stopped_by_signal)
    click.echo(f"Listening on {url}")
    try:
        server.run(sockets=[sock])
    finally:
        if leases is not None:
            leases.close()
    click.echo("Trackway stopped; every acknowledged event is committed.")


def _connection_limits(settings: Settings) -> ConnectionLimits:
    max_connections = open_file_limit(settings.max_connections)
    if max_connections < settings.max_connections:
        click.echo(
            f"Connections:    at most {max_connections}, not {settings.max_connections}"
            " (--max-connections): the open-file limit is too low (ulimit -n)"
        )
    return ConnectionLimits(
        idle_timeout_s=settings.idle_timeout_s,
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=max_connections,
    )


def _stopped_by_signal(signum: int, frame: FrameType | None) -> None:
    """uvicorn has already shut down gracefully when it re-raises the signal here."""


def _default_source(store: StateStore) -> None:
    """On the first start, create the source `default` and show its write key."""
    if not store.list_sources():
        source = store.create_source(DEFAULT_SOURCE, "segment")
        key = next(k.key for k in store.write_keys(source.id))
        click.echo(f"Created source '{source.name}' with write key: {key}")
    else:
        names = ", ".join(s.name for s in store.list_sources())
        click.echo(f"Sources: {names}  (write keys: trackway sources list)")


def _admin_token(settings: Settings, store: StateStore) -> None:
    """On the first start, create an admin token and show it (once)."""
    if settings.admin_token:
        click.echo("Admin token: from TRACKWAY_ADMIN_TOKEN")
    elif store.admin_token_count() == 0:
        token = new_admin_token()
        store.add_admin_token(token_hash(token))
        click.echo(f"Admin token (shown once, keep it): {token}")
    else:
        click.echo("Admin token: created on first start (new one: trackway admin-token)")


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket here, so port 0 works and the real port can be printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _loopback(host: str) -> str:
    """Where this process reaches its own listening socket (scheduled syncs post to it)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
