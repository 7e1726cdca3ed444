"""Reading a request body within the limits: size, gzip, content type."""

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
