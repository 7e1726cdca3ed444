"""Size and count limits of the tracking API (Segment's published limits)."""

MAX_EVENT_BYTES = 32 * 1024
"""One event, as JSON."""

MAX_REQUEST_BYTES = 500 * 1024
"""One request body, after gzip decompression."""

MAX_BATCH_EVENTS = 2500
"""Events in one batch request."""

MAX_MESSAGE_ID_CHARS = 100
"""Segment asks clients to keep messageIds under 100 characters."""
