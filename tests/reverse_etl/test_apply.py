"""`models:` and `syncs:` in a workspace file: checked against the real database, then stored."""

from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from tests.reverse_etl.conftest import Env, model, track
from tests.reverse_etl.engines import Engine
from trackway.reverse_etl import config
from trackway.reverse_etl.apply import apply_reverse_etl
from trackway.reverse_etl.commands import models as models_group
from trackway.reverse_etl.commands import syncs as syncs_group
from trackway.reverse_etl.config import (
    Connection,
    EventNames,
    ModelSpec,
    Schedule,
    SyncSpec,
    Target,
)
from trackway.reverse_etl.errors import ConfigError, ReverseEtlError


def test_apply_creates_updates_and_is_idempotent(env: Env, duck: Engine) -> None:
    env.users(duck, (1, "free", ""))
    users = model(duck, "users")
    sync = track("plans", "users")
    assert apply_reverse_etl([users], [sync], env.store, True, data_dir=env.data_dir) == [
        "create model 'users'",
        "create sync 'plans'",
    ]
    assert config.models(env.store) == {}  # a dry run changes nothing
    assert env.apply([users], [sync]) == ["create model 'users'", "create sync 'plans'"]
    assert env.apply([users], [sync]) == []
    assert config.get_sync(env.store, "plans") == sync
    renamed = msgspec.structs.replace(sync, mapping={"plan": "tier"})
    assert env.apply([users], [renamed]) == [
        "update sync 'plans' (what it sends changed: its next run counts every row as changed)"
        "\n  ~ sync 'plans': mapping.plan: 'plan' -> 'tier'"
    ]
    scheduled = msgspec.structs.replace(renamed, schedule=Schedule(interval="1h"))
    assert env.apply([], [scheduled]) == [
        "update sync 'plans'\n  ~ sync 'plans': schedule: (default) -> {\"interval\":\"1h\"}"
    ]


def test_a_mapping_naming_a_missing_column_fails_at_apply(env: Env, engine: Engine) -> None:
    env.users(engine, (1, "free", ""))
    sync = track("plans", "users", mapping={"plan": "plan", "colour": "colour"}, timestamp="when")
    with pytest.raises(ConfigError) as caught:
        env.apply([model(engine, "users")], [sync])
    assert str(caught.value) == (
        "sync 'plans': model 'users' has no column 'colour', 'when'"
        " (its columns: id, uid, anon, plan, note, seen)"
    )
    with pytest.raises(ConfigError, match="the primary key 'key' is not a column"):
        env.apply([model(engine, "users", pk="key")], [])
    assert config.models(env.store) == {}


def spec(sync: SyncSpec, **changes: Any) -> SyncSpec:
    return msgspec.structs.replace(sync, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": "no spaces"}, "invalid sync name 'no spaces'"),
        ({"model": "ghost"}, "sync 's': no model named 'ghost'"),
        ({"user_id": None}, "name a `user_id` or `anonymous_id` column"),
        ({"events": EventNames()}, "a track sync needs `events`"),
        ({"events": EventNames(added="")}, "event names cannot be empty"),
        ({"events": EventNames(entered="In")}, "`events` entered do(es) not apply to track"),
        ({"type": "identify"}, "`events` added, changed, removed do(es) not apply to identify"),
        ({"schedule": Schedule()}, "a schedule has either `interval` or `cron`"),
        ({"schedule": Schedule(interval="0s")}, "the interval must be positive"),
        ({"schedule": Schedule(cron="61 * * * *")}, "the minute field '61' is outside 0-59"),
        ({"target": Target("segment")}, "a segment target takes a `write_key`"),
        ({"target": Target(write_key="k")}, "the own target takes a `source` name"),
        ({"target": Target(data_plane="ftp://x")}, "`data_plane` must be an http(s) origin"),
    ],
)
def test_sync_declarations_are_checked(
    env: Env, duck: Engine, changes: dict[str, Any], message: str
) -> None:
    env.users(duck)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        env.apply([model(duck, "users")], [spec(track("s", "users"), **changes)])


def test_model_declarations_are_checked(env: Env, duck: Engine) -> None:
    users = model(duck, "users")
    cases = {
        "model 'users' is declared twice": [users, users],
        "a postgres connection takes a `url`": [
            msgspec.structs.replace(users, connection=Connection("postgres", path="x"))
        ],
        "a sqlite connection takes a `path`": [
            msgspec.structs.replace(users, connection=Connection("sqlite"))
        ],
        "the query is empty": [msgspec.structs.replace(users, query=" ")],
        "no database file at": [
            msgspec.structs.replace(users, connection=Connection("sqlite", path="/nope.db"))
        ],
    }
    for message, models in cases.items():
        with pytest.raises(ReverseEtlError, match=message):
            env.apply(models, [])


def test_paths_resolve_against_the_file_and_duckdb_defaults_to_the_warehouse(
    env: Env, duck: Engine, tmp_path: Path
) -> None:
    env.users(duck, (1, "free", ""))
    relative = ModelSpec("rel", Connection("duckdb", path="source.duckdb"), "SELECT 1 AS id", "id")
    apply_reverse_etl([relative], [], env.store, data_dir=env.data_dir, base_dir=tmp_path)
    assert config.get_model(env.store, "rel").connection.path == str(tmp_path / "source.duckdb")
    own = ModelSpec("own", Connection("duckdb"), "SELECT 1 AS id", "id")
    with pytest.raises(ReverseEtlError, match=f"no database file at {env.data_dir}/warehouse"):
        env.apply([own], [])


def test_workspace_yaml_converts_to_the_structs() -> None:
    data = {
        "models": [
            {
                "name": "m",
                "connection": {"type": "sqlite", "path": "a.db"},
                "query": "SELECT 1",
                "primary_key": "id",
            }
        ],
        "syncs": [{"name": "s", "model": "m", "type": "track", "colour": "red"}],
    }
    assert msgspec.convert(data["models"], list[ModelSpec])[0].connection.path == "a.db"
    with pytest.raises(msgspec.ValidationError, match="Object contains unknown field `colour`"):
        msgspec.convert(data["syncs"], list[SyncSpec])


DOCS = Path(__file__).parent.parent.parent / "docs" / "reverse-etl.md"


def test_the_documented_workspace_file_is_valid() -> None:
    text = DOCS.read_text()
    data = yaml.safe_load(text.split("```yaml\n", 1)[1].split("```", 1)[0])
    for declared in msgspec.convert(data["models"], list[ModelSpec]):
        config.check_model(declared)
    syncs = msgspec.convert(data["syncs"], list[SyncSpec])
    for declared in syncs:
        config.check_sync(declared)
    assert [s.type for s in syncs] == ["track", "segment", "identify"]


def test_every_command_and_option_is_documented() -> None:
    text = DOCS.read_text()
    for group in (models_group, syncs_group):
        for name, command in group.commands.items():
            assert f"`{group.name} {name}" in text, name
            for param in command.params:
                for opt in param.opts:
                    if opt.startswith("--"):
                        assert opt in text, f"{group.name} {name} {opt}"
