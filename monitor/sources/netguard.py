"""The address policy: which IP addresses the monitor may connect to.

The check runs inside the connection layer (an httpcore network backend), after
DNS resolution and right before connecting, and the socket is then opened to the
vetted address itself. So it holds for every redirect hop, for every new
connection of a keep-alive pool, and a DNS answer that changes between a check
and the connect (DNS rebinding) cannot slip through: there is no second lookup.
TLS still verifies the original host name, because httpcore passes it to
``start_tls`` as ``server_hostname``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore

from monitor.errors import BlockedAddress, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address in their low 32 bits.
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def parse_ip(text: str) -> IPAddress | None:
    """The address in ``text`` (bracketed or with a zone id allowed), else None."""
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.split("%", 1)[0]  # zone id: fe80::1%eth0
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if any(addr in net for net in _NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def non_global_reason(addr: IPAddress) -> str | None:
    """Why ``addr`` must not be contacted ("loopback address", ...), or None if it is global."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = _embedded_ipv4(addr)
        if inner is not None:
            reason = non_global_reason(inner)
            return f"{reason} {inner} inside an IPv6 address" if reason else None
    # The order matters only for the wording: the most telling name first.
    checks = (
        ("unspecified", addr.is_unspecified),
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("reserved", addr.is_reserved),
        ("carrier-grade NAT", isinstance(addr, ipaddress.IPv4Address)
         and addr in ipaddress.IPv4Network("100.64.0.0/10")),
        ("unique-local", isinstance(addr, ipaddress.IPv6Address)
         and addr in ipaddress.IPv6Network("fc00::/7")),
        ("site-local", isinstance(addr, ipaddress.IPv6Address) and addr.is_site_local),
        ("private", addr.is_private),
        # is_global covers the rest of the IANA special-purpose registries
        # (documentation ranges, benchmarking, 192.0.0.0/24, ...).
        ("non-global", not addr.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"{name} address"
    return None


def is_public_address(addr: IPAddress) -> bool:
    return non_global_reason(addr) is None


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"DNS lookup failed for host {host}") from exc
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in seen:
            seen.append(ip)
    if not seen:
        raise FetchError(f"DNS lookup failed for host {host}: no addresses")
    return seen


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves host names itself, refuses non-global addresses, connects to the vetted IP.

    ``permit`` decides which addresses are allowed; None allows everything (for
    ``allow_private_networks``). A host whose answer holds any refused address is
    refused as a whole: a name that mixes public and private answers is exactly
    what a rebinding attack looks like.
    """

    def __init__(
        self,
        *,
        permit: Callable[[IPAddress], bool] | None = is_public_address,
        resolver: Resolver = resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._permit = permit
        self._resolver = resolver
        self._inner = inner if inner is not None else httpcore.AnyIOBackend()

    async def vetted_addresses(self, host: str, port: int) -> list[str]:
        literal = parse_ip(host)
        addresses = [str(literal)] if literal is not None else await self._resolver(host, port)
        if self._permit is None:
            return addresses
        for text in addresses:
            addr = parse_ip(text)
            if addr is None or not self._permit(addr):
                why = non_global_reason(addr) if addr is not None else None
                why = why or "address not allowed"
                shown = f"{host} resolves to " if literal is None else ""
                raise BlockedAddress(f"blocked: {shown}{why} {text}")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.vetted_addresses(host, port)
        last_error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc  # try the next address, as happy eyeballs would
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("refused: unix sockets are not a network address")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
