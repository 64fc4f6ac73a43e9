"""The private-address (SSRF) guard.

Feed URLs are untrusted: without a guard, a source pointing at ``http://169.254.169.254/`` or a
LAN admin page would make the bot fetch it. Addresses are checked after DNS resolution, at
connect time, on every redirect hop (the connector resolves each hop), so a name that resolves
to a private address, or re-resolves to one later (DNS rebinding), is refused too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import TCPConnector
from aiohttp.abc import ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Ranges the ``ipaddress`` flags miss or that deserve to be explicit.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8",          # "this network"
    "100.64.0.0/10",      # carrier-grade NAT
    "192.0.0.0/24",       # IETF protocol assignments
    "198.18.0.0/15",      # benchmarking
    "255.255.255.255/32",
    "64:ff9b::/96",       # NAT64 (checked through the embedded IPv4 below as well)
    "64:ff9b:1::/48",
    "fc00::/7",           # unique local
    "fec0::/10",          # site-local (deprecated)
))


class BlockedAddress(Exception):
    def __init__(self, host: str, address: str) -> None:
        self.host = host
        self.address = address
        super().__init__(f"{host} resolves to {address}, a private or reserved address")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress | str) -> bool:
    """True only for globally routable unicast addresses."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None and not is_public_address(inner):
            return False
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global):
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED if net.version == ip.version)


@dataclass(frozen=True)
class AddressPolicy:
    """Public addresses are allowed; anything else only inside an allow-listed network."""

    allow: tuple[IPNetwork, ...] = field(default=())

    @classmethod
    def from_strings(cls, networks: Sequence[str]) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks))

    def permits(self, address: IPAddress | str) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if any(ip in net for net in self.allow if net.version == ip.version):
            return True
        return is_public_address(ip)


class GuardedConnector(TCPConnector):
    """A TCPConnector that refuses to connect to addresses the policy does not permit.

    aiohttp skips the resolver for IP-literal hosts, so the check sits on ``_resolve_host``,
    which every connection (literal or name, first request or redirect hop) goes through.
    """

    def __init__(self, policy: AddressPolicy, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Any = None) -> list[ResolveResult]:
        results = await super()._resolve_host(host, port, traces=traces)
        permitted = [r for r in results if self.policy.permits(r["host"])]
        if not permitted:
            raise BlockedAddress(host, results[0]["host"] if results else "nothing")
        return permitted
