"""Direct loading (DuckDB reading the events' JSON itself) against the planner: the same
events loaded both ways leave the same tables, columns, rows and rejected values."""

import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.warehouse.support import body, track, write_log
from trackway.storage.sqlite.log import SQLiteEventLog
from trackway.warehouse.direct import DirectPlanner
from trackway.warehouse.duckdb import DuckDBWarehouse
from trackway.warehouse.plan import Planner
from trackway.warehouse.planning import plan_backlog, prepare

LOADED_AT = "2026-11-23T05:00:00.123456Z"
SCHEMAS = {1: "default_", 2: "web"}

# Values each property may take: most keep one type (so that direct loading has work),
# some change type or form now and then (so that the planner has decisions to make).
_STEADY: dict[str, Any] = {
    "sku": lambda r: f"sku-{r.randrange(50)}",
    "price": lambda r: round(r.uniform(0, 99), 2),
    "qty": lambda r: r.randrange(1, 9),
    "inStock": lambda r: r.random() < 0.5,
    "shippedAt": lambda r: f"2026-11-{r.randrange(10, 28)}T10:{r.randrange(60):02d}:00Z",
    "item": lambda r: {"kind": f"k{r.randrange(4)}", "size": r.randrange(40)},
    "emptyObject": lambda r: {},
    "notSet": lambda r: None,
    "it's.ünïcødé": lambda r: "u",
}
_RARE: list[tuple[str, Any]] = [
    ("qty", lambda r: 2.5),  # widens the integer column
    ("qty", lambda r: 2**70),  # beyond 64 bits
    ("price", lambda r: 7),  # an integer into a float column
    ("sku", lambda r: 12),  # a number into a varchar column
    ("sku", lambda r: ["a", 1]),  # an array
    ("inStock", lambda r: "yes"),  # does not fit a boolean
    ("shippedAt", lambda r: "2026-11-22T10:00:00+02:00"),  # a timestamp, not in UTC form
    ("shippedAt", lambda r: "2026-02-30T10:00:00Z"),  # not a date
    ("shippedAt", lambda r: "soon"),
    ("product_id", lambda r: "p"),  # names the same column as productId
    ("productId", lambda r: "P"),
    ("productID", lambda r: "P"),  # both, in one event (below)
    ("id", lambda r: "owned"),  # names the loader owns: renamed (properties_id)
    ("context_x", lambda r: "owned"),
    ("event", lambda r: "owned"),
    ("timestamp", lambda r: "2026-11-22T10:00:00Z"),
    ("deep", lambda r: {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}),
    ("notSet", lambda r: "now set"),
    ('Key With "Quotes"', lambda r: "odd"),
]
# Keys that keep a steady key out of direct loading from then on: only late in the log.
_LASTING: list[tuple[str, Any]] = [
    ("item", lambda r: "flat"),  # an object elsewhere
    ("skU", lambda r: "s"),  # differs from `sku` only by case
]
_CONTEXTS: list[Any] = [
    lambda r: {"library": {"name": "analytics-python", "version": "2.3.4"}, "ip": "10.0.0.1"},
    lambda r: {"library": {"name": "analytics.js"}, "page": {"path": f"/p/{r.randrange(9)}"}},
    lambda r: {"ip": "10.0.0.2", "referrer": None, "locale": "de-DE"},
    lambda r: {"ip": 7},  # a number where strings came before
]


def _events(seed: int, count: int) -> list[tuple[int, dict[str, Any]]]:
    """(source id, stored event) pairs: track events of a few names with evolving
    properties, some identifies and pages, an id sent twice."""
    r = random.Random(seed)
    out: list[tuple[int, dict[str, Any]]] = []
    names = ["Order Completed", "Product Viewed", 'It\'s "quoted"', "Signed Up"]
    for i in range(count):
        source = 1 if r.random() < 0.8 else 2
        if r.random() < 0.05:
            kind = r.choice(["identify", "page"])
            payload = {"traits" if kind == "identify" else "properties": {"plan": "pro"}}
            out.append((source, body(kind, **payload)))
            continue
        props = {k: make(r) for k, make in _STEADY.items() if r.random() < 0.7}
        rare = r.random()
        if rare < 0.02 or (i > count * 0.8 and rare < 0.04):
            key, make = r.choice(_RARE if rare < 0.02 else _LASTING)
            props[key] = make(r)
            if key == "productID":
                props["product_id"] = "p"
            if key == "skU":
                props["sku"] = "s"
        context = r.choice(_CONTEXTS[:3] if r.random() < 0.99 else _CONTEXTS)(r)
        message_id = f"m-{seed}-{i}"
        out.append((source, track(r.choice(names), props, context=context, messageId=message_id)))
        if r.random() < 0.01:  # the same id again, later in the log
            out.append((source, track(names[0], {"sku": "again"}, messageId=message_id)))
    return out


def _load(
    log_path: Path, warehouse: Path, batch: int, direct_on: bool, min_events: int = 1000
) -> str:
    """Load the whole log as a backlog (`plan_backlog`); returns which way each plan went
    (D: direct loading, P: the planner), with the number of events of each."""
    log = SQLiteEventLog(log_path)
    end = log.last_seqs()["accepted"]
    ways = []
    with DuckDBWarehouse(warehouse).session() as session, tempfile.TemporaryDirectory() as spool:
        planner = Planner(session.catalog(), 1000)
        direct = DirectPlanner(log, planner, spool, min_events) if direct_on else None
        schemas = dict(SCHEMAS)
        for plan in plan_backlog(log, planner, direct, 0, end, batch, schemas, dict):
            way = "D" if any(t.select for t in plan.tables) else "P"
            ways.append(f"{way}{plan.events}")
            session.load(prepare("duckdb", plan, spool))
        if direct is not None:
            direct.close()
    log.close()
    return " ".join(ways)


def _contents(path: Path) -> dict[str, Any]:
    """Every table's columns (with types) and rows, but the load times."""
    conn = duckdb.connect(str(path), read_only=True)
    try:
        out: dict[str, Any] = {}
        tables = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE table_name <> "
            "'_trackway_loads' ORDER BY ALL"
        ).fetchall()
        for schema, table in tables:
            columns = conn.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE schema_name = ?"
                " AND table_name = ? ORDER BY column_index",
                [schema, table],
            ).fetchall()
            names = ", ".join(f'"{c}"' for c, _ in columns if c not in ("uuid_ts", "loaded_at"))
            rows = conn.execute(f'SELECT {names} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
            out[f"{schema}.{table}"] = (columns, rows)
        return out
    finally:
        conn.close()


def _write(tmp_path: Path, events: list[tuple[int, dict[str, Any]]]) -> Path:
    path = tmp_path / "log.db"
    for source, event in events:  # one chunk per event, in log order
        write_log(path, [event], source_id=source)
    return path


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_direct_loading_leaves_what_the_planner_leaves(tmp_path: Path, seed: int) -> None:
    events = _events(seed, 700)
    log = tmp_path / "log.db"
    for start in range(0, len(events), 25):  # chunks of 25 events, split by source
        part = events[start : start + 25]
        for source in (1, 2):
            bodies = [e for s, e in part if s == source]
            if bodies:
                write_log(log, bodies, source_id=source, per_request=len(bodies))
    planned = _load(log, tmp_path / "planned.duckdb", 20, direct_on=False)
    both = _load(log, tmp_path / "direct.duckdb", 20, direct_on=True)
    assert "D" not in planned
    assert both.count("D") >= 10, both  # else this test would compare little
    expected, got = _contents(tmp_path / "planned.duckdb"), _contents(tmp_path / "direct.duckdb")
    assert got.keys() == expected.keys()
    for table in expected:
        assert got[table] == expected[table], table


def test_a_micro_batch_with_anything_new_goes_to_the_planner(tmp_path: Path) -> None:
    steady = [track("Viewed", {"sku": "a", "n": i}, messageId=f"s-{i}") for i in range(20)]
    new_key = track("Viewed", {"sku": "a", "n": 1, "color": "red"}, messageId="new-key")
    new_type = track("Viewed", {"sku": "a", "n": 1.5}, messageId="new-type")
    misfit = track("Viewed", {"sku": "a", "n": "x"}, messageId="misfit")
    other = body("identify", traits={"plan": "pro"}, messageId="identify")
    bodies = steady[:10] + steady[10:15] + [new_key] + steady[15:] + [new_type, misfit, other]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=5)
    ways = _load(log, tmp_path / "w.duckdb", 5, direct_on=True)
    # 1: planned (and learned from), 2-3: direct, 4: a new key, 5: a float in an integer
    # column, a value that does not fit, an identify
    assert ways == "P5 D5 D5 P5 P4"
    rows = _contents(tmp_path / "w.duckdb")
    assert len(rows["default_.viewed"][1]) == 23
    rejected = rows["main._rejected_values"][1]
    assert [(r[1], r[2], r[3], r[4]) for r in rejected] == [("viewed", "n", "misfit", '"x"')]


def test_direct_loading_is_idempotent(tmp_path: Path) -> None:
    bodies = [track("Viewed", {"sku": str(uuid.uuid4())}, messageId=f"i-{i}") for i in range(30)]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=10)
    assert _load(log, tmp_path / "w.duckdb", 10, direct_on=True) == "P10 D10 D10"
    assert _load(log, tmp_path / "w.duckdb", 10, direct_on=True) == "P10 D10 D10"
    rows = _contents(tmp_path / "w.duckdb")
    assert len(rows["default_.tracks"][1]) == 30
    assert len(rows["default_.viewed"][1]) == 30


@pytest.mark.parametrize(
    ("steady", "odd", "ways"),
    [
        # Keys DuckDB cannot tell apart (struct fields ignore case): both stay planned.
        ({"sku": "a"}, {"skU": "b"}, "P5 P5 P5 P5"),
        # Two keys naming one column: the planner keeps the first, rejects the second.
        ({"productId": "a"}, {"product_id": "b", "productId": "c"}, "P5 P5 P5 P5"),
        # A key seen as a value and as an object.
        ({"item": {"kind": "k"}}, {"item": "flat"}, "P5 P5 P5 P5"),
        # A key only ever null, then with a value: a column from then on.
        ({"n": None, "sku": "a"}, {"n": 5}, "P5 P5 D5 D5"),
        # Keys msgspec cannot name: only their events are planned.
        ({"sku": "a"}, {'say "hi"': 1}, "P5 P5 D5 P5"),
    ],
)
def test_keys_direct_loading_cannot_take_stay_with_the_planner(
    tmp_path: Path, steady: dict[str, Any], odd: dict[str, Any], ways: str
) -> None:
    def batch(name: str, odd_first: bool) -> list[dict[str, Any]]:
        first = [{**steady, **odd}] if odd_first else [steady]
        props = first + [steady] * 4
        return [track("Viewed", p, messageId=f"{name}-{i}") for i, p in enumerate(props)]

    bodies = batch("a", False) + batch("b", True) + batch("c", False) + batch("d", True)
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=5)
    assert _load(log, tmp_path / "direct.duckdb", 5, direct_on=True) == ways
    _load(log, tmp_path / "planned.duckdb", 5, direct_on=False)
    assert _contents(tmp_path / "direct.duckdb") == _contents(tmp_path / "planned.duckdb")


def test_properties_named_like_loader_columns_load_directly_renamed(tmp_path: Path) -> None:
    owned = {"timestamp": "2026-11-22T09:00:00Z", "userId": "ada", "id": "x", "context_ip": "y"}
    bodies = [track("Viewed", {"sku": "a", **owned}, messageId=f"v-{i}") for i in range(15)]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=5)
    assert _load(log, tmp_path / "direct.duckdb", 5, direct_on=True) == "P5 D5 D5"
    _load(log, tmp_path / "planned.duckdb", 5, direct_on=False)
    direct = _contents(tmp_path / "direct.duckdb")
    assert direct == _contents(tmp_path / "planned.duckdb")
    columns = dict(direct["default_.viewed"][0])
    renamed = ["properties_timestamp", "properties_user_id", "properties_id"]
    assert [*renamed, "properties_context_ip"] == [c for c in columns if c.startswith("prop")]
    assert columns["properties_timestamp"] == "TIMESTAMP"
    assert direct["main._rejected_values"][1] == []


def test_flag_values_load_directly_as_they_are_planned(tmp_path: Path) -> None:
    def evaluated(i: int, value: Any) -> dict[str, Any]:
        properties = {"feature_flag_key": "f", "value": value, "variation_id": None}
        return track("Feature Flag Evaluated", properties, messageId=f"f-{i}")

    bodies = [evaluated(i, f"v{i % 3}") for i in range(15)]
    bodies += [evaluated(15, True), evaluated(16, {"a": 1}), evaluated(17, {}), evaluated(18, 2)]
    bodies += [evaluated(i, "green") for i in range(19, 25)]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=5)
    # Text values go directly; the others (stored as JSON text) through the planner, and
    # the last ones directly again.
    assert _load(log, tmp_path / "direct.duckdb", 5, direct_on=True, min_events=3) == (
        "P3 D5 D5 P3 P5 D4"
    )
    _load(log, tmp_path / "planned.duckdb", 5, direct_on=False)
    direct = _contents(tmp_path / "direct.duckdb")
    assert direct == _contents(tmp_path / "planned.duckdb")
    columns = direct["default_.feature_flag_evaluated"][0]
    assert [c for c, _type in columns if c.startswith(("value", "variation"))] == [
        "value",
        "variation_id",
    ]


def test_direct_loading_stops_before_an_event_it_cannot_take(tmp_path: Path) -> None:
    def viewed(i: int, **extra: Any) -> dict[str, Any]:
        return track("Viewed", {"sku": "a", **extra}, messageId=f"v-{i}")

    bodies = [viewed(i) for i in range(14)] + [viewed(14, color="red")]
    bodies += [viewed(i) for i in range(15, 40)]
    bodies += [viewed(i, **{f"k{i}": 1}) for i in range(40, 48)]  # a new key each
    bodies += [viewed(i) for i in range(48, 60)]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=7)
    ways = _load(log, tmp_path / "direct.duckdb", 10, direct_on=True, min_events=3)
    # The planner takes 3 events first, and learns their keys; then one event goes
    # directly before the new key: fewer than 3, left to the planner with the key. Four
    # go directly before the new keys, which the planner takes in parts that grow (3, 6)
    # while direct loading still cannot take the next event.
    assert ways == "P3 D10 P3 D10 D10 D4 P3 P6 D10 D1", ways
    _load(log, tmp_path / "planned.duckdb", 10, direct_on=False)
    assert _contents(tmp_path / "direct.duckdb") == _contents(tmp_path / "planned.duckdb")


def test_two_event_names_of_one_table_load_directly(tmp_path: Path) -> None:
    bodies = [
        track(
            "Order Completed" if i % 2 else "order_completed",
            {"total": i * 1.5, "items": i},
            messageId=f"o-{i}",
        )
        for i in range(30)
    ]
    log = tmp_path / "log.db"
    write_log(log, bodies, per_request=10)
    assert _load(log, tmp_path / "direct.duckdb", 10, direct_on=True) == "P10 D10 D10"
    _load(log, tmp_path / "planned.duckdb", 10, direct_on=False)
    direct = _contents(tmp_path / "direct.duckdb")
    assert direct == _contents(tmp_path / "planned.duckdb")
    assert len(direct["default_.order_completed"][1]) == 30
