"""Which network addresses documents may come from: no cloud metadata, optionally public only.

Document URLs are chosen by crawled (untrusted) websites, and fetch-docs often runs on
cloud machines, so a URL must never make it talk to the instance metadata service or
another link-local address. ``--public-only`` additionally refuses loopback, private,
multicast and reserved ranges.

Two checks share one :class:`AddressPolicy`:

* :func:`check_url_host` checks an IP-literal URL host before each request and each
  redirect hop (aiohttp never calls the resolver for IP literals);
* :class:`GuardedResolver`, given to the session's ``TCPConnector(resolver=...)``,
  checks the addresses a host *name* actually resolves to, on every lookup, so a name
  that points (or re-points, DNS rebinding) at a refused address is never connected to.

Policy (:meth:`AddressPolicy.refusal`):

* always refused: cloud metadata addresses (169.254.169.254, 169.254.170.2,
  169.254.170.23, 100.100.100.200, 192.0.0.192, 168.63.129.16, fd00:ec2::254,
  fd00:ec2::23, fd20:ce::254), all link-local (169.254.0.0/16, fe80::/10) and the
  unspecified addresses (0.0.0.0/8, ::). Connecting to 0.0.0.0 or :: reaches the local
  machine on Linux, and no real document lives there, so they are refused even without
  ``public_only``;
* refused with ``public_only``: loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12,
  192.168/16, 100.64.0.0/10 CGNAT, fc00::/7 ULA, fec0::/10), multicast (224/4, ff00::/8)
  and reserved (240/4 incl. broadcast, 192.0.0.0/24, documentation and benchmarking
  ranges, 2001:db8::/32, 3fff::/20, 100::/64, the rest of ::/8);
* IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, SIIT
  ``::ffff:0:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d`` and
  6to4 ``2002:AABB:CCDD::``) are judged by the IPv4 address they embed;
* zone ids (``fe80::1%eth0``, ``%25eth0`` in URLs) and brackets are ignored;
* legacy numeric IPv4 host spellings that ``getaddrinfo`` accepts (``2130706433``,
  ``0x7f.1``, ``127.1``) are judged by the address they mean;
* ``exempt_hosts`` (the Skop API host) are never checked. Matching is by host name,
  case-insensitive and ignoring a trailing dot, so a document URL on the API host is
  exempt as well.

How a refusal surfaces through aiohttp (checked against aiohttp 3.14 ``connector.py``):
``TCPConnector._create_direct_connection`` awaits ``_resolve_host``, which calls our
``resolve``; it catches ``OSError`` (``BlockedAddress`` is one; only an errno-less
``asyncio.TimeoutError`` is re-raised as is) and raises
``aiohttp.ClientConnectorDNSError(req.connection_key, exc) from exc``. So
``session.get(...)`` raises ``aiohttp.ClientConnectorDNSError`` (a subclass of
``ClientConnectorError`` < ``ClientOSError`` < ``ClientConnectionError`` <
``ClientError``, and of ``OSError``) whose ``.os_error`` and ``__cause__`` are the
``BlockedAddress``; its ``str()`` ends in ``[<our message>]`` because ``BlockedAddress``
sets ``strerror``. With the connector's DNS cache, concurrent waiters for the same
host get the same exception. :func:`blocked_cause` digs it out (``os_error``,
``__cause__``, ``__context__``, exception groups), so the caller can report "refused"
instead of a retryable connection error.

Limits: only direct connections are covered. Through an HTTP proxy the resolver sees
the proxy's host and the proxy resolves the target's name (the session uses
``trust_env=False``, so no proxy is picked up from the environment).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "AddressPolicy",
    "BlockedAddress",
    "GuardedResolver",
    "blocked_cause",
    "check_url_host",
]

METADATA = "cloud metadata"
LINK_LOCAL = "link-local"
UNSPECIFIED = "unspecified"
LOOPBACK = "loopback"
PRIVATE = "private"
MULTICAST = "multicast"
RESERVED = "reserved"
UNPARSEABLE = "unparseable"

_METADATA_ADDRESSES: frozenset[IPv4Address | IPv6Address] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack... IMDS
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS Pod Identity
        "100.100.100.200",  # Alibaba Cloud (inside CGNAT 100.64/10)
        "192.0.0.192",  # Oracle Cloud Classic
        "168.63.129.16",  # Azure WireServer (a public-looking address)
        "fd00:ec2::254",  # AWS IMDS over IPv6 (inside ULA fc00::/7)
        "fd00:ec2::23",  # AWS EKS Pod Identity over IPv6
        "fd20:ce::254",  # GCP metadata over IPv6
    )
)

_ALWAYS_V4: tuple[tuple[IPv4Network, str], ...] = (
    (IPv4Network("169.254.0.0/16"), LINK_LOCAL),
    (IPv4Network("0.0.0.0/8"), UNSPECIFIED),
)
_PUBLIC_ONLY_V4: tuple[tuple[IPv4Network, str], ...] = (
    (IPv4Network("127.0.0.0/8"), LOOPBACK),
    (IPv4Network("10.0.0.0/8"), PRIVATE),
    (IPv4Network("172.16.0.0/12"), PRIVATE),
    (IPv4Network("192.168.0.0/16"), PRIVATE),
    (IPv4Network("100.64.0.0/10"), PRIVATE),
    (IPv4Network("224.0.0.0/4"), MULTICAST),
    (IPv4Network("240.0.0.0/4"), RESERVED),
    (IPv4Network("192.0.0.0/24"), RESERVED),
    (IPv4Network("192.0.2.0/24"), RESERVED),
    (IPv4Network("198.51.100.0/24"), RESERVED),
    (IPv4Network("203.0.113.0/24"), RESERVED),
    (IPv4Network("198.18.0.0/15"), RESERVED),
)
_ALWAYS_V6: tuple[tuple[IPv6Network, str], ...] = (
    (IPv6Network("fe80::/10"), LINK_LOCAL),
    (IPv6Network("::/128"), UNSPECIFIED),
)
_PUBLIC_ONLY_V6: tuple[tuple[IPv6Network, str], ...] = (
    (IPv6Network("::1/128"), LOOPBACK),
    (IPv6Network("fc00::/7"), PRIVATE),
    (IPv6Network("fec0::/10"), PRIVATE),
    (IPv6Network("ff00::/8"), MULTICAST),
    (IPv6Network("2001:db8::/32"), RESERVED),
    (IPv6Network("3fff::/20"), RESERVED),
    (IPv6Network("100::/64"), RESERVED),
    (IPv6Network("::/8"), RESERVED),
)
_Table = tuple[tuple[IPv4Network, str], ...] | tuple[tuple[IPv6Network, str], ...]
_SIIT = IPv6Network("::ffff:0:0:0/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_COMPATIBLE = IPv6Network("::/96")
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


class BlockedAddress(OSError):
    """A host is, or resolved to, an address the policy refuses."""

    host: str
    address: str
    kind: str

    def __init__(self, host: str, address: str, kind: str, *, literal: bool = False) -> None:
        article = "an" if kind[:1] in "aeiou" else "a"
        if literal:
            message = f"{address} is {article} {kind} address: refused"
        else:
            message = f"{host} resolves to {address}, {article} {kind} address: refused"
        super().__init__(message)
        # aiohttp's ClientConnectorError copies errno/strerror and shows strerror.
        self.strerror = message
        self.host = host
        self.address = address
        self.kind = kind
        self.literal = literal
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_blocked, (self.host, self.address, self.kind, self.literal))


def _rebuild_blocked(host: str, address: str, kind: str, literal: bool) -> BlockedAddress:
    return BlockedAddress(host, address, kind, literal=literal)


def _bare(host: str) -> str:
    """``host`` without surrounding space, brackets or a zone id (``%eth0``, ``%25eth0``)."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    return text.split("%", 1)[0]


def _host_key(host: str) -> str:
    """How hosts are compared for exemption: lowercase, no trailing dot, canonical IP."""
    text = _bare(host).lower().rstrip(".")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, SIIT, compatible, NAT64, 6to4)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    low32 = IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIIT or address in _NAT64:
        return low32
    if address in _COMPATIBLE and int(address) > 1:  # not :: or ::1
        return low32
    return None


@dataclass(frozen=True, kw_only=True)
class AddressPolicy:
    """Which addresses may be connected to; see the module docstring for the ranges."""

    public_only: bool = False
    exempt_hosts: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        hosts = frozenset(_host_key(h) for h in self.exempt_hosts if _host_key(h))
        object.__setattr__(self, "exempt_hosts", hosts)

    def exempts(self, host: str) -> bool:
        """True if ``host`` is never checked (case and a trailing dot do not matter)."""
        return bool(self.exempt_hosts) and _host_key(host) in self.exempt_hosts

    def refusal(self, address: str) -> str | None:
        """The kind of refused address ``address`` is, or None if it is allowed.

        ``address`` is an IP address (brackets and a zone id are ignored); anything
        else raises ``ValueError``.
        """
        return self._judge(ipaddress.ip_address(_bare(address)))

    def _judge(self, address: IPv4Address | IPv6Address) -> str | None:
        if isinstance(address, IPv6Address):
            embedded = _embedded_ipv4(address)
            if embedded is not None:
                return self._judge(embedded)
        if address in _METADATA_ADDRESSES:
            return METADATA
        if isinstance(address, IPv4Address):
            tables: tuple[_Table, ...] = (_ALWAYS_V4, _PUBLIC_ONLY_V4)
        else:
            tables = (_ALWAYS_V6, _PUBLIC_ONLY_V6)
        for table in tables if self.public_only else tables[:1]:
            for network, kind in table:
                if address in network:
                    return kind
        return None


def _literal_address(host: str) -> tuple[IPv4Address | IPv6Address, bool] | None:
    """The address an IP-literal host means and whether it is spelled canonically.

    None for a host name. Legacy IPv4 spellings that ``getaddrinfo`` also accepts
    (``2130706433``, ``0x7f.1``, ``127.1``) count as literals, not canonical ones.
    """
    text = _bare(host).rstrip(".")
    try:
        return ipaddress.ip_address(text), True
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(text):
        try:
            return IPv4Address(socket.inet_aton(text)), False
        except OSError:
            return None
    return None


def check_url_host(host: str, *, policy: AddressPolicy) -> None:
    """Raise ``BlockedAddress`` if IP-literal ``host`` is refused; names and exempt hosts pass.

    Call it for the URL and every redirect hop: aiohttp does not call the resolver for
    IP literals. Host names are checked by :class:`GuardedResolver` at connect time.
    """
    if policy.exempts(host):
        return
    literal = _literal_address(host)
    if literal is None:
        return
    address, canonical = literal
    kind = policy._judge(address)
    if kind is not None:
        raise BlockedAddress(host, str(address), kind, literal=canonical)


class GuardedResolver(AbstractResolver):
    """A resolver that drops refused addresses, and refuses hosts that have only those.

    Wraps ``base`` (default: ``aiohttp.ThreadedResolver()``, made on first use). Exempt
    hosts are passed through unchecked. ``close()`` closes the base resolver too.
    """

    def __init__(self, *, policy: AddressPolicy, base: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._base = base

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The base resolver's addresses for ``host`` that the policy allows.

        Raises ``BlockedAddress`` (for the first refused address) when the base found
        addresses but the policy refuses all of them; errors of the base pass through.
        """
        if self._base is None:
            self._base = aiohttp.ThreadedResolver()
        results = await self._base.resolve(host, port, family)
        if self._policy.exempts(host):
            return results
        allowed: list[ResolveResult] = []
        first_refused: tuple[str, str] | None = None
        for result in results:
            try:
                kind = self._policy.refusal(result["host"])
            except ValueError:
                kind = UNPARSEABLE  # not an IP address: never hand it to the connector
            if kind is None:
                allowed.append(result)
            elif first_refused is None:
                first_refused = (result["host"], kind)
        if not allowed and first_refused is not None:
            raise BlockedAddress(host, *first_refused)
        return allowed

    async def close(self) -> None:
        """Close the base resolver."""
        if self._base is not None:
            await self._base.close()


def blocked_cause(exc: BaseException) -> BlockedAddress | None:
    """The ``BlockedAddress`` behind an (aiohttp) exception, or None.

    Looks at ``exc`` itself, ``os_error`` (``ClientConnectorError``), ``__cause__``,
    ``__context__`` and the members of exception groups, breadth first.
    """
    queue: deque[BaseException] = deque([exc])
    seen: set[int] = set()
    while queue:
        current = queue.popleft()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BlockedAddress):
            return current
        linked = [getattr(current, "os_error", None), current.__cause__, current.__context__]
        if isinstance(current, BaseExceptionGroup):
            linked.extend(current.exceptions)
        queue.extend(e for e in linked if isinstance(e, BaseException))
    return None
