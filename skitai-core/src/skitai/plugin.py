"""The public plugin API: everything a plugin may import from the core.

Plugins import from here (and from `skitai` itself), never from the core's internals, so the
internals can change without breaking plugins.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import pluggy

from .body import BodyTimeout, ClientDisconnected, SpooledBody, StreamedBody
from .closing import linger_then_close
from .exchange import BodyPiece, Exchange, FileSegment, PreparedResponse, RequestHandler, body_length
from .plugin_sockets import SocketRegistry
from .startup import StartupError
from .statuses import error_body, error_headers, status_line

hookimpl = pluggy.HookimplMarker("skitai")

__all__ = [
    "hookimpl",
    "Exchange",
    "RequestHandler",
    "BodyPiece",
    "FileSegment",
    "PreparedResponse",
    "body_length",
    "StreamedBody",
    "SpooledBody",
    "ClientDisconnected",
    "BodyTimeout",
    "status_line",
    "error_body",
    "error_headers",
    "linger_then_close",
    "MountAdapter",
    "AdapterRegistry",
    "CommandRegistry",
    "ProtocolRegistry",
    "ProtocolUpgrade",
    "HandlerRegistry",
    "SocketRegistry",
    "ResponseFieldRegistry",
    "StartupError",
    "import_feature",
    "require_libraries",
]


def import_feature(module: str, feature: str, distribution: str) -> ModuleType:
    """Import `module`, the part of a plugin that serves `feature` with the libraries it needs,
    when the feature is configured or first used rather than when the plugin loads: every
    installed plugin is loaded by every script, so what a plugin imports at load costs every
    worker its memory whether the app uses the feature or not (aiohttp, aioquic, a database
    driver: several MiB each).

    A library that cannot be imported is a `StartupError` naming the feature, the library and
    the distribution that depends on it, raised where the feature is configured (an alias
    declared, `skitai_configure`), so a broken installation still stops the start in one line.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = (error.name or module).partition(".")[0]  # the library, not the module of it
        raise _missing(feature, missing, distribution, str(error)) from error


def require_libraries(feature: str, distribution: str, *libraries: str) -> None:
    """The `StartupError` of `import_feature` when one of `libraries` is not installed, found
    without importing it: for a feature that is always on (a service `import_feature` imports at
    its first use), called from `skitai_configure`, so a broken installation stops the start
    rather than the first request that uses the feature."""
    for library in libraries:
        if importlib.util.find_spec(library) is None:
            raise _missing(feature, library, distribution, "not installed")


def _missing(feature: str, library: str, distribution: str, reason: str) -> StartupError:
    return StartupError(f"{feature} needs {library}, which {distribution} depends on and which cannot be "
                        f"imported ({reason}): pip install {distribution}")


class MountAdapter:
    """Turns an object given to `skitai.mount(point, obj)` into a request handler.

    `accepts(obj)` says whether this adapter knows the object (already resolved: a callable,
    an absolute directory path, a module ...). `create(point, obj, pref)` returns the
    `RequestHandler` that serves the mount point. `kind` names the slot the handler takes at
    the point: a point may hold one "static" and one "app" handler, and the static one answers
    first when it has the file.
    """

    kind = "app"

    def accepts(self, obj: Any) -> bool:
        raise NotImplementedError

    def create(self, point: str, obj: Any, pref: Any) -> RequestHandler:
        raise NotImplementedError


@dataclass
class Command:
    name: str
    function: Callable[[list[str]], int | None]
    help: str = ""
    plugin: str = ""


class CommandRegistry:
    """Subcommands of the `skitai` console script, filled by `skitai_register_commands`."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}

    def add(self, name: str, function: Callable[[list[str]], int | None], help: str = "") -> None:
        if name in self.commands:
            raise ValueError(f"skitai command {name!r} is registered twice")
        self.commands[name] = Command(name, function, help)


@dataclass
class ProtocolSpec:
    name: str
    factory: Callable[[Any], Any]
    alpn: tuple[str, ...] = ()
    default: bool = False
    priority: int = 500
    preface: bytes = b""


class ProtocolUpgrade:
    """Takes an HTTP/1.1 connection over when a request asks `Upgrade: <token>` (h2c, websocket).

    Registered with `protocols.add_upgrade(token, upgrade)`. `accepts(exchange)` looks at the
    request head (on the loop thread) and says whether it is a valid upgrade request for this
    protocol; when it is not, the request is served as plain HTTP/1.1. An accepted request is
    not dispatched to a handler: its body is read in full (`exchange.body`, complete), earlier
    pipelined responses are sent, and then `take_over(server, exchange)` returns the
    `asyncio.Protocol` that gets the transport. The HTTP/1.1 connection calls the new protocol's
    `connection_made(transport)`, which writes the `101 Switching Protocols` answer itself
    (its headers belong to the protocol), and passes it all bytes that follow.
    """

    def accepts(self, exchange: Exchange) -> bool:
        return True

    def take_over(self, server: Any, exchange: Exchange) -> Any:
        raise NotImplementedError


@dataclass
class ProtocolRegistry:
    """Connection protocols, filled by `skitai_register_protocols`."""

    specs: list[ProtocolSpec] = field(default_factory=list)
    upgrades: dict[str, ProtocolUpgrade] = field(default_factory=dict)
    # (spec, preface, the preface's first word) of the protocols that have one, for
    # `match_preface`: made by `add`, not for every connection the default protocol sniffs.
    _prefaces: list[tuple[ProtocolSpec, bytes, bytes]] = field(default_factory=list, init=False, repr=False)

    def add(self, name: str, factory: Callable[[Any], Any], alpn: tuple[str, ...] = (),
            default: bool = False, priority: int = 500, preface: bytes = b"") -> None:
        """`priority` orders the ALPN ids a TLS listener offers, lowest first: a plugin's
        protocol (h2 at the default 500) is preferred to HTTP/1.1, which registers at 900.
        `preface`: the first bytes a client of this protocol sends on a plain connection
        (HTTP/2 prior knowledge: `PRI * HTTP/2.0`); the default protocol hands such a
        connection to `factory(server)` with the bytes it already received."""
        spec = ProtocolSpec(name, factory, tuple(alpn), default, priority=priority, preface=bytes(preface))
        self.specs.append(spec)
        if spec.preface:
            self._prefaces.append((spec, spec.preface, spec.preface[:_first_word_end(spec.preface)]))

    def add_upgrade(self, token: str, upgrade: ProtocolUpgrade) -> None:
        token = token.lower()
        if token in self.upgrades:
            raise ValueError(f"HTTP/1.1 upgrade {token!r} is registered twice")
        self.upgrades[token] = upgrade

    def match_preface(self, data: bytes) -> tuple[ProtocolSpec | None, bool]:
        """The protocol whose preface `data` starts with, and whether more bytes are needed to
        tell (`data` is still a prefix of some preface).

        A near miss, `data` that begins with a preface's first word (up to and with the first
        space or line end: `PRI ` of HTTP/2's, a method reserved for that preface) and then
        departs from it, is a broken client of that protocol rather than an HTTP/1.1 request:
        it gets `PREFACE_NEAR_MISS`, whose protocol closes the connection without a word."""
        undecided = False
        for spec, preface, first_word in self._prefaces:
            if data.startswith(preface):
                return spec, False
            if preface.startswith(data):
                undecided = True
            elif data.startswith(first_word):
                return PREFACE_NEAR_MISS, False
        return None, undecided

    @property
    def preface_starts(self) -> frozenset[int]:
        """The first bytes of the registered prefaces: only a connection whose first byte is
        one of them needs `match_preface` (none at all when no protocol has a preface)."""
        return frozenset(preface[0] for _, preface, _ in self._prefaces)

    def default(self) -> ProtocolSpec:
        for spec in self.specs:
            if spec.default:
                return spec
        raise StartupError("no default connection protocol is registered (is the http1 plugin disabled?)")

    def alpn_ids(self) -> list[str]:
        """The ALPN ids for the TLS context, in the server's order of preference."""
        ordered = sorted(self.specs, key=lambda spec: spec.priority)  # stable: ties keep their order
        return [alpn for spec in ordered for alpn in spec.alpn]

    def for_alpn(self, alpn: str | None) -> ProtocolSpec:
        """The protocol registered for a negotiated ALPN id; the default one when the handshake
        negotiated none (a client that offers no ALPN, or only ids nobody registered)."""
        if alpn is not None:
            for spec in self.specs:
                if alpn in spec.alpn:
                    return spec
        return self.default()


def _first_word_end(preface: bytes) -> int:
    """How many bytes of `preface` make its first word, with the space or line end after it."""
    ends = [index for index in (preface.find(b" "), preface.find(b"\r"), preface.find(b"\n")) if index >= 0]
    return min(ends) + 1 if ends else len(preface)


class _SilentClose(asyncio.Protocol):
    """Takes a connection only to close it, answering nothing (see `match_preface`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


PREFACE_NEAR_MISS = ProtocolSpec("preface-near-miss", lambda server: _SilentClose())


class HandlerRegistry:
    """Request handlers, filled by `skitai_register_handlers` once the settings are final."""

    def __init__(self) -> None:
        self._handlers: list[tuple[int, int, RequestHandler]] = []

    def add(self, handler: RequestHandler, priority: int = 500) -> None:
        self._handlers.append((priority, len(self._handlers), handler))
        self._handlers.sort(key=lambda item: item[:2])

    @property
    def handlers(self) -> list[RequestHandler]:
        return [handler for _, _, handler in self._handlers]


class AdapterRegistry:
    """Mount adapters, filled by `skitai_register_adapters` when the kernel is created: a
    script mounts (`skitai.mount()`) before `skitai.run()` reads the settings."""

    def __init__(self) -> None:
        self.adapters: list[MountAdapter] = []

    def add(self, adapter: MountAdapter) -> None:
        self.adapters.append(adapter)

    def adapter_for(self, obj: Any) -> MountAdapter | None:
        """The first adapter that accepts `obj`, or None."""
        for adapter in self.adapters:
            if adapter.accepts(obj):
                return adapter
        return None


class ResponseFieldRegistry:
    """Fields added to every response of the named protocols, filled by
    `skitai_register_response_fields` (HTTP/3's `Alt-Svc` on the TCP protocols' answers).

    Constant per server, so a protocol encodes them once; a response that carries a field of
    the same name itself keeps its own. Protocol names are those of `Exchange.protocol_name`,
    except that HTTP/1.1 stands for HTTP/1.0 too (one connection serves both)."""

    def __init__(self) -> None:
        self._fields: list[tuple[str, str, tuple[str, ...] | None]] = []
        self._cache: dict[str, tuple[tuple[str, str], ...]] = {}

    def add(self, name: str, value: str, protocols: tuple[str, ...] | None = None) -> None:
        """`protocols`: e.g. `("HTTP/1.1", "HTTP/2.0")`; None: every protocol."""
        if not name or any(c in name for c in " :\r\n") or any(c in value for c in "\r\n"):
            raise ValueError(f"invalid response field {name!r}: {value!r}")
        self._fields.append((name, value, None if protocols is None else tuple(protocols)))
        self._cache.clear()

    def for_protocol(self, protocol: str) -> tuple[tuple[str, str], ...]:
        """The fields a response of `protocol` gets, in registration order."""
        fields = self._cache.get(protocol)
        if fields is None:
            fields = self._cache[protocol] = tuple(
                (name, value) for name, value, protocols in self._fields
                if protocols is None or protocol in protocols)
        return fields
