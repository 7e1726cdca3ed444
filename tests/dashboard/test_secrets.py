"""No secret in anything the dashboard sends a browser: the admin token, the write keys,
a destination's secret setting and a PostgreSQL warehouse's password are grepped for in
every page (every page module's, so pages added later are covered too), in the SQL
console's answers and in the JSON the debugger streams."""

import uuid
from pathlib import Path

import httpx

from tests.dashboard.support import HTML, csrf_of, signed_in, streamed
from tests.support import Server, cli
from tests.warehouse.conftest import new_pg_database
from trackway.dashboard.pages import discover


def test_no_page_holds_a_secret(server: Server, tmp_path: Path) -> None:
    secret = "hook-secret-" + uuid.uuid4().hex
    password = "pg-password-" + uuid.uuid4().hex  # PostgreSQL trusts 127.0.0.1: unchecked
    workspace = tmp_path / "workspace.yaml"
    with new_pg_database() as url:
        workspace.write_text(
            "destinations:\n"
            "  - name: hook\n"
            "    type: webhook\n"
            f"    settings: {{url: 'http://127.0.0.1:1/in', shared_secret: '{secret}'}}\n"
            "    delivery: {allow_private_addresses: true}\n"
            "warehouses:\n"
            f"  - {{name: pg, type: postgres, url: '{url.replace('@', f':{password}@')}'}}\n"
        )
        cli("apply", str(workspace), data_dir=server.data_dir)
        _no_page_holds(server, (secret, password))


def _no_page_holds(server: Server, more: tuple[str, ...]) -> None:
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        c.post("/v1/track", json={"userId": "u", "event": "E", "writeKey": server.write_key})
        c.post("/v1/track", json={"userId": "u", "writeKey": server.write_key})  # rejected
    paths = [page.path for page in discover()] + ["/sources/default", "/warehouse/pg"]
    assert "/" in paths and "/sources" in paths and "/warehouse" in paths
    secrets = (server.admin_token, server.write_key, *more)
    with signed_in(server) as c:
        for path in paths:
            r = c.get(path, headers=HTML)
            assert r.status_code == 200, path
            for value in secrets:
                assert value not in r.text, (path, value)
                assert value not in str(r.headers), (path, value)
        # The SQL console's answers and errors too (a connection error could name the URL).
        token = csrf_of(c.get("/warehouse/pg", headers=HTML).text)
        for sql in ("SELECT current_setting('application_name')", "SELECT nope"):
            r = c.post("/warehouse/pg/sql", data={"csrf": token, "sql": sql}, headers=HTML)
            assert all(value not in r.text for value in secrets), sql
    with server.client() as c:
        page = c.get("/signin").text
    assert all(value not in page for value in secrets)


def test_the_debugger_stream_masks_a_write_key_in_a_payload(shared_server: Server) -> None:
    mid = str(uuid.uuid4())
    rejected = {"userId": "u", "messageId": mid, "writeKey": shared_server.write_key}
    _, posted, lines = streamed(shared_server, rejected)
    assert posted.status_code == 400
    data = next(line for line in lines if mid in line)
    assert shared_server.write_key not in data
    assert f'"writeKey":"{shared_server.write_key[:4]}••••••••"' in data
