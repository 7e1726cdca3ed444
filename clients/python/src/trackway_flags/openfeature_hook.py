"""Feature flag evaluation analytics for any OpenFeature provider (`openfeature-sdk`).

`FlagEventsHook(analytics)` is an OpenFeature hook: register it with
`openfeature.api.add_hooks([...])` (or on a client) and every evaluation sends the same
identify and Feature Flag Evaluated track calls as the ConfigCat hook, whatever the
provider (configcat-openfeature-provider, flagd, the in-memory provider, ...). It never
changes the evaluated value: it returns nothing and never raises. See docs/flag-events.md.
"""

import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import OpenFeatureError
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagValueType
from openfeature.hook import Hook, HookContext, HookHints

from trackway_flags import __version__
from trackway_flags.flag_events import (
    DEFAULT_DEDUP_MAX_ENTRIES,
    DEFAULT_LONG_VALUE_THRESHOLD,
    AnalyticsClient,
    Evaluation,
    FlagEventSender,
    SenderStats,
    Spelling,
)

OPENFEATURE_INTEGRATION: Mapping[str, str] = {"name": "openfeature", "version": __version__}
"""`context.integration` of every call (pass `integration=` to name the provider's
integration instead, e.g. configcat_hook.CONFIGCAT_INTEGRATION)."""

# Marks, in the hook's per-evaluation data, that `after` sent the event: when a hook
# that runs after this one fails, OpenFeature calls `error` for the same evaluation.
_SENT = "trackway.flag_event_sent"


class FlagEventsHook(Hook):
    """An OpenFeature hook that sends an identify (when the evaluation context has a
    targeting key) and a Feature Flag Evaluated track call per evaluation.

    - `after` (a resolved flag): value, `variation_id` = the provider's variant, reason
      as the provider gave it (TARGETING_MATCH, SPLIT, STATIC, DEFAULT, ...).
    - `error` (the provider failed, or the flag was missing or of another type): the
      default value the application got, no variation id, reason ERROR, and
      `error` = "<ERROR_CODE>: <message>".

    The user is the evaluation context: `targetingKey` and its attributes. Options are
    those of `configcat_hook.track_flag_evaluations`.
    """

    def __init__(
        self,
        analytics: AnalyticsClient,
        *,
        spelling: Spelling = "segment_track",
        long_value_threshold: int | None = DEFAULT_LONG_VALUE_THRESHOLD,
        dedup_window_s: float | None = None,
        dedup_max_entries: int = DEFAULT_DEDUP_MAX_ENTRIES,
        anonymous_id: str | None = None,
        integration: Mapping[str, str] = OPENFEATURE_INTEGRATION,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = FlagEventSender(
            analytics,
            integration=integration,
            spelling=spelling,
            long_value_threshold=long_value_threshold,
            dedup_window_s=dedup_window_s,
            dedup_max_entries=dedup_max_entries,
            anonymous_id=anonymous_id,
            clock=clock,
        )

    @property
    def stats(self) -> SenderStats:
        """What has been sent, de-duplicated and failed so far."""
        return self.sender.stats

    def after(
        self,
        hook_context: HookContext,
        details: FlagEvaluationDetails[FlagValueType],
        hints: HookHints,
    ) -> None:
        """Send the events for a resolved flag. Never raises: an exception from an
        `after` hook would make OpenFeature return the default value instead."""
        try:
            reason = details.reason
            evaluation = Evaluation(
                flag_key=details.flag_key,
                value=details.value,
                variation_id=details.variant,
                reason=_text(reason) if reason is not None else None,
                **_user(hook_context.evaluation_context),
            )
            hook_context.hook_data[_SENT] = True
        except Exception:
            self.sender.log_failure("read the evaluation details", _flag_key(hook_context))
            return
        self.sender.send(evaluation)

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        """Send the events for a failed evaluation (the application got the default
        value). Never raises."""
        try:
            if hook_context.hook_data.get(_SENT):
                return  # `after` reported this evaluation; a later hook failed
            if isinstance(exception, OpenFeatureError):
                code, message = _text(exception.error_code), exception.error_message
            else:
                code, message = type(exception).__name__, str(exception)
            error = f"{code}: {message}" if message else code
            evaluation = Evaluation(
                flag_key=hook_context.flag_key,
                value=hook_context.default_value,
                reason="ERROR",
                error=error,
                **_user(hook_context.evaluation_context),
            )
        except Exception:
            self.sender.log_failure("read the evaluation error", _flag_key(hook_context))
            return
        self.sender.send(evaluation)


def _user(context: EvaluationContext | None) -> dict[str, Any]:
    """`user_id` and `user` for an Evaluation from an evaluation context."""
    if context is None or (not context.targeting_key and not context.attributes):
        return {"user_id": None, "user": None}
    user: dict[str, Any] = {}
    if context.targeting_key:
        user["targetingKey"] = context.targeting_key
    user.update(context.attributes)
    return {"user_id": context.targeting_key or None, "user": user}


def _text(value: object) -> str:
    # Reason and ErrorCode are string enums; a provider may also give a plain string.
    return str(value.value) if isinstance(value, Enum) else str(value)


def _flag_key(hook_context: HookContext) -> object:
    return getattr(hook_context, "flag_key", None)
