"""Where an experiment's events are: its warehouse (opened) and its source's schema."""

from pathlib import Path

from trackway.experiments.results import schema_of
from trackway.experiments.spec import ExperimentSpec
from trackway.storage.base import StateStore
from trackway.warehouse import config, engines
from trackway.warehouse.base import Warehouse


def locate(spec: ExperimentSpec, store: StateStore, data_dir: Path) -> tuple[Warehouse, str]:
    """The experiment's warehouse, opened (close it), and the schema of its source."""
    schema = schema_of(spec, engines.sources(store))
    return engines.open_warehouse(config.find(store, spec.warehouse), data_dir), schema
