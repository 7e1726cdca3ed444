"""Feature flag evaluation analytics for the ConfigCat SDK (`configcat-client`).

`track_flag_evaluations(configcat_client, analytics)` subscribes to the client's
`on_flag_evaluated` hook and sends, for every evaluation, an identify for the user (when
there is one) and a Feature Flag Evaluated track call through a Segment-style analytics
client, as ConfigCat's Segment integration describes. See docs/flag-events.md.

Nothing from configcat-client is imported: the hook only reads the attributes of the
`EvaluationDetails` the SDK hands it.
"""

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from trackway_flags.flag_events import (
    DEFAULT_DEDUP_MAX_ENTRIES,
    DEFAULT_LONG_VALUE_THRESHOLD,
    AnalyticsClient,
    Evaluation,
    FlagEventSender,
    SenderStats,
    Spelling,
)

CONFIGCAT_INTEGRATION: Mapping[str, str] = {"name": "configcat", "version": "1.0.0"}
"""`context.integration` of every call, as in ConfigCat's own Segment integration."""

_PREDEFINED = ("Identifier", "Email", "Country")


class _Hooks(Protocol):
    def add_on_flag_evaluated(self, callback: Callable[[Any], None]) -> None: ...


class ConfigCatClientLike(Protocol):
    """What is used of a `configcatclient.ConfigCatClient`: its hooks."""

    def get_hooks(self) -> _Hooks: ...


def evaluation_from_details(details: Any) -> Evaluation:
    """An `Evaluation` from configcat-client's `EvaluationDetails`.

    The user's attributes are the User Object as ConfigCat serializes it (`Identifier`,
    `Email`, `Country` and the custom attributes). The reason uses OpenFeature's names:
    ERROR when the evaluation failed, SPLIT when a percentage option decided (also
    inside a targeting rule), TARGETING_MATCH when a targeting rule did, else DEFAULT.
    """
    user = details.user
    user_id: str | None = None
    attributes: dict[str, Any] | None = None
    if user is not None:
        identifier = user.get_identifier()
        user_id = str(identifier) if identifier not in (None, "") else None
        attributes = _user_attributes(user)
    error = details.error
    if error is not None:
        reason = "ERROR"
    elif getattr(details, "matched_percentage_option", None) is not None:
        reason = "SPLIT"
    elif getattr(details, "matched_targeting_rule", None) is not None:
        reason = "TARGETING_MATCH"
    else:
        reason = "DEFAULT"
    variation_id = details.variation_id
    return Evaluation(
        flag_key=str(details.key),
        value=details.value,
        variation_id=str(variation_id) if variation_id is not None else None,
        user_id=user_id,
        user=attributes,
        reason=reason,
        error=str(error) if error is not None else None,
    )


def _user_attributes(user: Any) -> dict[str, Any]:
    # `str(User)` is the SDK's own JSON of the User Object (its attributes are private,
    # name-mangled fields). It raises TypeError for a custom attribute it cannot
    # serialize; then at least the predefined attributes are sent.
    try:
        parsed = json.loads(str(user))
        if isinstance(parsed, dict):
            return parsed
    except (TypeError, ValueError):
        pass
    found = {name: user.get_attribute(name) for name in _PREDEFINED}
    return {name: value for name, value in found.items() if value is not None}


class ConfigCatTracking:
    """The subscription `track_flag_evaluations` made: its sender and counters, and
    `detach()` to stop sending."""

    def __init__(self, sender: FlagEventSender) -> None:
        self.sender = sender
        self._attached = True

    @property
    def stats(self) -> SenderStats:
        """What has been sent, de-duplicated and failed so far."""
        return self.sender.stats

    def detach(self) -> None:
        """Stop sending. configcat-client has no way to remove a hook callback, so the
        callback stays subscribed (until the client is closed) but does nothing."""
        self._attached = False

    def on_flag_evaluated(self, details: Any) -> None:
        """The `on_flag_evaluated` callback. Never raises."""
        if not self._attached:
            return
        try:
            evaluation = evaluation_from_details(details)
        except Exception:
            self.sender.log_failure("read the evaluation details", None)
            return
        self.sender.send(evaluation)


def track_flag_evaluations(
    configcat_client: ConfigCatClientLike,
    analytics: AnalyticsClient,
    *,
    spelling: Spelling = "segment_track",
    long_value_threshold: int | None = DEFAULT_LONG_VALUE_THRESHOLD,
    dedup_window_s: float | None = None,
    dedup_max_entries: int = DEFAULT_DEDUP_MAX_ENTRIES,
    anonymous_id: str | None = None,
    integration: Mapping[str, str] = CONFIGCAT_INTEGRATION,
    clock: Callable[[], float] = time.monotonic,
) -> ConfigCatTracking:
    """Send an identify and a Feature Flag Evaluated track for every evaluation of
    `configcat_client`, through `analytics` (e.g. `segment.analytics.Client`).

    - `spelling`: "segment_track" (`Feature Flag Evaluated`, `feature_flag_key`,
      `variation_id`) or "source_page" (`featureFlagEvaluated`, `featureFlagKey`,
      `variationId`, plus a `userId` property).
    - `long_value_threshold`: text values longer than this are sent as the variation
      id (None: never).
    - `dedup_window_s`: send the same user, flag and variation once per this many
      seconds (None: every evaluation); `dedup_max_entries` bounds its memory.
    - `anonymous_id`: for evaluations without a user (default: one random id for the
      life of the process).
    - `clock`: monotonic seconds for the de-duplication window (tests).
    """
    sender = FlagEventSender(
        analytics,
        integration=integration,
        spelling=spelling,
        long_value_threshold=long_value_threshold,
        dedup_window_s=dedup_window_s,
        dedup_max_entries=dedup_max_entries,
        anonymous_id=anonymous_id,
        clock=clock,
    )
    tracking = ConfigCatTracking(sender)
    configcat_client.get_hooks().add_on_flag_evaluated(tracking.on_flag_evaluated)
    return tracking
