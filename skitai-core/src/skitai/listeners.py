"""The listening sockets a Skitai process serves: the main one (TLS after `skitai.enable_ssl`)
and the plain-HTTP one of `skitai.enable_forward`.

The master binds them all before it drops root privileges and before it forks, so ports below
1024 work and every worker accepts on the same sockets. A graceful reload hands them to the
re-executed master as descriptors, in `bind_listeners` order, so no connection is refused.
"""
from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
from dataclasses import dataclass

from .alpn import ALPNSelector
from .config import ServerConfig
from .forward import url_host
from .startup import StartupError

# Connections the kernel holds for each listening socket until a worker accepts them (capped by
# net.core.somaxconn), as gunicorn and uvicorn set it. Passed again to the loop's create_server,
# which would otherwise listen() anew with asyncio's default of 100: a burst of more connections
# than that per listener has its SYNs dropped, and each such client waits out a retransmission
# (one second or more) before it is even accepted.
LISTEN_BACKLOG = 2048

# An HTTP client speaks first, so a new connection is handed to accept() only once its first
# bytes are in (Linux's TCP_DEFER_ACCEPT, nginx's `listen ... deferred`): the worker reads the
# request in the loop pass after the accept instead of waking again when it arrives, which took
# ~6% off the CPU of a Connection: close request (bench/README). A client that connects and
# says nothing is handed over all the same once the kernel has waited this long and resent its
# SYN-ACK once (one to three seconds), and the request timeout runs from there.
DEFER_ACCEPT_SECONDS = 1


def bind_socket(address: str, port: int, backlog: int = LISTEN_BACKLOG,
                kind: socket.SocketKind = socket.SOCK_STREAM, *, defer_accept: bool = False) -> socket.socket:
    """A listening socket (or, with `kind=socket.SOCK_DGRAM`, a bound UDP socket); a port in
    use, out of range or not allowed, or an address that is not this host's, is a
    `StartupError` naming the address and port. `defer_accept`: for a protocol whose client
    speaks first (see DEFER_ACCEPT_SECONDS; where the system has it)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if defer_accept and hasattr(socket, "TCP_DEFER_ACCEPT"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, DEFER_ACCEPT_SECONDS)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(backlog)
    except (OSError, OverflowError) as error:
        sock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        what = "listen on" if kind == socket.SOCK_STREAM else "bind UDP"
        raise StartupError(f"cannot {what} {url_host(address)}:{port}: {reason}") from error
    sock.setblocking(False)
    return sock


def bind_http_socket(address: str, port: int) -> socket.socket:
    """A listening socket for HTTP (and what a client starts with its preface or TLS's
    ClientHello): the main and the forward listener, and the test servers' (`ServerThread`)."""
    return bind_socket(address, port, defer_accept=True)


@dataclass
class Listener:
    sock: socket.socket
    ssl: ssl.SSLContext | None = None

    @property
    def scheme(self) -> str:
        return "http" if self.ssl is None else "https"

    async def start(self, server) -> asyncio.AbstractServer:
        """Accept on the socket in `server`'s loop: plain connections go straight to the default
        protocol, TLS ones to the protocol their ALPN id names."""
        if self.ssl is None:
            # a partial, not a lambda: one Python frame fewer on every accepted connection
            factory = functools.partial(server.kernel.protocols.default().factory, server)
            return await server.loop.create_server(factory, sock=self.sock, backlog=LISTEN_BACKLOG)
        return await server.loop.create_server(
            lambda: ALPNSelector(server), sock=self.sock, ssl=self.ssl, backlog=LISTEN_BACKLOG,
            ssl_handshake_timeout=server.config.ssl_handshake_timeout)


def bind_listeners(config: ServerConfig, context: ssl.SSLContext | None,
                   inherited: str | None = None) -> list[Listener]:
    """The main listener on `config.port` (TLS with `context`), then the forward listener when
    `skitai.enable_forward` asked for one. `inherited` is a reloaded master's comma-separated
    descriptors; any listener beyond them (added since) is bound afresh."""
    ports = [(config.port, context)]
    if config.forward_port is not None:
        ports.append((config.forward_port, None))
    fds = [int(fd) for fd in inherited.split(",")] if inherited else []
    listeners = []
    for index, (port, port_context) in enumerate(ports):
        if index < len(fds):
            sock = socket.socket(fileno=fds[index])
        else:
            sock = bind_http_socket(config.address, port)
        listeners.append(Listener(sock, port_context))
    return listeners


def inheritable(listeners: list[Listener]) -> str:
    """The descriptors to hand to a re-executed master, as `bind_listeners` takes them back."""
    for listener in listeners:
        os.set_inheritable(listener.sock.fileno(), True)
    return ",".join(str(listener.sock.fileno()) for listener in listeners)
