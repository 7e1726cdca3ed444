"""Delivery alerts: a destination's successful-delivery rate over a window (default
24 h) below its threshold raises an alert; going back above it, a recovery notice.

The rate is delivered / attempts, where attempts are deliveries plus failed attempts
(retried, discarded, dead-lettered); with fewer than `min_attempts` attempts in the
window nothing is decided. Each change is stored (shown by `trackway destinations
delivery`), logged, and POSTed as JSON to the alert's webhook when one is set.
"""

import logging
import time
from typing import Literal

from trackway.destinations.config import DestinationSpec
from trackway.destinations.http import HttpTransport
from trackway.destinations.state import Alert, Counts, DeliveryStore
from trackway.destinations.transport import Request, TransportError
from trackway.settings import parse_duration

logger = logging.getLogger("trackway.destinations")


def check(spec: DestinationSpec, store: DeliveryStore) -> Alert | None:
    """Compare the destination's rate with its threshold; returns the change, if any."""
    rules = spec.alerts
    if rules is None:
        return None
    now_ms = int(time.time() * 1000)
    window_ms = int(parse_duration(rules.window) * 1000)
    total = Counts()
    for counts in store.counts(spec.name, now_ms - window_ms).values():
        total.add(counts)
    if total.attempts < rules.min_attempts:
        return None
    rate = total.delivered / total.attempts
    last = store.alerts(spec.name, 1)
    alerting = bool(last) and last[0].kind == "alert"
    kind: Literal["alert", "recovery"]
    if rate < rules.threshold and not alerting:
        kind = "alert"
    elif rate >= rules.threshold and alerting:
        kind = "recovery"
    else:
        return None
    notified = _notify(spec, kind, rate, total.attempts, now_ms)
    alert = Alert(now_ms, kind, rate, rules.threshold, total.attempts, notified)
    store.add_alert(spec.name, alert)
    log = logger.warning if kind == "alert" else logger.info
    log(
        "destination %s: %s — successful delivery rate %.1f%% over %s (threshold %.1f%%)",
        spec.name,
        "ALERT" if kind == "alert" else "recovered",
        rate * 100,
        rules.window,
        rules.threshold * 100,
    )
    return alert


def _notify(spec: DestinationSpec, kind: str, rate: float, attempts: int, now_ms: int) -> str:
    rules = spec.alerts
    assert rules is not None
    if rules.webhook is None:
        return "no webhook"
    body = {
        "type": f"destination.{kind}",
        "destination": spec.name,
        "rate": round(rate, 4),
        "threshold": rules.threshold,
        "window": rules.window,
        "attempts": attempts,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_ms / 1000)),
    }
    transport = HttpTransport(
        timeout_s=10.0,
        allow_private=spec.delivery.allow_private_addresses,
        destination=spec.name,
    )
    try:
        response = transport.send(Request.json("POST", rules.webhook, body))
    except TransportError as exc:
        return f"not sent: {exc.kind}: {exc.message}"
    finally:
        transport.close()
    if 200 <= response.status < 300:
        return f"sent (HTTP {response.status})"
    return f"not sent: HTTP {response.status}"
