"""The admin API in this process, for the tests of the packages it serves: the real
router (token check, request checks against the OpenAPI document, JSON errors) on a
given log and state, served by uvicorn on 127.0.0.1 in a thread."""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn
from starlette.applications import Starlette

from trackway.admin.app import admin_app
from trackway.admin.auth import AdminAuth
from trackway.settings import Settings
from trackway.storage.base import EventLog, StateStore

TOKEN = "test-admin-token"


@contextmanager
def admin_client(settings: Settings, store: StateStore, log: EventLog) -> Iterator[httpx.Client]:
    """A client of `/api/v1` sending the admin token, while the server runs."""
    app = Starlette()
    app.mount("/api/v1", admin_app(AdminAuth(store, TOKEN), store, log, settings))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until uvicorn accepts them
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1/"
    try:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
