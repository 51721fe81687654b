"""The header fields a proxy passes on, sans-IO: what goes to the member and what comes back.

Hop-by-hop fields belong to one connection and are never passed on (RFC 9110 7.6.1): Connection
and every field it names, Keep-Alive, TE, Transfer-Encoding, Upgrade (unless the exchange is
tunnelled, where the proxy writes its own), and the Proxy-* fields. Content-Length goes too: the
proxy frames every forwarded message itself from the body it really relays, so an ambiguous
Content-Length/Transfer-Encoding pair can never reach a member (no request smuggling).

`Forwarded` (RFC 7239) and `X-Forwarded-For/Proto/Host` say who the client was. A client can
write them itself, so they are kept (and extended) only from a proxy the operator trusts
(`skitai.set_proxy_trusted`); from anyone else they are replaced. `Via` names each hop.
"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

HOP_BY_HOP = frozenset((
    "connection", "keep-alive", "te", "transfer-encoding", "upgrade", "content-length", "trailer",
    "proxy-connection", "proxy-authorization", "proxy-authenticate", "host", "expect",
    "http2-settings",
))
FORWARDING = frozenset(("forwarded", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip"))
VIA_NAME = "skitai"
_NOTHING: frozenset[str] = frozenset()

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in texts)


def is_trusted(address: str, networks: Sequence[Network]) -> bool:
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _split(headers: Sequence[tuple[str, str]], drop: frozenset[str]) -> tuple[list, list, dict]:
    """One pass over `headers`: the end-to-end fields (no hop-by-hop field, none that
    Connection names, none in `drop`, no `Via`), the `Via` values, and the values of the
    fields in `drop` and of Via, by lower-case name. Every proxied message goes through this,
    hence one pass."""
    kept, via, dropped = [], [], {}
    named: set[str] | None = None
    for field in headers:
        lower = field[0].lower()
        if lower == "via":
            via.append(field[1])
        elif lower in drop:
            dropped.setdefault(lower, []).append(field[1])
        elif lower == "connection":
            named = (named or set()) | {token.strip().lower() for token in field[1].split(",")}
        elif lower not in HOP_BY_HOP and not lower.startswith(("proxy-", ":")):
            kept.append(field)  # the caller's (name, value) pair itself: no new tuple per field
    if named:
        kept = [field for field in kept if field[0].lower() not in named]
    return kept, via, dropped


def via_version(version: str) -> str:
    """A Via field's protocol version: "1.0", "1.1", "2" (RFC 9110 7.6.3)."""
    return "2" if version.startswith("2") else version


_HOPS: dict[str, str] = {}  # protocol version -> this hop's Via element, made once per version


def _hop(version: str) -> str:
    hop = _HOPS.get(version)
    if hop is None:
        hop = _HOPS[version] = f"{via_version(version)} {VIA_NAME}"
    return hop


def _via(earlier: list[str], version: str) -> str:
    return ", ".join([*earlier, _hop(version)]) if earlier else _hop(version)


def _forwarded_node(address: str) -> str:
    """An address as a Forwarded node: IPv6 quoted and in brackets (RFC 7239 6)."""
    return f'"[{address}]"' if ":" in address else address


_TOKEN = re.compile(r"[A-Za-z0-9.:_~-]+")


def _quoted(value: str) -> str:
    """A Forwarded parameter value: as it is when it is a token, else quoted (RFC 7239 4)."""
    return value if _TOKEN.fullmatch(value) else '"' + value.replace('"', "").replace("\\", "") + '"'


def request_headers(headers: Sequence[tuple[str, str]], *, client: str, scheme: str, host: str | None,
                    version: str, trusted: bool, upstream_host: str) -> list[tuple[str, str]]:
    """The fields of a request as the proxy sends it to a member: end-to-end fields, `Host` the
    member's (`upstream_host`), the forwarding fields (the incoming ones kept and extended only
    when `trusted`), this hop in `Via`, and `TE: trailers`. Framing and Upgrade fields are the
    sender's job."""
    kept, via, forwarding = _split(headers, FORWARDING)
    out = [("Host", upstream_host), *kept]
    earlier = forwarding if trusted else {}
    element = f"for={_forwarded_node(client)};proto={scheme}"
    if host:
        element += f";host={_quoted(host)}"
    if earlier:
        out.append(("Forwarded", ", ".join([*earlier.get("forwarded", ()), element])))
        out.append(("X-Forwarded-For", ", ".join([*earlier.get("x-forwarded-for", ()), client])))
    else:
        out.append(("Forwarded", element))
        out.append(("X-Forwarded-For", client))
    out.append(("X-Forwarded-Proto", earlier["x-forwarded-proto"][0] if "x-forwarded-proto" in earlier else scheme))
    if "x-forwarded-host" in earlier:
        out.append(("X-Forwarded-Host", earlier["x-forwarded-host"][0]))
    elif host:
        out.append(("X-Forwarded-Host", host))
    if "x-real-ip" in earlier:
        out.append(("X-Real-IP", earlier["x-real-ip"][0]))
    out.append(("Via", _via(via, version)))
    out.append(("TE", "trailers"))  # the proxy takes a trailer section and passes it on
    return out


def response_headers(headers: Sequence[tuple[str, str]], version: str) -> list[tuple[str, str]]:
    """The fields of a member's answer as the proxy passes them to the client: end-to-end fields
    (the body's framing is the client-side protocol's) and this hop in `Via`."""
    kept, via, _ = _split(headers, _NOTHING)
    kept.append(("Via", _via(via, version)))
    return kept
