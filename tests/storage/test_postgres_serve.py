"""`trackway serve --database URL`: a real server on PostgreSQL, a real SDK, the CLI."""

import time
import uuid
from pathlib import Path

import httpx
from segment.analytics import Client

from tests.support import cli, start_server, until
from tests.warehouse.proxy import TcpProxy
from trackway import codec


def test_events_sent_with_the_python_sdk_are_listed_by_the_cli(pg_url: str, tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--database", pg_url)
    try:
        assert any(line.startswith("Database:") for line in server.banner)
        errors: list[Exception] = []
        client = Client(
            server.write_key,
            host=server.url,
            on_error=lambda error, batch: errors.append(error),
            upload_interval=0.05,
        )
        ids = [str(uuid.uuid4()) for _ in range(30)]
        for n, message_id in enumerate(ids):
            client.track(f"user-{n}", "Signed Up", {"n": n}, message_id=message_id)
        client.track("user-0", "Signed Up", {"n": 0}, message_id=ids[0])  # a resend
        client.flush()
        client.shutdown()
        assert errors == []
        listed = codec.loads(
            cli(
                "events", "list", "--source", "default", "--limit", "100", "--json",
                "--database", pg_url, data_dir=tmp_path / "elsewhere",
            )
        )  # fmt: skip
        accepted = [r["messageId"] for r in listed if r["status"] == "accepted"]
        assert sorted(accepted) == sorted(ids)
        assert [r["status"] for r in listed].count("duplicate") == 1
    finally:
        server.stop()


def test_postgres_down_answers_503_and_recovers(pg_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.up()
    url = proxy.route(pg_url)
    server = start_server(tmp_path / "data", "--database", url)
    acknowledged: list[str] = []

    def post(c: httpx.Client) -> httpx.Response:
        message_id = str(uuid.uuid4())
        body = {"writeKey": server.write_key, "userId": "u", "event": "E", "messageId": message_id}
        response = c.post("/v1/track", json=body)
        if response.status_code == 200:
            acknowledged.append(message_id)
        return response

    try:
        with server.client() as c:
            assert post(c).status_code == 200
            proxy.down()
            response = post(c)
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert response.json()["code"] == "storage_unavailable"
            assert c.get("/ready").status_code == 503
            assert c.get("/health").status_code == 200
            proxy.up()
            assert until(lambda: c.get("/ready").status_code, 200) == 200
            deadline = time.monotonic() + 10
            while post(c).status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        server.stop()
        proxy.down()
    listed = codec.loads(
        cli(
            "events", "list", "--source", "default", "--json", "--database", pg_url,
            data_dir=tmp_path / "data",
        )
    )  # fmt: skip
    assert sorted(r["messageId"] for r in listed) == sorted(acknowledged)
