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


def connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    """The field names a message's Connection fields list (lower case)."""
    return {token.strip().lower() for name, value in headers if name.lower() == "connection"
            for token in value.split(",") if token.strip()}


def end_to_end(headers: Sequence[tuple[str, str]], drop: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """`headers` without the hop-by-hop fields, those Connection names, and `drop`."""
    named = connection_tokens(headers)
    return [(name, value) for name, value in headers
            if (lower := name.lower()) not in HOP_BY_HOP and lower not in named and lower not in drop
            and not lower.startswith("proxy-") and not lower.startswith(":")]


def via_version(version: str) -> str:
    """A Via field's protocol version: "1.0", "1.1", "2" (RFC 9110 7.6.3)."""
    return "2" if version.startswith("2") else version


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
    when `trusted`), this hop in `Via`, and `TE: trailers`. Framing and Upgrade fields are the sender's job."""
    out = [("Host", upstream_host)]
    kept = end_to_end(headers, drop=FORWARDING if not trusted else frozenset())
    via = [value for name, value in kept if name.lower() == "via"]
    out.extend((name, value) for name, value in kept
               if name.lower() not in ("via", "x-forwarded-for", "forwarded"))
    earlier_for = [value for name, value in headers if name.lower() == "x-forwarded-for"] if trusted else []
    earlier_forwarded = [value for name, value in headers if name.lower() == "forwarded"] if trusted else []
    element = f"for={_forwarded_node(client)};proto={scheme}"
    if host:
        element += f";host={_quoted(host)}"
    out.append(("Forwarded", ", ".join([*earlier_forwarded, element])))
    out.append(("X-Forwarded-For", ", ".join([*earlier_for, client])))
    names = {name.lower() for name, _ in out}
    if "x-forwarded-proto" not in names:
        out.append(("X-Forwarded-Proto", scheme))
    if host and "x-forwarded-host" not in names:
        out.append(("X-Forwarded-Host", host))
    out.append(("Via", ", ".join([*via, f"{via_version(version)} {VIA_NAME}"])))
    out.append(("TE", "trailers"))  # the proxy takes a trailer section and passes it on
    return out


def response_headers(headers: Sequence[tuple[str, str]], version: str) -> list[tuple[str, str]]:
    """The fields of a member's answer as the proxy passes them to the client: end-to-end fields
    (the body's framing is the client-side protocol's) and this hop in `Via`."""
    kept = end_to_end(headers)
    via = [value for name, value in kept if name.lower() == "via"]
    out = [(name, value) for name, value in kept if name.lower() != "via"]
    out.append(("Via", ", ".join([*via, f"{via_version(version)} {VIA_NAME}"])))
    return out
