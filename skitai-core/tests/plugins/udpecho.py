"""A test plugin that serves a UDP port of its own, proving the core's extension points for
protocols beside TCP (what the HTTP/3 plugin uses):

* `skitai_register_sockets`: the UDP socket is bound by the master (before the privilege drop
  and the fork; kept across reloads), on port `UDPECHO_PORT`; every bind appends the binding
  process's pid to the file `UDPECHO_BIND_LOG` when that is set;
* `skitai_server_start` returning a coroutine: each worker opens a datagram endpoint on the
  socket and answers every datagram with `<pid> <data>`; with `UDPECHO_FAIL_START` set, the
  coroutine raises instead;
* `server.add_acceptor`: the endpoint stops answering when a graceful stop begins (`closed_at`),
  and `skitai_server_stop` closes it;
* `skitai_register_response_fields`: `X-Udp-Echo: <port>` on every HTTP/1.1 and HTTP/2 response.
"""
import asyncio
import os
import socket
import time

from skitai.listeners import bind_socket
from skitai.plugin import hookimpl

ENDPOINTS = []  # the endpoints this process opened (a ServerThread test reads them)


class EchoEndpoint(asyncio.DatagramProtocol):
    def __init__(self):
        self.transport = None
        self.closed_at = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, address):
        if self.closed_at is None:
            self.transport.sendto(b"%d %b" % (os.getpid(), data), address)

    def close(self):
        """The server's graceful stop began: answer nothing more."""
        self.closed_at = time.monotonic()


def _port():
    return int(os.environ.get("UDPECHO_PORT", "0"))


def _bind():
    log = os.environ.get("UDPECHO_BIND_LOG")
    if log:
        with open(log, "a") as file:
            file.write(f"{os.getpid()}\n")
    return bind_socket("127.0.0.1", _port(), kind=socket.SOCK_DGRAM)


@hookimpl
def skitai_register_sockets(sockets):
    sockets.add("udpecho", _bind)


@hookimpl
def skitai_register_response_fields(fields):
    fields.add("X-Udp-Echo", str(_port()), protocols=("HTTP/1.1", "HTTP/2.0"))


@hookimpl
def skitai_server_start(server):
    async def open_endpoint():
        if os.environ.get("UDPECHO_FAIL_START"):
            raise ConnectionError("udpecho cannot open its endpoint")
        endpoint = EchoEndpoint()
        await server.loop.create_datagram_endpoint(lambda: endpoint, sock=server.sockets("udpecho")[0])
        server.add_acceptor(endpoint)
        endpoint.server = server
        ENDPOINTS.append(endpoint)
    return open_endpoint()


@hookimpl
def skitai_server_stop(server):
    for endpoint in ENDPOINTS:
        if endpoint.server is server:
            endpoint.transport.close()
