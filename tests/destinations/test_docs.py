"""docs/destinations.md documents every shipped destination in full, and the example
destination of docs/destinations-authoring.md works as its own test says."""

import re
import sys
import types
from pathlib import Path

import pytest

from trackway.destinations.framework import Definition
from trackway.destinations.registry import definitions

DOCS = Path(__file__).parents[2] / "docs"


def section(name: str) -> str:
    text = (DOCS / "destinations.md").read_text()
    found = re.search(rf"^### {name}\n(.*?)(?=^#{{1,3}} |\Z)", text, re.DOTALL | re.MULTILINE)
    assert found, f"docs/destinations.md has no section '### {name}'"
    return found.group(1)


@pytest.mark.parametrize("definition", definitions().values(), ids=lambda d: d.name)
def test_every_setting_action_field_and_preset_is_documented(definition: Definition) -> None:
    text = section(definition.name)
    names = [setting.name for setting in definition.settings]
    for action in definition.actions:
        names += [action.name, *(field.name for field in action.fields)]
    missing = [name for name in names if f"`{name}`" not in text]
    missing += [preset.name for preset in definition.presets if preset.name not in text]
    assert not missing, f"undocumented in '### {definition.name}': {missing}"


def test_the_example_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    package, test = re.findall(
        r"```python\n(.*?)```", (DOCS / "destinations-authoring.md").read_text(), re.DOTALL
    )
    module = types.ModuleType("trackway.destinations.acme")
    exec(compile(package, "destinations-authoring.md (package)", "exec"), module.__dict__)
    assert isinstance(module.DEFINITION, Definition)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    scope: dict[str, object] = {}
    exec(compile(test, "destinations-authoring.md (test)", "exec"), scope)
    test_track = scope["test_track"]
    assert callable(test_track)
    test_track()
