"""`trackway apply` with experiments, and `trackway experiments list|show|results|goals`
on a real data directory (its DuckDB warehouse filled by the real loader's planner)."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from tests.warehouse.support import body, load, track
from trackway.cli import main
from trackway.warehouse.duckdb import DuckDBWarehouse

WORKSPACE = """\
version: 1
sources:
  - name: default
experiments:
  - name: checkout
    flag: newCheckout
    unit: kameleoonVisitorCode
    start: 2026-11-01T00:00:00Z
    variations:
      - {name: control, value: false}
      - {name: new, value: true, weight: 1}
    goals:
      - event: Order Completed
      - {event: Order Completed, type: sum, property: revenue, name: revenue}
    guardrails:
      - {event: Checkout, event_type: page, type: count}
"""


def run(data_dir: Path, *args: str, ok: bool = True) -> Result:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)])
    assert (result.exit_code == 0) == ok, result.output
    return result


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "workspace.yaml"
    path.write_text(text)
    return path


def test_apply_stores_experiments_and_lists_them(tmp_path: Path) -> None:
    data = tmp_path / "data"
    file = _write(tmp_path, WORKSPACE)
    dry = run(data, "apply", str(file), "--dry-run").output
    assert "would create experiment 'checkout' (flag newCheckout)" in dry
    assert "create experiment 'checkout'" in run(data, "apply", str(file)).output
    assert run(data, "apply", str(file)).output.strip() == "Nothing to change."
    assert (
        "checkout  flag newCheckout  [control, new]  2 goal(s)"
        in run(data, "experiments", "list").output
    )
    shown = run(data, "experiments", "show", "checkout").output
    assert "unit kameleoonVisitorCode" in shown
    assert "variation new: value true, 50%" in shown
    assert "guardrail Checkout: count of page 'Checkout', within 72h" in shown
    as_json = json.loads(run(data, "experiments", "show", "checkout", "--json").output)
    assert as_json["goals"][1] == {
        "event": "Order Completed",
        "type": "sum",
        "name": "revenue",
        "property": "revenue",
    }
    changed = _write(tmp_path, WORKSPACE.replace("weight: 1}", "weight: 3}"))
    assert (
        "~ experiment 'checkout': variations[1].weight: 1.0 -> 3.0"
        in run(data, "apply", str(changed), "--dry-run").output
    )
    pruned = _write(tmp_path, WORKSPACE.split("experiments:")[0])
    assert (
        "deleted experiment 'checkout'"
        in run(data, "apply", str(pruned), "--prune", "--yes").output
    )
    assert run(data, "experiments", "list").output.strip() == "No experiments."
    missing = run(data, "experiments", "show", "checkout", ok=False)
    assert "no experiment named 'checkout'" in missing.output


def test_bad_experiments_are_refused_with_their_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cases = {
        "weight: 1}": ("weight: 0}", "experiments[0]: variations[1].weight: must be more than 0"),
        "type: sum, property: revenue,": (
            "type: sum,",
            "experiments[0]: goals[1].property: a sum metric needs a numeric property",
        ),
        "start: 2026-11-01T00:00:00Z": (
            "start: 2026-11-01T00:00:00",
            "experiments[0]: start: add a UTC offset or Z",
        ),
        "- {event: Checkout,": (
            "- {window: 0h, event: Checkout,",
            "experiments[0]: guardrails[0].window: must be longer than 0 s",
        ),
    }
    for old, (new, message) in cases.items():
        file = _write(tmp_path, WORKSPACE.replace(old, new))
        result = run(data, "apply", str(file), ok=False)
        assert message in result.output, result.output
    assert not (data / "warehouse.duckdb").exists()


def test_results_and_goals_from_the_warehouse(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(data, "apply", str(_write(tmp_path, WORKSPACE)))
    assert (
        "nothing has been loaded"
        in run(data, "experiments", "results", "checkout", ok=False).output
    )
    start = datetime(2026, 11, 1, tzinfo=UTC)
    events = []
    for i in range(200):
        at = start + timedelta(minutes=i)
        visitor = {"kameleoonVisitorCode": f"k{i}"}
        props = {"feature_flag_key": "newCheckout", "value": i % 2 == 1, **visitor}
        events.append(track("Feature Flag Evaluated", props, timestamp=at.isoformat()))
        if i % 4 == 1 or i % 10 == 0:
            later = (at + timedelta(hours=1)).isoformat()
            order = {"revenue": 10.0, **visitor}
            events.append(track("Order Completed", order, timestamp=later))
        events.append(body("page", name="Checkout", properties=visitor, timestamp=at.isoformat()))
    warehouse = DuckDBWarehouse(data / "warehouse.duckdb")
    load(warehouse, events)
    warehouse.close()
    as_of = "2026-11-10T00:00:00Z"
    table = run(data, "experiments", "results", "checkout", "--as-of", as_of).output
    assert "Experiment 'checkout' as of 2026-11-10T00:00:00Z: 200 units" in table
    assert "goal 'Order Completed' (conversion)" in table
    assert "new        100    50           50.00%" in table
    assert "control    100    20           20.00%" in table
    assert "sample ratio mismatch" not in table
    results = json.loads(
        run(data, "experiments", "results", "checkout", "--as-of", as_of, "--json").output
    )
    assert results["units"] == {"control": 100, "new": 100}
    assert results["metrics"][1]["sums"] == [200.0, 500.0]
    assert results["metrics"][0]["variations"][1]["chance_to_win"] > 0.99
    goals = json.loads(run(data, "experiments", "goals", "--json").output)
    assert [(g["type"], g["name"], g["events"]) for g in goals] == [
        ("page", "Checkout", 200),
        ("track", "Feature Flag Evaluated", 200),
        ("track", "Order Completed", 70),
    ]
    assert goals[0]["first_seen"] == "2026-11-01T00:00:00Z"
    bad = run(data, "experiments", "results", "checkout", "--as-of", "yesterday", ok=False)
    assert "not a time or a duration" in bad.output


def test_scipy_is_not_imported_at_cli_start() -> None:
    import subprocess
    import sys

    code = "import sys, trackway.cli; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
