"""Errors of the tracking API: a stable code, a human message and an HTTP status."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event (or a whole request) was not accepted."""

    code: str
    message: str
    status: int = 400


class IngestError(Exception):
    """A request-level failure, answered as JSON `{"code", "message"}`."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.rejection = Rejection(code, message, status)

    @property
    def code(self) -> str:
        return self.rejection.code

    @property
    def status(self) -> int:
        return self.rejection.status
