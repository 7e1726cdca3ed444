"""Flag environments in the workspace state: each is one config_v6 served at one SDK key.

They are stored as named objects (kind `flags`, name = environment name) in the state
store, so both backends keep them without a table of their own.
"""

import base64
import re
import secrets
from typing import Any, Literal

import msgspec

from trackway.flags.compile import SETTING_TYPES
from trackway.storage.base import StateStore

KIND = "flags"
_SDK_KEY = re.compile(r"^(configcat-sdk-1/)?[^/]{22}/[^/]{22}$|^configcat-proxy/.+$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class EventsConfig(msgspec.Struct, frozen=True):
    """Evaluated events: the source they go to, the sampled share, the dedup window."""

    source: str
    sample: float
    window_s: float


class Environment(msgspec.Struct):
    """One stored environment: its SDK key, its config_v6 (salt in `p.s`) and its origin."""

    name: str
    sdk_key: str
    config: dict[str, Any]
    origin: Literal["apply", "import"]
    events: EventsConfig | None = None
    """Feature Flag Evaluated events of OFREP evaluations (None: none are sent)."""
    changed_source: str | None = None
    """The source of its Feature Flag Changed events (None: the `flags` source)."""

    @property
    def settings(self) -> dict[str, Any]:
        flags: dict[str, Any] = self.config.get("f") or {}
        return flags


class EnvironmentNotFound(LookupError):
    """No environment has that name or SDK key."""


def environments(store: StateStore) -> list[Environment]:
    """Every stored environment, by name."""
    return [msgspec.convert(spec, Environment) for spec in store.objects(KIND).values()]


def find(store: StateStore, name_or_key: str) -> Environment:
    """The environment with that name or SDK key."""
    for env in environments(store):
        if name_or_key in (env.name, env.sdk_key):
            return env
    raise EnvironmentNotFound(f"no flag environment has the name or SDK key '{name_or_key}'")


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ValueError(
            f"invalid environment name {name!r}: letters, digits, '_', '.', '-' (at most 64)"
        )


def check_sdk_key(key: str) -> None:
    """Refuse a key the ConfigCat SDKs would refuse before making any request."""
    if not _SDK_KEY.match(key):
        raise ValueError(
            f"invalid SDK key {key!r}: the ConfigCat SDKs accept"
            " configcat-sdk-1/<22 characters>/<22 characters>, <22>/<22> or configcat-proxy/<any>"
        )


def check_unique_key(store: StateStore, name: str, key: str) -> None:
    for env in environments(store):
        if env.sdk_key == key and env.name != name:
            raise ValueError(f"SDK key '{key}' is already used by environment '{env.name}'")


def new_sdk_key() -> str:
    """A fresh key of ConfigCat's shape: `configcat-sdk-1/<22>/<22>` (URL-safe base64)."""
    return "configcat-sdk-1/" + "/".join(_random22() for _ in range(2))


def new_salt() -> str:
    """A config salt as ConfigCat makes them: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _random22() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def check_config(config: Any) -> dict[str, Any]:
    """A config_v6 document as imported: an object whose `f` maps keys to typed settings."""
    if not isinstance(config, dict):
        raise ValueError("a config_v6 document is a JSON object")
    flags = config.get("f", {})
    if not isinstance(flags, dict):
        raise ValueError("`f` must map setting keys to settings")
    for key, setting in flags.items():
        if not isinstance(setting, dict) or setting.get("t") not in SETTING_TYPES.values():
            raise ValueError(f"f.{key}: a setting needs `t` (0 bool, 1 string, 2 int, 3 double)")
        if not isinstance(setting.get("v"), dict):
            raise ValueError(f"f.{key}: a setting needs its value `v`")
    for name in ("p", "s"):
        if name in config and not isinstance(config[name], dict if name == "p" else list):
            raise ValueError(f"`{name}` has the wrong shape")
    return config
