"""Parsing FQL: every form, precedence, printing back, and errors with their positions."""

import pytest

from trackway import fql
from trackway.fql.parser import And, Call, Compare, In, Node, Not, Or, parse

TYPE_TRACK = Compare(("type",), "=", "track")
EVENT_A = Compare(("event",), "=", "A")
EVENT_B = Compare(("event",), "=", "B")


@pytest.mark.parametrize(
    ("text", "node"),
    [
        ('type = "track"', TYPE_TRACK),
        ('event = "Order Completed"', Compare(("event",), "=", "Order Completed")),
        ('name = "Home"', Compare(("name",), "=", "Home")),
        ('userId != "u1"', Compare(("userId",), "!=", "u1")),
        ("properties.price < 10", Compare(("properties", "price"), "<", 10)),
        ("properties.price <= 10.5", Compare(("properties", "price"), "<=", 10.5)),
        ("traits.logins > -3", Compare(("traits", "logins"), ">", -3)),
        ("context.screen.width >= 1e3", Compare(("context", "screen", "width"), ">=", 1000.0)),
        ('properties.price >= "100"', Compare(("properties", "price"), ">=", "100")),
        ("userId != null", Compare(("userId",), "!=", None)),
        ("traits.email = null", Compare(("traits", "email"), "=", None)),
        ("properties.premium = true", Compare(("properties", "premium"), "=", True)),
        ("properties.premium = false", Compare(("properties", "premium"), "=", False)),
        ('contains(event, "Nike")', Call("contains", ("event",), "Nike")),
        (
            '!contains(properties.name, "Nike")',
            Not(Call("contains", ("properties", "name"), "Nike")),
        ),
        ('match(event, "Order*")', Call("match", ("event",), "Order*")),
        (
            'match(traits.email, "*@example.com")',
            Call("match", ("traits", "email"), "*@example.com"),
        ),
        ('!match(event, "X*")', Not(Call("match", ("event",), "X*"))),
        ('type in ["track", "page"]', In(("type",), ("track", "page"))),
        ("properties.n in [1, 2.5, true, null]", In(("properties", "n"), (1, 2.5, True, None))),
        ('type = "track" and event = "A"', And((TYPE_TRACK, EVENT_A))),
        ('event = "A" or event = "B"', Or((EVENT_A, EVENT_B))),
        ('!(event = "A")', Not(EVENT_A)),
        ('!event = "A"', Not(EVENT_A)),
        (
            "properties.items.0.sku != null",
            Compare(("properties", "items", "0", "sku"), "!=", None),
        ),
        (r"properties.first\ name = 1", Compare(("properties", "first name"), "=", 1)),
        (r"properties.a\.b\-c = 1", Compare(("properties", "a.b-c"), "=", 1)),
        ("properties.prénom = 1", Compare(("properties", "prénom"), "=", 1)),
        ('event = "say \\"hi\\"\\n\\u00e9"', Compare(("event",), "=", 'say "hi"\né')),
        ('type="track"and(event="A")', And((TYPE_TRACK, EVENT_A))),
    ],
)
def test_every_form_parses_to_its_node(text: str, node: Node) -> None:
    assert parse(text) == node


def test_and_binds_tighter_than_or() -> None:
    assert parse('type = "track" or event = "A" and event = "B"') == Or(
        (TYPE_TRACK, And((EVENT_A, EVENT_B)))
    )
    assert parse('event = "A" and event = "B" or type = "track"') == Or(
        (And((EVENT_A, EVENT_B)), TYPE_TRACK)
    )


def test_parentheses_group_and_nest() -> None:
    assert parse('(type = "track" or event = "A") and event = "B"') == And(
        (Or((TYPE_TRACK, EVENT_A)), EVENT_B)
    )
    assert parse('((type = "track"))') == TYPE_TRACK
    assert parse('!(type = "track" or !(event = "A" and event = "B"))') == Not(
        Or((TYPE_TRACK, Not(And((EVENT_A, EVENT_B)))))
    )


def test_nesting_up_to_the_limit() -> None:
    assert parse("(" * 100 + 'type = "track"' + ")" * 100) == TYPE_TRACK
    node = parse("!" * 100 + 'type = "track"')
    assert parse(str(node)) == node


def test_not_binds_tightest() -> None:
    assert parse('!type = "track" and event = "A"') == And((Not(TYPE_TRACK), EVENT_A))
    assert parse('!!type = "track"') == Not(Not(TYPE_TRACK))


@pytest.mark.parametrize(
    "text",
    [
        # Every expression in Segment's own parser tests (destination-subscriptions).
        'type = "track"',
        'type = "track" or type = "identify"',
        'event = "Product Added"',
        "userId != null",
        'name = "Home"',
        'event = "Product Added" or event = "Order Completed"',
        'type = "track" and event = "Product Added"',
        'type = "track" and (event = "Product Added" or event = "Order Completed")',
        'event = "Product Added" and properties.price >= 100',
        'event = "identify" and traits.logins >= 10',
        'event = "Product Added" and properties.price >= 100 and properties.premium = "true"',
        'event = "identify" and traits.logins >= 10 and traits.plan = "premium"',
        '(event = "Product Added" and properties.price >= 100) or '
        '(event = "Order Completed" and properties.total >= 500)',
        '(event = "identify" and traits.logins >= 100) or '
        '(event = "Signed Up" and traits.age >= 50)',
        'contains(event, "Nike")',
        'event = "Product Added" and contains(properties.name, "Nike")',
        'event = "Product Added" and contains(traits.name, "Nike")',
        '!contains(event, "Nike")',
        'event = "Product Added" and !contains(properties.name, "Nike")',
        'match(event, "X*")',
        'event = "Product Added" and !match(traits.name, "*X")',
        'event = "Product Added" and properties.name != null',
        'event = "Product Added" and traits.name = null',
        'contains(context.page.url, "checkout")',
    ],
)
def test_accepts_what_segment_accepts(text: str) -> None:
    expression = fql.compile(text)
    # Segment's generator writes these back character for character; so does Trackway
    assert str(expression) == text


@pytest.mark.parametrize(
    ("node", "text"),
    [
        (Not(And((TYPE_TRACK, EVENT_A))), '!(type = "track" and event = "A")'),
        (Not(Call("contains", ("event",), "x")), '!contains(event, "x")'),
        (Not(TYPE_TRACK), '!(type = "track")'),
        (
            And((Or((TYPE_TRACK, EVENT_A)), EVENT_B)),
            '(type = "track" or event = "A") and event = "B"',
        ),
        (
            And((And((TYPE_TRACK, EVENT_A)), EVENT_B)),
            '(type = "track" and event = "A") and event = "B"',
        ),
        (
            Or((And((TYPE_TRACK, EVENT_A)), EVENT_B)),
            '(type = "track" and event = "A") or event = "B"',
        ),
        (
            Or((Or((TYPE_TRACK, EVENT_A)), EVENT_B)),
            '(type = "track" or event = "A") or event = "B"',
        ),
        (Compare(("properties", "a b", "c.d"), "=", 'q"\\'), r'properties.a\ b.c\.d = "q\"\\"'),
        (
            In(("properties", "plan"), ("a", 1, 2.5, True, None)),
            'properties.plan in ["a", 1, 2.5, true, null]',
        ),
    ],
)
def test_prints_back_as_fql(node: Node, text: str) -> None:
    assert str(node) == text
    assert parse(text) == node


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty expression", 0),
        ("   ", "empty expression", 3),
        ("type", "expected an operator (=, !=, <, <=, >, >=) or 'in', found the end", 4),
        ("type = ", "expected a value after '=', found the end of the expression", 7),
        ('type * "x"', "unexpected character '*'", 5),
        ('typo = "x"', "unknown field 'typo'", 0),
        ('type = "track" and evnt = "x"', "unknown field 'evnt'", 19),
        ('type = "track', "unterminated string", 7),
        ('type = "a\\qb"', "invalid escape in string", 9),
        ('properties.price > "ten"', "'>' compares numbers; \"ten\" is not a number", 19),
        ("properties.price > true", "'>' compares numbers; true is not a number", 19),
        ("properties.price > 12abc", "invalid number", 19),
        ("properties.price > 1e999", "number out of range", 19),
        (
            'type = "track" event = "A"',
            "expected 'and', 'or' or the end of the expression, found 'event'",
            15,
        ),
        ('(type = "track"', "expected 'and', 'or' or ')', found the end of the expression", 15),
        ('type = "track")', "expected 'and', 'or' or the end of the expression, found ')'", 14),
        ('type = "track" and', "expected a field name, found the end of the expression", 18),
        ('type = "track" and or', "expected a field name, found 'or'", 19),
        ("properties. = 1", "empty name in field path", 11),
        ("properties..a = 1", "empty name in field path", 11),
        ("type in []", "expected a value in the list, found ']'", 9),
        ('type in ["a" "b"]', "expected ',' or ']', found '\"b\"'", 13),
        ('type in "a"', "expected '[', found '\"a\"'", 8),
        ('contains(event "x")', "expected ',', found '\"x\"'", 15),
        (
            "contains(event, 5)",
            "expected a string as the second argument of contains(), found '5'",
            16,
        ),
        ('match("x", event)', "expected a field name, found '\"x\"'", 6),
        ("type = track", "expected a value after '=', found 'track'", 7),
        ("properties\\", "a backslash must be followed by a character", 10),
        ('type = "a" and\nevnt = "b"', "unknown field 'evnt'", 15),
        ("properties.x > " + "1" * 5000, "number out of range", 15),
        (
            "(" * 101 + 'type = "track"' + ")" * 101,
            "the expression nests more than 100 levels",
            100,
        ),
        ("!" * 101 + 'type = "track"', "the expression nests more than 100 levels deep", 100),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, position: int) -> None:
    with pytest.raises(fql.FQLError) as caught:
        fql.compile(text)
    assert caught.value.message.startswith(message)
    assert caught.value.position == position


def test_error_display_points_at_the_problem() -> None:
    with pytest.raises(fql.FQLError) as caught:
        fql.compile('type = "track" and evnt = "x"')
    lines = str(caught.value).splitlines()
    assert lines[0].startswith("unknown field 'evnt'; a field path starts with one of messageId")
    assert lines[0].endswith(" at column 19")
    assert lines[1:] == ['  type = "track" and evnt = "x"', "                     ^"]


def test_error_display_on_a_later_line() -> None:
    with pytest.raises(fql.FQLError) as caught:
        fql.compile('type = "a"\n  and evnt = "b"')
    lines = str(caught.value).splitlines()
    assert lines[0].endswith(" at line 2, column 6")
    assert lines[1:] == ['    and evnt = "b"', "        ^"]


def test_error_without_text_still_names_the_column() -> None:
    assert str(fql.FQLError("oops", 4)) == "oops (column 4)"
