"""The debugger's SSE stream on a real SQLite log: every record, or a sample of at most
`max_per_s` a second that says how many it left out."""

import asyncio
from pathlib import Path

from tests.storage.test_log import batch
from trackway.debugger import stream_records
from trackway.storage.records import RejectedEvent
from trackway.storage.sqlite.log import SQLiteEventLog


def streamed(tmp_path: Path, max_per_s: int | None) -> bytes:
    log = SQLiteEventLog(tmp_path / "log.db")
    log.start()

    async def run() -> bytes:
        stream = stream_records(log, 1, max_per_s)
        assert await anext(stream) == b": connected\n\n"
        await log.append(batch(2, ["other"]))  # another source's: not streamed
        await log.append(batch(1, [f"m{i}" for i in range(500)]))
        out = await anext(stream)
        await stream.aclose()
        return out

    try:
        return asyncio.run(run())
    finally:
        log.close()


def test_the_stream_sends_every_record_of_its_source(tmp_path: Path) -> None:
    out = streamed(tmp_path, None)
    assert out.count(b"event: accepted\n") == 500
    assert b"sampled" not in out and b'"other"' not in out


def test_a_sampled_stream_says_how_many_it_left_out(tmp_path: Path) -> None:
    out = streamed(tmp_path, 200)
    assert out.count(b"event: accepted\n") == 200
    assert out.startswith(b'event: sampled\ndata: {"skipped":300}\n\n')
    assert b'"messageId":"m199"' in out and b'"messageId":"m200"' not in out


def test_the_stream_has_rejected_and_duplicate_records_too(tmp_path: Path) -> None:
    log = SQLiteEventLog(tmp_path / "log.db")
    log.start()

    async def run() -> list[bytes]:
        await log.append(batch(1, ["seen"]))
        stream = stream_records(log, 1)
        assert await anext(stream) == b": connected\n\n"
        mixed = batch(1, ["seen", "new"])
        mixed.rejected.append(RejectedEvent(2, "missing_field", "'event' is required", b"{}"))
        await log.append(mixed)
        out = await anext(stream)
        await stream.aclose()
        return out.split(b"\n\n")[:-1]

    try:
        events = asyncio.run(run())
    finally:
        log.close()
    assert [e.split(b"\n")[0] for e in events] == [
        b"event: accepted",
        b"event: duplicate",
        b"event: rejected",
    ]
    assert b'"messageId":"new"' in events[0] and b'"messageId":"seen"' in events[1]
    assert b'"code":"missing_field"' in events[2]
