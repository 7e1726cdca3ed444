"""check_code: what the server accepts as an insert function, without running it."""

import pytest

from trackway.functions import FunctionError, check_code


@pytest.mark.parametrize(
    "code",
    [
        "def transform(event, settings):\n    return event\n",
        "def transform(event, settings, extra=None):\n    return event\n",
        "def transform(*args):\n    return args[0]\n",
        "def transform(event, settings, /):\n    return event\n",
        "import json\n\ndef helper(e):\n    return e\n\ndef transform(e, s):\n    return e\n",
    ],
)
def test_accepts_a_transform_taking_event_and_settings(code: str) -> None:
    check_code(code)


def test_does_not_run_the_code() -> None:
    check_code("raise SystemExit(3)\n\ndef transform(event, settings):\n    return event\n")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("def transform(event, settings):\n    return event +\n", "line 2: invalid syntax"),
        ("def transform(event, settings):\n    return (event\n", "line 2: '(' was never closed"),
        (
            "x = 1\nreturn x\ndef transform(event, settings):\n    pass\n",
            "line 2: 'return' outside function",
        ),
        (
            "def process(event, settings):\n    return event\n",
            "must define a function transform(event, settings)",
        ),
        (
            "class F:\n    def transform(self, event, settings):\n        return event\n",
            "must define a function transform",
        ),
        ("transform = lambda event, settings: event\n", "must define a function transform"),
        (
            "\ndef transform(event):\n    return event\n",
            "line 2: transform must take two arguments",
        ),
        (
            "def transform(event, settings, extra):\n    return event\n",
            "line 1: transform must take two arguments",
        ),
        (
            "def transform(event, settings, *, key):\n    return event\n",
            "line 1: transform must take two arguments",
        ),
        (
            "async def transform(event, settings):\n    return event\n",
            "line 1: transform must be a plain def",
        ),
        ("x = '\0'\n", "null bytes"),
    ],
)
def test_rejects_code_that_cannot_be_used(code: str, message: str) -> None:
    with pytest.raises(FunctionError) as raised:
        check_code(code)
    assert message in str(raised.value)


def test_the_last_definition_counts() -> None:
    with pytest.raises(FunctionError, match="line 4: transform must take two arguments"):
        check_code("def transform(event, settings):\n    pass\n\ndef transform(event):\n    pass\n")
