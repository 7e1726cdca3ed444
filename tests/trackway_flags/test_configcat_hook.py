"""ConfigCat evaluation analytics against a running Trackway.

The real configcat-client evaluates a full config_v6 JSON (targeting rules, a segment,
a prerequisite flag, percentage options, variation ids) from `LocalFileFlagOverrides`
with no network; the real segment-analytics-python sends to `trackway serve` on
127.0.0.1; the events Trackway stored are checked field by field, in both spellings.
"""

import ast
import hashlib
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from configcatclient import ConfigCatClient, ConfigCatOptions, PollingMode
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.user import User
from segment.analytics import Client
from trackway_flags.configcat_hook import track_flag_evaluations
from trackway_flags.flag_events import SenderStats, process_anonymous_id

from tests.support import Server

CASES = Path(__file__).parent / "cases"
CONFIG = CASES / "config_v6.json"
REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src" / "trackway"
FLAGS_SRC = REPO / "clients" / "python" / "src" / "trackway_flags"
INTEGRATION = {"name": "configcat", "version": "1.0.0"}

# The users of the config's scenarios (None: no User Object).
USERS: dict[str, User] = {
    "alice": User("alice", country="HU", custom={"plan": "enterprise", "age": 34}),
    "bob": User(
        "bob", email="bob@beta.example.com", country="US", custom={"plan": "enterprise", "age": 17}
    ),
    "frank": User("frank", custom={"plan": "free", "age": 18}),
    "carol": User("carol", custom={"plan": "pro"}),
}
# How ConfigCat serializes each User Object (the identify traits and the `user` property).
USER_JSON: dict[str, dict[str, Any]] = {
    "alice": {"Identifier": "alice", "Country": "HU", "plan": "enterprise", "age": 34},
    "bob": {
        "Identifier": "bob",
        "Email": "bob@beta.example.com",
        "Country": "US",
        "plan": "enterprise",
        "age": 17,
    },
    "frank": {"Identifier": "frank", "plan": "free", "age": 18},
    "carol": {"Identifier": "carol", "plan": "pro"},
}
FLAGS: dict[str, Any] = {
    "newCheckout": False,
    "buttonColor": "",
    "maxItems": 0,
    "discount": 0.0,
    "pricingTable": "",
}
PRICING_JSON = json.loads(CONFIG.read_text())["f"]["pricingTable"]["v"]["s"]

# What the config gives each user: (value, variation id, reason). Percentage options
# are checked against ConfigCat's bucket formula in test_the_config_covers_every_path.
EXPECTED: dict[str | None, dict[str, tuple[Any, str, str]]] = {
    "alice": {
        "newCheckout": (True, "vc-country", "TARGETING_MATCH"),
        "buttonColor": ("green", "vb-green", "SPLIT"),  # enterprise rule, bucket 24 < 50
        "maxItems": (50, "vm-50", "TARGETING_MATCH"),
        "discount": (0.25, "vd-25", "TARGETING_MATCH"),  # prerequisite newCheckout
        "pricingTable": (PRICING_JSON, "vp-full", "DEFAULT"),
    },
    "bob": {
        "newCheckout": (True, "vc-beta", "TARGETING_MATCH"),  # the Beta testers segment
        "buttonColor": ("red", "vb-red", "SPLIT"),  # bucket 63 >= 50
        "maxItems": (10, "vm-10", "DEFAULT"),
        "discount": (0.25, "vd-25", "TARGETING_MATCH"),
        "pricingTable": (PRICING_JSON, "vp-full", "DEFAULT"),
    },
    "frank": {
        "newCheckout": (True, "vc-pct-on", "SPLIT"),  # bucket 17 < 25
        "buttonColor": ("blue", "vb-blue", "DEFAULT"),
        "maxItems": (50, "vm-50", "TARGETING_MATCH"),
        "discount": (0.25, "vd-25", "TARGETING_MATCH"),
        "pricingTable": ("basic", "vp-basic", "TARGETING_MATCH"),
    },
    "carol": {
        "newCheckout": (False, "vc-pct-off", "SPLIT"),  # bucket 29 >= 25
        "buttonColor": ("blue", "vb-blue", "DEFAULT"),
        "maxItems": (10, "vm-10", "DEFAULT"),
        "discount": (0.1, "vd-10", "DEFAULT"),
        "pricingTable": (PRICING_JSON, "vp-full", "DEFAULT"),
    },
    None: {
        "newCheckout": (False, "vc-off", "DEFAULT"),
        "buttonColor": ("blue", "vb-blue", "DEFAULT"),
        "maxItems": (10, "vm-10", "DEFAULT"),
        "discount": (0.1, "vd-10", "DEFAULT"),
        "pricingTable": (PRICING_JSON, "vp-full", "DEFAULT"),
    },
}
NAMES = {
    "segment_track": ("Feature Flag Evaluated", "feature_flag_key", "variation_id"),
    "source_page": ("featureFlagEvaluated", "featureFlagKey", "variationId"),
}


# -- helpers (also used by test_openfeature_hook) ------------------------------------


class Errors:
    """segment-analytics-python's on_error callback: what it reported."""

    def __init__(self) -> None:
        self.calls: list[tuple[Exception, list[dict[str, Any]]]] = []
        self._lock = threading.Lock()

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            self.calls.append((error, batch))


@contextmanager
def segment_client(server: Server) -> Iterator[Client]:
    """The real segment-analytics-python, pointed at the server; shut down after."""
    errors = Errors()
    client = Client(
        server.write_key,
        host=server.url,
        sync_mode=False,
        upload_interval=0.05,
        max_retries=2,
        timeout=10,
        on_error=errors,
    )
    try:
        yield client
    finally:
        client.shutdown()
    assert errors.calls == [], errors.calls


def stored(server: Server, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The server's events once there are `count` (bounded polling); exactly `count`."""
    deadline = time.monotonic() + timeout
    events = server.events()
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        events = server.events()
    assert len(events) == count, f"{len(events)} events stored, expected {count}"
    return events


def view(event: dict[str, Any]) -> dict[str, Any]:
    """What the integration decides in a stored event (ids, name, body, integration)."""
    out = {
        key: event[key]
        for key in ("type", "userId", "anonymousId", "event", "properties", "traits")
        if key in event
    }
    out["integration"] = event["context"].get("integration")
    return out


def expected_calls(
    spelling: str,
    flag: str,
    value: Any,
    variation_id: str | None,
    reason: str,
    *,
    user_id: str | None,
    user: dict[str, Any] | None,
    integration: dict[str, str],
    anonymous_id: str,
    error: str | None = None,
) -> list[dict[str, Any]]:
    """The stored events one evaluation should give, written out for the test."""
    event, key_name, variation_name = NAMES[spelling]
    properties: dict[str, Any] = {key_name: flag, "value": value, variation_name: variation_id}
    if user_id and spelling == "source_page":
        properties["userId"] = user_id
    if user is not None:
        properties["user"] = user
    properties["reason"] = reason
    if error is not None:
        properties["error"] = error
    who = {"userId": user_id} if user_id else {"anonymousId": anonymous_id}
    out = []
    if user_id:
        out.append({"type": "identify", **who, "traits": user, "integration": integration})
    out.append(
        {
            "type": "track",
            **who,
            "event": event,
            "properties": properties,
            "integration": integration,
        }
    )
    return out


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture
def configcat(tmp_path: Path) -> Iterator[ConfigCatClient]:
    """The real ConfigCat client on the local config_v6 file only (no network)."""
    config = tmp_path / "config_v6.json"
    config.write_text(CONFIG.read_text())
    options = ConfigCatOptions(
        flag_overrides=LocalFileFlagOverrides(str(config), OverrideBehaviour.LocalOnly),
        polling_mode=PollingMode.manual_poll(),
    )
    # ConfigCatClient.get keeps one client per SDK key: a fresh key per test.
    client = ConfigCatClient.get(f"trackway-test-{uuid.uuid4()}", options)
    try:
        yield client
    finally:
        client.close()


def bucket(flag: str, identifier: str) -> int:
    """ConfigCat's percentage bucket of a user for a flag (v6 config, by Identifier)."""
    return int(hashlib.sha1((flag + identifier).encode()).hexdigest()[:7], 16) % 100


# -- tests -----------------------------------------------------------------------------


def test_the_config_covers_every_path(configcat: ConfigCatClient) -> None:
    """The scenarios do exercise rules, a segment, a prerequisite and both sides of
    each percentage split (so the event tests below check all of them)."""
    assert bucket("buttonColor", "alice") < 50 <= bucket("buttonColor", "bob")
    assert bucket("newCheckout", "frank") < 25 <= bucket("newCheckout", "carol")
    for name, flags in EXPECTED.items():
        user = USERS[name] if name else None
        for flag, (value, variation_id, _) in flags.items():
            details = configcat.get_value_details(flag, FLAGS[flag], user)
            assert (details.value, details.variation_id) == (value, variation_id), (name, flag)
            assert details.error is None
    variations = {v for flags in EXPECTED.values() for _, v, _ in flags.values()}
    assert {"vc-country", "vc-beta", "vc-pct-on", "vc-pct-off", "vb-green", "vb-red"} <= variations
    assert len(PRICING_JSON) > 100  # the default threshold replaces it


@pytest.mark.parametrize("spelling", ["segment_track", "source_page"])
def test_every_evaluation_is_stored_field_by_field(
    server: Server, configcat: ConfigCatClient, spelling: str
) -> None:
    expected: list[dict[str, Any]] = []
    anonymous_id = process_anonymous_id()
    with segment_client(server) as analytics:
        tracking = track_flag_evaluations(configcat, analytics, spelling=spelling)
        for name, flags in EXPECTED.items():
            user = USERS[name] if name else None
            for flag, (value, variation_id, reason) in flags.items():
                got = configcat.get_value(flag, FLAGS[flag], user)
                assert got == value  # the hook changed nothing
                reported = variation_id if flag == "pricingTable" and len(value) > 100 else value
                expected += expected_calls(
                    spelling,
                    flag,
                    reported,
                    variation_id,
                    reason,
                    user_id=name,
                    user=USER_JSON[name] if name else None,
                    integration=INTEGRATION,
                    anonymous_id=anonymous_id,
                )
        # A flag that does not exist: the default value, reason ERROR and the SDK's error.
        details = configcat.get_value_details("doesNotExist", "fallback", USERS["carol"])
        assert details.value == "fallback" and details.error
        assert "doesNotExist" in details.error
        expected += expected_calls(
            spelling,
            "doesNotExist",
            "fallback",
            None,
            "ERROR",
            user_id="carol",
            user=USER_JSON["carol"],
            integration=INTEGRATION,
            anonymous_id=anonymous_id,
            error=details.error,
        )
        analytics.flush()

    events = stored(server, len(expected))
    # One consumer thread posts the batches in order, so the log has the calls in order.
    assert [view(e) for e in events] == expected
    for event in events:
        assert event["context"]["library"]["name"] == "analytics-python"
    evaluations = sum(len(flags) for flags in EXPECTED.values()) + 1
    assert tracking.stats == SenderStats(
        evaluations=evaluations,
        identifies_sent=evaluations - len(FLAGS),  # all but the anonymous ones
        tracks_sent=evaluations,
    )


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # None: never replaced, the whole JSON text is the value.
        (None, {"buttonColor": "green", "pricingTable": PRICING_JSON, "newCheckout": True}),
        # 4: "green" (5 characters) is replaced, booleans never are.
        (4, {"buttonColor": "vb-green", "pricingTable": "vp-full", "newCheckout": True}),
        (5, {"buttonColor": "green", "pricingTable": "vp-full", "newCheckout": True}),
    ],
    ids=["never", "4", "5"],
)
def test_long_text_values_are_replaced_by_the_variation_id(
    server: Server, configcat: ConfigCatClient, threshold: int | None, expected: dict[str, Any]
) -> None:
    with segment_client(server) as analytics:
        track_flag_evaluations(
            configcat,
            analytics,
            long_value_threshold=threshold,
            anonymous_id="anon-threshold",
        )
        for flag in expected:
            configcat.get_value(flag, FLAGS[flag], USERS["alice"])
        analytics.flush()
    tracks = [e for e in stored(server, 2 * len(expected)) if e["type"] == "track"]
    assert {e["properties"]["feature_flag_key"]: e["properties"]["value"] for e in tracks} == (
        expected
    )
    variation = {
        e["properties"]["feature_flag_key"]: e["properties"]["variation_id"] for e in tracks
    }
    assert variation == {
        "buttonColor": "vb-green",
        "pricingTable": "vp-full",
        "newCheckout": "vc-country",
    }


def test_without_a_user_the_anonymous_id_is_stable_for_the_process(
    server: Server, configcat: ConfigCatClient
) -> None:
    with segment_client(server) as analytics:
        first = track_flag_evaluations(configcat, analytics)
        configcat.get_value("newCheckout", False)
        configcat.get_value("maxItems", 0)
        first.detach()
        # Another subscription (or another client) in the same process: the same id.
        track_flag_evaluations(configcat, analytics, spelling="source_page")
        configcat.get_value("buttonColor", "")
        analytics.flush()
    events = stored(server, 3)
    assert [e["type"] for e in events] == ["track"] * 3  # no identify without a user
    assert {e["anonymousId"] for e in events} == {process_anonymous_id()}
    assert all("userId" not in e and "user" not in e["properties"] for e in events)
    assert str(uuid.UUID(process_anonymous_id())) == process_anonymous_id()

    # Another process, and a forked child, each have their own id; the parent keeps its.
    script = textwrap.dedent(
        """
        import os
        from trackway_flags.flag_events import process_anonymous_id
        parent = process_anonymous_id()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, process_anonymous_id().encode())
            os._exit(0)
        os.waitpid(pid, 0)
        print(parent, os.read(read, 100).decode(), process_anonymous_id())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    parent, child, parent_again = out
    assert parent == parent_again
    assert len({parent, child, process_anonymous_id()}) == 3


def run_load(configcat: ConfigCatClient, users: int, flags: list[str], rounds: int) -> int:
    """`rounds` evaluations of each flag for each user; returns how many evaluations."""
    count = 0
    for _ in range(rounds):
        for i in range(users):
            user = User(f"load-{i:02d}", custom={"plan": ("enterprise", "free", "pro")[i % 3]})
            for flag in flags:
                configcat.get_value(flag, FLAGS[flag], user)
                count += 1
    return count


# 20 users x 5 flags x 10 evaluations each: the numbers in docs/flag-events.md.
LOAD_USERS, LOAD_ROUNDS = 20, 10


@pytest.mark.parametrize(
    ("window", "identifies", "tracks"),
    [(None, 1000, 1000), (3600.0, LOAD_USERS, LOAD_USERS * len(FLAGS))],
    ids=["no-dedup", "dedup-1h"],
)
def test_dedup_sends_each_user_flag_and_variation_once_per_window(
    server: Server,
    configcat: ConfigCatClient,
    window: float | None,
    identifies: int,
    tracks: int,
) -> None:
    now = [1000.0]
    with segment_client(server) as analytics:
        tracking = track_flag_evaluations(
            configcat,
            analytics,
            dedup_window_s=window,
            clock=lambda: now[0],
        )
        evaluations = run_load(configcat, LOAD_USERS, list(FLAGS), LOAD_ROUNDS)
        assert evaluations == 1000
        analytics.flush()
        events = stored(server, identifies + tracks)
        assert Counter(e["type"] for e in events) == {"identify": identifies, "track": tracks}
        assert tracking.stats == SenderStats(
            evaluations=1000,
            identifies_sent=identifies,
            tracks_sent=tracks,
            identifies_deduplicated=1000 - identifies,
            tracks_deduplicated=1000 - tracks,
        )
        if window is None:
            return
        # Within the window each (user, flag, variation) was stored once.
        seen = Counter(
            (e["userId"], e["properties"]["feature_flag_key"], e["properties"]["variation_id"])
            for e in events
            if e["type"] == "track"
        )
        assert set(seen.values()) == {1} and len(seen) == tracks
        # Just before the window ends: still nothing; after it: each is sent once more.
        now[0] += window - 0.5
        run_load(configcat, LOAD_USERS, list(FLAGS), 1)
        now[0] += 0.5
        run_load(configcat, LOAD_USERS, list(FLAGS), 2)
        analytics.flush()
    assert len(stored(server, 2 * (identifies + tracks))) == 2 * (identifies + tracks)


def test_dedup_memory_is_bounded(configcat: ConfigCatClient) -> None:
    # A real analytics client that sends nothing (send=False): only the counters matter.
    analytics = Client("unused", send=False, sync_mode=True)
    tracking = track_flag_evaluations(
        configcat,
        analytics,
        dedup_window_s=3600,
        dedup_max_entries=5,
        anonymous_id="anon-bounded",
    )
    for flag in FLAGS:  # 5 distinct tracks: all remembered
        configcat.get_value(flag, FLAGS[flag])
    configcat.get_value("newCheckout", False)
    assert tracking.stats.tracks_sent == 5 and tracking.stats.tracks_deduplicated == 1
    assert tracking.sender.dedup is not None and len(tracking.sender.dedup) == 5
    # An identify and a track for alice push out the two oldest keys (newCheckout and
    # buttonColor without a user)...
    configcat.get_value("maxItems", 0, USERS["alice"])
    assert len(tracking.sender.dedup) == 5
    # ...so newCheckout is sent again although its window has not ended.
    configcat.get_value("newCheckout", False)
    assert tracking.stats.tracks_sent == 7
    assert len(tracking.sender.dedup) == 5


class Exploding:
    """An analytics client that raises on every call."""

    def identify(self, **kwargs: Any) -> None:
        raise RuntimeError("analytics is down")

    def track(self, **kwargs: Any) -> None:
        raise RuntimeError("analytics is down")


class Recorder:
    """An analytics client that raises on its first `fail` calls, then records."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def identify(self, **kwargs: Any) -> None:
        self._call("identify", kwargs)

    def track(self, **kwargs: Any) -> None:
        self._call("track", kwargs)

    def _call(self, method: str, kwargs: dict[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("not yet")
        self.calls.append((method, kwargs))


def test_a_failing_analytics_client_never_reaches_the_evaluation(
    configcat: ConfigCatClient, caplog: pytest.LogCaptureFixture
) -> None:
    configcat_errors: list[str] = []
    configcat.get_hooks().add_on_error(configcat_errors.append)
    tracking = track_flag_evaluations(configcat, Exploding())
    with caplog.at_level(logging.WARNING, logger="trackway_flags.flag_events"):
        for name, flags in EXPECTED.items():
            user = USERS[name] if name else None
            for flag, (value, variation_id, _) in flags.items():
                details = configcat.get_value_details(flag, FLAGS[flag], user)
                assert (details.value, details.variation_id, details.error) == (
                    value,
                    variation_id,
                    None,
                )
    # ConfigCat reports an exception escaping a hook through on_error: there was none.
    assert configcat_errors == []
    evaluations = sum(len(f) for f in EXPECTED.values())
    with_user = evaluations - len(FLAGS)
    assert tracking.stats == SenderStats(evaluations=evaluations, errors=evaluations + with_user)
    failures = [r for r in caplog.records if r.name == "trackway_flags.flag_events"]
    assert len(failures) == evaluations + with_user
    assert all(r.exc_info and "analytics is down" in str(r.exc_info[1]) for r in failures)
    assert "could not track for flag 'newCheckout'" in caplog.text


def test_a_failed_send_is_retried_at_the_next_evaluation_despite_dedup(
    configcat: ConfigCatClient,
) -> None:
    analytics = Recorder(fail=2)  # the first identify and track fail
    tracking = track_flag_evaluations(
        configcat,
        analytics,
        dedup_window_s=60,
    )
    configcat.get_value("newCheckout", False, USERS["bob"])
    assert analytics.calls == []
    configcat.get_value("newCheckout", False, USERS["bob"])
    configcat.get_value("newCheckout", False, USERS["bob"])
    assert [m for m, _ in analytics.calls] == ["identify", "track"]
    assert analytics.calls[1][1]["properties"]["variation_id"] == "vc-beta"
    assert tracking.stats == SenderStats(
        evaluations=3,
        identifies_sent=1,
        tracks_sent=1,
        identifies_deduplicated=1,
        tracks_deduplicated=1,
        errors=2,
    )


def test_detach_stops_sending(server: Server, configcat: ConfigCatClient) -> None:
    with segment_client(server) as analytics:
        tracking = track_flag_evaluations(configcat, analytics)
        configcat.get_value("maxItems", 0, USERS["frank"])
        tracking.detach()
        configcat.get_value("maxItems", 0, USERS["frank"])
        configcat.get_value("discount", 0.0)
        analytics.flush()
    assert [e["type"] for e in stored(server, 2)] == ["identify", "track"]
    assert tracking.stats.evaluations == 1


def test_odd_values_and_users_are_sent_as_json(server: Server, configcat: ConfigCatClient) -> None:
    signup = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    dated = User("dana", email="d@example.com", custom={"signup": signup, "tags": ["a", "b"]})
    opaque = User("otto", country="NL", custom={"thing": object()})  # not JSON: str() fails
    with segment_client(server) as analytics:
        track_flag_evaluations(configcat, analytics)
        configcat.get_value("newCheckout", False, dated)
        configcat.get_value("newCheckout", False, opaque)
        # A NaN default would be invalid JSON and make Trackway refuse the whole batch.
        assert configcat.get_value("doesNotExist", float("nan"), dated) != 0
        analytics.flush()
    events = stored(server, 6)
    traits = [e["traits"] for e in events if e["type"] == "identify"]
    assert traits[0] == {
        "Identifier": "dana",
        "Email": "d@example.com",
        "signup": "2024-05-06T07:08:09+00:00",
        "tags": ["a", "b"],
    }
    assert traits[1] == {"Identifier": "otto", "Country": "NL"}  # the predefined ones
    nan = events[-1]["properties"]
    assert nan["value"] == "nan" and nan["reason"] == "ERROR"


def test_options_are_checked(configcat: ConfigCatClient) -> None:
    analytics = Recorder()
    with pytest.raises(ValueError, match="spelling"):
        track_flag_evaluations(configcat, analytics, spelling="camel")
    with pytest.raises(ValueError, match="long_value_threshold"):
        track_flag_evaluations(configcat, analytics, long_value_threshold=-1)
    with pytest.raises(ValueError, match="dedup window"):
        track_flag_evaluations(configcat, analytics, dedup_window_s=0)
    with pytest.raises(ValueError, match="max_entries"):
        track_flag_evaluations(configcat, analytics, dedup_window_s=1, dedup_max_entries=0)
    configcat.get_value("newCheckout", False)
    assert analytics.calls == []  # nothing was subscribed


# -- the optional dependencies and the package boundary ---------------------------------


def test_the_hooks_import_without_the_flag_sdks() -> None:
    """trackway_flags and its ConfigCat hook import with configcat-client and
    openfeature-sdk absent (the hook reads the SDK's objects, it imports nothing of
    it); only the OpenFeature hook needs openfeature-sdk. The server imports without
    them too."""
    script = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        for name in ("configcatclient", "openfeature", "configcat_openfeature_provider"):
            sys.modules[name] = None  # makes `import name` raise ImportError
        import trackway, trackway_flags
        for package in (trackway, trackway_flags):
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                if info.name in ("trackway.__main__", "trackway_flags.openfeature_hook"):
                    continue
                importlib.import_module(info.name)
        try:
            importlib.import_module("trackway_flags.openfeature_hook")
        except ImportError:
            pass
        else:
            raise AssertionError("openfeature_hook imported without openfeature")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_server_and_the_hooks_share_no_code() -> None:
    """One source of truth in each direction: the server package neither imports
    trackway_flags nor keeps a module of the hooks, and trackway_flags imports nothing
    of trackway (an application installs it without the server)."""
    offenders = []
    seen = 0
    for root, foreign in ((SRC, "trackway_flags"), (FLAGS_SRC, "trackway")):
        for path in root.rglob("*.py"):
            seen += 1
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == foreign or n.startswith(f"{foreign}.") for n in names):
                    offenders.append(str(path))
    assert offenders == []
    assert seen > 20  # the walk did see both packages
    hooks = {p.name for p in FLAGS_SRC.glob("*.py")} - {"__init__.py"}
    assert hooks == {"flag_events.py", "configcat_hook.py", "openfeature_hook.py"}
    assert not [p for p in SRC.rglob("*.py") if p.name in hooks]
