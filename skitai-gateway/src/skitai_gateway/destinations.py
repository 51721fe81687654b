"""Which destinations the forward proxy may connect to: a policy over host names, the
addresses they resolve to, and ports (sans-IO but for `resolve`, which asks the resolver).

A forward proxy is a way into the network it stands in: by default it must not be one into the
internal network. So an address that is not globally reachable (private, loopback, link-local,
carrier-grade NAT, unspecified, multicast, reserved; an IPv6 address that embeds such an IPv4
one) is refused unless `allow` names it; `deny` refuses what it names, always; `public=False`
admits only what `allow` names.

A name is resolved once and *every* address it resolves to is checked: the proxy then connects
to those checked addresses, never to the name again, so a resolver that answers differently the
second time (DNS rebinding) cannot steer the connection elsewhere. A name `allow` lists by name
admits whatever it resolves to (the operator vouches for it); `deny` is checked on names and
addresses alike.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The policy refuses the destination (403); the message says why."""


class Unresolvable(Exception):
    """The destination's name does not resolve (502)."""


@dataclass(frozen=True)
class Rules:
    """Host names (exact, or `*.domain` for the domain's subdomains) and networks."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, items: Iterable[str], setting: str) -> "Rules":
        names, suffixes, networks = set(), [], []
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"{setting}: {item!r} is not a host name, address or network")
            text = item.strip().lower()
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if text.startswith("*."):
                suffixes.append(text[1:])
            elif "/" in text or ":" in text or "*" in text:
                raise ValueError(f"{setting}: {item!r} is not a host name, *.domain, address or network")
            else:
                names.add(text.rstrip("."))
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def has_name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(suffix) for suffix in self.suffixes)

    def has_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def parse_ports(items: Iterable[Any]) -> tuple[tuple[int, int], ...] | None:
    """Ports and "low-high" ranges as (low, high) pairs; None for "*" (every port)."""
    ranges = []
    for item in items:
        if item == "*":
            return None
        low, dash, high = str(item).strip().partition("-")
        try:
            pair = (int(low), int(high if dash else low))
        except ValueError:
            raise ValueError(f"ports: {item!r} is not a port, a low-high range or '*'") from None
        if not 1 <= pair[0] <= pair[1] <= 65535:
            raise ValueError(f"ports: {item!r} is not within 1-65535")
        ranges.append(pair)
    return tuple(ranges)


def is_internal(address: IPAddress) -> bool:
    """Whether an address is not one of the public internet's: private, loopback, link-local,
    shared (100.64/10), unspecified, multicast, reserved, or an IPv6 form of one (IPv4-mapped,
    6to4, Teredo)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_internal(address.ipv4_mapped)
        embedded = address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None and is_internal(embedded):
            return True
    return (not address.is_global or address.is_private or address.is_loopback or address.is_link_local
            or address.is_multicast or address.is_reserved or address.is_unspecified)


def plain(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it is, so rules on IPv4 networks hold."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class DestinationPolicy:
    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = (),
                 ports: Iterable[Any] = (80, 443), public: bool = True) -> None:
        self.allow = Rules.parse(allow, "allow")
        self.deny = Rules.parse(deny, "deny")
        self.ports = parse_ports(ports)
        self.public = public

    def check_name(self, host: str, port: int) -> bool:
        """Checks before resolving: the port and a denied name raise `Refused`. Returns whether
        `allow` admits the name itself (then its addresses need not be public)."""
        if self.ports is not None and not any(low <= port <= high for low, high in self.ports):
            raise Refused(f"port {port} is not allowed")
        host = host.lower().rstrip(".")
        if self.deny.has_name(host):
            raise Refused(f"{host} is denied")
        return self.allow.has_name(host)

    def check_address(self, address: IPAddress, name_allowed: bool = False) -> None:
        """Raise `Refused` unless the policy admits a connection to `address`."""
        address = plain(address)
        if self.deny.has_address(address):
            raise Refused(f"{address} is denied")
        if name_allowed or self.allow.has_address(address):
            return
        if not self.public:
            raise Refused(f"{address} is not in the allowed destinations")
        if is_internal(address):
            raise Refused(f"{address} is an internal address")


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal (`[::1]` too) stands for, else None."""
    try:
        return ipaddress.ip_address(host.strip("[]") if host.startswith("[") else host)
    except ValueError:
        return None


async def resolve(loop: Any, policy: DestinationPolicy, host: str, port: int) -> list[tuple]:
    """The (family, sockaddr) pairs to connect to for `host:port`, every one of them checked;
    `Refused` when the policy refuses the port, the name or any address it resolves to,
    `Unresolvable` when the name does not resolve."""
    name_allowed = policy.check_name(host, port)
    literal = literal_address(host)
    if literal is not None:
        policy.check_address(literal, name_allowed)
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, (str(literal), port))]
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as error:
        raise Unresolvable(f"{host} does not resolve: {error}") from None
    targets = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        policy.check_address(ipaddress.ip_address(sockaddr[0].partition("%")[0]), name_allowed)
        if (family, sockaddr) not in targets:
            targets.append((family, sockaddr))
    if not targets:
        raise Unresolvable(f"{host} has no IP address")
    return targets
