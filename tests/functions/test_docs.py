"""docs/insert-functions.md: its example does what the page says, and the page names
every error class and failure kind."""

import json
import re
import typing
from pathlib import Path

from trackway.functions import FailureKind, FunctionPool, check_code
from trackway.functions.errors import FUNCTION_GLOBALS

DOC = (Path(__file__).parents[2] / "docs" / "insert-functions.md").read_text()
EXAMPLE = DOC[DOC.index("## Example") : DOC.index("## In Python")]


def test_the_example(pool: FunctionPool) -> None:
    [code] = re.findall(r"```python\n(.*?)```", EXAMPLE, re.DOTALL)
    event, result = (json.loads(b) for b in re.findall(r"```json\n(.*?)```", EXAMPLE, re.DOTALL))
    shown = re.search(r"settings `(\{.*?\})`", EXAMPLE)
    assert shown is not None
    settings = json.loads(shown[1])
    check_code(code)
    identify = {"type": "identify", "traits": {}}
    internal = {"type": "track", "properties": {"email": "bob@example.com"}}
    changed, refused, dropped = pool.run(code, [event, identify, internal], settings)
    assert changed.events == [result]
    assert refused.failure is not None and not refused.failure.retry
    message = " ".join(refused.failure.message.split())
    assert f"`{message}`" in " ".join(EXAMPLE.split())
    assert dropped.ok and dropped.events == []


def test_names_every_error_class_and_failure_kind() -> None:
    for name in [*FUNCTION_GLOBALS, *typing.get_args(FailureKind)]:
        assert f"`{name}" in DOC, name
