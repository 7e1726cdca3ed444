"""`trackway check`: is this a Segment-compatible endpoint that takes this write key?

Nothing is sent that could become an event: the check posts an empty batch (which a
Segment-compatible endpoint accepts with `{"success": true}` and stores nothing for)
and reads the analytics.js settings of the key. A server that answers 200 to anything
(a catch-all sink) is told apart by what it answers: it does not serve the settings.
"""

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from trackway import codec
from trackway.client.send import TIMEOUT_S, describe, v1_hint

Verdict = Literal["ok", "unreachable", "not_segment", "invalid_key"]

EXIT_CODES: dict[Verdict, int] = {"ok": 0, "unreachable": 3, "not_segment": 4, "invalid_key": 5}


@dataclass(frozen=True)
class CheckResult:
    """The verdict, a sentence for people, and whether the key itself was verified."""

    verdict: Verdict
    message: str
    key_verified: bool = False


def check(write_key: str, data_plane: str) -> CheckResult:
    """Tell apart: unreachable, not Segment-compatible, a refused write key, OK."""
    result = _check(write_key, data_plane.rstrip("/"))
    if result.verdict == "ok":
        return result
    return CheckResult(result.verdict, result.message + v1_hint(data_plane), result.key_verified)


def _check(write_key: str, base: str) -> CheckResult:
    try:
        with httpx.Client(timeout=TIMEOUT_S, auth=(write_key, "")) as client:
            batch = client.post(
                f"{base}/v1/batch",
                content=codec.dumps({"batch": [], "writeKey": write_key}),
                headers={"Content-Type": "application/json"},
            )
            settings = client.get(f"{base}/v1/projects/{write_key}/settings")
    except httpx.HTTPError as exc:
        return CheckResult("unreachable", f"cannot reach {base}: {exc}")
    if batch.status_code in (401, 403):
        return CheckResult("invalid_key", f"the write key was refused: {describe(batch)}")
    if batch.status_code != 200 or not _success(batch):
        return CheckResult(
            "not_segment",
            f"{base} is not a Segment-compatible endpoint: POST /v1/batch answered"
            f' {batch.status_code} with {_body(batch)}, not {{"success": true}}',
        )
    if settings.status_code == 200:
        problem = _settings_problem(settings, write_key)
        if problem is not None:
            return CheckResult(
                "not_segment",
                f"{base} is not a Segment-compatible endpoint: it answered 200 to an empty"
                f" batch, but GET /v1/projects/KEY/settings answered 200 with {problem}"
                " (a server that answers 200 to anything?)",
            )
        return CheckResult("ok", f"{base} accepts events for this write key", True)
    return CheckResult(
        "ok",
        f"{base} is Segment-compatible and answered 200; it does not say whether the key is"
        " valid (Segment itself accepts any key)",
    )


def _success(response: httpx.Response) -> bool:
    """Whether the body is a JSON object with `"success": true`, as Segment answers."""
    payload = _json(response)
    return isinstance(payload, dict) and payload.get("success") is True


def _settings_problem(response: httpx.Response, write_key: str) -> str | None:
    """What is wrong with an answer to the settings request, or None for analytics.js
    settings of this key (`integrations["Segment.io"]` with its `apiKey` and `apiHost`)."""
    payload = _json(response)
    integrations = payload.get("integrations") if isinstance(payload, dict) else None
    segment = integrations.get("Segment.io") if isinstance(integrations, dict) else None
    if not isinstance(segment, dict) or not isinstance(segment.get("apiHost"), str):
        return f"{_body(response)}, not analytics.js settings"
    if segment.get("apiKey") != write_key:
        return "the settings of another write key"
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _body(response: httpx.Response) -> str:
    """A short description of an answer's body for the messages above."""
    if not response.content:
        return "an empty body"
    if _json(response) is None:
        return describe(response)
    text = response.text
    return f"the JSON {text[:60]}{'...' if len(text) > 60 else ''}"
