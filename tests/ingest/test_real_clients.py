"""The real Segment SDKs, unmodified, against a real `trackway serve` on 127.0.0.1.

- segment-analytics-python (in this process, with and without gzip);
- @segment/analytics-node (a Node script, tests/clients/send_node.mjs);
- @segment/analytics-next in headless Chromium, loaded from another origin, so the
  settings fetch and the CORS preflights are the real thing.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from segment.analytics import Client
from segment.analytics.request import APIError
from segment.analytics.version import VERSION as PYTHON_SDK_VERSION

from tests.support import Server

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
NODE_SCRIPT = CLIENTS / "send_node.mjs"
UMD_DIR = CLIENTS / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Belt and braces: no host name other than 127.0.0.1 resolves, so nothing the
    # browser or the SDK might try (a CDN chunk, a metrics beacon) leaves the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

# The fields Trackway stores per call type (besides ids and timestamps).
BODY_FIELDS = {
    "track": {"event", "properties"},
    "identify": {"traits"},
    "page": {"name", "category", "properties"},
    "screen": {"name", "category", "properties"},
    "group": {"groupId", "traits"},
    "alias": {"previousId"},
}
TIME_FIELDS = {"originalTimestamp", "timestamp", "sentAt", "receivedAt"}


def mid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4()}"


def parse_time(value: Any) -> datetime:
    """An ISO-8601 timestamp with an offset, as stored; fails on anything else."""
    assert isinstance(value, str), f"not a timestamp string: {value!r}"
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without an offset: {value!r}"
    return parsed


def wait_for_events(
    server: Server, message_ids: set[str], timeout: float = 15
) -> dict[str, dict[str, Any]]:
    """Poll the log until every id is stored (bounded); each must be stored exactly once."""
    deadline = time.monotonic() + timeout
    while True:
        events = server.events()
        found = {e["messageId"] for e in events} & message_ids
        if found == message_ids or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    counts = Counter(e["messageId"] for e in events if e["messageId"] in message_ids)
    missing = message_ids - set(counts)
    assert not missing, f"never stored: {sorted(missing)}"
    twice = {m: n for m, n in counts.items() if n != 1}
    assert not twice, f"stored more than once: {twice}"
    return {e["messageId"]: e for e in events if e["messageId"] in message_ids}


def metric(server: Server, name: str, labels: str) -> float:
    """The value of one Prometheus sample of /metrics (0 when absent)."""
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def check_times(
    event: dict[str, Any],
    sent_timestamp: datetime | None,
    window: tuple[datetime, datetime],
    clock_slack: timedelta = timedelta(0),
) -> None:
    """originalTimestamp is the client's; receivedAt is the server's clock; timestamp is
    corrected for the client's clock skew: receivedAt - (sentAt - originalTimestamp)."""
    start, end = window
    received = parse_time(event["receivedAt"])
    sent = parse_time(event["sentAt"])
    original = parse_time(event["originalTimestamp"])
    stamp = parse_time(event["timestamp"])
    assert start <= received <= end, (received, window)
    # The SDK's clock is this machine's clock (ms precision for JS clients).
    assert start - clock_slack <= sent <= received + clock_slack, (sent, received, window)
    if sent_timestamp is not None:
        assert original == sent_timestamp, (event["originalTimestamp"], sent_timestamp)
    else:  # the SDK stamped the call itself when it was made
        assert start - clock_slack <= original <= sent + clock_slack, (original, sent)
    assert stamp == received - (sent - original), event


def check_common(event: dict[str, Any], kind: str, expected: dict[str, Any]) -> None:
    """Type, ids and body fields exactly; no field Trackway does not store."""
    assert event["type"] == kind
    for key, value in expected.items():
        assert event.get(key) == value, (key, event.get(key), value)
    for key in ("userId", "anonymousId"):
        if key not in expected:
            assert key not in event, f"{key} stored although the SDK sent none: {event}"
    allowed = {"messageId", "type", "userId", "anonymousId", "context", "integrations"}
    allowed |= BODY_FIELDS[kind] | TIME_FIELDS
    assert set(event) <= allowed, f"unexpected fields {set(event) - allowed}: {event}"
    assert "writeKey" not in event
    assert "writeKey" not in json.dumps(event)


# -- segment-analytics-python -----------------------------------------------------


class Errors:
    """The SDK's on_error callback: every (error, batch) it reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[Exception, list[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self.calls.append((error, batch))


def python_client(server_url: str, write_key: str, gzip: bool, on_error: Errors) -> Client:
    return Client(
        write_key,
        host=server_url,
        gzip=gzip,
        sync_mode=False,
        on_error=on_error,
        max_retries=2,
        timeout=10,
        upload_interval=0.05,
    )


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_python_sdk_every_call_type(shared_server: Server, gzip: bool) -> None:
    tag = "gz" if gzip else "plain"
    ids = {k: mid(f"py-{tag}-{k}") for k in BODY_FIELDS}
    user = f"py-user-{tag}"
    # Client-side timestamps in several offsets, ms precision (what the SDK sends).
    t_track = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    t_identify = datetime(2024, 5, 6, 9, 8, 9, 456000, tzinfo=timezone(timedelta(hours=2)))
    t_page = datetime(2024, 5, 6, 1, 38, 9, 789000, tzinfo=timezone(timedelta(hours=-5.5)))
    t_screen = datetime(2023, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    t_group = datetime(2024, 2, 29, 12, 0, 0, tzinfo=UTC)
    t_alias = datetime(2024, 5, 6, 7, 8, 10, 1000, tzinfo=timezone(timedelta(hours=9)))
    errors = Errors()
    start = datetime.now(UTC)
    client = python_client(shared_server.url, shared_server.write_key, gzip, errors)
    try:
        client.track(
            user,
            "Order Completed",
            {"revenue": 39.5, "items": [{"sku": "a-1", "qty": 2}], "gift": False},
            context={"locale": "de-DE", "campaign": {"name": "spring"}},
            timestamp=t_track,
            integrations={"All": True, "Mixpanel": False},
            message_id=ids["track"],
        )
        client.identify(
            user,
            {"email": "py@example.com", "plan": "pro", "logins": 3},
            timestamp=t_identify,
            message_id=ids["identify"],
        )
        client.page(
            anonymous_id=f"py-anon-{tag}",
            category="Docs",
            name="Getting Started",
            properties={"path": "/docs/start", "title": "Start"},
            timestamp=t_page,
            message_id=ids["page"],
        )
        client.screen(
            user,
            name="Settings",
            properties={"tab": "billing"},
            timestamp=t_screen,
            message_id=ids["screen"],
        )
        client.group(
            user,
            "py-group-1",
            {"name": "Acme", "employees": 42},
            timestamp=t_group,
            message_id=ids["group"],
        )
        client.alias(f"py-anon-{tag}", user, timestamp=t_alias, message_id=ids["alias"])
        client.flush()
    finally:
        client.shutdown()
    end = datetime.now(UTC)
    assert errors.calls == []

    events = wait_for_events(shared_server, set(ids.values()))
    expected: dict[str, tuple[dict[str, Any], datetime]] = {
        "track": (
            {
                "userId": user,
                "event": "Order Completed",
                "properties": {
                    "revenue": 39.5,
                    "items": [{"sku": "a-1", "qty": 2}],
                    "gift": False,
                },
                "integrations": {"All": True, "Mixpanel": False},
            },
            t_track,
        ),
        "identify": (
            {"userId": user, "traits": {"email": "py@example.com", "plan": "pro", "logins": 3}},
            t_identify,
        ),
        "page": (
            {
                "anonymousId": f"py-anon-{tag}",
                "category": "Docs",
                "name": "Getting Started",
                "properties": {"path": "/docs/start", "title": "Start"},
            },
            t_page,
        ),
        "screen": (
            {"userId": user, "name": "Settings", "properties": {"tab": "billing"}},
            t_screen,
        ),
        "group": (
            {"userId": user, "groupId": "py-group-1", "traits": {"name": "Acme", "employees": 42}},
            t_group,
        ),
        "alias": ({"userId": user, "previousId": f"py-anon-{tag}"}, t_alias),
    }
    library = {"name": "analytics-python", "version": PYTHON_SDK_VERSION}
    for kind, (fields, sent_timestamp) in expected.items():
        event = events[ids[kind]]
        assert event["messageId"] == ids[kind]
        check_common(event, kind, fields)
        if kind == "track":
            assert event["context"] == {
                "locale": "de-DE",
                "campaign": {"name": "spring"},
                "library": library,
            }
        else:
            assert event["context"] == {"library": library}
            assert event["integrations"] == {}
        # A server library's request gets no context.ip from the connection.
        assert "ip" not in event["context"]
        check_times(event, sent_timestamp, (start, end))


def test_python_sdk_many_events_in_several_batches(shared_server: Server) -> None:
    ids = [mid(f"py-many-{i}") for i in range(250)]  # upload_size 100: at least 3 batches
    requests_before = metric(shared_server, "trackway_http_requests_total", 'status="200"')
    errors = Errors()
    client = Client(
        shared_server.write_key,
        host=shared_server.url,
        gzip=True,
        sync_mode=False,
        on_error=errors,
        max_retries=2,
        upload_size=100,
    )
    try:
        for i, m in enumerate(ids):
            client.track(f"py-many-{i % 7}", "Viewed", {"i": i}, message_id=m)
        client.flush()
    finally:
        client.shutdown()
    assert errors.calls == []
    events = wait_for_events(shared_server, set(ids))
    for i, m in enumerate(ids):
        assert events[m]["properties"] == {"i": i}
        assert events[m]["userId"] == f"py-many-{i % 7}"
    # The log keeps the order the SDK sent them in.
    order = [e["messageId"] for e in shared_server.events() if e["messageId"] in set(ids)]
    assert order == ids
    requests = metric(shared_server, "trackway_http_requests_total", 'status="200"')
    assert requests - requests_before >= 3


@pytest.mark.parametrize("gzip", [False, True], ids=["plain", "gzip"])
def test_python_sdk_wrong_write_key_reaches_on_error_and_nothing_is_stored(
    shared_server: Server, gzip: bool
) -> None:
    ids = [mid("py-wrongkey-track"), mid("py-wrongkey-identify")]
    errors = Errors()
    client = python_client(shared_server.url, "not-a-write-key", gzip, errors)
    try:
        client.track("py-wrong", "Signed Up", message_id=ids[0])
        client.identify("py-wrong", {"a": 1}, message_id=ids[1])
        client.flush()  # returns once the SDK has given up (401 is not retried)
    finally:
        client.shutdown()

    assert errors.calls, "the SDK did not report the rejected batch"
    reported = [m["messageId"] for _, batch in errors.calls for m in batch]
    assert sorted(reported) == sorted(ids)
    for error, _ in errors.calls:
        assert isinstance(error, APIError), repr(error)
        assert error.status == 401
        assert error.code == "invalid_write_key"
        assert error.message
    # A correct key's request after this one is stored; the wrong key's never were.
    with shared_server.client() as c:
        marker = mid("py-wrongkey-marker")
        r = c.post(
            "/v1/track",
            auth=(shared_server.write_key, ""),
            json={"userId": "m", "event": "Marker", "messageId": marker},
        )
        assert r.status_code == 200
    stored_ids = {e["messageId"] for e in shared_server.events()}
    assert marker in stored_ids
    assert not stored_ids & set(ids)


# -- @segment/analytics-node ------------------------------------------------------


def run_node(url: str, write_key: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "Node.js is required (see README: .ci/run installs it)"
    assert NODE_SCRIPT.exists()
    done = subprocess.run(
        [node, str(NODE_SCRIPT), url, write_key],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=CLIENTS,
        env={**os.environ, "TRACKWAY_NODE_CALLS": json.dumps(calls)},
    )
    assert done.returncode == 0, f"node failed ({done.returncode}): {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_node_sdk_every_call_type(shared_server: Server) -> None:
    ids = {k: mid(f"node-{k}") for k in BODY_FIELDS}
    user = "node-user-1"
    stamps = {
        "track": "2024-05-06T07:08:09.123Z",
        "identify": "2024-05-06T09:08:09.456+02:00",
        "page": "2024-05-06T01:38:09.789-05:30",
        "screen": "2023-12-31T23:59:59.999Z",
        "group": "2024-02-29T12:00:00.000Z",
    }  # alias: the SDK stamps it itself
    calls: list[dict[str, Any]] = [
        {
            "method": "track",
            "params": {
                "userId": user,
                "anonymousId": "node-anon-1",
                "event": "Order Completed",
                "properties": {"revenue": 39.5, "items": [{"sku": "a-1"}], "gift": False},
                "context": {"locale": "en-GB"},
                "integrations": {"All": True, "Mixpanel": False},
            },
        },
        {"method": "identify", "params": {"userId": user, "traits": {"email": "n@example.com"}}},
        {
            "method": "page",
            "params": {
                "anonymousId": "node-anon-1",
                "category": "Docs",
                "name": "Getting Started",
                "properties": {"path": "/docs"},
            },
        },
        {
            "method": "screen",
            "params": {"userId": user, "name": "Settings", "properties": {"tab": "billing"}},
        },
        {"method": "group", "params": {"userId": user, "groupId": "node-g1", "traits": {"n": 1}}},
        {"method": "alias", "params": {"userId": user, "previousId": "node-anon-1"}},
    ]
    for call in calls:
        kind = call["method"]
        call["params"]["messageId"] = ids[kind]
        if kind in stamps:
            call["params"]["timestamp"] = stamps[kind]

    start = datetime.now(UTC)
    out = run_node(shared_server.url, shared_server.write_key, calls)
    end = datetime.now(UTC)
    assert out["errors"] == []
    assert sorted((r["method"], r["messageId"], r["error"]) for r in out["results"]) == sorted(
        (k, m, None) for k, m in ids.items()
    )

    events = wait_for_events(shared_server, set(ids.values()))
    expected: dict[str, dict[str, Any]] = {
        "track": {
            "userId": user,
            "anonymousId": "node-anon-1",
            "event": "Order Completed",
            "properties": {"revenue": 39.5, "items": [{"sku": "a-1"}], "gift": False},
            "integrations": {"All": True, "Mixpanel": False},
        },
        "identify": {"userId": user, "traits": {"email": "n@example.com"}},
        "page": {
            "anonymousId": "node-anon-1",
            "category": "Docs",
            "name": "Getting Started",
            # analytics-node copies the category into the properties itself.
            "properties": {"path": "/docs", "category": "Docs"},
        },
        "screen": {"userId": user, "name": "Settings", "properties": {"tab": "billing"}},
        "group": {"userId": user, "groupId": "node-g1", "traits": {"n": 1}},
        "alias": {"userId": user, "previousId": "node-anon-1"},
    }
    for kind, fields in expected.items():
        event = events[ids[kind]]
        assert event["messageId"] == ids[kind]
        check_common(event, kind, fields)
        library = event["context"]["library"]
        assert library["name"] == "@segment/analytics-node"
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", library["version"]), library
        if kind == "track":
            assert event["context"]["locale"] == "en-GB"
        assert "ip" not in event["context"]
        sent = stamps.get(kind)
        check_times(
            event,
            datetime.fromisoformat(sent) if sent else None,
            (start, end),
            clock_slack=timedelta(milliseconds=1),  # JS clocks have ms precision
        )


def test_node_sdk_generated_message_ids_are_kept(shared_server: Server) -> None:
    calls = [
        {"method": "track", "params": {"userId": "node-gen", "event": f"Gen {i}"}}
        for i in range(20)
    ]
    out = run_node(shared_server.url, shared_server.write_key, calls)
    assert out["errors"] == []
    ids = {r["messageId"] for r in out["results"]}
    assert len(ids) == 20
    events = wait_for_events(shared_server, ids)
    for r in out["results"]:
        assert r["messageId"].startswith("node-next-"), r  # the SDK's own format
        assert events[r["messageId"]]["event"].startswith("Gen ")


def test_node_sdk_wrong_write_key_is_reported_and_nothing_is_stored(
    shared_server: Server,
) -> None:
    ids = [mid("node-wrongkey-1"), mid("node-wrongkey-2")]
    calls = [
        {"method": "track", "params": {"userId": "w", "event": "E", "messageId": ids[0]}},
        {"method": "identify", "params": {"userId": "w", "messageId": ids[1]}},
    ]
    out = run_node(shared_server.url, "not-a-write-key", calls)
    assert sorted(r["messageId"] for r in out["results"]) == sorted(ids)
    for r in out["results"]:
        assert r["error"] is not None and "401" in r["error"], r
    assert out["errors"], "the SDK emitted no 'error' event"
    assert all("401" in e["reason"] for e in out["errors"]), out["errors"]
    assert not {e["messageId"] for e in shared_server.events()} & set(ids)


# -- @segment/analytics-next in Chromium ------------------------------------------


PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>Trackway browser test</title>
<script src="/umd/index.js"></script>
</head>
<body>
<p>Trackway browser test</p>
<script>
const config = __CONFIG__;
window.sent = (async () => {
  const [analytics] = await AnalyticsNext.AnalyticsBrowser.load({
    writeKey: config.writeKey,
    cdnURL: config.cdnURL,
  });
  const track = await analytics.track(
    "Browser Clicked", {button: "buy", price: 9.99}, {messageId: config.ids.track});
  const identify = await analytics.identify(
    "browser-user-1", {email: "b@example.com"}, {messageId: config.ids.identify});
  const page = await analytics.page(
    "Docs", "Home", {section: "intro"}, {messageId: config.ids.page});
  return {
    anonymousId: analytics.user().anonymousId(),
    sent: [track, identify, page].map((ctx) => ({
      messageId: ctx.event.messageId,
      failed: ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null,
    })),
  };
})();
</script>
</body>
</html>
"""


class StaticSite:
    """The test page and the UMD bundle on their own 127.0.0.1 port (another origin)."""

    def __init__(self, page: bytes) -> None:
        umd = UMD_DIR.resolve()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path in ("/", "/index.html"):
                    self._send(200, page, "text/html; charset=utf-8")
                elif path.startswith("/umd/"):
                    file = (umd / path.removeprefix("/umd/")).resolve()
                    if file.parent == umd and file.is_file():
                        self._send(200, file.read_bytes(), "text/javascript")
                    else:
                        self._send(404, b"not found", "text/plain")
                elif path == "/favicon.ico":
                    self._send(204, b"", "image/x-icon")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def static_site() -> Iterator[Callable[[bytes], StaticSite]]:
    sites: list[StaticSite] = []

    def make(page: bytes) -> StaticSite:
        site = StaticSite(page)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.mark.slow
def test_browser_sdk_in_chromium_from_another_origin(
    server: Server, static_site: Callable[[bytes], StaticSite]
) -> None:
    from playwright.sync_api import sync_playwright

    assert (UMD_DIR / "index.js").is_file(), "run npm ci in tests/clients"
    ids = {k: mid(f"browser-{k}") for k in ("track", "identify", "page")}
    config = {"writeKey": server.write_key, "cdnURL": server.url, "ids": ids}
    site = static_site(PAGE.replace("__CONFIG__", json.dumps(config)).encode())
    assert site.origin != server.url  # a different port: a different origin, real CORS

    requests: list[str] = []
    responses: list[tuple[str, str, int]] = []
    failed: list[str] = []
    page_errors: list[str] = []
    console: list[str] = []
    start = datetime.now(UTC)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("response", lambda r: responses.append((r.request.method, r.url, r.status)))
            page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(f"{site.origin}/index.html", timeout=15_000)
            result = page.evaluate("window.sent")
            user_agent = page.evaluate("navigator.userAgent")
        finally:
            browser.close()
    end = datetime.now(UTC)

    diagnostics = f"console={console} failed={failed} page_errors={page_errors}"
    assert page_errors == [], diagnostics
    assert failed == [], diagnostics
    assert [s["messageId"] for s in result["sent"]] == list(ids.values())
    assert [s["failed"] for s in result["sent"]] == [None, None, None], diagnostics
    # Every request went to 127.0.0.1: the page's origin or Trackway.
    assert all(u.startswith((site.origin + "/", server.url + "/")) for u in requests), requests
    # analytics.js fetched its settings from Trackway (cdnURL) before sending anything,
    # and then posted each event to the short paths of the apiHost those settings named.
    settings_url = f"{server.url}/v1/projects/{server.write_key}/settings"
    assert ("GET", settings_url, 200) in responses, responses
    posts = [(u, s) for m, u, s in responses if m == "POST"]
    assert sorted(posts) == sorted((f"{server.url}/v1/{k}", 200) for k in ("t", "i", "p")), (
        responses
    )
    first_post = next(i for i, (m, *_) in enumerate(responses) if m == "POST")
    assert responses.index(("GET", settings_url, 200)) < first_post

    events = wait_for_events(server, set(ids.values()))
    assert len(server.events()) == 3  # nothing else arrived (no /v1/m, no extra page)
    anonymous_id = result["anonymousId"]
    assert anonymous_id
    expected: dict[str, dict[str, Any]] = {
        "track": {
            "anonymousId": anonymous_id,
            "event": "Browser Clicked",
            "properties": {"button": "buy", "price": 9.99},
        },
        "identify": {
            "userId": "browser-user-1",
            "anonymousId": anonymous_id,
            "traits": {"email": "b@example.com"},
        },
        "page": {
            "userId": "browser-user-1",
            "anonymousId": anonymous_id,
            "category": "Docs",
            "name": "Home",
        },
    }
    for kind, fields in expected.items():
        event = events[ids[kind]]
        assert event["messageId"] == ids[kind]
        check_common(event, kind, fields)
        context = event["context"]
        assert context["library"]["name"] == "analytics.js"
        assert context["ip"] == "127.0.0.1"  # from the connection: a browser call
        assert context["userAgent"] == user_agent
        assert context["page"]["url"] == f"{site.origin}/index.html"
        assert context["page"]["title"] == "Trackway browser test"
        check_times(event, None, (start, end), clock_slack=timedelta(milliseconds=1))
    page_props = events[ids["page"]]["properties"]
    assert page_props["section"] == "intro"
    assert page_props["url"] == f"{site.origin}/index.html"

    # Trackway's own counters saw the three browser requests.
    assert metric(server, "trackway_events_accepted_total", 'source="default"') == 3
    assert metric(server, "trackway_http_requests_total", 'status="200"') == 3
