"""Configuration: command-line flags, with `TRACKWAY_*` environment variables as defaults."""

import ipaddress
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Role = Literal["api", "worker", "all"]
"""What `trackway serve` runs: the HTTP APIs, the background workers, or both."""

DEFAULT_DATA_DIR = Path("trackway-data")
DEFAULT_KEY_GRACE_S = 24 * 3600.0
_MAX_DURATION_S = 100 * 365.25 * 86400


@dataclass(frozen=True)
class Settings:
    """Everything a running Trackway needs to know."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None
    """PostgreSQL for the event log and the workspace state, instead of SQLite files."""
    host: str = "127.0.0.1"
    port: int = 8088
    synchronous: Literal["full", "normal"] = "full"
    dedup_window_s: float = 24 * 3600.0
    retention_s: float = 7 * 24 * 3600.0
    trusted_proxies: tuple[Network, ...] = field(default_factory=tuple)
    max_pending_events: int = 250_000
    admin_token: str | None = None
    role: Role = "all"
    idle_timeout_s: int = 5
    """A connection with no request begun is closed after this (new or kept alive)."""
    header_timeout_s: float = 10.0
    """A request's headers must arrive within this of its first byte (else 408)."""
    body_timeout_s: float = 60.0
    """A request's body must arrive within this of its headers (else the connection closes)."""
    max_connections: int = 4096
    """Open connections beyond this are answered 503 too_many_connections."""

    @property
    def log_path(self) -> Path:
        return self.data_dir / "log.db"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.db"


def env(name: str, default: str | None = None) -> str | None:
    """The value of `TRACKWAY_<name>`, or the default."""
    return os.environ.get(f"TRACKWAY_{name}", default)


def parse_networks(values: tuple[str, ...] | list[str]) -> tuple[Network, ...]:
    """Parse CIDRs or single addresses; raises ValueError naming the bad one."""
    out = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                try:
                    out.append(ipaddress.ip_network(part.strip(), strict=False))
                except ValueError as exc:
                    raise ValueError(f"not an IP address or network: {part!r}") from exc
    return tuple(out)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `15m`, `24h` or `7d`; raises ValueError otherwise."""
    value = text.strip().lower()
    unit = _UNITS.get(value[-1:]) if value else None
    number = value[:-1] if unit else value
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 24h, 7d)") from None
    # inf and nan parse as floats, and a huge number overflows the epoch arithmetic of
    # `--since` and the stores' 64-bit integers; nothing Trackway keeps lasts that long.
    if not math.isfinite(seconds) or seconds > _MAX_DURATION_S:
        raise ValueError(f"not a duration of at most 100 years: {text!r}")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {text!r}")
    return seconds
