"""What a destination is: typed settings, actions with typed fields, and presets.

A destination package (`trackway.destinations.<name>`) exposes one `DEFINITION`. Its
actions do not talk to the network themselves: `perform` (and `perform_batch`) turn a
validated payload into a `Request`, which the delivery code sends, times, retries and
records. That keeps the event tester's dry run, the error samples and the retry rules
the same for every destination.
"""

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trackway.destinations.transport import Request

SettingValues = Mapping[str, Any]
"""A destination's settings as its actions see them: plain values, secrets decrypted."""


class SettingType(enum.StrEnum):
    """The type of a setting; `secret` values are encrypted at rest and never shown."""

    STRING = "string"
    SECRET = "secret"
    NUMBER = "number"
    BOOLEAN = "boolean"


class FieldType(enum.StrEnum):
    """The type of an action's field, checked on the payload before `perform`."""

    STRING = "string"
    TEXT = "text"
    NUMBER = "number"
    INTEGER = "integer"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    OBJECT = "object"


class Discard(Exception):
    """The event cannot be delivered and retrying would not help (not retried).

    Raised for payloads that fail validation, invalid settings and events the
    destination does not support.
    """


class InvalidSettings(Discard):
    """The destination's settings are not usable (bad type, missing, rejected)."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting of a destination."""

    name: str
    description: str
    type: SettingType = SettingType.STRING
    required: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of an action's payload; `default` is a mapping value (e.g. a `@path`)."""

    name: str
    description: str
    type: FieldType = FieldType.STRING
    required: bool = False
    multiple: bool = False
    allow_null: bool = False
    default: Any = None
    choices: tuple[Any, ...] = ()


Perform = Callable[[dict[str, Any], SettingValues], Request]
PerformBatch = Callable[[list[dict[str, Any]], SettingValues], Request]


@dataclass(frozen=True, slots=True)
class Action:
    """Something a destination does with an event, e.g. "log an event"."""

    name: str
    title: str
    fields: tuple[Field, ...]
    perform: Perform
    perform_batch: PerformBatch | None = None
    default_subscription: str | None = None
    batch_keys: tuple[str, ...] = ()
    """Fields whose values must be equal within one batch (a webhook's url and method):
    payloads are grouped by them before batching."""
    batch_by_default: bool = True
    """Whether a subscription that does not say `batch:` uses `perform_batch`."""
    creates: Callable[[dict[str, Any]], str | None] | None = None
    """The name of what the destination creates for a payload when the name is new to
    it (a Kameleoon goal per event name): paced under the definition's
    `creation_limits`."""
    max_batch_bytes: int | None = None
    """A cap on a batch's payload bytes lower than the delivery's `batch_bytes` (the
    receiving API's own request limit)."""

    def default_mapping(self) -> dict[str, Any]:
        """The mapping built from the fields' defaults."""
        return {f.name: f.default for f in self.fields if f.default is not None}


@dataclass(frozen=True, slots=True)
class Preset:
    """A subscription created when a destination is connected without its own list."""

    name: str
    action: str
    subscription: str


@dataclass(frozen=True, slots=True)
class Definition:
    """A kind of destination: what `type:` names in a workspace file.

    `authentication` checks the settings (raising InvalidSettings) and returns the
    request whose 2xx answer proves the credentials work, or None when there is
    nothing to ask.
    """

    name: str
    title: str
    description: str
    settings: tuple[Setting, ...]
    actions: tuple[Action, ...]
    presets: tuple[Preset, ...] = ()
    authentication: Callable[[SettingValues], Request | None] | None = None
    creation_limits: tuple[tuple[int, float], ...] = ()
    """(count, seconds): at most `count` new names (`Action.creates`) per `seconds`."""

    def action(self, name: str) -> Action:
        """The action called `name`; raises KeyError."""
        for action in self.actions:
            if action.name == name:
                return action
        raise KeyError(name)

    def setting(self, name: str) -> Setting:
        """The setting called `name`; raises KeyError."""
        for setting in self.settings:
            if setting.name == name:
                return setting
        raise KeyError(name)


def check_settings(definition: Definition, values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings with defaults filled in; raises InvalidSettings naming the setting."""
    unknown = sorted(set(values) - {s.name for s in definition.settings})
    if unknown:
        known = ", ".join(s.name for s in definition.settings)
        raise InvalidSettings(f"unknown setting '{unknown[0]}' (settings: {known})")
    checked: dict[str, Any] = {}
    for setting in definition.settings:
        value = values.get(setting.name, setting.default)
        if value is None:
            if setting.required:
                raise InvalidSettings(f"setting '{setting.name}' is required")
            continue
        expected = _SETTING_TYPES[setting.type]
        if not isinstance(value, expected) or (
            setting.type is SettingType.NUMBER and isinstance(value, bool)
        ):
            raise InvalidSettings(
                f"setting '{setting.name}' must be {_SETTING_NAMES[setting.type]}, got {value!r}"
            )
        if setting.choices and value not in setting.choices:
            choices = ", ".join(repr(c) for c in setting.choices)
            raise InvalidSettings(f"setting '{setting.name}' must be one of {choices}")
        checked[setting.name] = value
    return checked


_SETTING_TYPES: dict[SettingType, type | tuple[type, ...]] = {
    SettingType.STRING: str,
    SettingType.SECRET: str,
    SettingType.NUMBER: (int, float),
    SettingType.BOOLEAN: bool,
}
_SETTING_NAMES = {
    SettingType.STRING: "a string",
    SettingType.SECRET: "a string",
    SettingType.NUMBER: "a number",
    SettingType.BOOLEAN: "true or false",
}


def validate_payload(action: Action, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload to perform: empty values removed, then checked against the fields.

    As in Segment's actions: null and '' are removed unless the field allows null; a
    missing required field or a value of the wrong type raises Discard (not retried).
    """
    result: dict[str, Any] = {}
    for field in action.fields:
        value = payload.get(field.name)
        if (value is None or value == "") and not (field.allow_null and field.name in payload):
            if field.required:
                raise Discard(f"The root value is missing the required field '{field.name}'.")
            continue
        if value is not None:
            _check_field(field, value)
        result[field.name] = value
    return result


def _check_field(field: Field, value: Any) -> None:
    if field.multiple:
        if not isinstance(value, list):
            raise Discard(f"The value at /{field.name} must be an array.")
        for item in value:
            _check_value(field, item)
    else:
        _check_value(field, value)


def _check_value(field: Field, value: Any) -> None:
    ok: bool
    match field.type:
        case FieldType.STRING | FieldType.TEXT:
            ok = isinstance(value, str)
        case FieldType.NUMBER:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        case FieldType.INTEGER:
            ok = isinstance(value, int) and not isinstance(value, bool)
        case FieldType.BOOLEAN:
            ok = isinstance(value, bool)
        case FieldType.OBJECT:
            ok = isinstance(value, dict)
        case FieldType.DATETIME:
            ok = isinstance(value, str) and _is_datetime(value)
    if not ok:
        raise Discard(f"The value at /{field.name} must be {_FIELD_NAMES[field.type]}.")
    if field.choices and value not in field.choices:
        choices = ", ".join(repr(c) for c in field.choices)
        raise Discard(f"The value at /{field.name} must be one of {choices}.")


_FIELD_NAMES = {
    FieldType.STRING: "a string",
    FieldType.TEXT: "a string",
    FieldType.NUMBER: "a number",
    FieldType.INTEGER: "an integer",
    FieldType.BOOLEAN: "a boolean",
    FieldType.OBJECT: "an object",
    FieldType.DATETIME: "a date-time (ISO 8601)",
}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _is_datetime(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
