"""The opening handshake, sans-IO: is this request a WebSocket handshake, is it valid, and the
answer that accepts it.

Over HTTP/1.1 (RFC 6455 4.2) a handshake is a GET with `Upgrade: websocket`, `Connection:
Upgrade`, a `Sec-WebSocket-Key` of 16 base64 bytes and `Sec-WebSocket-Version: 13`; it is
accepted with `101 Switching Protocols` and `Sec-WebSocket-Accept`. Over HTTP/2 (RFC 8441) it is
an extended CONNECT with `:protocol = websocket` and the version, accepted with `200` and no key.
A request that asks for a WebSocket but gets it wrong is answered 400 (426 with the version we
speak, for another version), before any app sees it.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from wsproto.extensions import Extension
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from .deflate import BoundedPerMessageDeflate

VERSION = "13"


class HandshakeError(Exception):
    """An invalid handshake: answered with `status` (and `headers`) instead of switching."""

    def __init__(self, status: int, reason: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


@dataclass
class Handshake:
    over_http2: bool
    key: str | None                      # Sec-WebSocket-Key (HTTP/1.1 only)
    offered_extensions: list[str] = field(default_factory=list)
    subprotocols: list[str] = field(default_factory=list)


def _tokens(value: str | None) -> list[str]:
    return [token.strip().lower() for token in (value or "").split(",") if token.strip()]


def _joined(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key == name]
    return ", ".join(values) if values else None


def asks_for_websocket(exchange) -> bool:
    """Whether a request means to open a WebSocket (a GET asking to upgrade to it, or an
    extended CONNECT for it), valid or not; any other request that names `Upgrade: websocket`
    is served as plain HTTP, which RFC 9110 7.8 allows."""
    if exchange.connect_protocol is not None:
        return exchange.connect_protocol.lower() == "websocket"
    upgrade = exchange.upgrade  # None for almost every request: nothing else is looked at
    return (upgrade is not None and exchange.method == "GET" and "websocket" in _tokens(upgrade)
            and "upgrade" in _tokens(_joined(exchange.headers, "connection")))


def read_handshake(method: str, version: str, headers: list[tuple[str, str]],
                   connect_protocol: str | None) -> Handshake:
    """Validate a handshake request (header names in lower case); raises `HandshakeError`."""
    over_http2 = connect_protocol is not None
    key = None
    if over_http2:
        if method != "CONNECT":
            raise HandshakeError(400, "a WebSocket over HTTP/2 is opened with CONNECT")
    else:
        if method != "GET":
            raise HandshakeError(400, "a WebSocket handshake must be a GET")
        if version != "1.1":
            raise HandshakeError(400, "a WebSocket handshake needs HTTP/1.1")
        if "upgrade" not in _tokens(_joined(headers, "connection")):
            raise HandshakeError(400, "a WebSocket handshake needs Connection: Upgrade")
        keys = [value for name, value in headers if name == "sec-websocket-key"]
        if len(keys) != 1 or not _valid_key(keys[0]):
            raise HandshakeError(400, "missing or invalid Sec-WebSocket-Key")
        key = keys[0].strip()
    versions = [value.strip() for name, value in headers if name == "sec-websocket-version"]
    if versions != [VERSION]:
        raise HandshakeError(426 if versions else 400, "unsupported WebSocket version",
                             (("Sec-WebSocket-Version", VERSION),))
    extensions = _joined(headers, "sec-websocket-extensions")
    protocols = _joined(headers, "sec-websocket-protocol")
    return Handshake(over_http2, key,
                     [offer.strip() for offer in (extensions or "").split(",") if offer.strip()],
                     [token.strip() for token in (protocols or "").split(",") if token.strip()])


def _valid_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key.strip(), validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def accept(handshake: Handshake, max_message_size: int,
           subprotocol: str | None = None) -> tuple[str, list[tuple[str, str]], list[Extension]]:
    """The accepting answer's status and headers, and the extensions it agreed to."""
    extensions: list[Extension] = [BoundedPerMessageDeflate(max_message_size)]
    headers: list[tuple[str, str]] = []
    if handshake.over_http2:
        status = "200 OK"
    else:
        status = "101 Switching Protocols"
        headers += [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                    ("Sec-WebSocket-Accept", generate_accept_token(handshake.key.encode("ascii")).decode("ascii"))]
    try:
        agreed = server_extensions_handshake(handshake.offered_extensions, extensions)
    except ValueError:  # parameters out of range or not numbers: agree to no extension
        agreed, extensions = None, []
    if agreed:
        headers.append(("Sec-WebSocket-Extensions", agreed.decode("ascii")))
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    return status, headers, [extension for extension in extensions if extension.enabled()]
