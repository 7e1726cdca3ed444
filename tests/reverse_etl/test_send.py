"""The Segment-compatible target: wire format, batching, retries, failures and recovery."""

import base64

import pytest

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from tests.reverse_etl.fake_segment import OK, FakeSegment, fake_segment
from trackway import codec
from trackway.reverse_etl.config import Target
from trackway.reverse_etl.send import Batch, _retry_after
from trackway.spec.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES


@pytest.fixture
def segment() -> FakeSegment:
    with fake_segment() as fake:
        yield fake


def to_segment(
    env: Env, duck: Engine, segment: FakeSegment, rows: int = 3, **extra: object
) -> None:
    """The users table with `rows` rows and a sync `seg` of it to the fake Segment."""
    duck.execute(
        "CREATE TABLE users AS SELECT i AS id, 'u-' || i AS uid, 'free' AS plan,"
        f" repeat('x', {int(extra.pop('note_size', 1))}) AS note FROM range({rows}) t(i)"
    )
    target = Target("segment", write_key="wk-123", data_plane=segment.url)
    env.apply([model(duck, "users")], [track("seg", "users", target=target, **extra)])


def test_events_go_to_segment_in_its_wire_format(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    run = env.run("seg")
    assert (run.status, run.counts.sent) == ("succeeded", 3)
    [request] = segment.requests
    assert request.path == "/v1/batch"
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"wk-123:").decode()
    assert request.headers["content-type"] == "application/json"
    assert set(request.body) == {"batch", "sentAt"}
    event = request.body["batch"][0]
    assert set(event) == {"type", "event", "messageId", "context", "userId", "properties"}
    assert (event["type"], event["event"], event["userId"]) == ("track", "User Added", "u-0")
    assert event["properties"] == {"plan": "free"}
    assert event["messageId"].startswith("rtl-") and len(event["messageId"]) == 36


def test_500_and_429_are_retried_with_the_same_events(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    segment.script = [
        (500, {}, b'{"error": "boom"}'),
        (429, {"Retry-After": "0"}, b""),
        (503, {}, b"down"),
    ]
    run = env.run("seg")
    assert (run.status, run.counts.sent, run.counts.failed) == ("succeeded", 3, 0)
    assert [r.headers["x-answered"] for r in segment.requests] == ["500", "429", "503", "200"]
    ids = [[e["messageId"] for e in r.body["batch"]] for r in segment.requests]
    assert ids[0] == ids[1] == ids[2] == ids[3]


def test_an_endpoint_that_stays_down_fails_the_run_and_the_next_run_delivers(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    segment.failing = (502, {}, b"bad gateway")
    down = env.run("seg")
    assert down.status == "failed"
    assert down.error == (
        f"{segment.url}/v1/batch: gave up after 4 attempts; last: answered 502:"
        " a non-Segment answer (application/json, 11 bytes)"
    )
    assert (down.counts.added, down.counts.sent, down.counts.failed) == (3, 0, 3)
    assert env.syncs.snapshot_size("seg") == 0

    segment.failing = None
    up = env.run("seg")
    assert (up.status, up.counts.added, up.counts.sent) == ("succeeded", 3, 3)
    assert sorted(e["userId"] for e in segment.events()) == ["u-0", "u-1", "u-2"]


def test_rows_refused_with_a_4xx_fail_and_are_retried_by_later_runs(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    segment.script = [(400, {}, b'{"code": "invalid_batch", "message": "no"}')]
    first = env.run("seg")
    assert (first.status, first.counts.sent, first.counts.failed) == ("partial", 0, 3)
    assert len(segment.requests) == 1  # a 400 is not retried
    errors = env.syncs.row_errors(first.sync, first.id)
    assert [e.status for e in errors] == ["failed"] * 3
    assert errors[0].error == "answered 400: invalid_batch: no"
    second = env.run("seg")
    assert (second.status, second.counts.sent) == ("succeeded", 3)


def test_events_a_trackway_server_rejects_are_failed_rows(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    rejected = {"index": 1, "code": "invalid_field", "message": "nope"}
    answer = {"success": True, "accepted": 2, "rejected": [rejected]}
    segment.script = [(200, {}, codec.dumps(answer))]
    run = env.run("seg")
    assert (run.status, run.counts.sent, run.counts.failed) == ("partial", 2, 1)
    [error] = env.syncs.row_errors(run.sync, run.id)
    assert error.error == "rejected by the endpoint: invalid_field: nope"
    assert env.run("seg").counts.sent == 1


def test_a_refused_write_key_stops_the_run(env: Env, duck: Engine, segment: FakeSegment) -> None:
    to_segment(env, duck, segment)
    segment.script = [(401, {}, b'{"code": "invalid_write_key", "message": "who?"}')]
    run = env.run("seg")
    assert run.status == "failed"
    assert run.error == f"{segment.url}/v1/batch answered 401: invalid_write_key: who?"
    assert len(segment.requests) == 1


def test_batches_stay_within_segments_limits(env: Env, duck: Engine, segment: FakeSegment) -> None:
    mapping = {"plan": "plan", "note": "note"}
    to_segment(env, duck, segment, rows=6_000, mapping=mapping, note_size=400)
    assert env.run("seg").counts.sent == 6_000
    sizes = [int(r.headers["content-length"]) for r in segment.requests]
    assert len(sizes) > 3 and max(sizes) <= MAX_REQUEST_BYTES
    assert sum(len(r.body["batch"]) for r in segment.requests) == 6_000
    batch = Batch()
    for _ in range(MAX_BATCH_EVENTS):
        assert batch.fits(b"{}")
        batch.add(b"{}")
    assert not batch.fits(b"{}")
    big = Batch()
    big.add(b"x" * (MAX_REQUEST_BYTES - 1_000))
    assert not big.fits(b"x" * 1_000) and big.fits(b"x" * 800)


def test_retry_after_is_read_as_seconds_or_a_date() -> None:
    import httpx

    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert _retry_after(answer("7")) == 7
    assert _retry_after(answer("Wed, 21 Oct 2015 07:28:00 GMT")) == 0
    assert _retry_after(answer("soon")) is None
    assert _retry_after(httpx.Response(*OK[:1])) is None


def test_rows_a_full_resync_failed_to_send_are_retried_later(
    env: Env, duck: Engine, segment: FakeSegment
) -> None:
    to_segment(env, duck, segment)
    env.run("seg")
    segment.script = [(400, {}, b'{"code": "invalid_batch", "message": "no"}')]
    resync = env.run("seg", full_resync=True)
    assert (resync.status, resync.counts.added, resync.counts.failed) == ("partial", 3, 3)
    assert env.syncs.snapshot_size("seg") == 3  # what was acknowledged before stays
    later = env.run("seg")
    assert (later.status, later.counts.added, later.counts.sent) == ("succeeded", 3, 3)
    assert env.run("seg").counts.sent == 0
