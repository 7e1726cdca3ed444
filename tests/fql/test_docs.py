"""The FQL examples of docs/fql-and-mappings.md compile and print back as written."""

import re
from pathlib import Path

import pytest

from trackway import fql

DOC = Path(__file__).parents[2] / "docs" / "fql-and-mappings.md"
EXAMPLES = [
    line
    for block in re.findall(r"```fql\n(.*?)```", DOC.read_text(), re.DOTALL)
    for line in block.splitlines()
    if line.strip()
]


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize("text", EXAMPLES)
def test_documented_expression(text: str) -> None:
    assert str(fql.compile(text)) == text
