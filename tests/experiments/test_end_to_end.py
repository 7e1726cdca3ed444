"""End to end: an A/B test run the way an application runs it, analysed by Trackway.

The real configcat-client assigns simulated users to variations from a local config
(`LocalFileFlagOverrides`, no network) and Trackway's evaluation hook
(`trackway_flags.configcat_hook`) reports every evaluation; the users' goal events go
out through the real Segment SDK (analytics-python) to a real `trackway serve` on
127.0.0.1, whose loaders fill the built-in DuckDB warehouse and a PostgreSQL one. The
experiments are declared with `trackway apply` and analysed with `trackway experiments
results`, on each warehouse.

The users and their conversions come from a seeded RNG with a known true uplift;
`newCheckout` splits 50/50 as its experiment expects, `banner` splits 45/55 against an
expected 50/50 (an injected sample ratio mismatch), and one user is exposed to both
variations of `newCheckout`.
"""

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from configcatclient import ConfigCatClient, ConfigCatOptions, PollingMode
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.user import User
from trackway_flags.configcat_hook import track_flag_evaluations

from tests.support import Server, start_server, until
from tests.trackway_flags.test_configcat_hook import segment_client
from tests.warehouse.conftest import new_pg_database
from trackway import codec
from trackway.cli import main

USERS = 2000
SEED = 20261208
RATES = {False: 0.20, True: 0.30}
"""The true conversion rate of each `newCheckout` value."""
TRUE_UPLIFT = RATES[True] / RATES[False] - 1
WAREHOUSES = ["duckdb", "postgres"]

# A ConfigCat config_v6: newCheckout is on for Country HU, off for DE, else 50/50 by
# Identifier; banner serves "old" to 45 % of users and "new" to 55 %.
CONFIG: dict[str, Any] = {
    "p": {"u": "https://cdn-global.configcat.com", "r": 0, "s": "trackway-e2e-salt"},
    "f": {
        "newCheckout": {
            "t": 0,
            "r": [
                {
                    "c": [{"u": {"a": "Country", "c": 0, "l": ["HU"]}}],
                    "s": {"v": {"b": True}, "i": "vc-hu"},
                },
                {
                    "c": [{"u": {"a": "Country", "c": 0, "l": ["DE"]}}],
                    "s": {"v": {"b": False}, "i": "vc-de"},
                },
            ],
            "p": [
                {"p": 50, "v": {"b": True}, "i": "vc-on"},
                {"p": 50, "v": {"b": False}, "i": "vc-off"},
            ],
            "v": {"b": False},
            "i": "vc-default",
        },
        "banner": {
            "t": 1,
            "p": [
                {"p": 45, "v": {"s": "old"}, "i": "vb-old"},
                {"p": 55, "v": {"s": "new"}, "i": "vb-new"},
            ],
            "v": {"s": "old"},
            "i": "vb-default",
        },
    },
}

EXPERIMENTS = """\
  - name: checkout-{engine}
    flag: newCheckout
    warehouse: {warehouse}
    engine: frequentist
    variations:
      - {{name: control, value: false}}
      - {{name: new, value: true}}
    goals:
      - event: Order Completed
      - {{event: Order Completed, type: count, name: orders}}
  - name: banner-{engine}
    flag: banner
    warehouse: {warehouse}
    variations:
      - {{name: old, value: old}}
      - {{name: new, value: new}}
    goals:
      - event: Order Completed
"""


@dataclass
class Truth:
    """What the simulation did: per variation, units, converted units and orders."""

    units: dict[str, int]
    converted: dict[str, int]
    orders: dict[str, int]
    banner_units: dict[str, int]
    server: Server


def run(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def configcat_client(config: Path) -> ConfigCatClient:
    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(config), OverrideBehaviour.LocalOnly),
        polling_mode=PollingMode.manual_poll(),
    )
    # ConfigCatClient.get keeps one client per SDK key: a fresh key per client.
    return ConfigCatClient.get(f"trackway-e2e-{uuid.uuid4()}", options)


def workspace(pg_url: str) -> str:
    """Both warehouses (the built-in one loading every half second) and the experiments
    on each."""
    text = (
        "version: 1\nsources:\n  - name: default\nwarehouses:\n"
        "  - {name: default, type: duckdb, interval_s: 0.5}\n"
        f"  - {{name: pg, type: postgres, url: '{pg_url}', interval_s: 0.5}}\n"
        "experiments:\n"
    )
    for engine, warehouse in zip(WAREHOUSES, ["default", "pg"], strict=True):
        text += EXPERIMENTS.format(engine=engine, warehouse=warehouse)
    return text


def simulate(server: Server, config: Path) -> Truth:
    """Evaluate both flags for every user, then send the converted users' orders."""
    rng = random.Random(SEED)
    units = {"control": 0, "new": 0}
    converted = {"control": 0, "new": 0}
    orders = {"control": 0, "new": 0}
    banner_units = {"old": 0, "new": 0}
    checkout, banner = configcat_client(config), configcat_client(config)
    try:
        with segment_client(server) as analytics:
            # Both spellings of the exposure event: one hook per client.
            track_flag_evaluations(checkout, analytics, spelling="segment_track")
            track_flag_evaluations(banner, analytics, spelling="source_page")
            arms: dict[str, bool] = {}
            for i in range(USERS):
                user = User(f"user-{i:05d}")
                arms[user.get_identifier()] = checkout.get_value("newCheckout", False, user)
                banner_units[banner.get_value("banner", "", user)] += 1
            # A user whose country changed between two evaluations saw both variations.
            assert checkout.get_value("newCheckout", False, User("mover", country="HU"))
            assert not checkout.get_value("newCheckout", False, User("mover", country="DE"))
            analytics.flush()
            # Goals come after every exposure, so each is inside its unit's window.
            for user_id, on in arms.items():
                arm = "new" if on else "control"
                units[arm] += 1
                if rng.random() < RATES[on]:
                    converted[arm] += 1
                    for _ in range(rng.randint(1, 3)):
                        orders[arm] += 1
                        revenue = {"revenue": round(rng.uniform(10, 90), 2)}
                        analytics.track(
                            user_id=user_id, event="Order Completed", properties=revenue
                        )
            analytics.track(user_id="mover", event="Order Completed", properties={"revenue": 1})
    finally:
        checkout.close()
        banner.close()
    return Truth(units, converted, orders, banner_units, server)


def loaded(server: Server) -> bool:
    """Whether every warehouse has loaded everything the log holds."""
    statuses = codec.loads(run(server.data_dir, "warehouse", "status", "--json"))
    return all(s.get("available") and s["lag_events"] == 0 for s in statuses)


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Truth]:
    """One simulated experiment, loaded into both warehouses."""
    tmp = tmp_path_factory.mktemp("experiment-e2e")
    (tmp / "config_v6.json").write_text(json.dumps(CONFIG))
    server = start_server(tmp / "data")
    try:
        with new_pg_database() as pg_url:
            (tmp / "workspace.yaml").write_text(workspace(pg_url))
            run(server.data_dir, "apply", str(tmp / "workspace.yaml"))
            simulated = simulate(server, tmp / "config_v6.json")
            assert until(lambda: loaded(server), True, seconds=120) is True
            yield simulated
    finally:
        server.stop()


def results(truth: Truth, name: str) -> dict[str, Any]:
    found: dict[str, Any] = codec.loads(
        run(truth.server.data_dir, "experiments", "results", name, "--json")
    )
    return found


@pytest.mark.parametrize("engine", WAREHOUSES)
def test_the_results_find_the_true_uplift(truth: Truth, engine: str) -> None:
    found = results(truth, f"checkout-{engine}")
    assert found["units"] == truth.units
    assert found["multiple_exposures"] == 1  # the mover, and its order, are left out
    assert not found["srm"]["flagged"]
    conversion, orders = found["metrics"]
    assert conversion["sums"] == [truth.converted["control"], truth.converted["new"]]
    assert orders["sums"] == [truth.orders["control"], truth.orders["new"]]
    control, new = conversion["variations"]
    assert control["mean"] == pytest.approx(truth.converted["control"] / truth.units["control"])
    low, high = new["ci"]
    assert low < TRUE_UPLIFT < high  # the 95 % interval covers the truth ...
    assert low > 0 and new["p_value"] < 0.001  # ... and tells it from no effect


@pytest.mark.parametrize("engine", WAREHOUSES)
def test_a_45_55_split_raises_srm(truth: Truth, engine: str) -> None:
    found = results(truth, f"banner-{engine}")
    assert found["units"] == truth.banner_units
    assert found["expected_split"] == {"old": 0.5, "new": 0.5}
    assert found["srm"]["flagged"] and found["srm"]["p_value"] < 0.001
    assert found["multiple_exposures"] == 0
    text = run(truth.server.data_dir, "experiments", "results", f"banner-{engine}")
    assert "WARNING: sample ratio mismatch" in text
