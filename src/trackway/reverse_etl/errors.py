"""The failures of reverse ETL that are the user's to fix; each message says what and where."""

from trackway.storage.base import NotFound


class ReverseEtlError(ValueError):
    """A reverse-ETL failure with a message meant for the user."""


class ConfigError(ReverseEtlError):
    """A model or sync declaration is not valid (or names something that does not exist)."""


class NotDeclared(ConfigError, NotFound):
    """No model or sync has that name."""


class ModelError(ReverseEtlError):
    """A model's connection or query failed; the message holds the engine's error verbatim."""


class RunError(ReverseEtlError):
    """A run stopped before it finished (bad keys, an endpoint that refuses every event...)."""


class SyncBusy(ReverseEtlError):
    """Another run of the same sync holds its lock."""
