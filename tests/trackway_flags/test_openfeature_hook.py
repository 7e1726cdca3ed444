"""The OpenFeature hook against a running Trackway: the real openfeature-sdk with its
in-memory provider and with configcat-openfeature-provider (on the local config_v6
JSON, no network), the real segment-analytics-python; stored events checked field by
field, in both spellings."""

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from configcat_openfeature_provider import ConfigCatProvider
from configcatclient import ConfigCatOptions, PollingMode
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagResolutionDetails, Reason
from openfeature.hook import Hook, HookContext, HookHints
from openfeature.provider import AbstractProvider
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from trackway_flags.configcat_hook import CONFIGCAT_INTEGRATION
from trackway_flags.flag_events import SenderStats, process_anonymous_id
from trackway_flags.openfeature_hook import FlagEventsHook

from tests.support import Server
from tests.trackway_flags.test_configcat_hook import (
    CONFIG,
    PRICING_JSON,
    Exploding,
    Recorder,
    expected_calls,
    segment_client,
    stored,
    view,
)
from trackway_flags import __version__

OPENFEATURE = {"name": "openfeature", "version": __version__}
LAYOUT = {"columns": [{"name": f"column-{i}", "width": 120 + i} for i in range(6)]}


def theme(flag: InMemoryFlag[str], context: EvaluationContext) -> FlagResolutionDetails[str]:
    """Targeting for the in-memory `theme` flag: VIPs get dark."""
    if context.attributes.get("tier") == "vip":
        return FlagResolutionDetails(value="dark", variant="dark", reason=Reason.TARGETING_MATCH)
    return FlagResolutionDetails(value="light", variant="light", reason=Reason.DEFAULT)


def in_memory_provider() -> InMemoryProvider:
    return InMemoryProvider(
        {
            "welcome-banner": InMemoryFlag("on", {"on": True, "off": False}),
            "theme": InMemoryFlag(
                "light", {"light": "light", "dark": "dark"}, context_evaluator=theme
            ),
            "page-size": InMemoryFlag("twenty", {"ten": 10, "twenty": 20}),
            "sample-rate": InMemoryFlag("half", {"half": 0.5}),
            "layout": InMemoryFlag("grid-v2", {"grid-v2": LAYOUT}),
        }
    )


@pytest.fixture
def domain() -> Iterator[str]:
    """A fresh OpenFeature domain; every provider and global hook is removed after."""
    try:
        yield f"trackway-test-{uuid.uuid4()}"
    finally:
        api.shutdown()  # shuts the providers down (closing ConfigCat's client) too


def client_with(provider: AbstractProvider, domain: str, hook: Hook) -> OpenFeatureClient:
    api.set_provider_and_wait(provider, domain)
    client = api.get_client(domain)
    client.add_hooks([hook])
    return client


@pytest.mark.parametrize("spelling", ["segment_track", "source_page"])
def test_in_memory_provider_every_evaluation_is_stored(
    server: Server, domain: str, spelling: str
) -> None:
    vip = EvaluationContext("vip-7", {"tier": "vip", "Email": "v@example.com"})
    guest = EvaluationContext(attributes={"tier": "guest"})  # attributes, no targeting key
    anonymous_id = process_anonymous_id()

    def calls(
        flag: str,
        value: Any,
        variant: str | None,
        reason: str,
        ctx: EvaluationContext | None,
        error: str | None = None,
    ) -> list[dict[str, Any]]:
        user = None
        if ctx is not None:
            user = {"targetingKey": ctx.targeting_key} if ctx.targeting_key else {}
            user.update(ctx.attributes)
        return expected_calls(
            spelling,
            flag,
            value,
            variant,
            reason,
            user_id=ctx.targeting_key if ctx else None,
            user=user,
            integration=OPENFEATURE,
            anonymous_id=anonymous_id,
            error=error,
        )

    with segment_client(server) as analytics:
        hook = FlagEventsHook(analytics, spelling=spelling)
        client = client_with(in_memory_provider(), domain, hook)
        results = [
            client.get_boolean_details("welcome-banner", False),
            client.get_string_details("theme", "none", vip),
            client.get_string_details("theme", "none", guest),
            client.get_integer_details("page-size", 0, vip),
            client.get_float_details("sample-rate", 0.0),
            client.get_object_details("layout", {}, vip),
            client.get_string_details("missing-flag", "fallback", vip),
            client.get_integer_details("theme", 7, guest),  # a string flag asked as int
        ]
        analytics.flush()

    values = [(r.value, r.variant, r.reason, r.error_code) for r in results]
    assert values == [
        (True, "on", Reason.STATIC, None),
        ("dark", "dark", Reason.TARGETING_MATCH, None),
        ("light", "light", Reason.DEFAULT, None),
        (20, "twenty", Reason.STATIC, None),
        (0.5, "half", Reason.STATIC, None),
        (LAYOUT, "grid-v2", Reason.STATIC, None),
        ("fallback", None, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND),
        (7, None, Reason.ERROR, ErrorCode.TYPE_MISMATCH),
    ]
    expected = [
        *calls("welcome-banner", True, "on", "STATIC", None),
        *calls("theme", "dark", "dark", "TARGETING_MATCH", vip),
        *calls("theme", "light", "light", "DEFAULT", guest),
        *calls("page-size", 20, "twenty", "STATIC", vip),
        *calls("sample-rate", 0.5, "half", "STATIC", None),
        # A structured value longer than 100 characters as JSON: the variant instead.
        *calls("layout", "grid-v2", "grid-v2", "STATIC", vip),
        *calls(
            "missing-flag",
            "fallback",
            None,
            "ERROR",
            vip,
            error="FLAG_NOT_FOUND: Flag 'missing-flag' not found",
        ),
        *calls(
            "theme",
            7,
            None,
            "ERROR",
            guest,
            error="TYPE_MISMATCH: Expected type <class 'int'> but got <class 'str'>",
        ),
    ]
    events = stored(server, len(expected))
    assert [view(e) for e in events] == expected
    assert hook.stats == SenderStats(evaluations=8, identifies_sent=4, tracks_sent=8)


@pytest.mark.parametrize("spelling", ["segment_track", "source_page"])
def test_configcat_provider_events_carry_the_variation_ids(
    server: Server, domain: str, tmp_path: Path, spelling: str
) -> None:
    config = tmp_path / "config_v6.json"
    config.write_text(CONFIG.read_text())
    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(config), OverrideBehaviour.LocalOnly),
        polling_mode=PollingMode.manual_poll(),
    )
    provider = ConfigCatProvider(f"trackway-test-{uuid.uuid4()}", options)
    alice = EvaluationContext("alice", {"Country": "HU", "plan": "enterprise", "age": 34})
    bob = EvaluationContext(
        "bob", {"Email": "bob@beta.example.com", "plan": "enterprise", "age": 17}
    )
    carol = EvaluationContext("carol", {"plan": "pro"})
    with segment_client(server) as analytics:
        hook = FlagEventsHook(analytics, spelling=spelling, integration=CONFIGCAT_INTEGRATION)
        client = client_with(provider, domain, hook)
        results = [
            client.get_boolean_details("newCheckout", False, alice),
            client.get_string_details("buttonColor", "", bob),
            client.get_boolean_details("newCheckout", False, carol),  # a percentage option
            client.get_integer_details("maxItems", 0, bob),
            client.get_float_details("discount", 0.0, alice),
            client.get_object_details("pricingTable", {}, carol),  # JSON text as an object
            client.get_boolean_details("newCheckout", True),  # no context: anonymous
            client.get_string_details("newCheckout", "x", alice),  # wrong type
        ]
        analytics.flush()

    # configcat-openfeature-provider: the variation id is the variant; a rule or a
    # percentage option is TARGETING_MATCH, the flag's own value DEFAULT.
    got = [(r.value, r.variant, r.reason, r.error_code) for r in results]
    pricing = json.loads(PRICING_JSON)
    assert got == [
        (True, "vc-country", Reason.TARGETING_MATCH, None),
        ("red", "vb-red", Reason.TARGETING_MATCH, None),
        (False, "vc-pct-off", Reason.TARGETING_MATCH, None),
        (10, "vm-10", Reason.DEFAULT, None),
        (0.25, "vd-25", Reason.TARGETING_MATCH, None),
        (pricing, "vp-full", Reason.DEFAULT, None),
        (False, "vc-off", Reason.DEFAULT, None),
        ("x", None, Reason.ERROR, ErrorCode.TYPE_MISMATCH),
    ]

    def user(ctx: EvaluationContext) -> dict[str, Any]:
        return {"targetingKey": ctx.targeting_key, **ctx.attributes}

    common = {"integration": CONFIGCAT_INTEGRATION, "anonymous_id": process_anonymous_id()}
    expected = [
        *expected_calls(spelling, "newCheckout", True, "vc-country", "TARGETING_MATCH",
                        user_id="alice", user=user(alice), **common),
        *expected_calls(spelling, "buttonColor", "red", "vb-red", "TARGETING_MATCH",
                        user_id="bob", user=user(bob), **common),
        *expected_calls(spelling, "newCheckout", False, "vc-pct-off", "TARGETING_MATCH",
                        user_id="carol", user=user(carol), **common),
        *expected_calls(spelling, "maxItems", 10, "vm-10", "DEFAULT",
                        user_id="bob", user=user(bob), **common),
        *expected_calls(spelling, "discount", 0.25, "vd-25", "TARGETING_MATCH",
                        user_id="alice", user=user(alice), **common),
        *expected_calls(spelling, "pricingTable", "vp-full", "vp-full", "DEFAULT",
                        user_id="carol", user=user(carol), **common),
        *expected_calls(spelling, "newCheckout", False, "vc-off", "DEFAULT",
                        user_id=None, user=None, **common),
        *expected_calls(spelling, "newCheckout", "x", None, "ERROR",
                        user_id="alice", user=user(alice), error="TYPE_MISMATCH", **common),
    ]  # fmt: skip
    events = stored(server, len(expected))
    assert [view(e) for e in events] == expected


class FailingAfter(Hook):
    """A hook whose `after` raises (OpenFeature then returns the default value)."""

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: HookHints
    ) -> None:
        raise RuntimeError("a broken hook")


def test_the_hook_never_changes_the_evaluated_value(domain: str) -> None:
    plain = api.get_client(domain)
    api.set_provider_and_wait(in_memory_provider(), domain)
    vip = EvaluationContext("vip-1", {"tier": "vip"})
    without = [
        plain.get_string_details("theme", "none", vip),
        plain.get_object_details("layout", {}, vip),
        plain.get_boolean_details("nope", True, vip),
    ]
    hook = FlagEventsHook(Exploding())
    with_hook = api.get_client(domain)
    with_hook.add_hooks([hook])
    got = [
        with_hook.get_string_details("theme", "none", vip),
        with_hook.get_object_details("layout", {}, vip),
        with_hook.get_boolean_details("nope", True, vip),
    ]
    assert got == without
    assert [d.error_code for d in got] == [None, None, ErrorCode.FLAG_NOT_FOUND]
    # Each identify and track raised, was logged and counted, and went no further.
    assert hook.stats == SenderStats(evaluations=3, errors=6)


def test_one_event_per_evaluation_when_a_later_hook_fails(domain: str) -> None:
    """Client hooks run their `after` before API hooks; when an API hook fails, OpenFeature
    calls `error` on every hook for the same evaluation. The event `after` sent stands,
    `error` sends no second one."""
    analytics = Recorder()
    api.set_provider_and_wait(in_memory_provider(), domain)
    api.add_hooks([FailingAfter()])
    client = api.get_client(domain)
    hook = FlagEventsHook(analytics, anonymous_id="anon-later")
    client.add_hooks([hook])
    details = client.get_boolean_details("welcome-banner", False)
    assert (details.value, details.reason) == (False, Reason.ERROR)  # FailingAfter's doing
    assert [(m, kw["properties"]["value"]) for m, kw in analytics.calls] == [("track", True)]
    # Without the failing hook `error` is never called for a resolved flag.
    api.clear_hooks()
    client.get_boolean_details("welcome-banner", False)
    assert len(analytics.calls) == 2
    assert hook.stats.tracks_sent == 2


def test_api_level_hook_and_dedup(server: Server, domain: str) -> None:
    """Registered once for every client (`api.add_hooks`), with de-duplication."""
    now = [0.0]
    api.set_provider_and_wait(in_memory_provider(), domain)
    with segment_client(server) as analytics:
        hook = FlagEventsHook(analytics, dedup_window_s=60, clock=lambda: now[0])
        api.add_hooks([hook])
        first, second = api.get_client(domain), api.get_client(domain)
        vip = EvaluationContext("vip-9", {"tier": "vip"})
        for client in (first, second, first):
            assert client.get_string_value("theme", "none", vip) == "dark"
            assert client.get_integer_value("page-size", 0, vip) == 20
        now[0] = 60.0
        assert first.get_string_value("theme", "none", vip) == "dark"
        analytics.flush()
    events = stored(server, 1 + 2 + 2)  # identify, two tracks; then both again after 60 s
    assert [(e["type"], e["properties"]["feature_flag_key"] if "event" in e else None)
            for e in events] == [
        ("identify", None), ("track", "theme"), ("track", "page-size"),
        ("identify", None), ("track", "theme"),
    ]  # fmt: skip
    assert hook.stats == SenderStats(
        evaluations=7,
        identifies_sent=2,
        tracks_sent=3,
        identifies_deduplicated=5,
        tracks_deduplicated=4,
    )
