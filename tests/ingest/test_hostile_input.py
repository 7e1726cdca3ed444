"""Hostile input on the tracking API: timestamps at the edges of years 1-9999 and lone
UTF-16 surrogates, against a real `trackway serve` on each storage backend."""

import base64
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.destinations.fake_server import FakeServer
from tests.destinations.support import received_ids, worker_started
from tests.strategies import ISO_TIMESTAMPS
from tests.support import Server, cli, until
from trackway import codec


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def post(server: Server, path: str, body: Any) -> httpx.Response:
    with server.client() as c:
        if isinstance(body, bytes):
            return c.post(path, headers=basic(server.write_key), content=body)
        return c.post(path, headers=basic(server.write_key), json=body)


def no_traceback(server: Server) -> None:
    assert not [line for line in server.banner if "Traceback" in line], server.banner[-30:]


def stored(server: Server, message_id: str) -> dict[str, Any]:
    [event] = [e for e in server.events() if e["messageId"] == message_id]
    return event


def rejected(server: Server, message_id: str) -> list[dict[str, Any]]:
    """The failure records kept for the event with this messageId."""
    return [
        r
        for r in server.records(limit=10_000)
        if r["status"] == "rejected"
        and isinstance(r["payload"], dict)
        and r["payload"].get("messageId") == message_id
    ]


# -- timestamps ----------------------------------------------------------------------

SKEW = {
    "type": "track",
    "event": "x",
    "userId": "u",
    "timestamp": "0001-01-01T00:00:00Z",
    "sentAt": "9999-12-31T23:59:59Z",
}


def test_a_skew_correction_outside_years_1_to_9999_rejects_the_event(
    backend_server: Server,
) -> None:
    r = post(backend_server, "/v1/track", {**SKEW, "messageId": "skew-single"})
    assert r.status_code == 400
    assert r.headers["content-type"] == "application/json"
    assert r.json()["code"] == "invalid_timestamp"
    assert "clock-skew correction" in r.json()["message"]
    assert rejected(backend_server, "skew-single")
    good = {"type": "track", "event": "ok", "userId": "u", "messageId": "skew-good"}
    r = post(backend_server, "/v1/batch", {"batch": [{**SKEW, "messageId": "skew-in-batch"}, good]})
    assert r.status_code == 200
    assert r.json()["accepted"] == 1
    [refused] = r.json()["rejected"]
    assert refused["index"] == 0 and refused["code"] == "invalid_timestamp"
    assert stored(backend_server, "skew-good")["event"] == "ok"
    no_traceback(backend_server)


def test_an_offset_that_leaves_years_1_to_9999_in_utc_is_invalid(backend_server: Server) -> None:
    early = {"type": "track", "event": "x", "userId": "u", "timestamp": "0001-01-01T00:00+01:00"}
    r = post(backend_server, "/v1/track", early)
    assert r.status_code == 400 and r.json()["code"] == "invalid_timestamp"
    assert "`$.timestamp`" in r.json()["message"]
    late = {"type": "track", "event": "x", "userId": "u", "sentAt": "9999-12-31T23:59:59-01:00"}
    r = post(backend_server, "/v1/track", late)
    assert r.status_code == 400 and r.json()["code"] == "invalid_timestamp"
    assert "`$.sentAt`" in r.json()["message"]
    event = {"type": "track", "event": "x", "userId": "u"}
    r = post(backend_server, "/v1/batch", {"sentAt": "9999-12-31T23:59:59-01:00", "batch": [event]})
    assert r.status_code == 400 and r.json()["code"] == "invalid_timestamp"
    no_traceback(backend_server)


def test_the_extreme_valid_timestamps_are_stored(backend_server: Server) -> None:
    event = {
        "type": "track",
        "event": "x",
        "userId": "u",
        "messageId": "extremes",
        "timestamp": "0001-01-01T00:00:00Z",
    }
    assert post(backend_server, "/v1/track", event).status_code == 200
    stored_event = stored(backend_server, "extremes")
    assert stored_event["timestamp"] == stored_event["originalTimestamp"] == "0001-01-01T00:00:00Z"


_FIELDS = ("timestamp", "sentAt", "originalTimestamp")


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(
    times=st.lists(
        st.fixed_dictionaries({}, optional={f: ISO_TIMESTAMPS for f in _FIELDS}),
        min_size=1,
        max_size=50,
    ),
    batch_sent_at=st.none() | ISO_TIMESTAMPS,
)
def test_no_valid_iso_timestamps_get_a_server_error(
    backend_server: Server, times: list[dict[str, str]], batch_sent_at: str | None
) -> None:
    # Each request costs an fsync, so most combinations travel in batches; the rule
    # itself is checked on many more examples in tests/spec/test_normalize.py.
    events = [{"type": "track", "event": "x", "userId": "u", **t} for t in times]
    envelope: dict[str, Any] = {"batch": events}
    if batch_sent_at is not None:
        envelope["sentAt"] = batch_sent_at
    for r in (
        post(backend_server, "/v1/track", events[0]),
        post(backend_server, "/v1/batch", envelope),
    ):
        assert r.status_code in (200, 400), r.text
        assert r.headers["content-type"] == "application/json"
        body = r.json()
        codes = [x["code"] for x in body.get("rejected", [])] or [body.get("code")]
        assert set(codes) <= {"invalid_timestamp", None}, r.text
    no_traceback(backend_server)


# -- lone surrogates -----------------------------------------------------------------


def raw_event(message_id: str, event: str, properties: str) -> bytes:
    """A track call as raw JSON text, so that escapes arrive exactly as written."""
    return (
        f'{{"type": "track", "userId": "u", "messageId": "{message_id}", "event": "{event}", '
        f'"properties": {properties}}}'
    ).encode()


def test_lone_surrogates_are_stored_as_the_replacement_character(backend_server: Server) -> None:
    body = raw_event(
        "lone-single", "Cut \\ud83d", '{"\\udc00key": "half \\uD800", "both": "\\ud800\\ud800"}'
    )
    r = post(backend_server, "/v1/track", body)
    assert r.status_code == 200, r.text
    event = stored(backend_server, "lone-single")
    assert event["event"] == "Cut \ufffd"
    assert event["properties"] == {"\ufffdkey": "half \ufffd", "both": "\ufffd\ufffd"}
    batch = b'{"batch": [' + raw_event("lone-batch", "x", '{"a": "\\udfff!"}') + b"]}"
    r = post(backend_server, "/v1/batch", batch)
    assert r.status_code == 200 and r.json() == {"success": True}
    assert stored(backend_server, "lone-batch")["properties"] == {"a": "\ufffd!"}
    records = backend_server.records(limit=10_000)
    assert any(r.get("messageId") == "lone-batch" for r in records)
    no_traceback(backend_server)


def test_pairs_and_escaped_backslashes_are_left_alone(backend_server: Server) -> None:
    properties = '{"emoji": "\\ud83d\\ude00", "text": "\\\\ud800", "mixed": "\\\\\\ud800"}'
    r = post(backend_server, "/v1/track", raw_event("pairs", "x", properties))
    assert r.status_code == 200, r.text
    assert stored(backend_server, "pairs")["properties"] == {
        "emoji": "\U0001f600",
        "text": "\\ud800",
        "mixed": "\\\ufffd",
    }


def test_surrogates_encoded_as_utf8_are_invalid_json(backend_server: Server) -> None:
    body = raw_event("utf8-surrogate", "x", '{"a": "\\ud800"}').replace(
        b"\\ud800", "\ud800".encode("utf-8", "surrogatepass")
    )
    r = post(backend_server, "/v1/track", body)
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_json" and "not UTF-8" in r.json()["message"]
    r = post(backend_server, "/v1/batch", b'{"batch": [' + body + b"]}")
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    kept = [x for x in backend_server.records(limit=10_000) if "not UTF-8" in str(x.get("error"))]
    assert len(kept) == 2
    with backend_server.client() as c:
        headers = {"Authorization": f"Bearer {backend_server.admin_token}"}
        shown = c.get("/api/v1/sources/default/events?status=rejected", headers=headers)
    assert shown.status_code == 200
    assert sum("not UTF-8" in str(x.get("error")) for x in shown.json()) == 2
    no_traceback(backend_server)


def test_the_replacement_character_reaches_the_warehouse_and_a_destination(
    server: Server, tmp_path: Path
) -> None:
    with FakeServer() as sink:
        workspace = tmp_path / "workspace.yaml"
        workspace.write_text(
            f"""
destinations:
  - name: hook
    type: webhook
    settings:
      url: {sink.url}/in
    subscriptions:
      - name: tracks
        action: send
        if: type = "track"
    delivery:
      allow_private_addresses: true
"""
        )
        cli("apply", str(workspace), data_dir=server.data_dir)
        assert until(lambda: worker_started(server), True)
        body = raw_event("lone-e2e", "Cut \\ud83d", '{"note": "half \\ud800"}')
        assert post(server, "/v1/track", body).status_code == 200
        assert until(lambda: received_ids(sink.requests), ["lone-e2e"]) == ["lone-e2e"]
        [delivered] = [codec.loads(r.body) for r in sink.requests]  # one event a request
    assert delivered["event"] == "Cut \ufffd"
    assert delivered["properties"] == {"note": "half \ufffd"}

    def loaded() -> Any:
        # "Cut \ufffd" gets the event table `cut` (docs/warehouse.md, the identifier rule)
        query = "SELECT event_text, note FROM cut"
        out = cli("sql", query, "--format", "json", data_dir=server.data_dir, check=False)
        return codec.loads(out) if out.strip() else None  # no table before the first load

    want = [{"event_text": "Cut \ufffd", "note": "half \ufffd"}]
    assert until(loaded, want, seconds=30) == want
