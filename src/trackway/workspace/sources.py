"""Sources as users see them (CLI `--json`, admin API)."""

import re
import time
from typing import Any

from trackway.storage.base import StateStore
from trackway.storage.records import Source

SOURCE_TYPES = ("segment", "configcat")
"""`segment`: any Segment SDK or HTTP client; `configcat`: ConfigCat's change webhooks."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    """Source names are 1-64 letters, digits, `_`, `.` or `-`; raises ValueError otherwise."""
    if not _NAME.match(name):
        raise ValueError(
            f"invalid source name {name!r}: use 1-64 letters, digits, '_', '.' or '-',"
            " starting with a letter or digit"
        )
    return name


def source_json(store: StateStore, source: Source) -> dict[str, Any]:
    """A source with its current write key and any rotated-out keys still in their grace period."""
    now = time.time()
    keys = store.write_keys(source.id)
    current = next((k.key for k in keys if k.expires_at is None), None)
    previous = [
        {"write_key": k.key, "expires_at": k.expires_at}
        for k in keys
        if k.expires_at is not None and k.expires_at > now
    ]
    out: dict[str, Any] = {
        "id": source.public_id,
        "name": source.name,
        "write_key": current,
        "type": source.type,
        "enabled": source.enabled,
        "created_at": source.created_at,
    }
    if previous:
        out["previous_write_keys"] = previous
    return out
