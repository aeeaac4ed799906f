"""The address policy: which hosts ccqm may connect to. Pure, so config validation, the client's
URL check and the connection-time check all ask the same question the same way.

Organisations supply their own URLs, so every URL is untrusted: only public addresses may be
fetched, unless an address is inside a network the operator allowed (`http.allow_networks`; the
demo and tests allow 127.0.0.1). IPv4 hidden in IPv6 (mapped, 6to4, NAT64, Teredo) is judged as
the IPv4 address it carries, and numeric spellings (`0x7f.1`, `2130706433`) as what they are.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Iterable
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]
NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_networks(networks: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDR strings; a ValueError names the first that is not a network."""
    return tuple(ipaddress.ip_network(n, strict=False) for n in networks)


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64, Teredo), if any."""
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr.sixtofour:
        return addr.sixtofour
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.teredo:
        return addr.teredo[1]
    return None


def refusal(address: str, allowed: tuple[Network, ...]) -> str | None:
    """Why `address` may not be fetched, or None when it may."""
    addr = ipaddress.ip_address(address.split("%")[0])
    if any(addr in net for net in allowed):
        return None
    inner = embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else None
    if not addr.is_global or (inner is not None and not inner.is_global):
        return f"address {addr} is not public (not in http.allow_networks)"
    return None


def literal_address(host: str) -> str | None:
    """The address a host names without DNS (an IP in any spelling, or localhost), else None."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:  # inet_aton accepts the legacy spellings browsers and libc still resolve: 0x7f.1, 2130706433
        return socket.inet_ntoa(socket.inet_aton(host)) if host[:1].isdigit() else None
    except OSError:
        return None


def url_refusal(url: str, allowed: tuple[Network, ...]) -> str | None:
    """Why a URL is refused without any DNS lookup (scheme, or a literal non-public host), if it is."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or 'none'!r} is not allowed"
    if not parts.hostname:
        return "no host"
    address = literal_address(parts.hostname)
    return refusal(address, allowed) if address else None


def system_resolver(host: str) -> list[str]:
    """Every address of `host` (an OSError when it has none)."""
    literal = literal_address(host)
    if literal:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise OSError(f"could not resolve host {host!r} ({exc.strerror})") from None
    return sorted({info[4][0] for info in infos})
