"""Evaluating FQL on stored events: every form of the reference, and the edge cases."""

from datetime import UTC, datetime
from typing import Any

import pytest

from trackway import fql
from trackway.fql.evaluate import MISSING, lookup
from trackway.fql.lexer import as_text

ORDER: dict[str, Any] = {
    "type": "track",
    "event": "Order Completed",
    "userId": "user-1",
    "anonymousId": None,
    "properties": {
        "total": 120.5,
        "count": 3,
        "coupon": "",
        "premium": True,
        "trial": False,
        "sku": "SKU-42",
        "price": "99",
        "products": [{"sku": "A", "tags": ["x"]}, {"sku": "B"}],
        "address": {"city": "Paris"},
        "first name": "Ann",
    },
    "context": {"page": {"url": "https://shop.example.com/checkout?step=2"}, "locale": "fr-FR"},
}
IDENTIFY: dict[str, Any] = {
    "type": "identify",
    "userId": "user-2",
    "traits": {"email": "ann@example.com", "logins": 10, "plan": "premium", "beta": "true"},
}
PAGE: dict[str, Any] = {"type": "page", "name": "Home", "anonymousId": "anon-1"}


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        # The forms of the reference, one by one.
        ('type = "track"', ORDER, True),
        ('type = "track"', IDENTIFY, False),
        ('event = "Order Completed"', ORDER, True),
        ('event = "Order"', ORDER, False),
        ('name = "Home"', PAGE, True),
        ('userId = "user-1"', ORDER, True),
        ('event != "Order Completed"', ORDER, False),
        ('event != "Signed Up"', ORDER, True),
        ('event != "Signed Up"', PAGE, True),  # no event at all is not "Signed Up"
        ("properties.total < 200", ORDER, True),
        ("properties.total < 120.5", ORDER, False),
        ("properties.total <= 120.5", ORDER, True),
        ("properties.total > 120", ORDER, True),
        ("properties.total >= 121", ORDER, False),
        ("traits.logins >= 10", IDENTIFY, True),
        ("properties.price > 50", ORDER, False),  # only numbers compare, not "99"
        ('properties.count >= "3"', ORDER, True),
        ("properties.sku > 1", ORDER, False),  # not a number: never matches
        ("properties.premium > 0", ORDER, False),  # booleans are not numbers
        ("properties.missing < 1", ORDER, False),
        ("userId != null", ORDER, True),
        ("userId != null", PAGE, False),
        ("anonymousId = null", ORDER, True),  # null counts as absent
        ("properties.coupon != null", ORDER, True),  # "" is present
        ("traits.email = null", ORDER, True),
        ("properties.premium = true", ORDER, True),
        ("properties.trial = false", ORDER, True),
        ("properties.trial = true", ORDER, False),
        ("traits.beta = true", IDENTIFY, False),  # typed, as in Segment: "true" is text
        ('properties.premium = "true"', ORDER, False),
        ('traits.beta = "true"', IDENTIFY, True),
        ("properties.count = 3", ORDER, True),
        ("properties.count = 3.0", ORDER, True),
        ('properties.count = "3"', ORDER, False),  # a quoted number is text
        ("properties.price = 99", ORDER, False),  # "99" is text, not a number
        ('properties.price = "99"', ORDER, True),
        ('properties.total = "120.5"', ORDER, False),
        ("properties.count != 4", ORDER, True),
        ("properties.price != 4", ORDER, False),  # != a number: numbers only
        ("properties.missing != 4", ORDER, False),
        ('properties.missing != "4"', ORDER, True),
        ("properties.missing != true", ORDER, True),
        ('!contains(properties.sku, "X")', ORDER, True),
        ('!contains(properties.missing, "X")', ORDER, False),  # not a string
        ('!match(properties.count, "*")', ORDER, False),
        ('!(contains(properties.missing, "X") and type = "track")', ORDER, True),
        ("userId = 1", {"userId": "1"}, True),  # userId, type, event, name: text
        ("event != 1", {"event": "1"}, False),
        ("name = true", {"name": "true"}, True),
        ("userId = true", {"userId": "true"}, False),
        ("properties.total < 1e300", {"properties": {"total": "9" * 5000}}, False),  # too big
        ("properties.address = null", ORDER, False),
        ('properties.address = "[object Object]"', ORDER, False),  # objects equal nothing
        ('contains(event, "Completed")', ORDER, True),
        ('contains(event, "completed")', ORDER, False),  # case matters
        ('contains(context.page.url, "checkout")', ORDER, True),
        ('contains(properties.count, "3")', ORDER, False),  # strings only
        ('contains(event, "Order")', PAGE, False),
        ('!contains(event, "Refund")', ORDER, True),
        ('!contains(event, "Order")', ORDER, False),
        ('match(event, "Order*")', ORDER, True),
        ('match(event, "*Completed")', ORDER, True),
        ('match(event, "*Refunded")', ORDER, False),
        ('match(traits.email, "*@example.com")', IDENTIFY, True),
        ('match(event, "Order Completed")', ORDER, True),  # no wildcard: the whole string
        ('match(event, "Order")', ORDER, False),
        ('match(event, "O*C*d")', ORDER, True),
        ('match(event, "Order Complete?")', ORDER, True),
        ('match(event, "*.*")', ORDER, False),  # only * and ? are special
        ('!match(event, "Order*")', ORDER, False),
        ('type = "track" and event = "Order Completed"', ORDER, True),
        ('type = "track" and event = "Signed Up"', ORDER, False),
        ('type = "identify" or event = "Order Completed"', ORDER, True),
        ('type = "identify" or event = "Signed Up"', ORDER, False),
        # Precedence, parentheses, negation, `in`.
        ('type = "page" or type = "track" and event = "Signed Up"', ORDER, False),
        ('type = "page" or type = "track" and event = "Signed Up"', PAGE, True),
        ('(type = "page" or type = "track") and event = "Signed Up"', PAGE, False),
        ('!(type = "page" or type = "identify")', ORDER, True),
        ('!type = "track"', ORDER, False),
        ('type in ["track", "page"]', ORDER, True),
        ('type in ["track", "page"]', IDENTIFY, False),
        ("properties.count in [1, 2, 3]", ORDER, True),
        ("anonymousId in [null]", ORDER, True),
        ('properties.coupon in [null, "x"]', ORDER, False),
        ('!(type in ["track", "page"])', IDENTIFY, True),
        # Paths.
        ('properties.products.1.sku = "B"', ORDER, True),
        ('properties.products.0.tags.0 = "x"', ORDER, True),
        ("properties.products.2 = null", ORDER, True),
        ("properties.sku.0 = null", ORDER, True),  # strings have no items
        ('properties.address.city = "Paris"', ORDER, True),
        (r'properties.first\ name = "Ann"', ORDER, True),
        ('context.locale = "fr-FR"', ORDER, True),
    ],
)
def test_matches(text: str, event: dict[str, Any], expected: bool) -> None:
    assert fql.compile(text).matches(event) is expected


def test_identify_traits_are_traits_not_properties() -> None:
    # Trackway reads the path as written (Segment's subscriptions also read
    # `properties.*` of identify and group calls from their traits).
    assert not fql.compile('properties.plan = "premium"').matches(IDENTIFY)
    assert fql.compile('traits.plan = "premium"').matches(IDENTIFY)


def test_an_event_that_is_not_an_object_cannot_be_evaluated() -> None:
    with pytest.raises(fql.EvaluationError, match="the event is a list, not an object"):
        fql.compile('type = "track"').matches([ORDER])


def test_a_value_that_is_not_json_cannot_be_evaluated() -> None:
    event = {"type": "track", "timestamp": datetime(2026, 1, 1, tzinfo=UTC)}
    expression = fql.compile('type = "track" and timestamp != null')
    with pytest.raises(fql.EvaluationError, match="timestamp holds a datetime, not JSON"):
        expression.matches(event)
    # a field the expression does not reach is not a problem
    assert fql.compile('type = "track"').matches(event)


def test_the_expression_prints_as_canonical_fql() -> None:
    expression = fql.compile(' type="track"   and(event = "A"  or event="B")')
    assert str(expression) == 'type = "track" and (event = "A" or event = "B")'
    assert fql.compile(str(expression)) == expression


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ((), ORDER),
        (("properties", "count"), 3),
        (("properties", "products", "1", "sku"), "B"),
        (("properties", "products", "01", "sku"), "B"),
        (("properties", "products", "-1"), MISSING),
        (("properties", "products", "²"), MISSING),
        (("properties", "products", "1" * 5000), MISSING),
        (("properties", "nope", "x"), MISSING),
        (("anonymousId",), None),
        (("anonymousId", "x"), MISSING),
    ],
)
def test_lookup(path: tuple[str, ...], expected: Any) -> None:
    found = lookup(ORDER, path)
    assert found is MISSING if expected is MISSING else found == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "true"), (False, "false"), (10, "10"), (10.0, "10"), (1.5, "1.5"), ("x", "x")],
)
def test_as_text_writes_scalars_as_javascript_does(value: Any, text: str) -> None:
    assert as_text(value) == text


@pytest.mark.parametrize(
    ("text", "event", "trackway", "segment"),
    [
        # The intended differences from Segment (docs/fql-and-mappings.md, "Differences
        # from Segment"): what Trackway matches, and what Segment's evaluator would.
        ('!(type = "track")', {"type": "track"}, False, True),  # Segment drops the !
        ('type = "page" or type = "track" and event = "A"', {"type": "page"}, True, False),
        ('match(event, "abc")', {"event": "xbc"}, False, True),  # Segment: ends with "bc"
        ("event = null", {"type": "page"}, True, False),  # Segment: the text "null"
        ("properties.x != true", {"properties": {"x": True}}, False, True),  # the text "true"
    ],
)
def test_intended_differences_from_segment(
    text: str, event: dict[str, Any], trackway: bool, segment: bool
) -> None:
    assert trackway is not segment
    assert fql.compile(text).matches(event) is trackway
