"""The experiments' data as JSON: what `trackway experiments ... --json` prints and the
admin API (`/api/v1/experiments`, `/api/v1/goals`) answers, built once for both."""

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from trackway.cli_options import parse_since
from trackway.experiments import spec as experiments
from trackway.storage.base import StateStore

if TYPE_CHECKING:  # scipy is slow to import: results are imported when computed
    from trackway.experiments.results import Results, Timeline


def parse_as_of(text: str) -> datetime:
    """`--as-of` / `?as_of=`: an ISO 8601 time with an offset, or a duration ago (`24h`);
    the ValueError says which it is not."""
    try:
        return datetime.fromtimestamp(parse_since(text) / 1000, UTC)
    except ValueError as exc:
        raise ValueError(str(exc).replace("--since: ", "")) from None


def listed(store: StateStore) -> list[dict[str, Any]]:
    """Every experiment's definition, by name."""
    return [msgspec.to_builtins(spec) for spec in experiments.experiments(store)]


def shown(store: StateStore, name: str) -> dict[str, Any]:
    """One experiment's definition; raises ExperimentNotFound."""
    data: dict[str, Any] = msgspec.to_builtins(experiments.find(store, name))
    return data


def results(
    store: StateStore, data_dir: Path, name: str, as_of: datetime | None = None
) -> "Results":
    """The experiment's results computed in its warehouse (`Results.to_json()` is the
    JSON); raises ExperimentNotFound, WarehouseUnavailable, QueryError."""
    from trackway.experiments.location import locate
    from trackway.experiments.results import compute

    spec = experiments.find(store, name)
    warehouse, schema = locate(spec, store, data_dir)
    try:
        return compute(spec, warehouse, schema, as_of)
    finally:
        warehouse.close()


def timeline(
    store: StateStore, data_dir: Path, name: str, as_of: datetime | None = None
) -> "Timeline":
    """Only the results over time (the `timeline` of `results`), without the statistics."""
    from trackway.experiments.location import locate
    from trackway.experiments.results import builder
    from trackway.experiments.results import timeline as over_time

    spec = experiments.find(store, name)
    warehouse, schema = locate(spec, store, data_dir)
    try:
        return over_time(warehouse, builder(spec, warehouse, schema, as_of), spec.goals)
    finally:
        warehouse.close()
