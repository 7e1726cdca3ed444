"""The tracking API against a real `trackway serve` on 127.0.0.1."""

import base64
import uuid
from typing import Any

import httpx
import pytest

from tests.support import Server, cli

pytestmark = pytest.mark.usefixtures("shared_server")


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
        # The server reloads sources when the state file changes (checked every second);
        # retry until it has, bounded.
        codes = _until(lambda: c.post("/v1/track", json=body).status_code, 401)
        assert codes == 401
        assert c.post("/v1/track", json=body).json()["code"] == "source_disabled"
        cli("sources", "enable", "shop", data_dir=server.data_dir)
        assert _until(lambda: c.post("/v1/track", json=body).status_code, 200) == 200


def _until(fn: Any, want: int) -> int:
    import time

    deadline = time.monotonic() + 10
    got = fn()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = fn()
    return int(got)


def _sources(server: Server) -> list[dict[str, Any]]:
    from trackway import codec

    result: list[dict[str, Any]] = codec.loads(
        cli("sources", "list", "--json", data_dir=server.data_dir)
    )
    return result
