"""`destinations:` of a workspace file: what each destination is, checked when applied.

Everything that can be wrong is found at apply time, with the destination and the
field named: unknown type or setting, a subscription's FQL (with the position of the
error), a mapping's directive, a filter, the insert function's code. Settings written
as `${ENV_VAR}` are read from the environment then; secret settings are stored
encrypted (secrets.py). A destination created without `subscriptions` gets its
definition's presets.
"""

import os
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import msgspec

from trackway import fql
from trackway.destinations import filters as destination_filters
from trackway.destinations.framework import (
    Definition,
    InvalidSettings,
    SettingType,
    check_settings,
)
from trackway.destinations.registry import definition as find_definition
from trackway.destinations.secrets import MASK, Secrets, is_sealed
from trackway.functions import FunctionError, check_code
from trackway.mapping.directives import MappingError
from trackway.mapping.engine import compile_mapping
from trackway.settings import parse_duration
from trackway.storage.base import NotFound, StateStore
from trackway.workspace.diff import field_changes, with_changes
from trackway.workspace.sources import check_name

KIND = "destination"
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_BATCH_EVENTS = 1_000
MAX_BATCH_BYTES = 4_000_000


class DestinationConfigError(ValueError):
    """A destination declaration that cannot be applied; nothing was changed."""


class DestinationNotFound(DestinationConfigError, NotFound):
    """No destination has that name."""


class SubscriptionSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Which events an action gets (an FQL condition) and how its payload is built."""

    name: str
    action: str
    if_: str = msgspec.field(name="if")
    mapping: dict[str, Any] | None = None
    """None: the action's default mapping (its fields' defaults)."""
    enabled: bool = True
    batch: bool | None = None
    """Use the action's batch request (when it has one); None: the action's default
    (the webhook sends one event per request, as Segment's, unless `batch: true`)."""


class DeliverySpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How events are sent: concurrency, batching, timeouts and retries."""

    concurrency: int = 4
    batch_size: int = MAX_BATCH_EVENTS
    batch_bytes: int = MAX_BATCH_BYTES
    timeout: str = "10s"
    retry_for: str = "4h"
    allow_private_addresses: bool = False
    """Allow private, loopback and link-local target addresses (refused by default)."""


class AlertSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Alert when the successful-delivery rate over `window` drops below `threshold`."""

    threshold: float = 0.95
    window: str = "24h"
    min_attempts: int = 10
    """Fewer delivery attempts than this in the window raise no alert."""
    webhook: str | None = None


class DestinationSpec(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A destination as declared in a workspace file (and as stored)."""

    name: str
    type: str
    enabled: bool = True
    sources: list[str] | None = None
    """The sources whose events it receives; None: every source."""
    settings: dict[str, Any] = {}
    subscriptions: list[SubscriptionSpec] | None = None
    filters: list[Any] = []
    function: str | None = None
    function_file: str | None = None
    function_settings: dict[str, Any] = {}
    delivery: DeliverySpec = msgspec.field(default_factory=DeliverySpec)
    alerts: AlertSpec | None = None
    start_position: int | None = None
    """Where its cursor starts: the end of the log when it was created (set by apply)."""


def destinations(store: StateStore) -> list[DestinationSpec]:
    """Every stored destination, by name."""
    return [
        msgspec.convert(spec, DestinationSpec)
        for _name, spec in sorted(store.objects(KIND).items())
    ]


def find(store: StateStore, name: str) -> DestinationSpec:
    """The stored destination `name`; raises DestinationConfigError listing the others."""
    spec = store.objects(KIND).get(name)
    if spec is None:
        names = ", ".join(sorted(store.objects(KIND))) or "none"
        raise DestinationNotFound(f"no destination named '{name}' (there are: {names})")
    return msgspec.convert(spec, DestinationSpec)


def set_enabled(store: StateStore, name: str, enabled: bool) -> DestinationSpec:
    """Turn the stored destination on or off (the workers follow within about a second);
    everything else it declares stays as applied."""
    spec = find(store, name)
    stored = store.objects(KIND)[name]
    if spec.enabled != enabled:
        store.put_object(KIND, name, {**stored, "enabled": enabled})
    return msgspec.structs.replace(spec, enabled=enabled)


def enabled_yaml(spec: DestinationSpec) -> str:
    """The workspace file lines that keep the destination as `set_enabled` left it (a
    later `trackway apply` of a file without them turns it on again)."""
    return (
        f"destinations:\n  - name: {spec.name}\n    type: {spec.type}\n"
        f"    enabled: {str(spec.enabled).lower()}\n    # ...its other fields as before\n"
    )


def source_ids(spec: DestinationSpec, store: StateStore) -> frozenset[int] | None:
    """The ids of the sources whose events the destination takes (None: every source)."""
    if spec.sources is None:
        return None
    wanted = set(spec.sources)
    return frozenset(s.id for s in store.list_sources() if s.name in wanted)


def plain_settings(spec: DestinationSpec, secrets: Secrets) -> dict[str, Any]:
    """The settings with secrets decrypted, for the actions."""
    return {
        name: secrets.open(value, name) if is_sealed(value) else value
        for name, value in spec.settings.items()
    }


def shown_settings(spec: DestinationSpec) -> dict[str, Any]:
    """The settings as shown to people: secrets masked."""
    return {name: MASK if is_sealed(value) else value for name, value in spec.settings.items()}


def check(spec: DestinationSpec) -> Definition:
    """Validate everything but the settings' values; returns the definition."""
    where = f"destination '{spec.name}'"
    try:
        check_name(spec.name)
        definition = find_definition(spec.type)
    except (ValueError, KeyError) as exc:
        raise DestinationConfigError(f"{where}: {_message(exc)}") from exc
    if spec.function is not None and spec.function_file is not None:
        raise DestinationConfigError(f"{where}: give either function or function_file")
    if spec.sources is not None:
        _check_sources(spec.sources, where)
    _check_delivery(spec.delivery, where)
    if spec.alerts is not None:
        _check_alerts(spec.alerts, where)
    try:
        destination_filters.compile_filters(spec.filters)
    except destination_filters.FilterError as exc:
        raise DestinationConfigError(f"{where}: filters: {exc}") from exc
    names: set[str] = set()
    for index, sub in enumerate(spec.subscriptions or []):
        _check_subscription(definition, sub, f"{where}: subscriptions[{index}] ({sub.name!r})")
        if sub.name in names:
            raise DestinationConfigError(f"{where}: subscription {sub.name!r} is declared twice")
        names.add(sub.name)
    if spec.function is not None:
        try:
            check_code(spec.function)
        except FunctionError as exc:
            raise DestinationConfigError(f"{where}: function: {exc}") from exc
    return definition


def compile_condition(text: str) -> fql.Expression:
    """A subscription's condition; `all` matches every event."""
    return fql.compile("type != null" if text.strip() == "all" else text)


def _check_subscription(definition: Definition, sub: SubscriptionSpec, where: str) -> None:
    try:
        action = definition.action(sub.action)
    except KeyError:
        actions = ", ".join(a.name for a in definition.actions)
        raise DestinationConfigError(
            f"{where}: {definition.name} has no action '{sub.action}' (actions: {actions})"
        ) from None
    try:
        compile_condition(sub.if_)
    except fql.FQLError as exc:
        raise DestinationConfigError(f"{where}: if: {exc}") from exc
    try:
        compile_mapping(sub.mapping if sub.mapping is not None else action.default_mapping())
    except MappingError as exc:
        raise DestinationConfigError(f"{where}: mapping: {exc}") from exc
    unknown = sorted(set(sub.mapping or {}) - {f.name for f in action.fields})
    if unknown:
        fields = ", ".join(f.name for f in action.fields)
        raise DestinationConfigError(
            f"{where}: mapping: action '{action.name}' has no field '{unknown[0]}'"
            f" (fields: {fields})"
        )


def _check_sources(sources: list[str], where: str) -> None:
    if not sources:
        raise DestinationConfigError(
            f"{where}: sources: name at least one source, or leave sources out for every source"
        )
    for index, name in enumerate(sources):
        if name in sources[:index]:
            raise DestinationConfigError(f"{where}: sources[{index}]: '{name}' is named twice")


def check_known_sources(spec: DestinationSpec, known: Collection[str]) -> None:
    """Refuse a destination that names a source `known` does not hold."""
    for index, name in enumerate(spec.sources or []):
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise DestinationConfigError(
                f"destination '{spec.name}': sources[{index}]: no source named '{name}'"
                f" (there are: {names})"
            )


def _check_delivery(delivery: DeliverySpec, where: str) -> None:
    if not 1 <= delivery.concurrency <= 64:
        raise DestinationConfigError(f"{where}: delivery.concurrency must be from 1 to 64")
    if not 1 <= delivery.batch_size <= MAX_BATCH_EVENTS:
        raise DestinationConfigError(
            f"{where}: delivery.batch_size must be from 1 to {MAX_BATCH_EVENTS}"
        )
    if not 1_000 <= delivery.batch_bytes <= MAX_BATCH_BYTES:
        raise DestinationConfigError(
            f"{where}: delivery.batch_bytes must be from 1000 to {MAX_BATCH_BYTES}"
        )
    for key in ("timeout", "retry_for"):
        try:
            seconds = parse_duration(getattr(delivery, key))
        except ValueError as exc:
            raise DestinationConfigError(f"{where}: delivery.{key}: {exc}") from exc
        if key == "timeout" and not 0 < seconds <= 120:
            raise DestinationConfigError(f"{where}: delivery.timeout must be from 0 to 120 s")


def _check_alerts(alerts: AlertSpec, where: str) -> None:
    if not 0 < alerts.threshold <= 1:
        raise DestinationConfigError(
            f"{where}: alerts.threshold is a fraction (0.95 = 95%), got {alerts.threshold}"
        )
    try:
        parse_duration(alerts.window)
    except ValueError as exc:
        raise DestinationConfigError(f"{where}: alerts.window: {exc}") from exc
    if alerts.webhook is not None and not alerts.webhook.startswith(("http://", "https://")):
        raise DestinationConfigError(f"{where}: alerts.webhook must be an http(s) URL")


def resolve(
    spec: DestinationSpec,
    base_dir: Path,
    environ: Callable[[str], str | None] = os.environ.get,
) -> DestinationSpec:
    """The spec as declared with `${ENV_VAR}` references and `function_file` resolved."""
    where = f"destination '{spec.name}'"
    settings = {
        name: _expand(value, f"{where}: settings.{name}", environ)
        for name, value in spec.settings.items()
    }
    function_settings = {
        name: _expand(value, f"{where}: function_settings.{name}", environ)
        for name, value in spec.function_settings.items()
    }
    alerts = spec.alerts
    if alerts is not None and alerts.webhook is not None:
        webhook = _expand(alerts.webhook, f"{where}: alerts.webhook", environ)
        alerts = msgspec.structs.replace(alerts, webhook=webhook)
    function = spec.function
    if spec.function_file is not None:
        path = base_dir / spec.function_file
        try:
            function = path.read_text()
        except OSError as exc:
            raise DestinationConfigError(
                f"{where}: function_file: cannot read {path}: {exc.strerror}"
            ) from exc
    return msgspec.structs.replace(
        spec,
        settings=settings,
        function_settings=function_settings,
        alerts=alerts,
        function=function,
        function_file=None,
    )


def _expand(value: Any, where: str, environ: Callable[[str], str | None]) -> Any:
    if not isinstance(value, str):
        return value

    def variable(match: re.Match[str]) -> str:
        found = environ(match[1])
        if found is None:
            raise DestinationConfigError(f"{where}: the environment variable {match[1]} is not set")
        return found

    return _ENV.sub(variable, value)


def apply(
    specs: list[DestinationSpec],
    store: StateStore,
    secrets: Secrets,
    end_of_log: Callable[[], int],
    dry_run: bool = False,
    *,
    base_dir: Path,
    sources: Collection[str] | None = None,
) -> list[str]:
    """Store the declared destinations; one line per change. Raises
    DestinationConfigError, changing nothing, when any of them is invalid.

    `sources` are the source names a destination may name (default: the stored ones).
    """
    known = sources if sources is not None else {s.name for s in store.list_sources()}
    resolved = [resolve(spec, base_dir) for spec in specs]
    prepared: list[tuple[DestinationSpec, Definition]] = []
    seen: set[str] = set()
    for spec in resolved:
        definition = check(spec)
        check_known_sources(spec, known)
        if spec.name in seen:
            raise DestinationConfigError(f"destination '{spec.name}' is declared twice")
        seen.add(spec.name)
        try:
            check_settings(definition, spec.settings)
        except InvalidSettings as exc:
            raise DestinationConfigError(f"destination '{spec.name}': {exc}") from exc
        prepared.append((spec, definition))
    have = store.objects(KIND)
    changes: list[str] = []
    for spec, definition in prepared:
        old = msgspec.convert(have[spec.name], DestinationSpec) if spec.name in have else None
        subscriptions = spec.subscriptions
        if subscriptions is None:
            subscriptions = old.subscriptions if old is not None else presets(definition)
        start = old.start_position if old is not None else None
        want = msgspec.structs.replace(spec, subscriptions=subscriptions, start_position=start)
        opened = None if old is None else _opened(old, secrets)
        if opened == msgspec.to_builtins(want):
            continue
        line = f"{'update' if old else 'create'} destination '{spec.name}' ({spec.type})"
        if opened is not None:
            fields = field_changes(
                KIND, spec.name, opened, msgspec.to_builtins(want), _secret_path(definition)
            )
            line = with_changes(line, fields)
        changes.append(line)
        if dry_run:
            continue
        if start is None:
            want = msgspec.structs.replace(want, start_position=end_of_log())
        sealed = {
            name: secrets.seal(value)
            if definition.setting(name).type is SettingType.SECRET and isinstance(value, str)
            else value
            for name, value in want.settings.items()
        }
        store.put_object(
            KIND, spec.name, msgspec.to_builtins(msgspec.structs.replace(want, settings=sealed))
        )
    return changes


def presets(definition: Definition) -> list[SubscriptionSpec]:
    """The subscriptions a new destination of this kind gets."""
    return [
        SubscriptionSpec(name=p.name, action=p.action, if_=p.subscription)
        for p in definition.presets
    ]


def _opened(old: DestinationSpec, secrets: Secrets) -> Any:
    """The stored spec as plain data with its secrets decrypted, to compare with a new one."""
    return msgspec.to_builtins(msgspec.structs.replace(old, settings=plain_settings(old, secrets)))


def _secret_path(definition: Definition) -> Callable[[str], bool]:
    secret = {s.name for s in definition.settings if s.type is SettingType.SECRET}
    return lambda path: path.startswith("settings.") and path[len("settings.") :] in secret


def _message(exc: Exception) -> str:
    return str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
