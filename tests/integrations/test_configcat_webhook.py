"""ConfigCat's signed change webhooks against a real `trackway serve`."""

import base64
import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import Server, cli, start_server, until
from trackway import codec

KEY_OLD = "old-signing-key-0123456789"
KEY_NEW = "new-signing-key-9876543210"

BODY_TEMPLATE = (Path(__file__).parents[2] / "docs" / "configcat-webhook-body.json").read_text()


def body(**values: str) -> bytes:
    """The documented template, filled the way ConfigCat fills its ## variables."""
    defaults = {
        "ConfigName": "Main Config",
        "ConfigId": "cfg-1",
        "EnvironmentName": "Production",
        "EnvironmentId": "env-1",
        "URL": "https://app.configcat.com/cfg-1",
        "ChangeNotes": "Roll out checkout",
        "ChangedBy": "Ada Lovelace (ada@example.com)",
        "ChangeDetails": codec.dumps_text(
            [
                {
                    "settingKey": "newCheckout",
                    "event": "changed",
                    "details": "\r\nnewCheckout: false ➔ true",
                },
                {"settingKey": "banner", "event": "changed", "details": "\r\nbanner: a ➔ b"},
            ]
        ),
    }
    text = BODY_TEMPLATE
    for name, value in {**defaults, **values}.items():
        text = text.replace(f"##{name}##", value)
    return text.encode()


def signed(
    payload: bytes, *keys: str, webhook_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    webhook_id = webhook_id or str(uuid.uuid4())
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    message = webhook_id.encode() + stamp.encode() + payload
    sigs = [
        base64.b64encode(hmac.new(k.encode(), message, hashlib.sha256).digest()).decode()
        for k in keys
    ]
    return {
        "X-ConfigCat-Webhook-ID": webhook_id,
        "X-ConfigCat-Webhook-Timestamp": stamp,
        "X-ConfigCat-Webhook-Signature-V1": ",".join(sigs),
        "Content-Type": "application/json",
    }


@pytest.fixture(scope="module")
def flags(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = start_server(tmp_path_factory.mktemp("cc") / "data")
    created = codec.loads(
        cli(
            "sources",
            "create",
            "flags",
            "--type",
            "configcat",
            "--signing-key",
            KEY_OLD,
            "--signing-key",
            KEY_NEW,
            "--product-id",
            "prod-1",
            "--product-name",
            "Shop",
            "--json",
            data_dir=srv.data_dir,
        )
    )
    url = f"{srv.url}/v1/webhooks/configcat/{created['write_key']}"
    with httpx.Client() as c:  # the server picks up the new source within a second
        until(lambda: c.post(url).status_code != 401, True)
    try:
        yield srv, url
    finally:
        srv.stop()


def flag_events(server: Server) -> list[dict[str, Any]]:
    return [e for e in server.events() if e.get("event") == "Feature Flag Changed"]


def records(server: Server) -> list[dict[str, Any]]:
    return server.records(source="flags", limit=1000)


def test_signed_call_becomes_a_feature_flag_changed_event(flags: Any) -> None:
    server, url = flags
    payload = body()
    headers = signed(payload, KEY_NEW)
    r = httpx.post(url, content=payload, headers=headers)
    assert r.status_code == 200, r.text
    [event] = [
        e
        for e in flag_events(server)
        if e["properties"]["environment_id"] == "env-1"
        and e["properties"]["change_notes"] == "Roll out checkout"
    ]
    p = event["properties"]
    assert event["type"] == "track"
    assert event["userId"] == "ada@example.com"
    assert p["user_email"] == "ada@example.com" and p["user_full_name"] == "Ada Lovelace"
    assert p["userId"] == "ada@example.com"
    assert p["product_id"] == "prod-1" and p["product_name"] == "Shop"
    assert (p["config_id"], p["config_name"]) == ("cfg-1", "Main Config")
    assert (p["environment_id"], p["environment_name"]) == ("env-1", "Production")
    assert p["url"] == "https://app.configcat.com/cfg-1"
    assert p["details"] == "newCheckout: false ➔ true; banner: a ➔ b"
    assert p["changes"] == [
        {"setting_key": "newCheckout", "event": "changed", "details": "newCheckout: false ➔ true"},
        {"setting_key": "banner", "event": "changed", "details": "banner: a ➔ b"},
    ]
    assert p["timestamp"] == event["originalTimestamp"]
    assert event["context"]["integration"] == {"name": "configcat-webhook"}


def test_rotation_either_key_and_several_signatures(flags: Any) -> None:
    _, url = flags
    for keys in ((KEY_OLD,), (KEY_NEW,), ("retired-key", KEY_OLD), (KEY_OLD, KEY_NEW)):
        payload = body(EnvironmentId=f"rot-{uuid.uuid4()}")
        r = httpx.post(url, content=payload, headers=signed(payload, *keys))
        assert r.status_code == 200, (keys, r.text)


def test_retries_and_replays_within_the_window_make_one_event(flags: Any) -> None:
    server, url = flags
    env = f"retry-{uuid.uuid4()}"
    payload = body(EnvironmentId=env)
    webhook_id = str(uuid.uuid4())
    for attempt in range(6):  # the first delivery and ConfigCat's 5 retries
        headers = signed(
            payload, KEY_OLD, webhook_id=webhook_id, timestamp=int(time.time()) - attempt
        )
        assert httpx.post(url, content=payload, headers=headers).status_code == 200
    assert len([e for e in flag_events(server) if e["properties"]["environment_id"] == env]) == 1
    dups = [
        r
        for r in records(server)
        if r["status"] == "duplicate" and r["properties"]["environment_id"] == env
    ]
    assert len(dups) == 5


@pytest.mark.parametrize(
    ("make_headers", "status", "code"),
    [
        (lambda p: {"Content-Type": "application/json"}, 401, "missing_signature"),
        (lambda p: signed(p, "wrong-key"), 401, "invalid_signature"),
        (
            lambda p: {**signed(p, KEY_OLD), "X-ConfigCat-Webhook-Signature-V1": "bm9wZQ=="},
            401,
            "invalid_signature",
        ),
        (lambda p: signed(p, KEY_OLD, timestamp=int(time.time()) - 301), 401, "stale_timestamp"),
        (lambda p: signed(p, KEY_OLD, timestamp=int(time.time()) + 600), 401, "stale_timestamp"),
        (
            lambda p: {**signed(p, KEY_OLD), "X-ConfigCat-Webhook-Timestamp": "soon"},
            400,
            "invalid_timestamp",
        ),
    ],
)
def test_unsigned_badly_signed_and_stale_calls_are_refused_and_kept(
    flags: Any, make_headers: Any, status: int, code: str
) -> None:
    server, url = flags
    env = f"bad-{uuid.uuid4()}"
    payload = body(EnvironmentId=env)
    r = httpx.post(url, content=payload, headers=make_headers(payload))
    assert r.status_code == status
    assert r.json()["code"] == code
    assert not [e for e in flag_events(server) if e["properties"]["environment_id"] == env]
    kept = [x for x in records(server) if x["status"] == "rejected" and env in str(x["payload"])]
    assert kept and kept[0]["error"]["code"] == code


def test_a_signed_call_with_a_tampered_body_is_refused(flags: Any) -> None:
    _, url = flags
    headers = signed(body(), KEY_OLD)
    r = httpx.post(url, content=body(ConfigName="Tampered"), headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "invalid_signature"


def test_malformed_body_is_400_and_kept(flags: Any) -> None:
    server, url = flags
    payload = b'{"configId": "cfg", "changeDetails": "not a list"}'
    r = httpx.post(url, content=payload, headers=signed(payload, KEY_OLD))
    assert r.status_code == 400 and r.json()["code"] == "invalid_body"
    assert "changeDetails" in r.json()["message"]
    assert any(
        x["status"] == "rejected" and x["error"]["code"] == "invalid_body" for x in records(server)
    )
    broken = b'{"changeNotes": "a "quoted" note"}'  # unescaped quotes from a template
    r = httpx.post(url, content=broken, headers=signed(broken, KEY_OLD))
    assert r.status_code == 400


def test_webhook_path_needs_a_configcat_source(flags: Any) -> None:
    server, url = flags
    base = url.rsplit("/", 1)[0]
    payload = body()
    r = httpx.post(f"{base}/{server.write_key}", content=payload, headers=signed(payload, KEY_OLD))
    assert r.status_code == 404 and r.json()["code"] == "wrong_source_type"
    r = httpx.post(f"{base}/unknown-key", content=payload, headers=signed(payload, KEY_OLD))
    assert r.status_code == 401 and r.json()["code"] == "invalid_write_key"


def test_a_source_without_signing_keys_refuses_everything(server: Server) -> None:
    created = codec.loads(
        cli("sources", "create", "cc", "--type", "configcat", "--json", data_dir=server.data_dir)
    )
    url = f"{server.url}/v1/webhooks/configcat/{created['write_key']}"
    payload = body()
    got = until(
        lambda: httpx.post(url, content=payload, headers=signed(payload, KEY_OLD)).json()["code"],
        "no_signing_key",
    )
    assert got == "no_signing_key"
    cli("sources", "configure", "cc", "--signing-key", KEY_OLD, data_dir=server.data_dir)
    assert (
        until(
            lambda: httpx.post(url, content=payload, headers=signed(payload, KEY_OLD)).status_code,
            200,
        )
        == 200
    )


def test_configcat_options_are_refused_for_other_sources(tmp_path: Path) -> None:
    import subprocess

    from tests.support import TRACKWAY

    done = subprocess.run(
        [*TRACKWAY, "sources", "create", "web", "--signing-key", "k", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "for configcat sources" in done.stderr
