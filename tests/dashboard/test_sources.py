"""The Sources page of a real server: the list (write keys masked), creating a source
(its key shown once), rotating a key with its grace period, disabling and enabling; and
the live debugger: the newest records, the status filter, the SSE stream."""

import re
import uuid
from html import unescape

import httpx

from tests.dashboard.support import HTML, csrf_of, signed_in, streamed
from tests.support import Server, until


def accepts(server: Server, write_key: str) -> int:
    with httpx.Client(base_url=server.url, auth=(write_key, ""), timeout=10) as c:
        return c.post("/v1/track", json={"userId": "u", "event": "Probe"}).status_code


def test_the_list_masks_write_keys_and_names_its_twin(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        page = c.get("/sources").text
    assert shared_server.write_key not in page
    assert shared_server.write_key[:4] + "••••••••" in page
    assert 'href="/sources/default"' in page
    assert 'href="/api/v1/sources"' in page
    assert "<td>segment</td>" in page


def test_a_created_source_shows_its_key_once_and_it_works(shared_server: Server) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}"
    with signed_in(shared_server) as c:
        form = c.get("/sources").text
        r = c.post("/sources", data={"csrf": csrf_of(form), "name": name, "type": "segment"})
        assert r.status_code == 201
        key = re.search(r'<code id="shown-key">([A-Za-z0-9]+)</code>', r.text)
        assert key, r.text
        assert 'data-copy="#shown-key"' in r.text
        assert until(lambda: accepts(shared_server, key.group(1)), 200) == 200
        again = c.get("/sources").text
        assert name in again and key.group(1) not in again  # shown once only
        r = c.post("/sources", data={"csrf": csrf_of(again), "name": name, "type": "segment"})
        assert r.status_code == 400
        assert f"a source named &#39;{name}&#39; already exists" in r.text
        bad = {"csrf": csrf_of(again), "name": "bad name!", "type": "segment"}
        r = c.post("/sources", data=bad)
        assert r.status_code == 400 and "invalid source name" in r.text


def test_creating_without_the_csrf_token_creates_nothing(shared_server: Server) -> None:
    name = f"forged-{uuid.uuid4().hex[:6]}"
    with signed_in(shared_server) as c:
        r = c.post("/sources", data={"name": name, "type": "segment"})
        assert r.status_code == 403
        assert name not in c.get("/sources").text


def test_rotating_shows_the_new_key_and_the_old_one_keeps_working(server: Server) -> None:
    with signed_in(server) as c:
        form = c.get("/sources").text
        r = c.post("/sources/default/rotate", data={"csrf": csrf_of(form), "grace": "2h"})
        assert r.status_code == 200
        assert "The old key keeps working for 2 h." in r.text
        new = re.search(r'<code id="shown-key">([A-Za-z0-9]+)</code>', r.text)
        assert new and new.group(1) != server.write_key
        assert until(lambda: accepts(server, new.group(1)), 200) == 200
        assert accepts(server, server.write_key) == 200  # within its grace period
        page = c.get("/sources").text
        assert new.group(1) not in page and server.write_key not in page
        r = c.post("/sources/default/rotate", data={"csrf": csrf_of(page), "grace": "soon"})
        assert r.status_code == 400


def test_disabling_refuses_the_sources_events_until_enabled(server: Server) -> None:
    with signed_in(server) as c:
        form = c.get("/sources").text
        r = c.post("/sources/default/enabled", data={"csrf": csrf_of(form), "enabled": "false"})
        assert (r.status_code, r.headers["location"]) == (303, "/sources")
        assert until(lambda: accepts(server, server.write_key), 401) == 401
        page = c.get("/sources").text
        assert '<span class="bad">disabled</span>' in page
        c.post("/sources/default/enabled", data={"csrf": csrf_of(page), "enabled": "true"})
        assert until(lambda: accepts(server, server.write_key), 200) == 200


def test_the_debugger_shows_accepted_rejected_and_duplicate_records(server: Server) -> None:
    mid = str(uuid.uuid4())
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        event = {"userId": "dbg-user", "event": "Debugged", "messageId": mid}
        assert c.post("/v1/track", json=event).status_code == 200
        assert c.post("/v1/track", json=event).status_code == 200  # a duplicate
        # Rejected, its payload holding the write key (as analytics.js sends it): masked.
        no_event = {"userId": "dbg-user", "writeKey": server.write_key}
        assert c.post("/v1/track", json=no_event).status_code == 400
    with signed_in(server) as c:
        page = c.get("/sources/default").text
        rejected = c.get("/sources/default?status=rejected").text
    statuses = re.findall(r'<tr tabindex="0" data-status="(\w+)"', page)
    assert statuses == ["rejected", "duplicate", "accepted"]
    assert "missing_field: &#39;event&#39; is required for track calls" in page
    full = [unescape(j) for j in re.findall(r'data-json="([^"]*)"', page)]
    assert any(f'"messageId":"{mid}"' in j and '"status":"accepted"' in j for j in full)
    assert re.findall(r'<tr tabindex="0" data-status="(\w+)"', rejected) == ["rejected"]
    assert 'href="/api/v1/sources/default/events?status=rejected"' in rejected
    assert "<option selected>rejected</option>" in rejected
    for body in (page, rejected):
        assert server.admin_token not in body and server.write_key not in body


def test_the_debugger_stream_needs_a_session_and_streams_new_records(
    shared_server: Server,
) -> None:
    with shared_server.client() as c:
        assert c.get("/sources/default/stream").status_code == 401
    mid = str(uuid.uuid4())
    content_type, _, lines = streamed(
        shared_server, {"userId": "s", "event": "Live", "messageId": mid}
    )
    assert content_type.startswith("text/event-stream")
    assert "event: accepted" in lines


def test_an_unknown_source_is_a_404_page(shared_server: Server) -> None:
    with signed_in(shared_server) as c:
        r = c.get("/sources/nope", headers=HTML)
        assert r.status_code == 404
        assert "nope" in r.text
