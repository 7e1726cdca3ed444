"""The `flags:` list of a workspace file: one entry per environment (one served config_v6).

```yaml
flags:
  - environment: production
    sdk_key: configcat-sdk-1/...        # optional: generated once, then kept
    segments:
      Beta users:
        - {attribute: Email, comparator: sensitive is one of, values: [jane@example.com]}
    settings:
      dark_mode:
        type: bool                      # bool | string | int | double
        value: false
        rules:
          - when:
              - {in_segment: Beta users}
            serve: true
```
docs/flags.md describes every field.
"""

from typing import Any

import msgspec


class ConditionSpec(msgspec.Struct, forbid_unknown_fields=True):
    """One condition: a user attribute test, a segment test or a prerequisite flag."""

    attribute: str | None = None
    comparator: str | None = None
    value: Any = msgspec.UNSET
    values: list[str] | None = None
    in_segment: str | None = None
    not_in_segment: str | None = None
    flag: str | None = None
    equals: Any = msgspec.UNSET
    not_equals: Any = msgspec.UNSET


class PercentageSpec(msgspec.Struct, forbid_unknown_fields=True):
    """One percentage option: `percent` of the users (by hash) get `value`."""

    percent: int
    value: Any
    variation_id: str | None = None


class RuleSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A targeting rule: when every condition holds, serve a value or split by percentages."""

    when: list[ConditionSpec]
    serve: Any = msgspec.UNSET
    variation_id: str | None = None
    percentages: list[PercentageSpec] = []


class SettingSpec(msgspec.Struct, forbid_unknown_fields=True):
    """A feature flag or setting: its type, default value, rules and percentages."""

    type: str
    value: Any
    variation_id: str | None = None
    percentage_attribute: str | None = None
    rules: list[RuleSpec] = []
    percentages: list[PercentageSpec] = []


class EvaluatedEventsSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Where and how often OFREP evaluations become "Feature Flag Evaluated" events."""

    source: str
    sample: float = 1.0
    window: str = "1h"


class ChangedEventsSpec(msgspec.Struct, forbid_unknown_fields=True):
    """Where the environment's "Feature Flag Changed" events go (default: source `flags`)."""

    source: str


class EnvironmentSpec(msgspec.Struct, forbid_unknown_fields=True):
    """One environment: the settings an SDK key downloads."""

    environment: str
    sdk_key: str | None = None
    evaluated_events: EvaluatedEventsSpec | None = None
    changed_events: ChangedEventsSpec | None = None
    segments: dict[str, list[ConditionSpec]] = {}
    settings: dict[str, SettingSpec] = {}
