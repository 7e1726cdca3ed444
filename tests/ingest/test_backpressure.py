"""When the disk falls behind, the tracking API answers 429 with Retry-After."""

import asyncio
from pathlib import Path

import httpx

from trackway.server.app import create_app
from trackway.settings import Settings
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.storage.sqlite.state import SQLiteStateStore


class BehindLog(SQLiteEventLog):
    """A log whose writer reports more waiting events than the server allows."""

    @property
    def pending_events(self) -> int:
        return 1_000_000


def test_busy_writer_answers_429_with_retry_after(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, max_pending_events=1000)
    store = SQLiteStateStore(settings.state_path)
    source = store.create_source("web", "segment")
    key = store.write_keys(source.id)[0].key
    log = BehindLog(settings.log_path)
    app = create_app(settings, log, store)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.post(
                "/v1/track", json={"writeKey": key, "userId": "u", "event": "E"}
            )

    log.start()
    try:
        r = asyncio.run(post())
    finally:
        log.close()
        store.close()
    assert r.status_code == 429
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "rate_limited"
    # Nothing was stored: the client retries, and a kept copy would be a duplicate.
    check = SQLiteEventLog(settings.log_path)
    assert check.read(0, 10) == []
    assert check.debug_records(source.id, 10) == []
    check.close()
