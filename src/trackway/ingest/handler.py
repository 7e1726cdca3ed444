"""The tracking request path: authenticate, validate, normalize, append, answer."""

import contextlib
import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from trackway import codec
from trackway.ingest.auth import key_from_body, key_from_header
from trackway.ingest.body import read_body, unicode_json
from trackway.ingest.client_ip import client_ip
from trackway.ingest.sources import SourceCache
from trackway.server.metrics import Metrics
from trackway.settings import Settings
from trackway.spec.errors import IngestError, Rejection
from trackway.spec.limits import MAX_BATCH_EVENTS
from trackway.spec.message import Message, batch_decoder, decode_message, decode_messages
from trackway.spec.normalize import RequestInfo, normalize, utc
from trackway.storage.base import EventLog, StorageUnavailable
from trackway.storage.dedup import message_hashes
from trackway.storage.records import (
    AcceptedEvent,
    AppendResult,
    IngestBatch,
    RejectedEvent,
    Source,
)

_OK = b'{"success":true}'

TRACKING_SOURCE_TYPE = "segment"
"""The source type whose keys take tracking calls (the others take their webhooks only)."""
_JSON = "application/json"

WebhookParser = Callable[[Source, Headers, bytes, datetime], list[Message]]
"""Turns a verified webhook call into events; raises `IngestError` to refuse it."""


class Ingestor:
    """Handles tracking API requests for one process."""

    def __init__(
        self, log: EventLog, sources: SourceCache, metrics: Metrics, settings: Settings
    ) -> None:
        self.log = log
        self.sources = sources
        self.metrics = metrics
        self.settings = settings

    async def handle(self, request: Request, path_type: str | None, browser: bool) -> Response:
        """Answer one tracking request; `path_type` is None for a batch."""
        started = time.perf_counter()
        response = await self._handle(request, path_type, browser)
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels(str(response.status_code)).inc()
        return response

    async def _handle(self, request: Request, path_type: str | None, browser: bool) -> Response:
        received_at = datetime.now(UTC)
        source: Source | None = None
        body: bytes | None = None
        try:
            if self.log.pending_events > self.settings.max_pending_events:
                raise IngestError(
                    "rate_limited", "the server is busy writing; retry after 1 second", 429
                )
            header_key = key_from_header(request.headers.get("authorization"))
            if header_key is not None:
                source = self._source(header_key)
            body = unicode_json(await read_body(request))
            if source is None:
                source = self._source(key_from_body(body))
            if source.type != TRACKING_SOURCE_TYPE:
                raise IngestError(
                    "wrong_source_type",
                    f"source '{source.name}' is of type '{source.type}': its write key takes"
                    f" only /v1/webhooks/{source.type}/<write key>, not tracking calls",
                    403,
                )
            batch = IngestBatch(source.id, int(received_at.timestamp() * 1000))
            peer = request.client.host if request.client else None
            ip = None
            if browser or "origin" in request.headers:
                ip = client_ip(
                    peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies
                )
            if path_type is None:
                rejected = self._parse_batch(body, batch, received_at, ip)
            else:
                rejected = self._parse_single(body, path_type, batch, received_at, ip)
            # An empty batch (`trackway check` sends one) has nothing to commit.
            empty = not batch.events and not batch.rejected
            result = AppendResult(0, 0) if empty else await self.log.append(batch)
        except IngestError as exc:
            if source is not None:
                await self._keep_failure(source, received_at, exc, body)
            return _error(exc.rejection, 1 if exc.status == 429 else None)
        except StorageUnavailable as exc:
            return _error(Rejection("storage_unavailable", str(exc), 503), retry_after=5)

        received = len(batch.events) + len(rejected)
        self.metrics.count(source.name, received, result.accepted, len(rejected), result.duplicates)
        if not rejected:
            return Response(_OK, 200, media_type=_JSON)
        details = [{"index": i, "code": r.code, "message": r.message} for i, r in rejected]
        if path_type is not None:
            return _error(rejected[0][1])
        if not batch.events:
            return Response(
                codec.dumps(
                    {
                        "code": "invalid_batch",
                        "message": f"all {len(rejected)} events were rejected",
                        "rejected": details,
                    }
                ),
                400,
                media_type=_JSON,
            )
        body_out = {"success": True, "accepted": len(batch.events), "rejected": details}
        return Response(codec.dumps(body_out), 200, media_type=_JSON)

    async def handle_webhook(
        self, request: Request, source_type: str, parse: WebhookParser
    ) -> Response:
        """Answer a webhook call to `/v1/webhooks/<type>/<write key>`.

        A refused call of a known source is kept as a failure, like a bad event.
        """
        started = time.perf_counter()
        received_at = datetime.now(UTC)
        source: Source | None = None
        body: bytes | None = None
        try:
            source = self._source(request.path_params["write_key"])
            if source.type != source_type:
                raise IngestError(
                    "wrong_source_type",
                    f"source '{source.name}' is of type '{source.type}', not '{source_type}'",
                    404,
                )
            body = await read_body(request)
            messages = parse(source, request.headers, body, received_at)
            await self.append(source, messages, received_at)
        except IngestError as exc:
            if source is not None:
                await self._keep_failure(source, received_at, exc, body)
            response = _error(exc.rejection)
        except StorageUnavailable as exc:
            response = _error(Rejection("storage_unavailable", str(exc), 503), retry_after=5)
        else:
            response = Response(_OK, 200, media_type=_JSON)
        self.metrics.latency.observe(time.perf_counter() - started)
        self.metrics.requests.labels(str(response.status_code)).inc()
        return response

    async def append(
        self, source: Source, messages: list[Message], received_at: datetime
    ) -> AppendResult:
        """Normalize and durably append events Trackway makes itself (webhooks, flag
        evaluations): returns after the commit. A message normalization refuses raises
        `IngestError` and nothing is appended."""
        batch = IngestBatch(source.id, int(received_at.timestamp() * 1000))
        req = RequestInfo(received_at)
        events = []
        for msg in messages:
            outcome = normalize(msg, req)
            if isinstance(outcome, Rejection):
                raise IngestError(outcome.code, outcome.message, outcome.status)
            events.append(outcome)
        _accept(batch, events)
        result = await self.log.append(batch)
        self.metrics.count(source.name, len(batch.events), result.accepted, 0, result.duplicates)
        return result

    def _source(self, key: str | None) -> Source:
        if not key:
            raise IngestError(
                "missing_write_key",
                "no write key: send it as the Basic auth user name or as 'writeKey' in the body",
                401,
            )
        info = self.sources.lookup(key)
        if info is None:
            raise IngestError("invalid_write_key", "the write key is not valid", 401)
        if not info.source.enabled:
            raise IngestError("source_disabled", f"source '{info.source.name}' is disabled", 401)
        return info.source

    def _parse_batch(
        self, body: bytes, batch: IngestBatch, received_at: datetime, ip: str | None
    ) -> list[tuple[int, Rejection]]:
        try:
            envelope = batch_decoder.decode(body)
        except msgspec.ValidationError as exc:
            raise IngestError("invalid_batch", f"not a valid batch request: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise IngestError("invalid_json", f"the body is not valid JSON: {exc}") from exc
        except RecursionError:
            raise IngestError("invalid_json", "the body is nested too deeply") from None
        items = envelope.batch
        if len(items) > MAX_BATCH_EVENTS:
            raise IngestError(
                "too_many_events",
                f"the batch has {len(items)} events; the limit is {MAX_BATCH_EVENTS}",
            )
        try:
            sent_at = utc(envelope.sent_at)
        except OverflowError:
            raise IngestError(
                "invalid_timestamp", "the batch's `$.sentAt` in UTC is outside years 1-9999"
            ) from None
        req = RequestInfo(received_at, sent_at, envelope.context, envelope.integrations, ip)
        rejected: list[tuple[int, Rejection]] = []
        accepted: list[Message] = []
        for index, decoded in enumerate(decode_messages(items)):
            outcome = decoded if isinstance(decoded, Rejection) else normalize(decoded, req)
            if isinstance(outcome, Rejection):
                rejected.append((index, outcome))
                batch.rejected.append(
                    RejectedEvent(index, outcome.code, outcome.message, bytes(items[index]))
                )
            else:
                accepted.append(outcome)
        _accept(batch, accepted)
        return rejected

    def _parse_single(
        self,
        body: bytes,
        path_type: str,
        batch: IngestBatch,
        received_at: datetime,
        ip: str | None,
    ) -> list[tuple[int, Rejection]]:
        outcome = decode_message(body, path_type)
        if not isinstance(outcome, Rejection):
            outcome = normalize(outcome, RequestInfo(received_at, client_ip=ip))
        if isinstance(outcome, Rejection):
            batch.rejected.append(RejectedEvent(0, outcome.code, outcome.message, body))
            return [(0, outcome)]
        _accept(batch, [outcome])
        return []

    async def _keep_failure(
        self, source: Source, received_at: datetime, exc: IngestError, body: bytes | None
    ) -> None:
        """Store a failed request so the debugger shows it; nothing a client sent vanishes."""
        if exc.status == 429:
            return  # the client retries; keeping it would store the event twice
        batch = IngestBatch(source.id, int(received_at.timestamp() * 1000))
        batch.rejected.append(RejectedEvent(-1, exc.code, str(exc), body))
        with contextlib.suppress(StorageUnavailable):  # the client hears of its error anyway
            await self.log.append(batch)
        self.metrics.count(source.name, 0, 0, 1, 0)


_new_accepted = functools.partial(tuple.__new__, AcceptedEvent)


def _accept(batch: IngestBatch, events: list[Message]) -> None:
    """Add normalized events to the batch: their ids, and their JSON in one encode call."""
    ids = [str(e.message_id) for e in events]
    # Tuples made in C, not through the NamedTuple's Python-level __new__ (half the cost).
    hashes = message_hashes(batch.source_id, ids)
    batch.events = list(map(_new_accepted, zip(ids, hashes, strict=True)))
    batch.encoded = codec.dumps(events)


def _error(rejection: Rejection, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    payload: dict[str, Any] = {"code": rejection.code, "message": rejection.message}
    return Response(codec.dumps(payload), rejection.status, headers=headers, media_type=_JSON)
