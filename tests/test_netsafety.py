"""Address policy: no cloud metadata or link-local, optionally public addresses only."""

from __future__ import annotations

import ipaddress
import pickle
import socket
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from downloader.netsafety import (
    AddressPolicy,
    BlockedAddress,
    GuardedResolver,
    blocked_cause,
    check_url_host,
)

DEFAULT = AddressPolicy()
PUBLIC_ONLY = AddressPolicy(public_only=True)

ALWAYS_REFUSED = [
    "169.254.169.254",
    "169.254.1.1",
    "fe80::1",
    "fd00:ec2::254",
    "::ffff:169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
    "::",
    "64:ff9b::a9fe:a9fe",
    "::169.254.169.254",
    "::ffff:0:a9fe:a9fe",
    "2002:a9fe:a9fe::1",
    "fd20:ce::254",
]
ALLOWED_BY_DEFAULT_ONLY = [
    "127.0.0.1",
    "::1",
    "10.0.0.1",
    "192.168.1.1",
    "172.16.0.1",
    "fc00::1",
    "100.64.0.1",
    "::ffff:127.0.0.1",
    "224.0.0.1",
    "ff02::1",
    "255.255.255.255",
    "192.0.2.1",
    "2001:db8::1",
]
ALWAYS_ALLOWED = ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "1.1.1.1", "2001:4860::8888"]


def result(host: str, address: str, port: int = 80) -> ResolveResult:
    """A resolver result for ``address`` as aiohttp's ThreadedResolver builds it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return ResolveResult(hostname=host, host=address, port=port, family=family, proto=0, flags=0)


class FakeResolver(AbstractResolver):
    """Answers from a table instead of DNS; counts lookups and closes."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The table's addresses for ``host``; an unknown host fails like getaddrinfo."""
        self.lookups.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [result(host, address, port) for address in self.table[host]]

    async def close(self) -> None:
        """Remember that we were closed."""
        self.closed = True


# -- policy -------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
@pytest.mark.parametrize("policy", [DEFAULT, PUBLIC_ONLY], ids=["default", "public-only"])
def test_always_refused(policy: AddressPolicy, address: str) -> None:
    """Metadata, link-local and unspecified addresses are refused by every policy."""
    assert policy.refusal(address) is not None


@pytest.mark.parametrize("address", ALLOWED_BY_DEFAULT_ONLY)
def test_local_ranges_need_public_only(address: str) -> None:
    """Loopback, private, multicast and reserved pass by default, not with public_only."""
    assert DEFAULT.refusal(address) is None
    assert PUBLIC_ONLY.refusal(address) is not None


@pytest.mark.parametrize("address", ALWAYS_ALLOWED)
@pytest.mark.parametrize("policy", [DEFAULT, PUBLIC_ONLY], ids=["default", "public-only"])
def test_public_addresses_allowed(policy: AddressPolicy, address: str) -> None:
    """Public addresses are allowed by every policy."""
    assert policy.refusal(address) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "cloud metadata"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "private"),
        ("239.1.1.1", "multicast"),
        ("ff05::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("2001:db8::1", "reserved"),
    ],
)
def test_refusal_kinds(address: str, kind: str) -> None:
    """Each refused address is named by its kind."""
    assert PUBLIC_ONLY.refusal(address) == kind


@pytest.mark.parametrize("address", ["[fe80::1]", "fe80::1%eth0", "[fe80::1%25eth0]", "FE80::1"])
def test_refusal_ignores_brackets_zone_and_case(address: str) -> None:
    """Brackets, zone ids and upper case do not hide a link-local address."""
    assert DEFAULT.refusal(address) == "link-local"


@pytest.mark.parametrize("address", ["example.org", "", "1.2.3.4.5"])
def test_refusal_rejects_non_addresses(address: str) -> None:
    """``refusal`` judges addresses only; anything else is a ValueError."""
    with pytest.raises(ValueError, match="does not appear to be"):
        DEFAULT.refusal(address)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=4))
def test_mapped_ipv4_judged_like_ipv4(address: ipaddress.IPv4Address) -> None:
    """``::ffff:a.b.c.d`` is judged exactly like ``a.b.c.d``."""
    for policy in (DEFAULT, PUBLIC_ONLY):
        assert policy.refusal(f"::ffff:{address}") == policy.refusal(str(address))


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_public_only_refuses_a_superset(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    """Whatever the default refuses, public_only refuses as the same kind."""
    kind = DEFAULT.refusal(str(address))
    if kind is not None:
        assert PUBLIC_ONLY.refusal(str(address)) == kind


def test_exempt_hosts_are_normalised() -> None:
    """Exempt hosts match regardless of case, trailing dot, brackets and IP spelling."""
    policy = AddressPolicy(exempt_hosts=frozenset({"API.Example.", "[0:0::1]", ""}))
    assert policy.exempt_hosts == frozenset({"api.example", "::1"})
    assert policy.exempts("api.example.")
    assert policy.exempts("[::1]")
    assert not policy.exempts("example")


# -- check_url_host -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address: refused"),
        ("169.254.169.254.", "169.254.169.254 is a cloud metadata address: refused"),
        ("fe80::1", "fe80::1 is a link-local address: refused"),
        ("[fe80::1]", "fe80::1 is a link-local address: refused"),
        ("[FE80::1%25eth0]", "fe80::1 is a link-local address: refused"),
        ("fe80::1%eth0", "fe80::1 is a link-local address: refused"),
        ("[fd00:ec2::254]", "fd00:ec2::254 is a cloud metadata address: refused"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address: refused"),
        (
            "0xa9.0xfe.0xa9.0xfe",
            "0xa9.0xfe.0xa9.0xfe resolves to 169.254.169.254, a cloud metadata address: refused",
        ),
        ("2852039166", "2852039166 resolves to 169.254.169.254, a cloud metadata address"),
    ],
)
def test_check_url_host_refuses_literals(host: str, message: str) -> None:
    """IP-literal hosts, however spelled, are refused with a clear message."""
    with pytest.raises(BlockedAddress, match=message.replace(".", r"\.")) as caught:
        check_url_host(host, policy=DEFAULT)
    assert caught.value.host == host


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "127.1", "0x7f.1", "2130706433", "10.0.0.1"]
)
def test_check_url_host_public_only(host: str) -> None:
    """Loopback and private literals (legacy spellings too) pass by default, not public_only."""
    check_url_host(host, policy=DEFAULT)
    with pytest.raises(BlockedAddress) as caught:
        check_url_host(host, policy=PUBLIC_ONLY)
    assert caught.value.kind in {"loopback", "private"}


@pytest.mark.parametrize(
    "host", ["example.org", "localhost", "metadata.google.internal", "cafe.be", "deadbeef", "1e100"]
)
def test_check_url_host_passes_names(host: str) -> None:
    """Names pass: the resolver checks what they resolve to."""
    check_url_host(host, policy=PUBLIC_ONLY)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "169.254.169.254"])
def test_check_url_host_exempt(host: str) -> None:
    """Exempt hosts pass even when their address would be refused."""
    policy = AddressPolicy(public_only=True, exempt_hosts=frozenset({host.strip("[]")}))
    check_url_host(host, policy=policy)


def test_blocked_address_is_an_oserror_that_pickles() -> None:
    """``BlockedAddress`` is an OSError with strerror set and survives pickling."""
    exc = BlockedAddress("evil.example", "169.254.169.254", "cloud metadata")
    assert isinstance(exc, OSError)
    assert exc.strerror == str(exc)
    assert str(exc) == "evil.example resolves to 169.254.169.254, a cloud metadata address: refused"
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.host, copy.address, copy.kind, str(copy)) == (
        exc.host,
        exc.address,
        exc.kind,
        str(exc),
    )


# -- GuardedResolver ------------------------------------------------------------------------


async def test_resolver_drops_refused_addresses() -> None:
    """A host with some refused addresses resolves to the allowed ones only."""
    base = FakeResolver({"mixed.test": ["169.254.169.254", "127.0.0.1", "fe80::1", "8.8.8.8"]})
    resolver = GuardedResolver(policy=DEFAULT, base=base)
    got = await resolver.resolve("mixed.test", 443, socket.AF_UNSPEC)
    assert [r["host"] for r in got] == ["127.0.0.1", "8.8.8.8"]
    assert all(r["port"] == 443 for r in got)
    got = await GuardedResolver(policy=PUBLIC_ONLY, base=base).resolve("mixed.test", 443)
    assert [r["host"] for r in got] == ["8.8.8.8"]


async def test_resolver_refuses_host_with_only_refused_addresses() -> None:
    """A host whose every address is refused raises BlockedAddress for its first one."""
    base = FakeResolver({"rebind.test": ["169.254.169.254", "fe80::1%eth0"]})
    with pytest.raises(BlockedAddress) as caught:
        await GuardedResolver(policy=DEFAULT, base=base).resolve("rebind.test", 80)
    assert (caught.value.host, caught.value.address, caught.value.kind) == (
        "rebind.test",
        "169.254.169.254",
        "cloud metadata",
    )
    assert str(caught.value) == (
        "rebind.test resolves to 169.254.169.254, a cloud metadata address: refused"
    )


async def test_resolver_drops_non_addresses() -> None:
    """A base answer that is not an IP address is never handed on."""
    base = FakeResolver({"odd.test": ["not-an-ip"]})
    with pytest.raises(BlockedAddress, match="an unparseable address"):
        await GuardedResolver(policy=DEFAULT, base=base).resolve("odd.test")


async def test_resolver_passes_exempt_hosts_and_base_errors() -> None:
    """Exempt hosts are unchecked; lookup failures and empty answers pass through as is."""
    base = FakeResolver({"API.test": ["127.0.0.1"], "empty.test": []})
    policy = AddressPolicy(public_only=True, exempt_hosts=frozenset({"api.test"}))
    resolver = GuardedResolver(policy=policy, base=base)
    assert [r["host"] for r in await resolver.resolve("API.test")] == ["127.0.0.1"]
    assert await resolver.resolve("empty.test") == []
    with pytest.raises(socket.gaierror):
        await resolver.resolve("missing.test")
    await resolver.close()
    assert base.closed


async def test_default_base_resolves_localhost() -> None:
    """Without a base, the threaded resolver is used (localhost comes from the hosts file)."""
    resolver = GuardedResolver(policy=PUBLIC_ONLY)
    with pytest.raises(BlockedAddress) as caught:
        await resolver.resolve("localhost", 80, socket.AF_INET)
    assert (caught.value.address, caught.value.kind) == ("127.0.0.1", "loopback")
    resolver = GuardedResolver(policy=DEFAULT)
    assert [r["host"] for r in await resolver.resolve("localhost", 80, socket.AF_INET)] == [
        "127.0.0.1"
    ]
    await resolver.close()


# -- blocked_cause --------------------------------------------------------------------------


def test_blocked_cause_follows_links() -> None:
    """The BlockedAddress is found via os_error, __cause__, __context__ or a group."""
    blocked = BlockedAddress("h", "169.254.1.1", "link-local")
    assert blocked_cause(blocked) is blocked
    assert blocked_cause(RuntimeError("x")) is None

    via_cause = RuntimeError("wrapped")
    via_cause.__cause__ = blocked
    via_context = ValueError("during")
    via_context.__context__ = via_cause
    assert blocked_cause(via_context) is blocked

    group = ExceptionGroup("many", [ValueError("a"), via_cause])
    assert blocked_cause(group) is blocked

    cycle_a, cycle_b = RuntimeError("a"), RuntimeError("b")
    cycle_a.__context__, cycle_b.__context__ = cycle_b, cycle_a
    assert blocked_cause(cycle_a) is None

    class WithOsError(Exception):
        os_error = blocked

    assert blocked_cause(WithOsError()) is blocked


# -- end to end through aiohttp -------------------------------------------------------------


@pytest.fixture
async def server(
    aiohttp_server: Callable[[web.Application], Coroutine[Any, Any, TestServer]],
) -> tuple[TestServer, list[str]]:
    """A real server on 127.0.0.1 that records the paths it served."""
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    return await aiohttp_server(app), hits


async def get(resolver: AbstractResolver, url: str) -> str:
    """GET ``url`` through a TCPConnector using ``resolver``; the body text."""
    connector = aiohttp.TCPConnector(resolver=resolver)
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False) as session,
        session.get(url) as response,
    ):
        return await response.text()


async def test_public_only_refuses_localhost_through_aiohttp(
    server: tuple[TestServer, list[str]],
) -> None:
    """With public_only, GET http://localhost/ fails as ClientConnectorDNSError, no request."""
    test_server, hits = server
    url = f"http://localhost:{test_server.port}/doc.pdf"
    with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
        await get(GuardedResolver(policy=PUBLIC_ONLY), url)
    blocked = blocked_cause(caught.value)
    assert blocked is not None
    assert caught.value.os_error is blocked
    assert caught.value.__cause__ is blocked
    assert (blocked.host, blocked.kind) == ("localhost", "loopback")
    assert blocked.address in {"127.0.0.1", "::1"}
    assert str(blocked) in str(caught.value)
    assert hits == []


async def test_default_policy_and_exempt_host_reach_localhost(
    server: tuple[TestServer, list[str]],
) -> None:
    """Loopback is fine by default, and with public_only for an exempt host."""
    test_server, hits = server
    url = f"http://localhost:{test_server.port}/doc.pdf"
    assert await get(GuardedResolver(policy=DEFAULT), url) == "ok"
    exempt = AddressPolicy(public_only=True, exempt_hosts=frozenset({"localhost"}))
    assert await get(GuardedResolver(policy=exempt), url) == "ok"
    assert hits == ["/doc.pdf", "/doc.pdf"]


async def test_rebinding_name_connects_only_to_allowed_addresses(
    server: tuple[TestServer, list[str]],
) -> None:
    """A name mixing metadata and allowed addresses is connected to the allowed one only."""
    test_server, hits = server
    base = FakeResolver(
        {"mixed.test": ["169.254.169.254", "127.0.0.1"], "rebind.test": ["169.254.169.254"]}
    )
    resolver = GuardedResolver(policy=DEFAULT, base=base)
    assert await get(resolver, f"http://mixed.test:{test_server.port}/a") == "ok"
    with pytest.raises(aiohttp.ClientConnectorDNSError) as caught:
        await get(resolver, f"http://rebind.test:{test_server.port}/b")
    blocked = blocked_cause(caught.value)
    assert blocked is not None
    assert blocked.kind == "cloud metadata"
    assert hits == ["/a"]


async def test_ip_literals_bypass_the_resolver(server: tuple[TestServer, list[str]]) -> None:
    """aiohttp never asks the resolver about IP literals: check_url_host must."""
    test_server, hits = server
    url = f"http://127.0.0.1:{test_server.port}/lit"
    base = FakeResolver({})
    assert await get(GuardedResolver(policy=PUBLIC_ONLY, base=base), url) == "ok"
    assert base.lookups == []
    with pytest.raises(BlockedAddress):
        check_url_host("127.0.0.1", policy=PUBLIC_ONLY)
    assert hits == ["/lit"]
