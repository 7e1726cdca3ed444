"""The mapping examples of docs/fql-and-mappings.md give the results they show."""

import json
import re
from pathlib import Path
from typing import Any

import pytest

from trackway.mapping import DIRECTIVES, compile_mapping

DOC = Path(__file__).parents[2] / "docs" / "fql-and-mappings.md"
EXAMPLES = [
    example
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(), re.DOTALL)
    if "mapping" in (example := json.loads(block))
]


def test_every_directive_has_an_example() -> None:
    shown = set(re.findall(r'"(@\w+)"', json.dumps(EXAMPLES)))
    assert set(DIRECTIVES) <= shown


@pytest.mark.parametrize("example", EXAMPLES)
def test_documented_mapping(example: dict[str, Any]) -> None:
    assert compile_mapping(example["mapping"]).apply(example["event"]) == example["result"]
