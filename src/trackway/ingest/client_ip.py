"""The client's address, trusting `X-Forwarded-For` only from configured proxies."""

import ipaddress

from trackway.settings import Network


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> str | None:
    """The nearest address in the chain that is not a trusted proxy."""
    if peer is None:
        return None
    if not trusted or not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            ip = ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a forged or broken header: fall back to what we saw
        if not any(ip in net for net in trusted):
            return hop
    return hops[0] if hops else peer


def is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    """Whether `address` lies in one of the trusted proxy networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in trusted)
