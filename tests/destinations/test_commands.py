"""`trackway destinations auth`: a destination's authentication test from the CLI, on a
data directory (no server running), against a local server playing Kameleoon."""

import base64
import json
from pathlib import Path

from tests.destinations.fake_server import FakeServer, Reply
from tests.support import cli

API_KEY = base64.b64encode(json.dumps({"id": "client-1", "secret": "s3cr3t"}).encode()).decode()


def declare(tmp_path: Path, url: str, sitecode: str = "1q2w3e4r5t") -> Path:
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
        "    delivery: {allow_private_addresses: true}\n"
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
