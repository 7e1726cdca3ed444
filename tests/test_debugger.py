"""The debugger's SSE stream on a real SQLite log: every record, or a sample of at most
`max_per_s` a second that says how many it left out."""

import asyncio
from pathlib import Path

from tests.storage.test_log import batch
from trackway.debugger import stream_records
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
