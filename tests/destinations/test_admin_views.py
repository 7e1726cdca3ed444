"""The destination views of the admin API on both backends: health in the list, the
delivery series for a chart, alerts with their history, turning a destination on and
off (also with the CLI)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.admin.support import admin_client
from tests.destinations.fake_server import FakeServer, Reply
from tests.destinations.support import Workspace, track, webhook
from tests.support import until
from trackway.destinations.commands import destinations_group


@pytest.fixture(params=["sqlite", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    opened = Workspace(tmp_path, url)
    yield opened
    opened.close()


def test_health_series_and_alerts_follow_the_deliveries(workspace: Workspace) -> None:
    with (
        FakeServer() as sink,
        admin_client(workspace.settings, workspace.store, workspace.log) as api,
    ):
        workspace.apply(
            webhook(
                "hook",
                sink.url,
                alerts={"threshold": 0.9, "window": "1h", "min_attempts": 3},
            )
        )
        workspace.start()
        (row,) = api.get("destinations").json()
        assert (row["success_rate"], row["alerting"]) == (None, False)
        workspace.send(*[track() for _ in range(3)])
        assert until(lambda: api.get("destinations").json()[0]["success_rate"], 1.0) == 1.0

        series = api.get("destinations/hook/delivery/series", params={"window": "1h"}).json()
        assert series["bucket_s"] == 60 and len(series["points"]) == 60
        assert sum(p["delivered"] for p in series["points"]) == 3
        assert series["points"][-1]["delivered"] == 3 and series["points"][-1]["p95_ms"] > 0
        week = api.get("destinations/hook/delivery/series", params={"window": "7d"}).json()
        assert week["bucket_s"] == 168 * 60 and sum(p["delivered"] for p in week["points"]) == 3

        sink.answer = lambda _request: Reply(400, body=b"bad event")
        workspace.send(track())
        alerting = until(lambda: api.get("destinations").json()[0]["alerting"], True, 20)
        assert alerting is True
        assert api.get("destinations").json()[0]["success_rate"] == 0.75
        view = api.get("destinations/hook/alerts").json()
        assert view["alerting"] is True
        assert view["rules"] == {"threshold": 0.9, "window": "1h", "min_attempts": 3}
        (alert,) = view["history"]
        assert (alert["kind"], alert["rate"], alert["attempts"]) == ("alert", 0.75, 4)

        for path, status in [
            ("destinations/ghost/delivery/series", 404),
            ("destinations/ghost/alerts", 404),
            ("destinations/hook/delivery/series?window=soon", 400),
            ("destinations/hook/alerts?limit=0", 400),
        ]:
            answer = api.get(path)
            assert answer.status_code == status, path
            assert answer.json()["code"] in {"not_found", "invalid_parameter"}


def test_a_destination_is_turned_off_and_on(workspace: Workspace) -> None:
    with (
        FakeServer() as sink,
        admin_client(workspace.settings, workspace.store, workspace.log) as api,
    ):
        workspace.apply(webhook("hook", sink.url))
        workspace.start()
        off = api.put("destinations/hook/enabled", json={"enabled": False})
        assert off.status_code == 200
        assert off.json() == {
            "name": "hook",
            "enabled": False,
            "yaml": "destinations:\n  - name: hook\n    type: webhook\n    enabled: false\n"
            "    # ...its other fields as before\n",
        }
        assert api.get("destinations/hook").json()["enabled"] is False
        deliveries = workspace.deliveries
        assert deliveries is not None
        assert until(lambda: list(deliveries.running), []) == []
        kept = track()
        workspace.send(kept)
        on = api.put("destinations/hook/enabled", json={"enabled": True}).json()
        assert on["enabled"] is True
        # what arrived while it was off is delivered once it is on again
        assert until(lambda: len(sink.requests), 1) == 1
        assert kept["messageId"].encode() in sink.requests[0].body

        for body, status in [({"enabled": "no"}, 400), ({}, 400), ({"enabled": True, "x": 1}, 400)]:
            assert api.put("destinations/hook/enabled", json=body).status_code == status
        missing = api.put("destinations/ghost/enabled", json={"enabled": True})
        assert missing.status_code == 404 and "ghost" in missing.json()["message"]


def test_the_cli_turns_a_destination_off_and_says_which_yaml_keeps_it(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    if workspace.settings.database_url:
        monkeypatch.setenv("TRACKWAY_DATABASE_URL", workspace.settings.database_url)
    workspace.apply(webhook("hook", "http://127.0.0.1:9/"))
    data_dir = str(workspace.data_dir)
    out = CliRunner().invoke(destinations_group, ["disable", "hook", "--data-dir", data_dir])
    assert out.exit_code == 0, out.output
    assert "Destination 'hook' disabled." in out.output and "enabled: false" in out.output
    assert workspace.store.objects("destination")["hook"]["enabled"] is False
    out = CliRunner().invoke(destinations_group, ["enable", "hook", "--data-dir", data_dir])
    assert out.exit_code == 0 and "enabled: true" in out.output
    missing = CliRunner().invoke(destinations_group, ["enable", "ghost", "--data-dir", data_dir])
    assert missing.exit_code == 1 and "no destination named 'ghost'" in missing.output
