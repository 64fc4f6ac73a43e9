"""The private-address (SSRF) guard.

Feed URLs are untrusted: without a guard, a source pointing at ``http://169.254.169.254/`` or a
LAN admin page would make the bot fetch it. The guard sits in two places:

* ``GuardedResolver`` wraps the connector's resolver, so every name is checked *after* DNS
  resolution and only the checked addresses are handed to the connector, which connects to
  exactly those. Every request (first URL and each redirect hop) goes through it, so a name
  that resolves, or later re-resolves (DNS rebinding), to a refused address never gets a socket.
* aiohttp's ``TCPConnector`` never calls the resolver for IP-literal hosts (``_resolve_host``
  returns literals as they are), so ``AddressPolicy.check_url_host`` must be called on the host
  of every URL before it is requested; ``bot.fetch.Fetcher`` does this on each hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from bot.errors import BlockedAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network

# Ranges the ``ipaddress`` flags miss (they differ between Python versions) or that deserve to be
# explicit. An address inside any of these is refused whatever the flags say.
_EXTRA_BLOCKED_V4: tuple[ipaddress.IPv4Network, ...] = tuple(ipaddress.IPv4Network(n) for n in (
    "0.0.0.0/8",           # "this network"
    "10.0.0.0/8",
    "100.64.0.0/10",       # carrier-grade NAT (shared address space)
    "127.0.0.0/8",
    "169.254.0.0/16",      # link-local, incl. cloud metadata 169.254.169.254
    "172.16.0.0/12",
    "192.0.0.0/24",        # IETF protocol assignments
    "192.0.2.0/24",        # TEST-NET-1
    "192.88.99.0/24",      # 6to4 relay anycast (deprecated)
    "192.168.0.0/16",
    "198.18.0.0/15",       # benchmarking
    "198.51.100.0/24",     # TEST-NET-2
    "203.0.113.0/24",      # TEST-NET-3
    "224.0.0.0/4",         # multicast
    "240.0.0.0/4",         # reserved, incl. 255.255.255.255
))
_EXTRA_BLOCKED_V6: tuple[ipaddress.IPv6Network, ...] = tuple(ipaddress.IPv6Network(n) for n in (
    "::/8",                # unspecified, loopback, IPv4-compatible (deprecated), ...
    "64:ff9b:1::/48",      # local-use NAT64 (RFC 8215)
    "100::/64",            # discard-only
    "2001::/23",           # IETF protocol assignments, incl. Teredo 2001::/32
    "2001:db8::/32",       # documentation
    "3fff::/20",           # documentation (RFC 9637)
    "5f00::/16",           # SRv6 SIDs
    "fc00::/7",            # unique local
    "fe80::/10",           # link-local
    "fec0::/10",           # site-local (deprecated)
    "ff00::/8",            # multicast
))
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SIXTOFOUR = ipaddress.IPv6Network("2002::/16")


def parse_address(address: IPAddress | str) -> IPAddress | None:
    """An address object, or None when ``address`` is not an IP address (IPv6 zone ids are kept)."""
    if isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return address
    try:
        return ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 address stands for."""
    if address in _IPV4_MAPPED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIXTOFOUR:
        return address.sixtofour
    return None


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global):
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED_V4)


def is_public_address(address: IPAddress | str) -> bool:
    """True only for globally routable unicast addresses; anything unparseable is not public.

    IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::a.b.c.d``) addresses are judged by the
    IPv4 address they carry, so a NAT64 gateway on an IPv6-only host still reaches public sites;
    a 6to4 address is public only if both it and its embedded IPv4 are.
    """
    ip = parse_address(address)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip.scope_id:  # a zone id only makes sense for link-local addresses
        return False
    if ip in _IPV4_MAPPED or ip in _NAT64:
        inner = embedded_ipv4(ip)
        return inner is not None and _is_public_v4(inner)
    if ip in _SIXTOFOUR:
        inner = ip.sixtofour
        if inner is None or not _is_public_v4(inner):
            return False
    if (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or ip.is_site_local or not ip.is_global):
        return False
    return not any(ip in net for net in _EXTRA_BLOCKED_V6)


def looks_like_ip_literal(host: str) -> bool:
    """What aiohttp treats as an IP literal (and so never passes to the resolver): a host with a
    colon, or only digits and dots. Mirrors ``aiohttp.helpers.is_ip_address``."""
    host = host.strip("[]")
    return ":" in host or (bool(host) and host.replace(".", "").isdigit())


class AddressPolicy:
    """Public addresses are allowed; anything else only inside an allow-listed network."""

    def __init__(self, allow: Sequence[IPNetwork | str] = ()) -> None:
        self.allow: tuple[IPNetwork, ...] = tuple(
            n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) else _net(n, strict=False)
            for n in allow)

    @classmethod
    def from_strings(cls, networks: Iterable[str]) -> AddressPolicy:
        return cls(tuple(networks))

    def __repr__(self) -> str:
        return f"AddressPolicy(allow={[str(n) for n in self.allow]!r})"

    def _allow_listed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.scope_id:
                candidates = [ipaddress.IPv6Address(str(ip).split("%", 1)[0])]
            if ip in _IPV4_MAPPED:
                inner = embedded_ipv4(ip)
                if inner is not None:
                    candidates.append(inner)
        return any(c in net for c in candidates for net in self.allow if net.version == c.version)

    def permits(self, address: IPAddress | str) -> bool:
        ip = parse_address(address)
        if ip is None:
            return False
        return self._allow_listed(ip) or is_public_address(ip)

    def check_address(self, host: str, address: IPAddress | str) -> None:
        """Raise ``BlockedAddressError`` unless ``address`` (what ``host`` resolved to) is permitted."""
        if not self.permits(address):
            raise BlockedAddressError(host, blocked_message(host, str(address)))

    def check_url_host(self, host: str) -> bool:
        """Check a URL's host when it is an IP literal; True if it was one (and is permitted).

        Must be called before requesting a URL: aiohttp connects to literals without resolving,
        so the resolver never sees them. Literals Python cannot parse (``127.1``, ``0x7f.1``,
        ``2130706433``) are refused here; aiohttp would refuse them too.
        """
        if not looks_like_ip_literal(host):
            return False
        bare = host.strip("[]")
        ip = parse_address(bare)
        if ip is None or (isinstance(ip, ipaddress.IPv4Address) and str(ip) != bare):
            raise BlockedAddressError(host, f"{host} is not a canonical IP address")
        self.check_address(host, ip)
        return True


def blocked_message(host: str, address: str) -> str:
    what = "a private or reserved address (loopback, LAN, link-local, ...)"
    shown = f"{host} is {what}" if host.strip("[]") == address else f"{host} resolves to {address}, {what}"
    return f"{shown}; refused (list its network under fetch.allow_private_networks to allow it)"


class GuardedResolver(AbstractResolver):
    """Resolve through ``inner`` (a ``ThreadedResolver`` by default), then drop every address the
    policy refuses; raise ``BlockedAddressError`` when none is left.

    The connector connects only to what this returns (and caches only that), so the check and the
    connection use the same addresses: there is no window for DNS rebinding. ``timeout`` bounds
    one lookup (a resolver without network can otherwise hang for the libc retry time).
    """

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None, *,
                 timeout: float | None = None) -> None:
        self.policy = policy
        self._inner = inner
        self._owns_inner = inner is None
        self.timeout = timeout

    def _resolver(self) -> AbstractResolver:
        if self._inner is None:
            self._inner = ThreadedResolver()
        return self._inner

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if looks_like_ip_literal(host):  # never the case from TCPConnector, but be safe
            self.policy.check_url_host(host)
        try:
            async with asyncio.timeout(self.timeout):
                results = await self._resolver().resolve(host, port, family)
        except TimeoutError:
            raise OSError(f"DNS lookup of {host} timed out") from None
        permitted = [r for r in results if self.policy.permits(r["host"])]
        if not permitted:
            shown = results[0]["host"] if results else "no address"
            raise BlockedAddressError(host, blocked_message(host, shown))
        return permitted

    async def close(self) -> None:
        if self._inner is not None and self._owns_inner:
            await self._inner.close()
