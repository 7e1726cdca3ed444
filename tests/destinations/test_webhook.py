"""Webhook: method, URL, headers, body, the X-Signature HMAC and batches."""

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.destinations.fake_server import FakeServer
from trackway import codec, fql
from trackway.destinations.framework import (
    Discard,
    InvalidSettings,
    check_settings,
    validate_payload,
)
from trackway.destinations.http import HttpTransport
from trackway.destinations.pipeline import Subscription
from trackway.destinations.transport import Request
from trackway.destinations.webhook import DEFINITION
from trackway.mapping import compile_mapping

SEND = DEFINITION.action("send")
EVENT = {
    "messageId": "m-1",
    "type": "track",
    "event": "Order Completed",
    "userId": "user-1",
    "properties": {"total": 30, "currency": "EUR"},
    "timestamp": "2026-08-01T10:00:00Z",
}


@pytest.fixture
def hook() -> Iterator[FakeServer]:
    with FakeServer() as server:
        yield server


def payload(event: dict[str, Any], mapping: dict[str, Any] | None = None) -> dict[str, Any]:
    spec = {**SEND.default_mapping(), **(mapping or {})}
    return validate_payload(SEND, compile_mapping(spec).apply(event))


def settings(**values: Any) -> dict[str, Any]:
    return check_settings(DEFINITION, {"url": "https://hooks.example/in", **values})


def test_the_preset_sends_every_event_as_it_is() -> None:
    (preset,) = DEFINITION.presets
    assert (preset.name, preset.action) == ("Send all events", "send")
    subscription = fql.compile(preset.subscription)
    for kind in ("track", "identify", "page", "screen", "group", "alias"):
        assert subscription.matches({**EVENT, "type": kind})
    assert not subscription.matches({**EVENT, "type": "other"})
    request = SEND.perform(payload(EVENT), settings())
    assert request == Request(
        "POST",
        "https://hooks.example/in",
        {"content-type": "application/json"},
        codec.dumps(EVENT),
    )


def test_mapped_url_method_headers_and_data() -> None:
    mapping = {
        "url": {"@template": "https://hooks.example/users/{{userId}}"},
        "method": "PUT",
        "headers": {"Authorization": "Bearer t0ken", "X-Source": {"@path": "$.type"}},
        "data": {"name": {"@path": "$.event"}, "total": {"@path": "$.properties.total"}},
    }
    request = SEND.perform(payload(EVENT, mapping), settings())
    assert request.method == "PUT"
    assert request.url == "https://hooks.example/users/user-1"
    assert request.headers == {
        "content-type": "application/json",
        "Authorization": "Bearer t0ken",
        "X-Source": "track",
    }
    assert request.body == b'{"name":"Order Completed","total":30}'


def test_a_content_type_header_replaces_the_default() -> None:
    mapping = {"headers": {"Content-Type": "application/vnd.example+json"}}
    request = SEND.perform(payload(EVENT, mapping), settings())
    assert request.headers == {"Content-Type": "application/vnd.example+json"}


def test_the_signature_is_the_hmac_sha1_of_the_body() -> None:
    mapping = {"headers": {"x-signature": "forged"}}
    request = SEND.perform(payload(EVENT, mapping), settings(shared_secret="s3cret"))
    expected = hmac.new(b"s3cret", request.body, hashlib.sha1).hexdigest()
    assert request.headers == {"content-type": "application/json", "X-Signature": expected}
    assert request.body == codec.dumps(EVENT)


def test_a_batch_is_the_array_of_the_data_with_the_first_request_line() -> None:
    events = [{**EVENT, "messageId": f"m-{n}"} for n in range(3)]
    mapping = {"headers": {"X-Batch": "yes"}, "data": {"id": {"@path": "$.messageId"}}}
    assert SEND.perform_batch is not None
    request = SEND.perform_batch(
        [payload(e, mapping) for e in events], settings(shared_secret="s3cret")
    )
    assert (request.method, request.url) == ("POST", "https://hooks.example/in")
    assert request.body == b'[{"id":"m-0"},{"id":"m-1"},{"id":"m-2"}]'
    signature = hmac.new(b"s3cret", request.body, hashlib.sha1).hexdigest()
    assert request.headers == {
        "content-type": "application/json",
        "X-Batch": "yes",
        "X-Signature": signature,
    }


def test_without_a_url_setting_or_field_the_settings_are_invalid() -> None:
    with pytest.raises(InvalidSettings, match="'url' setting or map the 'url' field"):
        SEND.perform(payload(EVENT), check_settings(DEFINITION, {}))


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"Bad Name": "x"}, "header name 'Bad Name'"),
        ({"X-Evil": "a\r\nHost: other"}, "header 'X-Evil'"),
        ({"X-Number": 7}, "header 'X-Number'"),
        ({"X-Accent": "café"}, "header 'X-Accent'"),
    ],
)
def test_invalid_headers_are_discarded(headers: dict[str, Any], problem: str) -> None:
    with pytest.raises(Discard, match=problem):
        SEND.perform(payload(EVENT, {"headers": {"@literal": headers}}), settings())


def test_only_post_put_and_patch() -> None:
    with pytest.raises(Discard, match="must be one of"):
        payload(EVENT, {"method": "DELETE"})


def test_authentication_checks_the_url_setting() -> None:
    assert DEFINITION.authentication is not None
    assert DEFINITION.authentication(settings()) is None
    with pytest.raises(InvalidSettings, match="http:// or https://"):
        DEFINITION.authentication(settings(url="ftp://files.example/in"))


def test_delivered_to_a_real_endpoint(hook: FakeServer) -> None:
    request = SEND.perform(
        payload(EVENT, {"method": "PATCH"}), settings(url=f"{hook.url}/in", shared_secret="k")
    )
    transport = HttpTransport(allow_private=True)
    try:
        assert transport.send(request).status == 200
    finally:
        transport.close()
    (seen,) = hook.requests
    assert (seen.method, seen.path) == ("PATCH", "/in")
    assert json.loads(seen.body) == EVENT
    assert seen.headers["x-signature"] == hmac.new(b"k", seen.body, hashlib.sha1).hexdigest()


def test_an_event_its_mapping_cannot_use_is_discarded() -> None:
    mapping = {**SEND.default_mapping(), "url": {"@template": {"@path": "$.properties.total"}}}
    subscription = Subscription(
        "s", SEND, fql.compile('type = "track"'), compile_mapping(mapping), False
    )
    with pytest.raises(Discard, match=r"^url\.@template: expected text, got a number$"):
        subscription.payload(EVENT)
