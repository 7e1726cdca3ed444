"""The admin API: bearer auth, sources, the debugger and its live stream."""

import threading
import uuid

import httpx

from tests.support import Server


def auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_token}"}


def test_admin_api_needs_the_token(server: Server) -> None:
    with server.client() as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDo="}):
            r = c.get("/api/v1/sources", headers=headers)
            assert r.status_code == 401
            assert r.json()["code"] == "unauthorized"
        assert c.get("/api/v1/openapi.json").json()["openapi"].startswith("3.")


def test_sources_and_events(server: Server) -> None:
    m = str(uuid.uuid4())
    with server.client() as c:
        c.post(
            "/v1/track",
            json={"writeKey": server.write_key, "userId": "a", "event": "Seen", "messageId": m},
        )
        [source] = c.get("/api/v1/sources", headers=auth(server)).json()
        assert source["name"] == "default" and source["write_key"] == server.write_key
        events = c.get("/api/v1/sources/default/events?limit=5", headers=auth(server)).json()
        assert events[0]["messageId"] == m and events[0]["status"] == "accepted"
        r = c.get("/api/v1/sources/ghost/events", headers=auth(server))
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = c.get("/api/v1/sources/default/events?limit=zero", headers=auth(server))
        assert r.status_code == 400 and "limit" in r.json()["message"]
        r = c.get("/api/v1/sources/default/events?status=lost", headers=auth(server))
        assert r.status_code == 400


def test_live_stream_over_server_sent_events(server: Server) -> None:
    m = str(uuid.uuid4())
    lines: list[str] = []
    connected = threading.Event()
    received = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=server.url, timeout=30) as c,
            c.stream("GET", "/api/v1/sources/default/events/stream", headers=auth(server)) as r,
        ):
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                lines.append(line)
                connected.set()
                if m in line:
                    received.set()
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    with server.client() as c:
        c.post(
            "/v1/track",
            json={"writeKey": server.write_key, "userId": "s", "event": "Live", "messageId": m},
        )
        c.post("/v1/track", json={"writeKey": server.write_key, "userId": "s"})
    assert received.wait(10), lines
    assert "event: accepted" in lines
    data = next(line for line in lines if m in line)
    assert data.startswith("data: {")


def test_requests_are_checked_against_the_openapi_document(server: Server) -> None:
    with server.client() as c:
        r = c.post(
            "/api/v1/destinations/x/resend",
            headers=auth(server),
            json={"ids": None, "": [1], "extra": 2},
        )
        assert r.status_code == 400 and r.json()["code"] == "invalid_parameter"
        assert "unknown field(s) '', 'extra'" in r.json()["message"]
        lone = b'{"\\ud8aa": [], "": {"\\udb70": -3019}}'
        r = c.post("/api/v1/destinations/x/resend", headers=auth(server), content=lone)
        assert r.status_code == 400 and r.headers["content-type"] == "application/json"
        assert "not JSON" in r.json()["message"]
        r = c.get("/api/v1/sources/default/events?limit=5&colour=red", headers=auth(server))
        assert r.status_code == 400 and "colour" in r.json()["message"]
        r = c.get("/api/v1/sources/default/events?limit=10001", headers=auth(server))
        assert r.status_code == 400 and "at most 10000" in r.json()["message"]
        r = c.delete("/api/v1/sources", headers=auth(server))
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
        r = c.get("/api/v1/nothing", headers=auth(server))
        assert r.status_code == 404 and r.json()["code"] == "not_found"
