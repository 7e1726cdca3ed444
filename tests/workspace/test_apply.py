"""`trackway apply FILE.yaml`."""

import subprocess
from pathlib import Path

from tests.support import TRACKWAY, cli, start_server
from trackway import codec


def apply(tmp_path: Path, text: str, *extra: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "workspace.yaml"
    path.write_text(text)
    return subprocess.run(
        [*TRACKWAY, "apply", str(path), "--data-dir", str(tmp_path / "d"), *extra],
        capture_output=True,
        text=True,
    )


def test_apply_is_idempotent(tmp_path: Path) -> None:
    text = "sources:\n  - name: web\n  - name: backend\n    write_key: fixedkey0123456789\n"
    first = apply(tmp_path, text)
    assert first.returncode == 0, first.stderr
    assert "create source 'web'" in first.stdout and "create source 'backend'" in first.stdout
    second = apply(tmp_path, text)
    assert second.stdout.strip() == "Nothing to change."
    listed = codec.loads(cli("sources", "list", "--json", data_dir=tmp_path / "d"))
    assert [s["name"] for s in listed] == ["web", "backend"]
    assert listed[1]["write_key"] == "fixedkey0123456789"


def test_apply_changes_what_differs_and_dry_run_changes_nothing(tmp_path: Path) -> None:
    apply(tmp_path, "sources:\n  - name: web\n")
    text = "sources:\n  - name: web\n    enabled: false\n    write_key: newkey0123456789ab\n"
    dry = apply(tmp_path, text, "--dry-run")
    assert "would disable source 'web'" in dry.stdout
    assert codec.loads(cli("sources", "list", "--json", data_dir=tmp_path / "d"))[0]["enabled"]
    real = apply(tmp_path, text)
    assert real.returncode == 0, real.stderr
    [web] = codec.loads(cli("sources", "list", "--json", data_dir=tmp_path / "d"))
    assert web["enabled"] is False
    assert web["write_key"] == "newkey0123456789ab"
    assert len(web["previous_write_keys"]) == 1


def test_apply_reports_errors_precisely(tmp_path: Path) -> None:
    cases = {
        "sources: [1, 2": "not valid YAML",
        "sources:\n  - name: web\n    colour: red\n": "unknown field `colour`",
        "sources:\n  - {}\n": "missing required field `name`",
        "sources:\n  - name: a\n  - name: a\n": "declared twice",
        "sources:\n  - name: a\n    type: kafka\n": "unknown type 'kafka'",
        "pipelines: []\n": "unknown field `pipelines`",
        "version: 2\n": "unsupported version 2",
    }
    for text, message in cases.items():
        done = apply(tmp_path, text)
        assert done.returncode == 1, text
        assert message in done.stderr, (text, done.stderr)
    missing = subprocess.run(
        [*TRACKWAY, "apply", str(tmp_path / "nope.yaml"), "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_apply_configcat_sources(tmp_path: Path) -> None:
    text = (
        "sources:\n  - name: flags\n    type: configcat\n    signing_keys: [k1, k2]\n"
        "    product_name: Shop\n"
    )
    first = apply(tmp_path, text)
    assert first.returncode == 0, first.stderr
    assert apply(tmp_path, text).stdout.strip() == "Nothing to change."
    changed = apply(tmp_path, text.replace("[k1, k2]", "[k2, k3]"))
    assert "configure source 'flags'" in changed.stdout
    from trackway.integrations.configcat_webhook import load_settings
    from trackway.storage.sqlite.state import SQLiteStateStore

    store = SQLiteStateStore(tmp_path / "d" / "state.db")
    try:
        settings = load_settings(store, "flags")
    finally:
        store.close()
    assert settings.signing_keys == ["k2", "k3"] and settings.product_name == "Shop"
    wrong = apply(tmp_path, "sources:\n  - name: web\n    signing_keys: [k]\n")
    assert wrong.returncode == 1 and "for configcat sources" in wrong.stderr


FQL_CHANGES = """
destinations:
  - name: hook
    type: webhook
    settings:
      url: https://hooks.example/in
    subscriptions:
      - name: quoted
        action: send
        if: type = "track" and properties.value = "123"
      - name: ordered
        action: send
        if: properties.price < 10 or traits.vip = true
      - name: unchanged
        action: send
        if: properties.total < 10 and event = "Order Completed" and userId = 1
    filters:
      - name: no admins
        if: '!contains(context.page.url, "/admin")'
        actions: [{type: drop}]
      - if: properties.count != 3
        actions: [{type: drop}]
"""


def test_a_dry_run_warns_of_expressions_whose_meaning_changed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "d")
    try:
        with server.client() as http:
            for properties in ({"price": "5", "total": 3}, {"price": 7}):
                body = {"userId": "u", "event": "Order Completed", "properties": properties}
                sent = http.post("/v1/track", json=body, auth=(server.write_key, ""))
                assert sent.status_code == 200, sent.text
        dry = apply(tmp_path, FQL_CHANGES, "--dry-run")
    finally:
        server.stop()
    assert dry.returncode == 0, dry.stderr
    assert "would create destination 'hook'" in dry.stdout
    assert dry.stderr.splitlines() == [
        "warning: destination 'hook' subscription 'quoted': properties.value = \"123\""
        " compares with the text 123, no longer with the number",
        "warning: destination 'hook' subscription 'ordered': properties.price < 10 now"
        " matches only numbers, and properties.price has held text",
        "warning: destination 'hook' filter 'no admins': !contains(context.page.url,"
        ' "/admin") no longer matches when context.page.url is absent or not text',
        "warning: destination 'hook' filters[1]: properties.count != 3 no longer matches"
        " when properties.count is absent or not a number",
    ]
    assert "warning" not in apply(tmp_path, FQL_CHANGES).stderr  # only dry runs warn


HOOK = """
destinations:
  - name: hook
    type: webhook
    settings:
      url: {url}
      shared_secret: {secret}
"""


def test_dry_run_shows_the_fields_that_change_with_secrets_masked(tmp_path: Path) -> None:
    first = apply(tmp_path, HOOK.format(url="https://a.example/in", secret="first-secret"))
    assert first.returncode == 0, first.stderr
    changed = HOOK.format(url="https://b.example/in", secret="second-secret")
    dry = apply(tmp_path, changed, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would update destination 'hook' (webhook)",
        "  ~ destination 'hook': settings.shared_secret: changed (secret, ********)",
        "  ~ destination 'hook': settings.url: 'https://a.example/in' -> 'https://b.example/in'",
    ]
    assert "secret" not in dry.stdout.replace("shared_secret", "").replace("(secret,", "")
    again = apply(tmp_path, changed, "--dry-run")
    assert "settings.url: 'https://a.example/in'" in again.stdout  # nothing was changed
