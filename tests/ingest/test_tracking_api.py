"""The tracking API against a real `trackway serve` on 127.0.0.1."""

import base64
import gzip
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import Server, cli, start_server, until
from trackway import codec

pytestmark = pytest.mark.usefixtures("shared_server")


@pytest.fixture(scope="module")
def shared_server(backend_server: Server) -> Server:
    """This module's server, once per storage backend."""
    return backend_server


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def mid() -> str:
    return str(uuid.uuid4())


def stored(server: Server, message_id: str) -> dict[str, Any]:
    matches = [e for e in server.events() if e["messageId"] == message_id]
    assert len(matches) == 1, f"{message_id} stored {len(matches)} times"
    return matches[0]


def rejected_records(server: Server) -> list[dict[str, Any]]:
    return [r for r in server.records(limit=10_000) if r["status"] == "rejected"]


def test_track_with_basic_auth_is_stored_normalized(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        r = c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={
                "userId": "u1",
                "event": "Signed Up",
                "properties": {"plan": "pro"},
                "messageId": m,
                "context": {"library": {"name": "curl"}},
            },
        )
    assert r.status_code == 200
    assert r.content == b'{"success":true}'
    event = stored(shared_server, m)
    assert event["type"] == "track"
    assert event["event"] == "Signed Up"
    assert event["userId"] == "u1"
    assert event["properties"] == {"plan": "pro"}
    assert event["context"] == {"library": {"name": "curl"}}
    assert event["integrations"] == {}
    assert "writeKey" not in event
    assert event["timestamp"] == event["receivedAt"]


@pytest.mark.parametrize(
    ("path", "payload", "check"),
    [
        (
            "identify",
            {"userId": "u2", "traits": {"email": "a@b.c"}},
            {"traits": {"email": "a@b.c"}},
        ),
        (
            "page",
            {"anonymousId": "a1", "name": "Home", "category": "Docs"},
            {"name": "Home", "category": "Docs", "properties": {}},
        ),
        ("screen", {"userId": "u3", "name": "Settings"}, {"name": "Settings"}),
        (
            "group",
            {"userId": "u4", "groupId": "g1", "traits": {"n": 1}},
            {"groupId": "g1", "traits": {"n": 1}},
        ),
        ("alias", {"userId": "u5", "previousId": "anon-5"}, {"previousId": "anon-5"}),
    ],
)
def test_each_call_type(
    shared_server: Server, path: str, payload: dict[str, Any], check: dict[str, Any]
) -> None:
    m = mid()
    with shared_server.client() as c:
        r = c.post(
            f"/v1/{path}", headers=basic(shared_server.write_key), json={**payload, "messageId": m}
        )
    assert r.status_code == 200, r.text
    event = stored(shared_server, m)
    assert event["type"] == path
    for key, value in check.items():
        assert event[key] == value


@pytest.mark.parametrize("short", ["t", "i", "p", "s", "g", "a"])
def test_browser_short_paths_take_text_plain_and_write_key_in_body(
    shared_server: Server, short: str
) -> None:
    full = {"t": "track", "i": "identify", "p": "page", "s": "screen", "g": "group", "a": "alias"}[
        short
    ]
    m = mid()
    body = {
        "type": full,
        "userId": "b1",
        "event": "Clicked",
        "groupId": "g",
        "previousId": "p",
        "messageId": m,
        "writeKey": shared_server.write_key,
    }
    with shared_server.client() as c:
        r = c.post(
            f"/v1/{short}",
            content=httpx.Client().build_request("POST", "http://x", json=body).content,
            headers={"Content-Type": "text/plain"},
        )
    assert r.status_code == 200, r.text
    event = stored(shared_server, m)
    assert event["type"] == full
    assert event["context"]["ip"] == "127.0.0.1"  # browser requests get the connection's address
    assert "writeKey" not in event


def test_server_calls_do_not_get_the_connection_ip(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={"userId": "s", "event": "E", "messageId": m},
        )
    assert "ip" not in stored(shared_server, m)["context"]


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        c.post(
            "/v1/t",
            headers={**basic(shared_server.write_key), "X-Forwarded-For": "9.9.9.9"},
            json={"userId": "s", "event": "E", "messageId": m},
        )
    assert stored(shared_server, m)["context"]["ip"] == "127.0.0.1"


def test_bearer_with_write_key_in_body(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        r = c.post(
            "/v1/batch",
            headers={"Authorization": "Bearer some-oauth-token"},
            json={
                "writeKey": shared_server.write_key,
                "batch": [{"type": "track", "userId": "o", "event": "E", "messageId": m}],
            },
        )
    assert r.status_code == 200
    stored(shared_server, m)


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        ({}, {"userId": "x", "event": "E"}, "missing_write_key"),
        (basic("nope"), {"userId": "x", "event": "E"}, "invalid_write_key"),
        ({}, {"userId": "x", "event": "E", "writeKey": "nope"}, "invalid_write_key"),
        ({"Authorization": "Basic !!!"}, {"userId": "x", "event": "E"}, "invalid_authorization"),
    ],
)
def test_unauthenticated_requests_get_401_json(
    shared_server: Server, headers: dict[str, str], body: dict[str, Any], code: str
) -> None:
    with shared_server.client() as c:
        r = c.post("/v1/track", headers=headers, json=body)
    assert r.status_code == 401
    assert r.json()["code"] == code
    assert r.json()["message"]


def test_disabled_source_gets_401_and_enabled_again_works(server: Server) -> None:
    cli("sources", "create", "shop", data_dir=server.data_dir)
    key = next(s["write_key"] for s in _sources(server) if s["name"] == "shop")
    cli("sources", "disable", "shop", data_dir=server.data_dir)
    body = {"userId": "x", "event": "E", "writeKey": key}
    with server.client() as c:
        codes = until(lambda: c.post("/v1/track", json=body).status_code, 401)
        assert codes == 401
        assert c.post("/v1/track", json=body).json()["code"] == "source_disabled"
        cli("sources", "enable", "shop", data_dir=server.data_dir)
        assert until(lambda: c.post("/v1/track", json=body).status_code, 200) == 200


def _sources(server: Server) -> list[dict[str, Any]]:
    from trackway import codec

    result: list[dict[str, Any]] = codec.loads(
        cli("sources", "list", "--json", data_dir=server.data_dir)
    )
    return result


# -- bad input ---------------------------------------------------------------------


def post_raw(server: Server, path: str, content: bytes, **headers: str) -> httpx.Response:
    with server.client() as c:
        return c.post(path, content=content, headers={**basic(server.write_key), **headers})


def test_invalid_json_is_400_and_kept_as_a_failure(shared_server: Server) -> None:
    r = post_raw(
        shared_server,
        "/v1/track",
        b'{"userId": "x", "event": ',
        **{"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_json"
    kept = [x for x in rejected_records(shared_server) if x["error"]["code"] == "invalid_json"]
    assert kept and kept[0]["payload"] == '{"userId": "x", "event": '


def test_unsupported_content_type_is_415(shared_server: Server) -> None:
    r = post_raw(shared_server, "/v1/track", b"a=1", **{"Content-Type": "multipart/form-data"})
    assert r.status_code == 415
    assert r.json()["code"] == "unsupported_media_type"


def test_unsupported_content_encoding_is_415(shared_server: Server) -> None:
    r = post_raw(shared_server, "/v1/track", b"xx", **{"Content-Encoding": "br"})
    assert r.status_code == 415
    assert r.json()["code"] == "unsupported_encoding"


def test_gzip_body_is_accepted(shared_server: Server) -> None:
    m = mid()
    body = gzip.compress(
        httpx.Request(
            "POST",
            "http://x",
            json={"batch": [{"type": "track", "userId": "z", "event": "Zipped", "messageId": m}]},
        ).content
    )
    r = post_raw(
        shared_server,
        "/v1/batch",
        body,
        **{"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert stored(shared_server, m)["event"] == "Zipped"


def test_gzip_bomb_is_refused_without_inflating_it(shared_server: Server) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (200 * 1024 * 1024) + b"]}", 9)
    assert len(bomb) < 500 * 1024
    r = post_raw(shared_server, "/v1/batch", bomb, **{"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert r.json()["code"] == "request_too_large"


def test_broken_gzip_is_400(shared_server: Server) -> None:
    r = post_raw(shared_server, "/v1/batch", b"\x1f\x8b not gzip", **{"Content-Encoding": "gzip"})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_gzip"


def test_request_over_500_kb_is_413(shared_server: Server) -> None:
    events = [
        {"type": "track", "userId": "u", "event": "E", "properties": {"x": "y" * 1000}}
        for _ in range(600)
    ]
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": events})
    assert r.status_code == 413
    assert r.json()["code"] == "request_too_large"
    kept = [x for x in rejected_records(shared_server) if x["error"]["code"] == "request_too_large"]
    assert kept, "an oversized request is recorded as a failure for the source"


def test_single_event_over_32_kb_is_413(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={"userId": "u", "event": "Big", "properties": {"x": "y" * 33_000}},
        )
    assert r.status_code == 413
    assert r.json()["code"] == "event_too_large"


def test_batch_over_2500_events_is_400(shared_server: Server) -> None:
    events = [{"type": "track", "userId": "u", "event": "E"} for _ in range(2501)]
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": events})
    assert r.status_code == 400
    assert r.json()["code"] == "too_many_events"


def test_batch_must_be_a_list(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": {}})
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_batch"


BAD_EVENTS = [
    ({"type": "track", "userId": "u"}, "missing_field", "'event'"),
    ({"type": "track", "event": "E"}, "missing_field", "userId"),
    ({"type": "track", "userId": None, "anonymousId": "", "event": "E"}, "missing_field", "userId"),
    ({"type": "group", "userId": "u"}, "missing_field", "groupId"),
    ({"type": "alias", "userId": "u"}, "missing_field", "previousId"),
    ({"type": "alias", "previousId": "p", "anonymousId": "a"}, "missing_field", "previousId"),
    ({"userId": "u", "event": "E"}, "missing_field", "'type'"),
    ({"type": "purchase", "userId": "u"}, "invalid_type", "purchase"),
    (
        {"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"},
        "invalid_timestamp",
        "$.timestamp",
    ),
    (
        {"type": "track", "userId": "u", "event": "E", "timestamp": 1700000000},
        "invalid_timestamp",
        "$.timestamp",
    ),
    (
        {"type": "track", "userId": "u", "event": "E", "sentAt": "2026-13-01T00:00:00Z"},
        "invalid_timestamp",
        "$.sentAt",
    ),
    (
        {"type": "track", "userId": "u", "event": "E", "properties": [1, 2]},
        "invalid_field",
        "$.properties",
    ),
    ({"type": "track", "userId": {"id": 1}, "event": "E"}, "invalid_field", "$.userId"),
    ({"type": "track", "userId": True, "event": "E"}, "invalid_field", "$.userId"),
    ({"type": "track", "userId": "u", "event": 5}, "invalid_field", "$.event"),
    (
        {"type": "track", "userId": "u", "event": "E", "context": "web"},
        "invalid_field",
        "$.context",
    ),
    (
        {"type": "track", "userId": "u", "event": "E", "messageId": "m" * 101},
        "invalid_field",
        "messageId",
    ),
    ("not an object", "invalid_field", "object"),
]


@pytest.mark.parametrize(("bad", "code", "hint"), BAD_EVENTS)
def test_one_bad_event_does_not_lose_the_good_ones(
    shared_server: Server, bad: Any, code: str, hint: str
) -> None:
    good = [mid(), mid()]
    batch = [
        {"type": "track", "userId": "g", "event": "Good", "messageId": good[0]},
        bad,
        {"type": "identify", "userId": "g", "messageId": good[1]},
    ]
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": batch})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["accepted"] == 2
    [rejection] = body["rejected"]
    assert rejection["index"] == 1
    assert rejection["code"] == code
    assert hint in rejection["message"]
    for m in good:
        stored(shared_server, m)
    kept = [x for x in rejected_records(shared_server) if x["payload"] == bad]
    assert kept and kept[0]["error"]["code"] == code


def test_deeply_nested_json_is_400_not_a_crash(shared_server: Server) -> None:
    deep = b"[" * 10_000 + b"]" * 10_000  # 20 KB: under the event size limit
    for path, body in (
        ("/v1/batch", b'{"batch": [' + deep + b"]}"),
        ("/v1/track", b'{"userId": "u", "event": "E", "x": ' + deep + b"}"),
    ):
        r = post_raw(shared_server, path, body)
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "invalid_json"
        assert "nested too deeply" in r.json()["message"]
    kept = [
        x for x in rejected_records(shared_server) if "nested too deeply" in x["error"]["message"]
    ]
    assert len(kept) == 2 and all(isinstance(x["payload"], str) for x in kept)
    m = mid()
    nested = {
        "type": "track",
        "userId": "u",
        "event": "E",
        "messageId": m,
        "properties": {"p": [[[[["deep but fine"]]]]]},
    }
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": [nested]})
    assert r.status_code == 200
    assert stored(shared_server, m)["properties"] == nested["properties"]


def test_a_batch_of_only_bad_events_is_400_listing_each(shared_server: Server) -> None:
    batch = [{"type": "track", "userId": "u"}, {"type": "track", "event": "E"}]
    with shared_server.client() as c:
        r = c.post("/v1/batch", headers=basic(shared_server.write_key), json={"batch": batch})
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "invalid_batch"
    assert [x["index"] for x in body["rejected"]] == [0, 1]


def test_single_call_with_a_bad_event_is_400(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.post(
            "/v1/identify",
            headers=basic(shared_server.write_key),
            json={"userId": "u", "traits": "nope"},
        )
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_field"
        r = c.post(
            "/v1/identify",
            headers=basic(shared_server.write_key),
            json={"type": "track", "userId": "u", "event": "E"},
        )
        assert r.status_code == 400
        assert r.json()["code"] == "invalid_type"


# -- normalization -------------------------------------------------------------------


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def parse(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_clock_skew_is_corrected_with_sent_at(shared_server: Server) -> None:
    # The client's clock runs 1 hour behind: it says the event happened 10 s before sending.
    client_now = datetime.now(UTC) - timedelta(hours=1)
    m = mid()
    batch = {
        "sentAt": iso(client_now),
        "batch": [
            {
                "type": "track",
                "userId": "u",
                "event": "Skewed",
                "messageId": m,
                "timestamp": iso(client_now - timedelta(seconds=10)),
            }
        ],
    }
    with shared_server.client() as c:
        assert (
            c.post("/v1/batch", headers=basic(shared_server.write_key), json=batch).status_code
            == 200
        )
    event = stored(shared_server, m)
    received = parse(event["receivedAt"])
    assert parse(event["originalTimestamp"]) == client_now - timedelta(seconds=10)
    assert parse(event["sentAt"]) == client_now
    assert parse(event["timestamp"]) == received - timedelta(seconds=10)


def test_timestamp_without_sent_at_is_kept_and_offsets_become_utc(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={
                "userId": "u",
                "event": "E",
                "messageId": m,
                "timestamp": "2026-01-02T03:04:05.250+02:00",
            },
        )
    event = stored(shared_server, m)
    assert parse(event["timestamp"]) == datetime(2026, 1, 2, 1, 4, 5, 250000, tzinfo=UTC)
    assert event["timestamp"].endswith("Z")
    assert "sentAt" not in event


def test_missing_message_id_is_generated_and_numeric_ids_become_strings(
    shared_server: Server,
) -> None:
    marker = mid()
    with shared_server.client() as c:
        c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={"userId": 42, "anonymousId": 7.0, "event": marker},
        )
    [event] = [e for e in shared_server.events() if e.get("event") == marker]
    assert uuid.UUID(event["messageId"])
    assert event["userId"] == "42"
    assert event["anonymousId"] == "7"


def test_batch_context_and_integrations_are_merged_into_each_event(
    shared_server: Server,
) -> None:
    m1, m2 = mid(), mid()
    body = {
        "context": {"app": {"name": "shop"}, "locale": "en"},
        "integrations": {"All": False, "Webhook": True},
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": m1},
            {
                "type": "track",
                "userId": "u",
                "event": "B",
                "messageId": m2,
                "context": {"locale": "de"},
                "integrations": {"Webhook": False},
            },
        ],
    }
    with shared_server.client() as c:
        assert (
            c.post("/v1/batch", headers=basic(shared_server.write_key), json=body).status_code
            == 200
        )
    a, b = stored(shared_server, m1), stored(shared_server, m2)
    assert a["context"] == {"app": {"name": "shop"}, "locale": "en"}
    assert a["integrations"] == {"All": False, "Webhook": True}
    assert b["context"] == {"app": {"name": "shop"}, "locale": "de"}
    assert b["integrations"] == {"All": False, "Webhook": False}


def test_unknown_fields_are_tolerated(shared_server: Server) -> None:
    m = mid()
    with shared_server.client() as c:
        r = c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={
                "userId": "u",
                "event": "E",
                "messageId": m,
                "_metadata": {"bundled": []},
                "somethingNew": 1,
            },
        )
    assert r.status_code == 200
    assert "_metadata" not in stored(shared_server, m)


# -- dedup -------------------------------------------------------------------------


def test_same_message_id_is_acknowledged_but_stored_once(shared_server: Server) -> None:
    m = mid()
    event = {"type": "track", "userId": "d", "event": "Once", "messageId": m}
    with shared_server.client() as c:
        for _ in range(3):
            r = c.post(
                "/v1/batch", headers=basic(shared_server.write_key), json={"batch": [event, event]}
            )
            assert r.status_code == 200
        metrics = c.get("/metrics").text
    stored(shared_server, m)
    dups = [
        r
        for r in shared_server.records(limit=10_000)
        if r["status"] == "duplicate" and r["messageId"] == m
    ]
    assert len(dups) == 5
    assert 'trackway_events_deduplicated_total{source="default"}' in metrics


# -- analytics.js support ------------------------------------------------------------


def test_settings_for_analytics_js(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.get(f"/v1/projects/{shared_server.write_key}/settings")
        assert r.status_code == 200
        io = r.json()["integrations"]["Segment.io"]
        host = shared_server.url.removeprefix("http://")
        assert io == {
            "apiKey": shared_server.write_key,
            "apiHost": f"{host}/v1",
            "protocol": "http",
        }
        assert r.json()["metrics"]["sampleRate"] == 0
        assert c.get("/v1/projects/unknown/settings").status_code == 404


def test_cors_preflight_and_simple_requests(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.options(
            "/v1/t",
            headers={
                "Origin": "http://shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,authorization,x-retry-count",
            },
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "http://shop.example")
        allowed = r.headers["access-control-allow-headers"].lower()
        for header in ("content-type", "authorization", "x-retry-count"):
            assert header in allowed
        r = c.post(
            "/v1/t",
            headers={"Origin": "http://shop.example", **basic(shared_server.write_key)},
            json={"userId": "c", "event": "E"},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] in ("*", "http://shop.example")


def test_metrics_endpoint_accepts_and_drops(shared_server: Server) -> None:
    with shared_server.client() as c:
        r = c.post("/v1/m", json={"series": [{"type": "Counter", "metric": "x", "value": 1}]})
    assert r.status_code == 200


# -- operations ----------------------------------------------------------------------


def test_health_ready_and_metrics(shared_server: Server) -> None:
    with shared_server.client() as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json() == {"status": "ready"}
        c.post(
            "/v1/track",
            headers=basic(shared_server.write_key),
            json={"userId": "m", "event": "Measured"},
        )
        text = c.get("/metrics").text
    for name in (
        "trackway_events_received_total",
        "trackway_events_accepted_total",
        "trackway_events_rejected_total",
        "trackway_request_duration_seconds_bucket",
    ):
        assert name in text
    assert 'trackway_events_accepted_total{source="default"}' in text


def test_x_forwarded_for_from_a_trusted_proxy(tmp_path: Any) -> None:

    server = start_server(tmp_path / "d", "--trusted-proxy", "127.0.0.0/8,10.0.0.1")
    try:
        m1, m2 = mid(), mid()
        with server.client() as c:
            for m, chain in ((m1, "203.0.113.7, 10.0.0.1"), (m2, "not-an-ip")):
                r = c.post(
                    "/v1/t",
                    headers={**basic(server.write_key), "X-Forwarded-For": chain},
                    json={"userId": "p", "event": "Proxied", "messageId": m},
                )
                assert r.status_code == 200
        assert stored(server, m1)["context"]["ip"] == "203.0.113.7"
        assert stored(server, m2)["context"]["ip"] == "127.0.0.1"
    finally:
        server.stop()


def test_bad_trusted_proxy_is_a_clear_error(tmp_path: Any) -> None:
    import subprocess

    from tests.support import TRACKWAY

    done = subprocess.run(
        [*TRACKWAY, "serve", "--trusted-proxy", "10.0.0.300", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "not an IP address or network: '10.0.0.300'" in done.stderr


def test_a_configcat_sources_key_takes_no_tracking_calls(shared_server: Server) -> None:
    created = cli(
        "sources",
        "create",
        "flags",
        "--type",
        "configcat",
        "--json",
        data_dir=shared_server.data_dir,
        env=shared_server.env,
    )
    key = codec.loads(created)["write_key"]
    listed = cli("sources", "list", data_dir=shared_server.data_dir, env=shared_server.env)
    [line] = [line for line in listed.splitlines() if line.startswith("flags ")]
    assert line.split()[2:4] == ["configcat", "enabled"]
    event = {"userId": "u", "event": "Flag Hit", "messageId": mid()}
    refused = {
        "code": "wrong_source_type",
        "message": "source 'flags' is of type 'configcat': its write key takes only"
        " /v1/webhooks/configcat/<write key>, not tracking calls",
    }
    with shared_server.client() as c:
        # The server picks the new source up within about a second.
        r = until(lambda: c.post("/v1/track", headers=basic(key), json=event).status_code, 403)
        assert r == 403
        r = c.post("/v1/track", headers=basic(key), json=event)
        assert (r.status_code, r.json()) == (403, refused)
        batch = {"writeKey": key, "batch": [{**event, "type": "track"}]}
        r = c.post("/v1/b", content=codec.dumps(batch), headers={"Content-Type": "text/plain"})
        assert (r.status_code, r.json()) == (403, refused)
        settings = c.get(f"/v1/projects/{key}/settings")
        assert (settings.status_code, settings.json()["code"]) == (404, "wrong_source_type")
        metrics = c.get("/metrics").text
    assert all(e["messageId"] != event["messageId"] for e in shared_server.events())
    kept = [r for r in shared_server.records(source="flags") if r["status"] == "rejected"]
    assert len(kept) >= 3 and {r["error"]["code"] for r in kept} == {"wrong_source_type"}
    assert kept[0]["payload"]["writeKey"] == key  # the request as sent, body and all
    assert f'trackway_events_rejected_total{{source="flags"}} {float(len(kept))}' in metrics
