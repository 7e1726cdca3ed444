"""Trackway's own integration events, sent to a real `trackway serve` and loaded by its
loaders into both warehouses (the built-in DuckDB and PostgreSQL), queried with
`trackway sql`: ConfigCat's Feature Flag Changed webhook and Feature Flag Evaluated
events of flags of every type."""

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from segment.analytics import Client
from trackway_flags.flag_events import Evaluation, FlagEventSender

from tests.integrations.test_configcat_webhook import body, signed
from tests.support import Server, cli, start_server, until
from trackway import codec

KEY = "signing-key-0123456789"
WAREHOUSES = ("default", "analytics")  # DuckDB, PostgreSQL


@pytest.fixture
def server(tmp_path: Path, pg_url: str) -> Iterator[Server]:
    """A server loading both warehouses every 0.2 s, with a ConfigCat source `flags`."""
    srv = start_server(tmp_path / "data")
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "sources:\n"
        "  - name: flags\n"
        "    type: configcat\n"
        f"    signing_keys: [{KEY}]\n"
        "warehouses:\n"
        "  - name: default\n"
        "    interval_s: 0.2\n"
        "  - name: analytics\n"
        "    type: postgres\n"
        f"    url: {pg_url}\n"
        "    interval_s: 0.2\n"
    )
    try:
        cli("apply", str(workspace), data_dir=srv.data_dir)
        yield srv
    finally:
        srv.stop()


DOCS = Path(__file__).parents[2] / "docs"


def documented_sql(doc: str) -> list[str]:
    """The `trackway sql` commands of a page of the docs, as shell words without
    `trackway`."""
    lines = (DOCS / doc).read_text().splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("trackway sql ")]


def sql(server: Server, warehouse: str, query: str) -> list[dict[str, Any]] | None:
    """The rows as `trackway sql --format json` prints them; None while the query fails
    (its table is not loaded yet)."""
    out = cli(
        "sql",
        query,
        "--format",
        "json",
        "--warehouse",
        warehouse,
        data_dir=server.data_dir,
        check=False,
    )
    rows: list[dict[str, Any]] | None = codec.loads(out) if out else None
    return rows


def test_configcat_change_webhooks_load_every_property_into_columns(server: Server) -> None:
    sources = codec.loads(cli("sources", "list", "--json", data_dir=server.data_dir))
    [flags] = [s for s in sources if s["name"] == "flags"]
    url = f"{server.url}/v1/webhooks/configcat/{flags['write_key']}"
    payload = body()

    def send() -> int:
        return httpx.post(url, content=payload, headers=signed(payload, KEY)).status_code

    assert until(send, 200) == 200  # the server picks up the new source within a second
    [event] = [e for e in server.events() if e.get("event") == "Feature Flag Changed"]
    query = (
        "SELECT user_id, timestamp, properties_user_id, properties_timestamp, user_email,"
        " details, config_name, changes FROM flags.feature_flag_changed"
    )
    expected = [
        {
            "user_id": "ada@example.com",
            "timestamp": event["timestamp"],
            "properties_user_id": "ada@example.com",
            "properties_timestamp": event["properties"]["timestamp"],
            "user_email": "ada@example.com",
            "details": "newCheckout: false ➔ true; banner: a ➔ b",
            "config_name": "Main Config",
            "changes": codec.dumps_text(event["properties"]["changes"]),
        }
    ]
    for warehouse in WAREHOUSES:
        assert until(lambda w=warehouse: sql(server, w, query), expected) == expected, warehouse
        rejected = sql(server, warehouse, "SELECT column_name, reason FROM _rejected_values")
        assert rejected == [], warehouse
    [command] = documented_sql("configcat-webhook.md")
    assert "ada@example.com" in cli(*command, data_dir=server.data_dir)


def test_flag_evaluations_of_every_type_load_their_values_as_text(server: Server) -> None:
    analytics = Client(server.write_key, host=server.url, max_retries=2, upload_interval=0.05)
    integration = {"name": "configcat", "version": "1.0.0"}
    segment_track = FlagEventSender(analytics, integration=integration)
    source_page = FlagEventSender(analytics, integration=integration, spelling="source_page")
    long_text = "x" * 101
    try:
        segment_track.send(Evaluation("isOn", True, user_id="ada"))
        segment_track.send(Evaluation("isOff", False))
        segment_track.send(Evaluation("color", "green", user_id="ada"))
        segment_track.send(Evaluation("seats", 3))
        segment_track.send(Evaluation("ratio", 2.5))
        segment_track.send(Evaluation("banner", long_text))
        segment_track.send(Evaluation("layout", {"columns": 2}))
        source_page.send(Evaluation("limit", 7, user_id="bob"))  # featureFlagEvaluated
        analytics.flush()
    finally:
        analytics.shutdown()
    assert segment_track.stats.errors == source_page.stats.errors == 0
    banner = next(
        e["properties"]["value"]
        for e in server.events()
        if e.get("properties", {}).get("feature_flag_key") == "banner"
    )
    assert banner.startswith("sha256:")
    query = (
        "SELECT feature_flag_key AS flag, value, variation_id, properties_user_id"
        " FROM feature_flag_evaluated ORDER BY flag"
    )
    expected = [
        {"flag": "banner", "value": banner},
        {"flag": "color", "value": "green"},
        {"flag": "isOff", "value": "false"},
        {"flag": "isOn", "value": "true"},
        {"flag": "layout", "value": '{"columns":2}'},
        {"flag": "limit", "value": "7", "properties_user_id": "bob"},
        {"flag": "ratio", "value": "2.5"},
        {"flag": "seats", "value": "3"},
    ]
    expected = [{"variation_id": None, "properties_user_id": None, **row} for row in expected]
    for warehouse in WAREHOUSES:
        assert until(lambda w=warehouse: sql(server, w, query), expected) == expected, warehouse
        rejected = sql(server, warehouse, "SELECT column_name, reason FROM _rejected_values")
        assert rejected == [], warehouse
    [command] = documented_sql("flag-events.md")
    assert "green" in cli(*command, data_dir=server.data_dir)
