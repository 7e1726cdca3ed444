"""Delivering routed events: the insert function, the requests, and what their answers
mean (delivered, retried later, or discarded into the dead letters).

Retry rules (Segment's): 408, 423, 429, 500, 502 to 511, 598, 599, timeouts and connection
failures are retried with randomized exponential backoff, at least as late as the
answer's `Retry-After`, until `retry_for` (default 4 h) after the first failure; then
the event is a dead letter. Any other answer, a payload that fails validation, and a
refused address discard the event into the dead letters at once.
"""

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

from trackway.destinations.framework import Discard
from trackway.destinations.pacing import NamePacer
from trackway.destinations.pipeline import Destination, Subscription
from trackway.destinations.state import DeadLetter, DeadReason, ErrorSample, Outcome, Pending
from trackway.destinations.transport import Request, Response, Transport, TransportError
from trackway.functions import Outcome as FunctionOutcome

RETRY_STATUSES = frozenset({408, 423, 429, 500, *range(502, 512), 598, 599})
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 600.0
SAMPLES_PER_BATCH = 3
"""Error samples kept per kind of error from one window (a destination that is down
would otherwise store one per event)."""

Verdict = Literal["delivered", "held", "retry", "discard"]
HELD = "held:"
"""How the error of a held retry starts: it waits for room under the destination's
creation limits (not a failure; never exhausted)."""


class Functions(Protocol):
    """Runs insert functions (functions.FunctionPool)."""

    def run(
        self, code: str, events: list[dict[str, Any]], settings: dict[str, Any]
    ) -> list[FunctionOutcome]: ...


@dataclass(slots=True)
class Job:
    """One event for one subscription: from the log, or due in the retry schedule."""

    subscription: Subscription
    event: dict[str, Any]
    """After the destination's filters, before its insert function."""
    position: int
    received_at_ms: int
    counted_from_ms: int
    """Where its latency counts from: its arrival, or the replay that sent it again."""
    pending: Pending | None = None


@dataclass(slots=True)
class Attempt:
    """One request and what came of it."""

    subscription: Subscription
    jobs: list[int]
    payloads: list[dict[str, Any]]
    request: Request
    response: Response | None = None
    error: TransportError | None = None

    @property
    def verdict(self) -> Verdict:
        if self.response is not None:
            status = self.response.status
            if 200 <= status < 300:
                return "delivered"
            return "retry" if status in RETRY_STATUSES else "discard"
        assert self.error is not None
        return "discard" if self.error.kind == "blocked" else "retry"

    @property
    def message(self) -> str:
        if self.error is not None:
            return f"{self.error.kind}: {self.error.message}"
        assert self.response is not None
        return f"HTTP {self.response.status}"

    @property
    def retry_after_s(self) -> float:
        if self.response is None:
            return 0.0
        return retry_after(self.response.headers.get("retry-after"))


@dataclass(slots=True)
class _Result:
    verdict: Verdict | Literal["dropped"] = "delivered"
    message: str = ""
    retry_after_s: float = 0.0
    delivered_ms: float = 0.0

    def worse(self, verdict: Verdict, message: str, retry_after_s: float = 0.0) -> None:
        if _RANK[verdict] > _RANK[self.verdict]:
            self.verdict, self.message = verdict, message
        self.retry_after_s = max(self.retry_after_s, retry_after_s)


_RANK = {"delivered": 0, "dropped": 0, "held": 1, "retry": 2, "discard": 3}


def _seconds(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


@dataclass(slots=True)
class Delivery:
    """Delivers jobs of one destination and turns what happened into an `Outcome`."""

    destination: Destination
    transport: Transport
    executor: Executor
    functions: Functions | None = None
    clock: Callable[[], float] = time.time
    rng: Callable[[], float] = random.random
    pacer: NamePacer | None = None
    """Paces the requests that create new names, under the definition's limits."""
    failures_in_row: int = field(default=0)
    """Windows in a row whose every attempt failed and will be retried (the destination
    looks down): the worker waits longer before reading more of the log."""

    def run(self, jobs: Sequence[Job], outcome: Outcome) -> list[Attempt]:
        """Deliver `jobs`, adding to `outcome`; returns the attempts made."""
        results = [_Result() for _ in jobs]
        attempts = self._attempts(jobs, results, outcome)
        for attempt, sent in zip(attempts, self.executor.map(self._send, attempts), strict=True):
            attempt.response, attempt.error = sent
        for attempt in attempts:
            verdict = attempt.verdict
            for index in attempt.jobs:
                if verdict == "delivered":
                    results[index].delivered_ms = self.clock() * 1000
                else:
                    results[index].worse(verdict, attempt.message, attempt.retry_after_s)
            if verdict == "delivered":
                self._learn(attempt, outcome)
        self._record(jobs, results, attempts, outcome)
        retried = [a for a in attempts if a.verdict == "retry"]
        if attempts and len(retried) == len(attempts):
            self.failures_in_row += 1
        elif attempts:
            self.failures_in_row = 0
        return attempts

    def _attempts(
        self, jobs: Sequence[Job], results: list[_Result], outcome: Outcome
    ) -> list[Attempt]:
        after = self._insert_function(jobs, results, outcome)
        by_subscription: dict[str, tuple[Subscription, list[int], list[dict[str, Any]]]] = {}
        for index, job in enumerate(jobs):
            events = after[index]
            if events is None:
                continue
            if not events:
                outcome.count(job.subscription.action.name).filtered += 1
                results[index].verdict = "dropped"
                continue
            _, owners, payloads = by_subscription.setdefault(
                job.subscription.name, (job.subscription, [], [])
            )
            for event in events:
                try:
                    payload = job.subscription.payload(event)
                except Discard as exc:
                    results[index].worse("discard", f"invalid payload: {exc}")
                    self._sample(outcome, job, "invalid payload", str(exc))
                    continue
                owners.append(index)
                payloads.append(payload)
        attempts: list[Attempt] = []
        for subscription, owners, payloads in by_subscription.values():
            for indexes, request in self.destination.requests(subscription, payloads):
                carried = sorted({owners[i] for i in indexes})
                if isinstance(request, Discard):
                    for index in carried:
                        results[index].worse("discard", f"invalid payload: {request}")
                        self._sample(outcome, jobs[index], "invalid payload", str(request))
                    continue
                attempt = Attempt(subscription, carried, [payloads[i] for i in indexes], request)
                if self._held(attempt, results):
                    continue
                attempts.append(attempt)
        return attempts

    def _held(self, attempt: Attempt, results: list[_Result]) -> bool:
        """Whether the attempt must wait for room under the destination's creation
        limits (its jobs are then held: back into the retry schedule, not counted)."""
        creates = attempt.subscription.action.creates
        if self.pacer is None or creates is None:
            return False
        wait = max(
            (self.pacer.admit(name) for p in attempt.payloads if (name := creates(p))),
            default=0.0,
        )
        if wait <= 0:
            return False
        limits = ", ".join(
            f"{count:,} per {_seconds(seconds)}"
            for count, seconds in self.destination.definition.creation_limits
        )
        for index in attempt.jobs:
            results[index].worse("held", f"{HELD} new names are created at most {limits}", wait)
        return True

    def _learn(self, attempt: Attempt, outcome: Outcome) -> None:
        creates = attempt.subscription.action.creates
        if self.pacer is None or creates is None:
            return
        for payload in attempt.payloads:
            name = creates(payload)
            if name and self.pacer.learnt(name):
                outcome.names[name] = int(self.clock() * 1000)

    def _insert_function(
        self, jobs: Sequence[Job], results: list[_Result], outcome: Outcome
    ) -> list[list[dict[str, Any]] | None]:
        """Each job's events after the insert function ([]: dropped; None: failed)."""
        spec = self.destination.spec
        if spec.function is None or self.functions is None:
            return [[job.event] for job in jobs]
        distinct: dict[int, int] = {}  # id(event) -> its index among the events run
        events: list[dict[str, Any]] = []
        for job in jobs:
            if id(job.event) not in distinct:
                distinct[id(job.event)] = len(events)
                events.append(job.event)
        ran = self.functions.run(spec.function, events, dict(spec.function_settings))
        after: list[list[dict[str, Any]] | None] = []
        for index, job in enumerate(jobs):
            result = ran[distinct[id(job.event)]]
            if result.failure is None:
                after.append(result.events)
                continue
            failure = result.failure
            message = f"insert function {failure.kind}: {failure.message}"
            results[index].worse("retry" if failure.retry else "discard", message)
            self._sample(outcome, job, f"function {failure.kind}", failure.message)
            after.append(None)
        return after

    def _send(self, attempt: Attempt) -> tuple[Response | None, TransportError | None]:
        try:
            return self.transport.send(attempt.request), None
        except TransportError as exc:
            return None, exc

    def _record(
        self,
        jobs: Sequence[Job],
        results: list[_Result],
        attempts: list[Attempt],
        outcome: Outcome,
    ) -> None:
        now_ms = int(self.clock() * 1000)
        retry_for_ms = self.destination.retry_for_s * 1000
        for job, result in zip(jobs, results, strict=True):
            counts = outcome.count(job.subscription.action.name)
            pending = job.pending
            if result.verdict == "delivered":
                counts.delivered += 1
                counts.observe(result.delivered_ms - job.counted_from_ms)
            elif result.verdict == "held":
                # not an attempt: not counted, and the wait is not part of `retry_for`
                outcome.retry.append(
                    Pending(
                        job.subscription.name,
                        job.position,
                        job.received_at_ms,
                        job.event,
                        pending.attempts if pending else 0,
                        now_ms,
                        now_ms + int(result.retry_after_s * 1000),
                        result.message,
                        pending.id if pending else None,
                    )
                )
                continue
            elif result.verdict == "retry":
                attempts_made = (pending.attempts if pending else 0) + 1
                first_failed = pending.first_failed_ms if pending else now_ms
                delay_s = max(self._backoff(attempts_made), result.retry_after_s)
                if now_ms + delay_s * 1000 - first_failed > retry_for_ms:
                    counts.dead_lettered += 1
                    outcome.dead.append(self._dead(job, attempts_made, "exhausted", result))
                else:
                    counts.retried += 1
                    outcome.retry.append(
                        Pending(
                            job.subscription.name,
                            job.position,
                            job.received_at_ms,
                            job.event,
                            attempts_made,
                            first_failed,
                            now_ms + int(delay_s * 1000),
                            result.message,
                            pending.id if pending else None,
                        )
                    )
                    continue  # a stored retry stays, rescheduled
            elif result.verdict == "discard":
                counts.discarded += 1
                attempts_made = (pending.attempts if pending else 0) + 1
                outcome.dead.append(self._dead(job, attempts_made, "discarded", result))
            if pending is not None and pending.id is not None:
                outcome.done.append(pending.id)
        kinds: dict[str, int] = {}
        for attempt in attempts:
            if attempt.verdict == "delivered":
                continue
            kind = attempt.error.kind if attempt.error is not None else attempt.message
            kinds[kind] = kinds.get(kind, 0) + 1
            if kinds[kind] > SAMPLES_PER_BATCH:
                continue
            outcome.errors.append(
                ErrorSample(
                    now_ms,
                    attempt.subscription.action.name,
                    kind,
                    attempt.message,
                    jobs[attempt.jobs[0]].event,
                    self.destination.sample_request(attempt.request),
                    self.destination.sample_response(attempt.response)
                    if attempt.response is not None
                    else None,
                )
            )

    def _dead(self, job: Job, attempts: int, reason: DeadReason, result: _Result) -> DeadLetter:
        return DeadLetter(
            job.subscription.name,
            job.position,
            job.received_at_ms,
            job.event,
            attempts,
            reason,
            result.message,
            int(self.clock() * 1000),
        )

    def _sample(self, outcome: Outcome, job: Job, kind: str, message: str) -> None:
        if sum(1 for e in outcome.errors if e.kind == kind) < SAMPLES_PER_BATCH:
            outcome.errors.append(
                ErrorSample(
                    int(self.clock() * 1000),
                    job.subscription.action.name,
                    kind,
                    message,
                    job.event,
                )
            )

    def _backoff(self, attempts: int) -> float:
        base = min(BACKOFF_FIRST_S * 2 ** (attempts - 1), BACKOFF_MAX_S)
        return float(base * (0.5 + self.rng()))


def retry_after(value: str | None) -> float:
    """Seconds in a `Retry-After` header (delta seconds or an HTTP date); 0 when absent."""
    if not value:
        return 0.0
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, float(when.timestamp()) - time.time())
