"""No secret in anything the dashboard sends a browser: the admin token, the write keys
and a destination's secret setting are grepped for in every page (every page module's,
so pages added later are covered too) and in the JSON the debugger streams."""

import uuid
from pathlib import Path

import httpx

from tests.dashboard.support import HTML, signed_in, streamed
from tests.support import Server, cli
from trackway.dashboard.pages import discover


def test_no_page_holds_a_secret(server: Server, tmp_path: Path) -> None:
    secret = "hook-secret-" + uuid.uuid4().hex
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "destinations:\n"
        "  - name: hook\n"
        "    type: webhook\n"
        f"    settings: {{url: 'http://127.0.0.1:1/in', shared_secret: '{secret}'}}\n"
        "    delivery: {allow_private_addresses: true}\n"
    )
    cli("apply", str(workspace), data_dir=server.data_dir)
    with httpx.Client(base_url=server.url, auth=(server.write_key, "")) as c:
        c.post("/v1/track", json={"userId": "u", "event": "E", "writeKey": server.write_key})
        c.post("/v1/track", json={"userId": "u", "writeKey": server.write_key})  # rejected
    paths = [page.path for page in discover()] + ["/sources/default"]
    assert "/" in paths and "/sources" in paths
    secrets = (server.admin_token, server.write_key, secret)
    with signed_in(server) as c:
        for path in paths:
            r = c.get(path, headers=HTML)
            assert r.status_code == 200, path
            for value in secrets:
                assert value not in r.text, (path, value)
                assert value not in str(r.headers), (path, value)
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
