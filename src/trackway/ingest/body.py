"""Reading a request body within the limits (size, gzip, content type) and as Unicode."""

import re
import zlib

from starlette.requests import Request

from trackway.spec.errors import IngestError
from trackway.spec.limits import MAX_REQUEST_BYTES

# analytics.js posts text/plain to avoid a CORS preflight; a body is JSON whatever it says.
_ACCEPTED_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded")


async def read_body(request: Request, limit: int = MAX_REQUEST_BYTES) -> bytes:
    """The decoded request body; raises `IngestError` (413/415/400) when it is not acceptable."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media and media not in _ACCEPTED_TYPES and not media.endswith("+json"):
        raise IngestError(
            "unsupported_media_type",
            f"Content-Type '{media}' is not supported; send JSON (application/json or text/plain)",
            415,
        )
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise IngestError(
            "unsupported_encoding",
            f"Content-Encoding '{encoding}' is not supported; use gzip or none",
            415,
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding == "gzip":
        body = _gunzip(body, limit)
    if not body:
        raise IngestError("invalid_json", "the request body is empty")
    return body


# An escaped backslash (so that the `u` after it starts no escape), a surrogate pair, or
# a lone surrogate: scanning left to right keeps the escapes' parity right.
_ESCAPE = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_REPLACEMENT = rb"\ufffd"


def unicode_json(body: bytes) -> bytes:
    """The body, checked to be UTF-8, with each lone UTF-16 surrogate escape (`\\ud800`
    without its pair) replaced by `\\ufffd`, the replacement character.

    Bytes that are not UTF-8 (also surrogates encoded as UTF-8) are not JSON text: the
    request is refused (`invalid_json`), as msgspec would refuse them, had it not kept
    the object fields as raw bytes. Lone surrogate escapes are valid JSON but no Unicode
    text: no UTF-8 encoder, database or destination takes them. Browsers send them when a
    string is cut in the middle of an emoji; the event is kept with U+FFFD in their place,
    as a browser's own TextEncoder would do.
    """
    if not body.isascii():
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            raise IngestError(
                "invalid_json", f"the body is not UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    # The common case, no escape at all, costs one memchr (a search for `\\ud` took
    # 50 times as long on a batch of 100 events).
    if b"\\" not in body or not _SURROGATE.search(body):
        return body
    return _ESCAPE.sub(_keep_pairs, body)


def _keep_pairs(match: re.Match[bytes]) -> bytes:
    escape = match.group()
    return _REPLACEMENT if len(escape) == 6 else escape


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress at most `limit` bytes, so a gzip bomb costs nothing."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise IngestError("invalid_gzip", f"the body is not valid gzip: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise IngestError(
            "request_too_large",
            f"the decompressed body exceeds the limit of {limit} bytes",
            413,
        )
    if not inflater.eof:
        raise IngestError("invalid_gzip", "the gzip body is truncated")
    return out


def _too_large(limit: int) -> IngestError:
    return IngestError(
        "request_too_large", f"the request body exceeds the limit of {limit} bytes", 413
    )
