"""Sending events in batches to a Segment-compatible endpoint, with the SDKs' retry rules.

Batches hold at most 2,500 events and 500 KB, like analytics-python's. A batch is
retried on a network error and on 408, 410, 429, 460 and 5xx (but not 501 or 505),
with exponential backoff and full jitter, waiting as long as `Retry-After` says when
the endpoint says so. Any other answer is final: a 2xx acknowledges the batch (less
the events a Trackway server lists as `rejected`), a 401, 403 or 404 stops the run
(no event can get through), and any other status fails the batch's events.
"""

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from trackway import codec
from trackway.client.send import describe
from trackway.reverse_etl.errors import RunError
from trackway.spec.limits import MAX_BATCH_EVENTS, MAX_REQUEST_BYTES

TIMEOUT_S = 30.0
_RETRY_STATUSES = frozenset({408, 410, 429, 460})
_FATAL_STATUSES = frozenset({401, 403, 404})
# Room for the batch's envelope: `{"batch":[...],"sentAt":"..."}`.
_ENVELOPE_BYTES = 100


@dataclass(frozen=True)
class Endpoint:
    """A Segment-compatible data plane (an origin, without /v1) and the write key to use."""

    data_plane: str
    write_key: str

    @property
    def url(self) -> str:
        return f"{self.data_plane.rstrip('/')}/v1/batch"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a batch is retried."""

    max_retries: int = 8
    base_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^attempt)]."""
        return random.uniform(0, min(self.max_backoff_s, self.base_s * 2**attempt))


@dataclass
class BatchResult:
    """What became of each event of a batch, by its index in the batch."""

    acked: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


class EndpointUnavailable(RunError):
    """The endpoint could not take a batch, even after retries, or refuses every event."""


class Stopped(Exception):
    """The run was asked to stop (between batches, or while a batch waited to retry)."""


@dataclass
class Batch:
    """Events gathered for one request, within Segment's count and size limits."""

    events: list[bytes] = field(default_factory=list)
    size: int = _ENVELOPE_BYTES

    def fits(self, event: bytes) -> bool:
        """Whether the event can join (an empty batch takes any event)."""
        if not self.events:
            return True
        return len(self.events) < MAX_BATCH_EVENTS and self.size + len(event) + 1 <= (
            MAX_REQUEST_BYTES
        )

    def add(self, event: bytes) -> None:
        self.events.append(event)
        self.size += len(event) + 1


def send_batch(
    client: httpx.Client,
    endpoint: Endpoint,
    events: list[bytes],
    policy: RetryPolicy,
    stop: threading.Event,
) -> BatchResult:
    """POST one batch, retrying as the SDKs do; raises EndpointUnavailable or Stopped."""
    attempt = 0
    while True:
        body = (
            b'{"batch":['
            + b",".join(events)
            + b'],"sentAt":'
            + codec.dumps(datetime.now(UTC).isoformat().replace("+00:00", "Z"))
            + b"}"
        )
        outcome, wait = _post(client, endpoint, body, len(events))
        if isinstance(outcome, BatchResult):
            return outcome
        if attempt >= policy.max_retries:
            raise EndpointUnavailable(
                f"{endpoint.url}: gave up after {attempt + 1} attempts; last: {outcome}"
            )
        delay = policy.backoff(attempt) if wait is None else min(wait, policy.max_retry_after_s)
        attempt += 1
        if stop.wait(delay):
            raise Stopped


def _post(
    client: httpx.Client, endpoint: Endpoint, body: bytes, count: int
) -> tuple[BatchResult | str, float | None]:
    """One attempt: the result, or why it should be retried and the wait the endpoint asked."""
    try:
        response = client.post(
            endpoint.url,
            content=body,
            auth=(endpoint.write_key, ""),
            headers={"Content-Type": "application/json"},
            timeout=TIMEOUT_S,
        )
    except httpx.TransportError as exc:
        return f"cannot reach {endpoint.url}: {exc or type(exc).__name__}", None
    status = response.status_code
    if status in _RETRY_STATUSES or (status >= 500 and status not in (501, 505)):
        return f"answered {status}: {describe(response)}", _retry_after(response)
    if status in _FATAL_STATUSES:
        raise EndpointUnavailable(f"{endpoint.url} answered {status}: {describe(response)}")
    rejected = _rejected(response)
    if 200 <= status < 300:
        return BatchResult([i for i in range(count) if i not in rejected], rejected), None
    reason = f"answered {status}: {describe(response)}"
    return BatchResult([], {i: rejected.get(i, reason) for i in range(count)}), None


def _rejected(response: httpx.Response) -> dict[int, str]:
    """The events a Trackway server refused, by index (Segment itself never lists any)."""
    try:
        payload = response.json()
    except ValueError:
        return {}
    items = payload.get("rejected") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return {}
    return {
        item["index"]: f"rejected by the endpoint: {item.get('code')}: {item.get('message')}"
        for item in items
        if isinstance(item, dict) and isinstance(item.get("index"), int)
    }


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (a number or an HTTP date), if there is one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
