"""Loaded by every Python process the docs test starts (snippets, `trackway` commands,
the server): name resolution and connections beyond the loopback fail, so a doc whose
commands would reach the internet fails its test instead of sending traffic out."""

import ipaddress
import socket
from typing import Any

_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _local(host: object) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    if text in ("", "localhost"):
        return True
    try:
        address = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _refuse(host: object) -> OSError:
    return OSError(f"docs test: no network beyond 127.0.0.1 (tried {host!r})")


def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _local(host):
        raise socket.gaierror(socket.EAI_NONAME, str(_refuse(host)))
    return _getaddrinfo(host, *args, **kwargs)


def connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        raise _refuse(address[0])
    _connect(self, address)


def connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        raise _refuse(address[0])
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect  # type: ignore[method-assign]
socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
