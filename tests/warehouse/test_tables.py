"""Segment's schema on both engines (real DuckDB, real PostgreSQL): tables, columns,
names, types, widening, rejected values, the column cap, idempotent loads."""

from collections import Counter
from typing import Any

from tests.warehouse.support import SCHEMA, body, columns, load, query, track
from trackway.warehouse import duckdb, postgres
from trackway.warehouse.base import Warehouse
from trackway.warehouse.schema import fixed_columns

COMMON = [
    "id",
    "anonymous_id",
    "user_id",
    "received_at",
    "sent_at",
    "timestamp",
    "original_timestamp",
    "uuid_ts",
]


def rejected(warehouse: Warehouse) -> list[dict[str, object]]:
    return query(
        warehouse,
        "SELECT table_name, column_name, id, raw_value, reason FROM _rejected_values"
        " ORDER BY table_name, column_name, id",
    )


def test_a_track_lands_in_tracks_and_in_its_own_table(warehouse: Warehouse) -> None:
    event = track(
        "Order Completed",
        {"orderId": "o-1", "revenue": 9.5, "coupon": {"code": "X1", "isNew": True}},
        messageId="m-1",
        anonymousId="anon-1",
        context={"library": {"name": "analytics-python"}, "ip": "10.0.0.1", "os": {}},
    )
    load(warehouse, [event])
    assert list(columns(warehouse, "tracks")) == [
        *COMMON,
        "event",
        "event_text",
        "context_library_name",
        "context_ip",
    ]
    assert list(columns(warehouse, "order_completed")) == [
        *COMMON,
        "event",
        "event_text",
        "context_library_name",
        "context_ip",
        "order_id",
        "revenue",
        "coupon_code",
        "coupon_is_new",
    ]
    (row,) = query(warehouse, "SELECT * FROM order_completed")
    assert row == {
        "id": "m-1",
        "anonymous_id": "anon-1",
        "user_id": "user-1",
        "received_at": "2026-11-22T10:00:00.300000Z",
        "sent_at": "2026-11-22T10:00:00.200000Z",
        "timestamp": "2026-11-22T10:00:00.123456Z",
        "original_timestamp": "2026-11-22T10:00:00.100000Z",
        "uuid_ts": "2026-11-22T10:00:05Z",
        "event": "order_completed",
        "event_text": "Order Completed",
        "context_library_name": "analytics-python",
        "context_ip": "10.0.0.1",
        "order_id": "o-1",
        "revenue": 9.5,
        "coupon_code": "X1",
        "coupon_is_new": True,
    }
    (row,) = query(warehouse, "SELECT id, event, event_text FROM tracks")
    assert row == {"id": "m-1", "event": "order_completed", "event_text": "Order Completed"}


def test_each_call_type_has_its_table_and_columns(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [
            body("identify", messageId="i-1", traits={"email": "a@example.com"}),
            body("page", messageId="p-1", name="Home", category="Docs", properties={"path": "/"}),
            body("screen", messageId="s-1", name="Main", properties={"launches": 3}),
            body("group", messageId="g-1", groupId="acme", traits={"employees": 40}),
            body("alias", messageId="a-1", previousId="anon-9"),
        ],
    )
    assert columns(warehouse, "identifies")["email"] == "varchar"
    assert query(warehouse, "SELECT name, category, path FROM pages") == [
        {"name": "Home", "category": "Docs", "path": "/"}
    ]
    assert query(warehouse, "SELECT name, launches FROM screens") == [
        {"name": "Main", "launches": 3}
    ]
    assert query(warehouse, "SELECT group_id, employees FROM groups") == [
        {"group_id": "acme", "employees": 40}
    ]
    assert query(warehouse, "SELECT previous_id, user_id FROM aliases") == [
        {"previous_id": "anon-9", "user_id": "user-1"}
    ]
    assert "context_library_name" in columns(warehouse, "aliases")


def test_users_has_one_row_per_user_with_the_latest_traits(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [
            body("identify", traits={"email": "old@example.com", "plan": "free"}),
            body("identify", userId="user-2", traits={"email": "two@example.com"}),
            body("identify", userId=None, anonymousId="anon-1", traits={"email": "x@y"}),
        ],
    )
    load(warehouse, [body("identify", traits={"plan": "pro", "seats": 5})])
    assert query(warehouse, "SELECT id, email, plan, seats FROM users ORDER BY id") == [
        {"id": "user-1", "email": "old@example.com", "plan": "pro", "seats": 5},
        {"id": "user-2", "email": "two@example.com", "plan": None, "seats": None},
    ]
    assert list(columns(warehouse, "users"))[:3] == ["id", "received_at", "uuid_ts"]
    assert len(query(warehouse, "SELECT id FROM identifies")) == 4


def test_names_arrays_keywords_and_event_tables_follow_the_rule(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [
            track("Pages", {"order": 1, "Plan Name": "pro", "tags": ["a", "b"], "HTTPCode": 200}),
            track("checkout-step.viewed", {"items": [{"sku": "s1"}], "empty": {}, "none": None}),
        ],
    )
    assert list(columns(warehouse, "pages_"))[-4:] == ["order_", "plan_name", "tags", "http_code"]
    (row,) = query(warehouse, "SELECT order_, tags FROM pages_")
    assert row == {"order_": 1, "tags": '["a","b"]'}
    (row,) = query(warehouse, "SELECT event, items FROM checkout_step_viewed")
    assert row == {"event": "checkout_step_viewed", "items": '[{"sku":"s1"}]'}
    assert "empty" not in columns(warehouse, "checkout_step_viewed")
    assert "none" not in columns(warehouse, "checkout_step_viewed")


def test_types_come_from_the_first_value(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [
            track(
                "Typed",
                {
                    "count": 3,
                    "price": 2.5,
                    "ok": False,
                    "name": "x",
                    "shippedAt": "2026-01-02T03:04:05+02:00",
                    "day": "2026-01-02",
                    "big": 2**70,
                },
            )
        ],
    )
    types = columns(warehouse, "typed")
    assert {k: types[k] for k in ("count", "price", "ok", "name", "shipped_at", "day", "big")} == {
        "count": "integer",
        "price": "float",
        "ok": "boolean",
        "name": "varchar",
        "shipped_at": "timestamp",
        "day": "varchar",  # a date without a time is text
        "big": "float",  # beyond 64 bits
    }
    (row,) = query(warehouse, "SELECT shipped_at FROM typed")
    assert row == {"shipped_at": "2026-01-02T01:04:05Z"}  # stored in UTC


def test_integers_widen_to_float_within_and_across_batches(warehouse: Warehouse) -> None:
    load(warehouse, [track("Paid", {"amount": 10, "qty": 1}, messageId="a")])
    load(
        warehouse,
        [
            track("Paid", {"amount": 12.5, "qty": 2}, messageId="b"),
            track("Paid", {"qty": 2.5, "fresh": 1}, messageId="c"),
            track("Paid", {"fresh": 1.5}, messageId="d"),
        ],
    )
    types = columns(warehouse, "paid")
    assert (types["amount"], types["qty"], types["fresh"]) == ("float", "float", "float")
    rows = query(warehouse, "SELECT id, amount, qty, fresh FROM paid ORDER BY id")
    assert rows == [
        {"id": "a", "amount": 10.0, "qty": 1.0, "fresh": None},
        {"id": "b", "amount": 12.5, "qty": 2.0, "fresh": None},
        {"id": "c", "amount": None, "qty": 2.5, "fresh": 1.0},
        {"id": "d", "amount": None, "qty": None, "fresh": 1.5},
    ]
    assert rejected(warehouse) == []


def test_values_that_do_not_fit_are_kept_in_rejected_values(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [track("Shipped", {"weight": 1, "etaAt": "2026-01-01T00:00:00Z", "ok": True, "note": "n"})],
    )
    plan = load(
        warehouse,
        [
            track(
                "Shipped",
                {"weight": "heavy", "etaAt": "soon", "ok": "yes", "note": 5},
                messageId="bad-1",
            ),
            track("Shipped", {"weight": True, "note": "text"}, messageId="bad-2"),
        ],
    )
    assert len(plan.rejected) == 4
    assert rejected(warehouse) == [
        {
            "table_name": "shipped",
            "column_name": "eta_at",
            "id": "bad-1",
            "raw_value": '"soon"',
            "reason": "type_mismatch",
        },
        {
            "table_name": "shipped",
            "column_name": "ok",
            "id": "bad-1",
            "raw_value": '"yes"',
            "reason": "type_mismatch",
        },
        {
            "table_name": "shipped",
            "column_name": "weight",
            "id": "bad-1",
            "raw_value": '"heavy"',
            "reason": "type_mismatch",
        },
        {
            "table_name": "shipped",
            "column_name": "weight",
            "id": "bad-2",
            "raw_value": "true",
            "reason": "type_mismatch",
        },
    ]
    # A varchar column takes any value as its JSON text; the row itself is kept.
    assert query(
        warehouse, "SELECT id, note, weight FROM shipped WHERE id LIKE 'bad%' ORDER BY id"
    ) == [
        {"id": "bad-1", "note": "5", "weight": None},
        {"id": "bad-2", "note": "text", "weight": None},
    ]


def test_properties_named_like_loader_columns_are_renamed(warehouse: Warehouse) -> None:
    owned = {"userId": "spoof", "event": "x", "context": {"ip": "1.1.1.1"}, "uuid_ts": 1}
    owned["timestamp"] = "2026-11-22T09:00:00+01:00"
    load(
        warehouse,
        [
            track("Clash", owned, messageId="c-1"),
            track("Clash", {"planName": "a", "plan_name": "b"}, messageId="c-2"),
            body("identify", traits={"id": "t-1", "userId": "spoof"}, messageId="c-3"),
        ],
    )
    reasons = {(r["column_name"], r["id"]): r["reason"] for r in rejected(warehouse)}
    assert reasons == {("plan_name", "c-2"): "duplicate_column"}
    assert query(
        warehouse,
        "SELECT id, user_id, event, properties_user_id, properties_event, properties_context_ip,"
        " properties_uuid_ts, properties_timestamp, plan_name FROM clash ORDER BY id",
    ) == [
        {
            "id": "c-1",
            "user_id": "user-1",
            "event": "clash",
            "properties_user_id": "spoof",
            "properties_event": "x",
            "properties_context_ip": "1.1.1.1",
            "properties_uuid_ts": 1,
            "properties_timestamp": "2026-11-22T08:00:00Z",
            "plan_name": None,
        },
        {
            "id": "c-2",
            "user_id": "user-1",
            "event": "clash",
            "properties_user_id": None,
            "properties_event": None,
            "properties_context_ip": None,
            "properties_uuid_ts": None,
            "properties_timestamp": None,
            "plan_name": "a",
        },
    ]
    # Traits: `identifies` owns every common column, `users` its id.
    assert query(warehouse, "SELECT id, traits_id, traits_user_id FROM identifies") == [
        {"id": "c-3", "traits_id": "t-1", "traits_user_id": "spoof"}
    ]
    assert query(warehouse, "SELECT id, traits_id, user_id FROM users") == [
        {"id": "user-1", "traits_id": "t-1", "user_id": "spoof"}
    ]


def test_the_column_cap_keeps_the_overflow_aside(warehouse: Warehouse) -> None:
    fixed = len(COMMON) + 4  # event, event_text, context_library_name and _version
    props = {f"p{i}": i for i in range(30)}
    plan = load(warehouse, [track("Wide", props, messageId="w-1")], max_columns=fixed + 10)
    assert len(columns(warehouse, "wide")) == fixed + 10
    overflow = [r for r in rejected(warehouse) if r["reason"] == "column_limit"]
    assert len(overflow) == 20 == len(plan.rejected)
    assert {r["column_name"] for r in overflow} == {f"p{i}" for i in range(10, 30)}


def test_evolving_properties_add_columns_across_batches(warehouse: Warehouse) -> None:
    for version in range(4):
        props = {f"v{n}": n for n in range(version + 1)}
        load(warehouse, [track("Evolving", props, messageId=f"e-{version}")])
    assert [c for c in columns(warehouse, "evolving") if c.startswith("v")] == [
        "v0",
        "v1",
        "v2",
        "v3",
    ]
    rows = query(warehouse, "SELECT id, v0, v3 FROM evolving ORDER BY id")
    assert rows[0] == {"id": "e-0", "v0": 0, "v3": None}
    assert rows[3] == {"id": "e-3", "v0": 0, "v3": 3}


def test_loading_a_batch_twice_leaves_one_row_per_id(warehouse: Warehouse) -> None:
    events = [
        track("Again", {"n": i, "bad": "x" if i else 1}, messageId=f"r-{i}") for i in range(50)
    ] + [body("identify", messageId="r-id", traits={"a": 1})]
    events.append(track("Again", {"n": 99}, messageId="r-7"))  # the same id twice in a batch
    load(warehouse, events)
    load(warehouse, events)
    for table in ("tracks", "again", "identifies", "users"):
        ids = [r["id"] for r in query(warehouse, f"SELECT id FROM {table}")]
        assert len(ids) == len(set(ids)), table
    assert len(query(warehouse, "SELECT id FROM again")) == 50
    assert query(warehouse, "SELECT n FROM again WHERE id = 'r-7'") == [{"n": 99}]
    counts = Counter(r["id"] for r in rejected(warehouse))
    assert len(counts) == 49 and set(counts.values()) == {1}


def test_a_row_larger_than_duckdbs_default_json_object_loads(warehouse: Warehouse) -> None:
    # DuckDB's read_json refuses an object beyond 16 MB (32 MB in an array) unless told;
    # 24 MB fits the load session's memory cap (events are at most 32 KB at ingest).
    blob = "x" * (24 * 1024 * 1024)
    load(warehouse, [track("Big", {"blob": blob}, messageId="big-1"), track("Big", {"n": 1})])
    rows = query(warehouse, "SELECT id, length(blob) AS size FROM big WHERE blob IS NOT NULL")
    assert rows == [{"id": "big-1", "size": len(blob)}]
    assert query(warehouse, "SELECT count(*) AS n FROM big") == [{"n": 2}]


VALUES = "SELECT id, value, variation_id FROM feature_flag_evaluated ORDER BY id"


def flag(key: str, value: Any, message_id: str, **extra: Any) -> dict[str, Any]:
    properties = {"feature_flag_key": key, "value": value, "variation_id": None, **extra}
    return track("Feature Flag Evaluated", properties, messageId=message_id)


def test_flag_values_of_every_type_load_as_text(warehouse: Warehouse) -> None:
    load(
        warehouse,
        [
            flag("on", True, "f-1"),
            flag("color", "green", "f-2"),
            flag("seats", 3, "f-3"),
            flag("ratio", 2.5, "f-4"),
            flag("when", "2026-11-22T10:00:00+01:00", "f-5"),  # text, not a timestamp
            flag("layout", {"columns": [1, 2], "dense": False}, "f-6"),
            flag("empty", {}, "f-7"),
            flag("list", ["a", 1], "f-8"),
        ],
    )
    kinds = columns(warehouse, "feature_flag_evaluated")
    assert (kinds["value"], kinds["variation_id"]) == ("varchar", "varchar")
    assert not any(c.startswith("value_") for c in kinds)  # objects are not flattened
    assert query(
        warehouse, "SELECT id, value, variation_id FROM feature_flag_evaluated ORDER BY id"
    ) == [
        {"id": "f-1", "value": "true", "variation_id": None},
        {"id": "f-2", "value": "green", "variation_id": None},
        {"id": "f-3", "value": "3", "variation_id": None},
        {"id": "f-4", "value": "2.5", "variation_id": None},
        {"id": "f-5", "value": "2026-11-22T10:00:00+01:00", "variation_id": None},
        {"id": "f-6", "value": '{"columns":[1,2],"dense":false}', "variation_id": None},
        {"id": "f-7", "value": "{}", "variation_id": None},
        {"id": "f-8", "value": '["a",1]', "variation_id": None},
    ]
    assert rejected(warehouse) == []


def test_a_flag_table_made_before_gets_its_declared_columns(warehouse: Warehouse) -> None:
    # As the loader made it before `value` was declared: typed by the first flag's value,
    # and no `variation_id` (only nulls came).
    made = {**fixed_columns("track"), "feature_flag_key": "varchar", "value": "boolean"}
    types = duckdb.SQL_TYPES if warehouse.engine == "duckdb" else postgres.SQL_TYPES
    ddl = ", ".join(f'"{c}" {types[t]}' for c, t in made.items())
    if warehouse.engine == "postgres":  # its tables have a primary key, DuckDB's not
        ddl += ', PRIMARY KEY ("id")'
    table = f"{SCHEMA}.feature_flag_evaluated"
    with warehouse.session() as session:
        conn: Any = session.conn  # type: ignore[attr-defined]
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        conn.execute(f"CREATE TABLE {table} ({ddl})")
        conn.execute(
            f"INSERT INTO {table} (id, feature_flag_key, value) VALUES ('old', 'on', true)"
        )
    load(warehouse, [flag("color", "green", "new")])
    kinds = columns(warehouse, "feature_flag_evaluated")
    assert (kinds["value"], kinds["variation_id"]) == ("varchar", "varchar")
    assert query(
        warehouse, "SELECT id, value, variation_id FROM feature_flag_evaluated ORDER BY id"
    ) == [
        {"id": "new", "value": "green", "variation_id": None},
        {"id": "old", "value": "true", "variation_id": None},
    ]
