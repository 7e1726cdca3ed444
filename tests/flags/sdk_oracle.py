"""The official ConfigCat Python SDK evaluating a config offline: the oracle the evaluator,
the CLI and the OFREP endpoints are checked against.

The SDK reads the config as a local flag-override file (LocalOnly: no network), which
accepts a whole config_v6 document with its salt, segments and rules.
"""

import csv
import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configcatclient import ConfigCatClient, ConfigCatOptions, PollingMode
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.user import User as SdkUser

from trackway.flags.evaluate import User

DATA = Path(__file__).parent / "data"
# The SDK warns at every skipped rule; thousands of cells would drown the test output.
logging.getLogger("configcat").setLevel(logging.ERROR + 10)
NULL = "##null##"


class Oracle:
    """One SDK client holding one config."""

    def __init__(self, config: dict[str, Any], directory: Path) -> None:
        path = directory / f"config-{secrets.token_hex(6)}.json"
        path.write_text(json.dumps(config))
        self.client = ConfigCatClient.get(
            "configcat-sdk-1/" + "/".join(secrets.token_urlsafe(16)[:22] for _ in range(2)),
            ConfigCatOptions(
                polling_mode=PollingMode.manual_poll(),
                flag_overrides=LocalFileFlagOverrides(str(path), OverrideBehaviour.LocalOnly),
            ),
        )

    def details(self, key: str, user: User | None, default: Any = None) -> tuple[Any, Any, bool]:
        """(value, variation id, whether the SDK reported an error) for `user`."""
        got = self.client.get_value_details(key, default, sdk_user(user))
        return got.value, got.variation_id, got.error is not None

    def close(self) -> None:
        self.client.close()


def sdk_user(user: User | None) -> SdkUser | None:
    if user is None:
        return None
    attrs = dict(user.attributes)
    return SdkUser(
        user.identifier,
        attrs.pop("Email", None),
        attrs.pop("Country", None),
        {k: v for k, v in attrs.items() if k != "Identifier"} or None,
    )


@dataclass(frozen=True)
class Cell:
    """One cell of a ConfigCat test matrix: the user of a row, a flag, the expected text."""

    row: int
    user: User | None
    key: str
    expected: str


def matrix(name: str) -> Iterator[Cell]:
    """The cells of tests/flags/data/matrix/NAME (ConfigCat's `;`-separated layout)."""
    with (DATA / "matrix" / name).open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    header = rows[0]
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        given = [None if c in ("", NULL) else c for c in row[:4]]
        user = None
        if row[0] != NULL:
            custom = {header[3]: given[3]} if given[3] is not None else None
            user = User.of(row[0], given[1], given[2], custom)
        for key, expected in zip(header[4:], row[4:], strict=False):
            yield Cell(number, user, key, expected)
