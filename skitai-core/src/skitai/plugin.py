"""The public plugin API: everything a plugin may import from the core.

Plugins import from here (and from `skitai` itself), never from the core's internals, so the
internals can change without breaking plugins.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from .exchange import Exchange, RequestHandler

hookimpl = pluggy.HookimplMarker("skitai")

__all__ = [
    "hookimpl",
    "Exchange",
    "RequestHandler",
    "MountAdapter",
    "CommandRegistry",
    "ProtocolRegistry",
    "HandlerRegistry",
]


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


@dataclass
class ProtocolRegistry:
    """Connection protocols, filled by `skitai_register_protocols`."""

    specs: list[ProtocolSpec] = field(default_factory=list)

    def add(self, name: str, factory: Callable[[Any], Any], alpn: tuple[str, ...] = (),
            default: bool = False, priority: int = 500) -> None:
        """`priority` orders the ALPN ids a TLS listener offers, lowest first: a plugin's
        protocol (h2 at the default 500) is preferred to HTTP/1.1, which registers at 900."""
        self.specs.append(ProtocolSpec(name, factory, tuple(alpn), default, priority=priority))

    def default(self) -> ProtocolSpec:
        for spec in self.specs:
            if spec.default:
                return spec
        raise RuntimeError("no default connection protocol is registered (is the http1 plugin loaded?)")

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


class HandlerRegistry:
    """Request handlers and mount adapters, filled by `skitai_register_handlers`."""

    def __init__(self) -> None:
        self._handlers: list[tuple[int, int, RequestHandler]] = []
        self.adapters: list[MountAdapter] = []

    def add(self, handler: RequestHandler, priority: int = 500) -> None:
        self._handlers.append((priority, len(self._handlers), handler))
        self._handlers.sort(key=lambda item: item[:2])

    def add_adapter(self, adapter: MountAdapter) -> None:
        self.adapters.append(adapter)

    @property
    def handlers(self) -> list[RequestHandler]:
        return [handler for _, _, handler in self._handlers]

    def adapter_for(self, obj: Any) -> MountAdapter:
        for adapter in self.adapters:
            if adapter.accepts(obj):
                return adapter
        raise TypeError(f"skitai cannot mount {obj!r}: no mount adapter accepts it")
