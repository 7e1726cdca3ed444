"""`trackway destinations auth` and `test` from the CLI, on a data directory (no server
running), against a local server playing Kameleoon."""

import base64
import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.destinations.fake_server import FakeServer, Reply
from tests.support import cli
from trackway.destinations.commands import destinations_group

API_KEY = base64.b64encode(json.dumps({"id": "client-1", "secret": "s3cr3t"}).encode()).decode()


def declare(
    tmp_path: Path, url: str, sitecode: str = "1q2w3e4r5t", allow_private: bool = True
) -> Path:
    data_dir = tmp_path / "data"
    file = tmp_path / "workspace.yaml"
    file.write_text(
        "destinations:\n"
        "  - name: kam\n"
        "    type: kameleoon\n"
        '    settings: {apiKey: "${TEST_KAMELEOON_KEY}", sitecode: '
        + sitecode
        + ", endpoint: "
        + url
        + "}\n"
        f"    delivery: {{allow_private_addresses: {str(allow_private).lower()}}}\n"
    )
    cli("apply", str(file), data_dir=data_dir, env={"TEST_KAMELEOON_KEY": API_KEY})
    return data_dir


def test_auth_sends_the_credentials_and_reports_the_answer(tmp_path: Path) -> None:
    with FakeServer() as kameleoon:
        data_dir = declare(tmp_path, f"{kameleoon.url}/segmentio")
        out = cli("destinations", "auth", "kam", data_dir=data_dir)
        assert out.strip() == "The credentials were accepted (HTTP 200)."
        (request,) = kameleoon.requests
        assert (request.method, request.path) == (
            "GET",
            "/segmentio/getapikey?id=client-1&secret=s3cr3t",
        )

        kameleoon.reply(Reply(401, body=b'{"message": "unknown client"}'))
        refused = cli("destinations", "auth", "kam", "--json", data_dir=data_dir, check=False)
        result = json.loads(refused)
        assert result["ok"] is False
        assert result["message"] == "The destination refused the credentials (HTTP 401)."
        assert "s3cr3t" not in refused  # the secret in the URL is masked in the sample
        assert result["request"]["url"].endswith("secret=********")


def test_auth_checks_the_settings_first(tmp_path: Path) -> None:
    with FakeServer() as kameleoon:
        data_dir = declare(tmp_path, kameleoon.url, sitecode="short")
        out = cli("destinations", "auth", "kam", "--json", data_dir=data_dir, check=False)
        assert json.loads(out)["message"].startswith("Invalid project sitecode")
        assert kameleoon.requests == []


EVENT = {
    "messageId": "t-1",
    "type": "track",
    "event": "Clicked",
    "properties": {"kameleoonVisitorCode": "vc-1"},
    "timestamp": "2026-08-01T10:00:00Z",
}


def run_tester(data_dir: Path, *args: str) -> Result:
    event = data_dir.parent / "event.json"
    event.write_text(json.dumps(EVENT))
    return CliRunner().invoke(
        destinations_group, ["test", *args, "--event", str(event), "--data-dir", str(data_dir)]
    )


def test_destinations_test_shows_the_request_and_exits_with_how_it_went(tmp_path: Path) -> None:
    with FakeServer() as kameleoon:
        data_dir = declare(tmp_path, f"{kameleoon.url}/segmentio")
        delivered = run_tester(data_dir, "kam")
        assert delivered.exit_code == 0, delivered.output
        assert "== Track Calls → logEvent: delivered" in delivered.output
        assert f"   request:  POST {kameleoon.url}/segmentio" in delivered.output
        assert "             authorization: ********" in delivered.output
        assert API_KEY not in delivered.output
        assert '"event":"Clicked"' in delivered.output
        assert "   response: HTTP 200" in delivered.output

        kameleoon.reply(Reply(503), Reply(400, body=b'{"error": "bad"}'))
        retried, discarded = run_tester(data_dir, "kam"), run_tester(data_dir, "kam")
        assert retried.exit_code == 3 and "failed (would be retried)" in retried.output
        assert discarded.exit_code == 3 and '{"error": "bad"}' in discarded.output

        assert run_tester(data_dir, "kam", "--dry-run").exit_code == 0
        missing = run_tester(data_dir, "nope")
        assert missing.exit_code == 1 and "no destination named 'nope'" in missing.output
        assert len(kameleoon.requests) == 3


def test_destinations_test_exits_4_when_the_address_is_blocked(tmp_path: Path) -> None:
    with FakeServer() as kameleoon:
        data_dir = declare(tmp_path, f"{kameleoon.url}/segmentio", allow_private=False)
        blocked = run_tester(data_dir, "kam")
        assert blocked.exit_code == 4, blocked.output
        assert (
            "   error: blocked: 127.0.0.1 is a loopback address;"
            " set delivery.allow_private_addresses: true on destination 'kam' to allow it"
        ) in blocked.output
        assert f"   request:  POST {kameleoon.url}/segmentio" in blocked.output
        assert kameleoon.requests == []
