"""The real outbound transport: a keep-alive connection pool behind an address guard.

The guard resolves each target host once, refuses it if any of its addresses is not a
public one (loopback, private, link-local, multicast, reserved, unspecified), and then
connects to exactly the addresses it checked. Checking a name and letting the socket
layer resolve it again would let a DNS server answer "public" to the check and
"127.0.0.1" to the connect (DNS rebinding).

The pool is httpcore's, the connection layer under httpx, used directly: it accepts a
network backend (where the guard sits, at the one place sockets are opened, so TLS
still verifies the certificate for the host name and `Host` is left alone), and it has
none of the client-level behaviour a delivery engine must not have (redirects followed,
proxies from the environment, a cookie jar shared by every destination).
"""

import ipaddress
import socket
import time
from collections.abc import Iterable

import httpcore
import httpx

from trackway.destinations.transport import Request, Response, TransportError
from trackway.outbound import USER_AGENT

MAX_RESPONSE_BYTES = 1024 * 1024
"""The most of a response body kept (for error samples); the rest is not read."""

_SCHEMES = frozenset({"http", "https"})
_NO_BODY = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_USER_AGENT = USER_AGENT.encode("ascii")
_KEEPALIVE_S = 5.0  # idle connections older than this are closed, not reused (as httpx)


class HttpTransport:
    """Sends requests over one keep-alive pool; safe to call from several threads.

    Targets resolving to a non-public address are refused (TransportError "blocked",
    naming the setting that allows them on `destination`) unless `allow_private`. Every
    request carries `User-Agent: Trackway/<version>` unless it sets its own. Redirects
    are not followed; proxy environment variables are ignored.
    """

    def __init__(
        self,
        timeout_s: float = 10.0,
        allow_private: bool = False,
        max_connections: int = 16,
        destination: str | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self._timeouts = {"connect": timeout_s, "read": timeout_s, "write": timeout_s}
        self._pool = httpcore.ConnectionPool(
            max_connections=max_connections,
            keepalive_expiry=_KEEPALIVE_S,
            network_backend=_GuardedBackend(allow_private, destination),
        )

    def send(self, request: Request) -> Response:
        url, netloc, host = _target(request.url)
        headers = _encode_headers(request.headers, host)
        names = {name.lower() for name, _ in headers}
        if b"host" not in names:
            # httpcore would write an IPv6 host without its brackets
            headers.insert(0, (b"Host", netloc))
        if b"user-agent" not in names:  # a mapping's own User-Agent wins
            headers.append((b"User-Agent", _USER_AGENT))
        body = None if not request.body and request.method in _NO_BODY else request.body
        started = time.perf_counter()
        try:
            with self._pool.stream(
                request.method,
                url,
                headers=headers,
                content=body,
                # waiting for a free connection counts against the same budget
                extensions={"timeout": {**self._timeouts, "pool": self.timeout_s}},
            ) as response:
                content = _read(response.iter_stream())
        except _Refused as exc:
            raise TransportError("blocked", str(exc)) from None
        except httpcore.TimeoutException as exc:
            raise TransportError(
                "timeout", f"{host}: no answer within {self.timeout_s:g} s ({_phase(exc)})"
            ) from None
        except (httpcore.NetworkError, httpcore.RemoteProtocolError) as exc:
            raise TransportError("connection", f"{host}: {_describe(exc)}") from None
        except httpcore.LocalProtocolError as exc:
            # a request that cannot be written (a header with a newline, say): sending it
            # again would fail the same way
            raise TransportError("blocked", f"{host}: invalid request: {exc}") from None
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Response(response.status, _headers(response.headers), content, elapsed_ms)

    def close(self) -> None:
        self._pool.close()


def address_refusal(address: str) -> str | None:
    """Why the guard refuses to connect to an IP address ("loopback"...), or None.

    An IPv6 address that carries an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by
    the IPv4 address inside.
    """
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
        address.split("%", 1)[0]  # a zone index (fe80::1%eth0) is not part of the address
    )
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is None and ip in _NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            return address_refusal(str(inner))
    for kind, holds in (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
        ("non-public", not ip.is_global),
    ):
        if holds:
            return kind
    return None


def host_refusal(host: str) -> str | None:
    """Why the guard would refuse `host` ("localhost (127.0.0.1) is a loopback
    address"), or None; None too when it does not resolve (now)."""
    try:
        return _refusal(host, _resolve(host, 0))
    except httpcore.ConnectError:
        return None


def _refusal(host: str, addresses: list[str]) -> str | None:
    for address in addresses:
        kind = address_refusal(address)
        if kind is not None:
            shown = host if host == address else f"{host} ({address})"
            article = "an" if kind[0] in "aeiou" else "a"
            return f"{shown} is {article} {kind} address"
    return None


class _Refused(Exception):
    """The guard refused an address (raised inside the pool, turned into "blocked")."""


class _GuardedBackend(httpcore.SyncBackend):
    """Opens TCP connections only to addresses the guard accepted."""

    def __init__(self, allow_private: bool, destination: str | None) -> None:
        self._allow_private = allow_private
        where = f" on destination '{destination}'" if destination else ""
        self._remedy = f"set delivery.allow_private_addresses: true{where} to allow it"

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port)
        refusal = None if self._allow_private else _refusal(host, addresses)
        if refusal is not None:
            raise _Refused(f"{refusal}; {self._remedy}")
        failure: httpcore.ConnectError | None = None
        for address in addresses:  # the checked addresses, never the name again
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None  # getaddrinfo never returns an empty list
        raise failure


def _resolve(host: str, port: int) -> list[str]:
    """The addresses of `host`, in the resolver's order, without repeats."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def _target(text: str) -> tuple[httpcore.URL, bytes, str]:
    """The URL to request, its `Host` header and its host name (for messages).

    Refuses what cannot be sent: an invalid URL, a scheme other than http and https.
    """
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise TransportError("blocked", f"invalid URL {text!r}: {exc}") from None
    if url.scheme not in _SCHEMES:
        scheme = f"{url.scheme}:" if url.scheme else "no scheme"
        raise TransportError("blocked", f"refused {text!r}: only http and https ({scheme})")
    if not url.host:
        raise TransportError("blocked", f"invalid URL {text!r}: no host")
    target = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    return target, url.netloc, url.host


def _read(stream: Iterable[bytes]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RESPONSE_BYTES:
            break
    return b"".join(chunks)[:MAX_RESPONSE_BYTES]


def _headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Header names in lower case; repeated headers joined with ", " (as HTTP allows)."""
    headers: dict[str, str] = {}
    for name, value in raw:
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


def _encode_headers(headers: dict[str, str], host: str) -> list[tuple[bytes, bytes]]:
    try:
        return [(name.encode("ascii"), value.encode("latin-1")) for name, value in headers.items()]
    except UnicodeEncodeError as exc:
        raise TransportError("blocked", f"{host}: invalid request header: {exc}") from None


_PHASES: dict[type[Exception], str] = {
    httpcore.ConnectTimeout: "connect",
    httpcore.ReadTimeout: "read",
    httpcore.WriteTimeout: "write",
    httpcore.PoolTimeout: "waiting for a free connection",
}


def _phase(exc: Exception) -> str:
    return _PHASES.get(type(exc), "timeout")


def _describe(exc: Exception) -> str:
    if isinstance(exc, httpcore.RemoteProtocolError):
        return f"the connection was closed without a complete response ({exc})"
    return str(exc) or type(exc).__name__
