"""`trackway check`: is this a Segment-compatible endpoint that takes this write key?

Nothing is sent that could become an event: the check posts an empty batch (which a
Segment-compatible endpoint accepts and stores nothing for) and, for Trackway, reads
the analytics.js settings of the key.
"""

from dataclasses import dataclass
from typing import Literal

import httpx

from trackway import codec
from trackway.client.send import TIMEOUT_S, describe

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
    base = data_plane.rstrip("/")
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
    if batch.status_code != 200 or not _is_json(batch):
        return CheckResult(
            "not_segment",
            f"{base} is not a Segment-compatible endpoint: POST /v1/batch answered"
            f" {batch.status_code} with {describe(batch)}",
        )
    if settings.status_code == 200 and _is_json(settings):
        return CheckResult("ok", f"{base} accepts events for this write key", True)
    return CheckResult(
        "ok",
        f"{base} is Segment-compatible and answered 200; it does not say whether the key is"
        " valid (Segment itself accepts any key)",
    )


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True
