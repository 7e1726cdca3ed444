"""The identifier rule (docs/warehouse.md): one rule for schemas, tables and columns."""

from collections.abc import Callable
from typing import Any

import duckdb
import psycopg
import pytest

from tests.warehouse.conftest import PG_ADMIN_URL
from trackway.warehouse import naming


@pytest.mark.parametrize(
    ("name", "column"),
    [
        ("userId", "user_id"),
        ("HTTPStatus", "http_status"),
        ("orderID", "order_id"),
        ("Order Completed", "order_completed"),
        ("product-sku.v2", "product_sku_v2"),
        ("__private__", "private"),
        ("café crème", "cafe_creme"),
        ("3d view", "_3d_view"),
        ("order", "order_"),
        ("select", "select_"),
        ("user", "user_"),
        ("timestamp", "timestamp"),  # not reserved in either engine
    ],
)
def test_keys_become_plain_identifiers(name: str, column: str) -> None:
    assert naming.identifier(name) == column


def test_names_with_nothing_usable_get_a_stable_hash() -> None:
    first = naming.identifier("名前")
    assert first.startswith("_") and len(first) == 9
    assert naming.identifier("名前") == first
    assert naming.identifier("価格") != first
    assert naming.identifier("!!!").startswith("_")


def test_long_names_are_cut_to_63_with_a_hash_of_the_whole() -> None:
    one = naming.identifier("a" * 80 + "one")
    two = naming.identifier("a" * 80 + "two")
    assert len(one) == len(two) == 63
    assert one != two
    assert one[:54] == "a" * 54


def test_nested_keys_join_with_underscores() -> None:
    assert naming.join("context", "userAgent") == "context_user_agent"
    assert naming.join(naming.identifier("order"), "id") == "order_id"
    assert naming.join("", "Plan Name") == "plan_name"


def test_event_tables_never_take_segments_table_names() -> None:
    assert naming.event_table("Order Completed") == "order_completed"
    assert naming.event_table("Pages") == "pages_"
    assert naming.event_table("identifies") == "identifies_"
    assert naming.event_table("Select") == "select_"


def test_source_schemas_avoid_system_schemas_and_each_other() -> None:
    schemas = naming.source_schemas(
        [(1, "default"), (2, "my-app"), (3, "my_app"), (4, "pg_stats"), (5, "public")]
    )
    assert schemas == {1: "default_", 2: "my_app", 3: "my_app_3", 4: "pg_stats_", 5: "public_"}


def _means_the_column(run: Callable[[str], Any], word: str) -> bool:
    """Whether `word`, unquoted, reads the column of that name (not an error, not
    something else such as `user` → the current user)."""
    try:
        return bool(run(f'SELECT {word} FROM (SELECT 42 AS "{word}") AS t') == 42)
    except (duckdb.Error, psycopg.Error):
        return False


def test_keywords_are_exactly_what_cannot_be_used_unquoted_in_either_engine() -> None:
    duck = duckdb.connect()
    pg = psycopg.connect(PG_ADMIN_URL, autocommit=True)
    engines: list[Callable[[str], Any]] = [
        lambda q: (duck.execute(q).fetchone() or [None])[0],
        lambda q: (pg.execute(q).fetchone() or [None])[0],
    ]
    try:
        for word in sorted(naming.KEYWORDS):
            assert not all(_means_the_column(run, word) for run in engines), word
            safe = naming.identifier(word)
            assert all(_means_the_column(run, safe) for run in engines), safe
        for word in ("timestamp", "event", "name", "id", "text", "date", "value", "key"):
            assert all(_means_the_column(run, word) for run in engines), word
            assert naming.identifier(word) == word
    finally:
        duck.close()
        pg.close()
