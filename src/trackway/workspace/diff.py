"""What `trackway apply` changes in a stored object: one line per changed field,
`~ destination 'x': settings.url: 'a' -> 'b'`, with secrets masked."""

import re
from collections.abc import Callable
from typing import Any

from trackway import codec

MASK = "********"
_MAX_SHOWN = 80
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")

Secret = Callable[[str], bool]
"""Whether the field at a path (`settings.shared_secret`) holds a secret."""


def field_changes(
    kind: str, name: str, old: Any, new: Any, secret: Secret = lambda path: False
) -> list[str]:
    """The changed fields of `old` -> `new` (plain JSON data), one line each; a field
    that is absent is shown as `(default)`."""
    lines: list[str] = []
    for path, before, after in _changes("", old, new):
        if secret(path):
            shown = f"{path}: changed (secret, {MASK})"
        else:
            shown = f"{path}: {_show(before)} -> {_show(after)}"
        lines.append(f"~ {kind} '{name}': {shown}")
    return lines


def with_changes(line: str, changes: list[str]) -> str:
    """A change line followed by its field changes, indented."""
    return "".join([line, *(f"\n  {change}" for change in changes)])


_ABSENT = object()


def _changes(path: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted({*old, *new}):
            inner = f"{path}.{key}" if path else str(key)
            found += _changes(inner, old.get(key, _ABSENT), new.get(key, _ABSENT))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            found += _changes(f"{path}[{index}]", before, after)
        return found
    return [(path, old, new)]


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(default)"
    if isinstance(value, str) and "\n" in value.strip():
        return f"<{len(value.splitlines())} lines>"
    text = repr(value) if isinstance(value, str) else codec.dumps_text(value)
    text = _URL_PASSWORD.sub(rf"\1{MASK}@", " ".join(text.split()))
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"
