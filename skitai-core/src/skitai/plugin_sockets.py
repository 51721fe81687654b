"""Sockets a plugin binds itself (QUIC's UDP sockets), beside the core's TCP listeners.

A plugin names its sockets and gives a function that binds them (`skitai_register_sockets`).
The master calls it where it binds its own listeners: before it drops root privileges, so a
port below 1024 works, and before it forks, so every worker holds the same sockets. A graceful
reload hands them to the re-executed master by descriptor, under their names, so the new code
never binds them again and no datagram finds the port closed meanwhile.
"""
from __future__ import annotations

import os
import re
import socket
from typing import Callable, Union

from .startup import StartupError

PLUGIN_FD_ENV = "SKITAI_PLUGIN_FDS"   # name=fd:fd;name=fd ... for a reloaded master
_NAME = re.compile(r"[A-Za-z0-9_.-]+\Z").match

Bound = Union[socket.socket, "list[socket.socket]"]


class SocketRegistry:
    """Filled by `skitai_register_sockets`; bound by the master (`bind_all`), read by the
    plugin's per-worker service through `server.sockets(name)`."""

    def __init__(self) -> None:
        self._binders: dict[str, Callable[[], Bound]] = {}
        self.bound: dict[str, list[socket.socket]] = {}

    def add(self, name: str, bind: Callable[[], Bound]) -> None:
        """`bind()` returns a socket or a list of sockets, bound (and for TCP listening); it
        may raise `StartupError` (or an `OSError`, reported with the name) to stop the start.
        `skitai.listeners.bind_socket(address, port, kind=socket.SOCK_DGRAM)` binds a UDP one."""
        if not _NAME(name):
            raise ValueError(f"socket name {name!r}: letters, digits, '_', '.', '-' only")
        if name in self._binders:
            raise ValueError(f"plugin socket {name!r} is registered twice")
        self._binders[name] = bind

    def __contains__(self, name: str) -> bool:
        return name in self._binders

    def bind_all(self, inherited: str | None = None) -> None:
        """Bind every registered name, or take it over from `inherited` (what `inheritable`
        gave the previous master); inherited sockets nobody registers any more are closed."""
        handed = _parse(inherited)
        for name, fds in handed.items():
            if name not in self._binders:
                for fd in fds:
                    os.close(fd)
        for name, bind in self._binders.items():
            if name in self.bound:
                continue
            if name in handed:
                self.bound[name] = [socket.socket(fileno=fd) for fd in handed[name]]
                continue
            try:
                result = bind()
            except StartupError:
                raise
            except OSError as error:
                raise StartupError(f"cannot bind plugin socket {name}: {error.strerror or error}") from error
            self.bound[name] = [result] if isinstance(result, socket.socket) else list(result)

    def get(self, name: str) -> list[socket.socket]:
        """The sockets bound under `name` (empty when the name was not registered)."""
        return self.bound.get(name, [])

    def inheritable(self) -> str:
        """The descriptors to hand to a re-executed master, as `bind_all` takes them back."""
        parts = []
        for name, socks in self.bound.items():
            for sock in socks:
                os.set_inheritable(sock.fileno(), True)
            parts.append(f"{name}={':'.join(str(sock.fileno()) for sock in socks)}")
        return ";".join(parts)


def _parse(inherited: str | None) -> dict[str, list[int]]:
    handed: dict[str, list[int]] = {}
    for part in filter(None, (inherited or "").split(";")):
        name, _, fds = part.partition("=")
        handed[name] = [int(fd) for fd in fds.split(":") if fd]
    return handed
