"""The experiments' admin API on both warehouse engines: each answer is what the CLI's
`--json` prints for the same workspace, and its errors are precise JSON."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from tests.admin.support import admin_client
from tests.destinations.support import Workspace
from tests.experiments.support import declared_warehouse, split_events
from tests.experiments.test_commands import run
from tests.warehouse.conftest import pg_url  # noqa: F401 (fixture)
from trackway.experiments import spec as experiments

START = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = "2026-11-10T00:00:00Z"
CHECKOUT = {
    "name": "checkout",
    "flag": "newCheckout",
    "start": "2026-11-01T00:00:00Z",
    "variations": [{"name": "control", "value": False}, {"name": "new", "value": True}],
    "goals": [{"event": "Order Completed"}],
    "warehouse": "wh",
}


@pytest.fixture(params=["duckdb", "postgres"])
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """The experiment `checkout` over 200 users, 20 % and 50 % ordering, in `wh`."""
    for found in declared_warehouse(request, tmp_path, split_events(START, 200)):
        spec = experiments.validate(msgspec.convert(CHECKOUT, experiments.ExperimentSpec))
        experiments.apply([spec], found.store)
        yield found


def _cli(workspace: Workspace, *args: str) -> object:
    return json.loads(run(workspace.data_dir, "experiments", *args, "--json").output)


def test_each_answer_is_the_cli_json(workspace: Workspace) -> None:
    with admin_client(workspace.settings, workspace.store, workspace.log) as api:
        listed = api.get("experiments")
        assert listed.status_code == 200
        assert listed.json() == _cli(workspace, "list")
        assert listed.json()[0]["name"] == "checkout"
        shown = api.get("experiments/checkout").json()
        assert shown == _cli(workspace, "show", "checkout")
        results = api.get("experiments/checkout/results", params={"as_of": AS_OF})
        assert results.status_code == 200
        assert results.json() == _cli(workspace, "results", "checkout", "--as-of", AS_OF)
        assert results.json()["units"] == {"control": 100, "new": 100}
        assert results.json()["metrics"][0]["sums"] == [20, 50]
        timeline = api.get("experiments/checkout/timeline", params={"as_of": AS_OF})
        assert timeline.status_code == 200
        assert timeline.json() == results.json()["timeline"]
        assert timeline.json()["bucket"] == "day"  # nine days from the start
        last = [p for p in timeline.json()["points"] if p["at"] == "2026-11-01T00:00:00Z"]
        assert [(p["variation"], p["units"], p["conversions"]) for p in last] == [
            ("control", 100, 20),
            ("new", 100, 50),
        ]
        goals = api.get("goals", params={"warehouse": "wh"}).json()
        assert goals == _cli(workspace, "goals", "--warehouse", "wh")
        assert [(g["name"], g["events"]) for g in goals] == [
            ("Feature Flag Evaluated", 200),
            ("Order Completed", 70),
        ]


def test_as_of_limits_the_results_on_both_surfaces(workspace: Workspace) -> None:
    early = "2026-11-01T00:09:00Z"  # users 0..9 exposed, their orders an hour later
    later = "2026-11-01T01:09:00Z"  # and the orders of users 0..9: 0 control, 1 5 9 new
    with admin_client(workspace.settings, workspace.store, workspace.log) as api:
        for as_of, units, sums in ((early, 10, [0, 0]), (later, 70, [1, 3])):
            answer = api.get("experiments/checkout/results", params={"as_of": as_of}).json()
            assert answer["as_of"] == as_of
            assert sum(answer["units"].values()) == units
            assert answer["metrics"][0]["sums"] == sums
            assert answer == _cli(workspace, "results", "checkout", "--as-of", as_of)
        # A duration is a time that long ago: 0s is now, after every exposure; 400 days
        # ago was before the experiment's start.
        for ago, units in (("0s", 200), ("400d", 0)):
            answer = api.get("experiments/checkout/results", params={"as_of": ago}).json()
            assert sum(answer["units"].values()) == units


def test_errors_are_precise_json(workspace: Workspace) -> None:
    with admin_client(workspace.settings, workspace.store, workspace.log) as api:
        for path in ("experiments/nope", "experiments/nope/results", "experiments/nope/timeline"):
            missing = api.get(path)
            assert missing.status_code == 404
            assert missing.json() == {
                "code": "not_found",
                "message": "no experiment named 'nope'",
            }
        bad = api.get("experiments/checkout/results", params={"as_of": "yesterday"})
        assert bad.status_code == 400
        assert bad.json()["code"] == "invalid_parameter"
        assert bad.json()["message"].startswith("as_of: not a time or a duration: 'yesterday'")
        naive = api.get("experiments/checkout/results", params={"as_of": "2026-11-02T00:00:00"})
        assert naive.status_code == 400
        assert "add a UTC offset or Z" in naive.json()["message"]
        unknown = api.get("experiments/checkout/results", params={"since": "1h"})
        assert unknown.status_code == 400
        assert "unknown query parameter(s): since" in unknown.json()["message"]
        assert api.get("goals", params={"warehouse": "nope"}).status_code == 404
        no_source = api.get("goals", params={"warehouse": "wh", "source": "nope"})
        assert no_source.status_code == 400
        assert no_source.json()["message"] == "no source named 'nope'"
        # The built-in warehouse has nothing loaded: no goal seen, but no results either.
        assert api.get("goals").json() == []
        workspace.store.put_object(
            experiments.KIND, "builtin", {**CHECKOUT, "name": "builtin", "warehouse": "default"}
        )
        unloaded = api.get("experiments/builtin/results")
        assert unloaded.status_code == 503
        assert unloaded.json()["code"] == "warehouse_unavailable"
        assert "nothing has been loaded" in unloaded.json()["message"]
        assert api.get("experiments", headers={"Authorization": "Bearer x"}).status_code == 401


def test_openapi_documents_every_route(workspace: Workspace) -> None:
    with admin_client(workspace.settings, workspace.store, workspace.log) as api:
        paths = api.get("openapi.json").json()["paths"]
    for computed in ("results", "timeline"):
        operation = paths[f"/api/v1/experiments/{{name}}/{computed}"]["get"]
        assert [p["name"] for p in operation["parameters"]] == ["name", "as_of"]
        assert {"200", "400", "401", "404", "503"} <= set(operation["responses"])
    assert {"/api/v1/experiments", "/api/v1/experiments/{name}", "/api/v1/goals"} <= set(paths)
