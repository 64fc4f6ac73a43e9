"""The SSRF guard: address classification, the allow-list, and the resolver wrapper.

Nothing here opens a connection: the resolver tests use a fake inner resolver, and the refused
addresses (169.254.169.254, 10.x, ...) are only classified, never dialled.
"""

from __future__ import annotations

import socket

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from bot.errors import BlockedAddressError, FetchError
from bot.netguard import AddressPolicy, GuardedResolver, embedded_ipv4, is_public_address, looks_like_ip_literal

REFUSED = [
    # IPv4
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.254", "127.0.0.1",
    "127.0.0.2", "127.255.255.255", "169.254.0.1", "169.254.169.254", "172.16.0.1", "172.31.255.255",
    "192.0.0.1", "192.0.0.9", "192.0.2.1", "192.88.99.1", "192.168.0.1", "192.168.255.255", "198.18.0.1",
    "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255",
    # IPv6
    "::", "::1", "::7f00:1", "fe80::1", "fe80::1%1", "febf::1", "fec0::1", "fc00::1", "fd12:3456::1",
    "ff02::1", "ff0e::1", "2001:db8::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "100::1",
    "3fff::1", "64:ff9b:1::a00:1",
    # IPv4-mapped / NAT64 / 6to4 forms of refused IPv4 addresses
    "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:192.168.1.1",
    "::ffff:0.0.0.0", "64:ff9b::a9fe:a9fe", "64:ff9b::127.0.0.1", "64:ff9b::10.1.2.3",
    "2002:a9fe:a9fe::1", "2002:7f00:1::1", "2002:c0a8:101::1",
    # not addresses at all
    "", "localhost", "example.com", "127.1", "999.1.1.1", "1.2.3.4.5",
]

PUBLIC = [
    "1.1.1.1", "8.8.8.8", "9.9.9.9", "93.184.216.34", "100.63.255.255", "100.128.0.1", "151.101.1.69",
    "172.15.255.255", "172.32.0.1", "192.167.1.1", "192.169.0.1", "198.17.255.255", "198.20.0.1",
    "2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2001:4860:4860::8888",
    "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address: str) -> None:
    assert not is_public_address(address), address
    assert not AddressPolicy().permits(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address: str) -> None:
    assert is_public_address(address), address
    assert AddressPolicy().permits(address)


def test_cloud_metadata_is_link_local_and_refused_even_mapped() -> None:
    for form in ("169.254.169.254", "::ffff:169.254.169.254", "64:ff9b::169.254.169.254", "2002:a9fe:a9fe::"):
        assert not is_public_address(form)


def test_embedded_ipv4() -> None:
    import ipaddress

    assert str(embedded_ipv4(ipaddress.IPv6Address("::ffff:10.0.0.1"))) == "10.0.0.1"
    assert str(embedded_ipv4(ipaddress.IPv6Address("64:ff9b::8.8.8.8"))) == "8.8.8.8"
    assert str(embedded_ipv4(ipaddress.IPv6Address("2002:c0a8:101::1"))) == "192.168.1.1"
    assert embedded_ipv4(ipaddress.IPv6Address("2606:4700::1")) is None


def test_allow_list() -> None:
    policy = AddressPolicy(["127.0.0.1/32", "192.168.1.0/24", "fd00::/8"])
    assert policy.permits("127.0.0.1")
    assert policy.permits("::ffff:127.0.0.1")  # the mapped form of an allowed address
    assert not policy.permits("127.0.0.2")
    assert policy.permits("192.168.1.77")
    assert not policy.permits("192.168.2.1")
    assert policy.permits("fd00::5")
    assert not policy.permits("169.254.169.254")
    assert policy.permits("8.8.8.8")  # public stays allowed
    assert not policy.permits("not-an-ip")


def test_policy_accepts_network_objects() -> None:
    import ipaddress

    policy = AddressPolicy([ipaddress.ip_network("10.0.0.0/8")])
    assert policy.permits("10.1.2.3")
    assert AddressPolicy.from_strings(["10.0.0.0/8"]).permits("10.1.2.3")


def test_literal_detection_matches_aiohttp() -> None:
    from aiohttp.helpers import is_ip_address

    for host in ("127.0.0.1", "::1", "[::1]", "2130706433", "127.1", "example.com", "1.2.3.4.example",
                 "0x7f.0.0.1", "localhost"):
        assert looks_like_ip_literal(host) == is_ip_address(host.strip("[]")), host


def test_check_url_host() -> None:
    policy = AddressPolicy(["127.0.0.1/32"])
    assert policy.check_url_host("127.0.0.1") is True
    assert policy.check_url_host("example.com") is False  # names are the resolver's job
    for host in ("127.0.0.2", "169.254.169.254", "[::1]", "::ffff:127.0.0.2", "2130706433", "127.1",
                 "10.0.0.1", "[fe80::1%25eth0]"):
        with pytest.raises(BlockedAddressError) as info:
            policy.check_url_host(host)
        assert isinstance(info.value, FetchError)


def test_blocked_message_is_helpful() -> None:
    with pytest.raises(BlockedAddressError, match="allow_private_networks"):
        AddressPolicy().check_address("feeds.test", "10.0.0.1")


class FakeResolver(AbstractResolver):
    """Maps names to fixed addresses; never touches the network."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []
        self.closed = False

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [ResolveResult(hostname=host, host=address, port=port,
                              family=socket.AF_INET6 if ":" in address else socket.AF_INET, proto=0, flags=0)
                for address in self.table[host]]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_allows_allow_listed_loopback_and_refuses_alias() -> None:
    inner = FakeResolver({"good.test": ["127.0.0.1"], "alias.test": ["127.0.0.2"],
                          "meta.test": ["169.254.169.254"], "lan.test": ["192.168.1.10"],
                          "public.test": ["93.184.216.34"]})
    resolver = GuardedResolver(AddressPolicy(["127.0.0.1/32"]), inner)
    assert [r["host"] for r in await resolver.resolve("good.test", 80)] == ["127.0.0.1"]
    assert [r["host"] for r in await resolver.resolve("public.test", 80)] == ["93.184.216.34"]
    for name in ("alias.test", "meta.test", "lan.test"):
        with pytest.raises(BlockedAddressError, match=name):
            await resolver.resolve(name, 80)
    await resolver.close()
    assert not inner.closed  # an injected resolver belongs to the caller


async def test_resolver_drops_refused_addresses_of_a_mixed_answer() -> None:
    inner = FakeResolver({"mixed.test": ["10.0.0.5", "93.184.216.34", "::1", "2606:4700::1111"]})
    resolver = GuardedResolver(AddressPolicy(), inner)
    hosts = [r["host"] for r in await resolver.resolve("mixed.test", 443)]
    assert hosts == ["93.184.216.34", "2606:4700::1111"]


async def test_resolver_checks_every_lookup_no_rebinding_gap() -> None:
    inner = FakeResolver({"rebind.test": ["127.0.0.1"]})
    resolver = GuardedResolver(AddressPolicy(["127.0.0.1/32"]), inner)
    assert await resolver.resolve("rebind.test", 80)
    inner.table["rebind.test"] = ["169.254.169.254"]  # the name now points elsewhere
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("rebind.test", 80)
    assert inner.calls == ["rebind.test", "rebind.test"]


async def test_resolver_refuses_literals_too() -> None:
    inner = FakeResolver({})
    resolver = GuardedResolver(AddressPolicy(), inner)
    with pytest.raises(BlockedAddressError):
        await resolver.resolve("169.254.169.254", 80)
    assert inner.calls == []


async def test_resolver_lookup_failure_is_an_oserror() -> None:
    resolver = GuardedResolver(AddressPolicy(), FakeResolver({}))
    with pytest.raises(OSError):
        await resolver.resolve("nothing.invalid", 80)


async def test_resolver_timeout() -> None:
    import asyncio

    class Hanging(FakeResolver):
        async def resolve(self, host: str, port: int = 0,
                          family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
            await asyncio.sleep(10)
            return []

    resolver = GuardedResolver(AddressPolicy(), Hanging({}), timeout=0.05)
    with pytest.raises(OSError, match="timed out") as info:
        await resolver.resolve("slow.test", 80)
    assert not isinstance(info.value, TimeoutError)  # aiohttp maps plain OSError to a DNS error
