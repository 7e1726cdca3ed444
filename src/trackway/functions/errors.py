"""The exceptions an insert function raises to say what should become of its event.

They are Segment's, with Segment's meaning, and are globals of the function's module:
the code raises them without importing anything.
"""


class ValidationError(Exception):
    """The event is invalid: it is discarded, not retried."""


class EventNotSupported(Exception):
    """The function does not handle this kind of event: it is discarded, not retried."""


class RetryError(Exception):
    """A temporary failure: the event is tried again later."""


class DropEvent(Exception):
    """Drop the event silently, as if the function had returned None."""


FUNCTION_GLOBALS: dict[str, type[Exception]] = {
    cls.__name__: cls for cls in (ValidationError, EventNotSupported, RetryError, DropEvent)
}
