"""Declaring destinations: validation at apply time, ${ENV} secrets, encryption at rest,
presets."""

from pathlib import Path
from typing import Any

import msgspec
import pytest

from trackway.destinations import config
from trackway.destinations.config import DestinationConfigError, DestinationSpec
from trackway.destinations.secrets import MASK, Secrets
from trackway.storage.sqlite.state import SQLiteStateStore


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStateStore:
    return SQLiteStateStore(tmp_path / "state.db")


def apply(
    store: SQLiteStateStore, tmp_path: Path, *specs: dict[str, Any], dry_run: bool = False
) -> list[str]:
    return config.apply(
        [msgspec.convert(s, DestinationSpec) for s in specs],
        store,
        Secrets.of(tmp_path),
        lambda: 42,
        dry_run,
        base_dir=tmp_path,
    )


KAMELEOON = {
    "name": "kameleoon",
    "type": "kameleoon",
    "settings": {"apiKey": "${TEST_KAMELEOON_KEY}", "sitecode": "abcdefghij"},
}


def test_secrets_come_from_the_environment_and_are_encrypted_at_rest(
    store: SQLiteStateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_KAMELEOON_KEY", "c2VjcmV0LWtleS12YWx1ZQ==")
    assert apply(store, tmp_path, KAMELEOON) == ["create destination 'kameleoon' (kameleoon)"]
    raw = (tmp_path / "state.db").read_bytes()
    assert b"c2VjcmV0LWtleS12YWx1ZQ==" not in raw
    spec = config.find(store, "kameleoon")
    assert config.shown_settings(spec) == {"apiKey": MASK, "sitecode": "abcdefghij"}
    assert config.plain_settings(spec, Secrets.of(tmp_path))["apiKey"] == "c2VjcmV0LWtleS12YWx1ZQ=="
    # applying the same file again changes nothing, although each encryption differs
    assert apply(store, tmp_path, KAMELEOON) == []
    monkeypatch.setenv("TEST_KAMELEOON_KEY", "b3RoZXI=")
    assert apply(store, tmp_path, KAMELEOON) == [
        "update destination 'kameleoon' (kameleoon)"
        "\n  ~ destination 'kameleoon': settings.apiKey: changed (secret, ********)"
    ]
    moved = {**KAMELEOON, "settings": {**KAMELEOON["settings"], "sitecode": "0123456789"}}
    lines = apply(store, tmp_path, {**moved, "sources": None, "delivery": {"batch_size": 9}})
    assert lines == [
        "update destination 'kameleoon' (kameleoon)"
        "\n  ~ destination 'kameleoon': delivery.batch_size: (default) -> 9"
        "\n  ~ destination 'kameleoon': settings.sitecode: 'abcdefghij' -> '0123456789'"
    ]
    assert "b3RoZXI=" not in lines[0]


def test_a_missing_environment_variable_is_an_error(
    store: SQLiteStateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_KAMELEOON_KEY", raising=False)
    with pytest.raises(
        DestinationConfigError,
        match=r"settings.apiKey: the environment variable TEST_KAMELEOON_KEY is not set",
    ):
        apply(store, tmp_path, KAMELEOON)


def test_a_new_destination_gets_its_presets_and_starts_at_the_end_of_the_log(
    store: SQLiteStateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_KAMELEOON_KEY", "a2V5")
    apply(store, tmp_path, KAMELEOON)
    spec = config.find(store, "kameleoon")
    assert spec.start_position == 42
    assert sorted((s.action, s.if_) for s in spec.subscriptions or []) == [
        ("group", 'type = "group"'),
        ("identify", 'type = "identify"'),
        ("logEvent", 'type = "track"'),
        ("page", 'type = "page"'),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "nope"}, "unknown destination type 'nope' (one of: kameleoon, segment, webhook)"),
        ({"settings": {"url": "http://x", "colour": "red"}}, "unknown setting 'colour'"),
        ({"settings": {"url": 5}}, "setting 'url' must be a string, got 5"),
        (
            {"subscriptions": [{"name": "a", "action": "post", "if": "all"}]},
            "webhook has no action 'post' (actions: send)",
        ),
        (
            {"subscriptions": [{"name": "a", "action": "send", "if": 'type = "track" and'}]},
            "subscriptions[0] ('a'): if: ",
        ),
        (
            {
                "subscriptions": [
                    {"name": "a", "action": "send", "if": "all", "mapping": {"data": {"@nope": 1}}}
                ]
            },
            "subscriptions[0] ('a'): mapping: data: ",
        ),
        (
            {
                "subscriptions": [
                    {"name": "a", "action": "send", "if": "all", "mapping": {"colour": 1}}
                ]
            },
            "action 'send' has no field 'colour'",
        ),
        ({"filters": [{"if": "all", "actions": [{"type": "sample", "percent": 5}]}]}, "filters: "),
        ({"function": "def transform(event):\n    return event\n"}, "function: "),
        ({"delivery": {"batch_size": 5000}}, "delivery.batch_size must be from 1 to 1000"),
        ({"delivery": {"timeout": "soon"}}, "delivery.timeout: not a duration"),
        ({"alerts": {"threshold": 95}}, "alerts.threshold is a fraction"),
        ({"sources": []}, "sources: name at least one source, or leave sources out"),
        ({"sources": ["web", "web"]}, "sources[1]: 'web' is named twice"),
        ({"sources": ["web"]}, "sources[0]: no source named 'web' (there are: none)"),
    ],
)
def test_invalid_declarations_are_refused_naming_the_field(
    store: SQLiteStateStore, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    spec = {"name": "hook", "type": "webhook", "settings": {"url": "https://example.com"}, **change}
    with pytest.raises(DestinationConfigError) as caught:
        apply(store, tmp_path, spec)
    assert str(caught.value).startswith("destination 'hook': ")
    assert message in str(caught.value)
    assert store.objects(config.KIND) == {}


def test_fql_errors_give_the_position(store: SQLiteStateStore, tmp_path: Path) -> None:
    spec = {
        "name": "hook",
        "type": "webhook",
        "subscriptions": [{"name": "a", "action": "send", "if": 'event = "x" and and'}],
    }
    with pytest.raises(DestinationConfigError) as caught:
        apply(store, tmp_path, spec)
    assert "^" in str(caught.value)  # the caret under the error's position


def test_function_file_is_read_and_stored(store: SQLiteStateStore, tmp_path: Path) -> None:
    (tmp_path / "fn.py").write_text("def transform(event, settings):\n    return event\n")
    apply(store, tmp_path, {"name": "hook", "type": "webhook", "function_file": "fn.py"})
    spec = config.find(store, "hook")
    assert spec.function is not None and "def transform" in spec.function
    assert spec.function_file is None


def test_dry_run_changes_nothing(store: SQLiteStateStore, tmp_path: Path) -> None:
    spec = {"name": "hook", "type": "webhook"}
    assert apply(store, tmp_path, spec, dry_run=True) == ["create destination 'hook' (webhook)"]
    assert store.objects(config.KIND) == {}


def test_the_secret_key_can_come_from_the_environment(
    store: SQLiteStateStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    monkeypatch.setenv("TRACKWAY_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("TEST_KAMELEOON_KEY", "a2V5")
    apply(store, tmp_path, KAMELEOON)
    assert not (tmp_path / "secret.key").exists()
    monkeypatch.setenv("TRACKWAY_SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(Exception, match="cannot be decrypted: it was stored with another key"):
        config.plain_settings(config.find(store, "kameleoon"), Secrets.of(tmp_path))
