"""At `apply` time: destinations whose URLs point at addresses their deliveries would be
refused (private, loopback, link-local...), or that are no URL the transport can send
to, so the mistake shows before the first event is dead-lettered."""

import concurrent.futures
from pathlib import Path

import httpx

from trackway.destinations.config import DestinationSpec, resolve
from trackway.destinations.framework import InvalidSettings, SettingType, check_settings
from trackway.destinations.http import host_refusal
from trackway.destinations.registry import definition

RESOLVE_TIMEOUT_S = 2.0
"""How long apply waits for a host name to resolve before it gives up on warning."""


def warnings(specs: list[DestinationSpec], base_dir: Path) -> list[str]:
    """One line per URL setting (and alert webhook) of a destination that is not a valid
    URL, or, when the destination does not allow private addresses, whose host is, or
    resolves to, one."""
    found: list[str] = []
    for spec in specs:
        for where, url in _urls(resolve(spec, base_dir)):
            try:
                host = httpx.URL(url).host
            except httpx.InvalidURL as exc:
                # e.g. an octal IPv4 address (0177.0.0.1), which httpx does not parse
                found.append(
                    f"warning: destination '{spec.name}': {where} {url!r}: not a valid URL"
                    f" ({exc}); its deliveries will be blocked"
                )
                continue
            if spec.delivery.allow_private_addresses or not host:
                continue
            refusal = _refusal(host)
            if refusal is not None:
                found.append(
                    f"warning: destination '{spec.name}': {where} {url!r}: {refusal}; its"
                    " deliveries will be blocked unless you set"
                    " delivery.allow_private_addresses: true"
                )
    return found


def _urls(spec: DestinationSpec) -> list[tuple[str, str]]:
    try:
        settings = check_settings(definition(spec.type), spec.settings)
    except (KeyError, InvalidSettings):
        return []
    kinds = {s.name: s.type for s in definition(spec.type).settings}
    urls = [
        (f"settings.{name}", value)
        for name, value in settings.items()
        # a secret is never resolved nor printed
        if kinds[name] is SettingType.STRING and _is_url(value)
    ]
    if spec.alerts is not None and spec.alerts.webhook and _is_url(spec.alerts.webhook):
        urls.append(("alerts.webhook", spec.alerts.webhook))
    return urls


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def _refusal(host: str) -> str | None:
    # a resolver that hangs must not hold up apply: no answer in time, no warning
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(host_refusal, host).result(RESOLVE_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        return None
    finally:
        pool.shutdown(wait=False)
