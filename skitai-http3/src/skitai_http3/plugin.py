"""The skitai-http3 plugin: HTTP/3 over QUIC on the UDP port `skitai.run(quic=N)` names, through
the core's extension points only.

* `skitai_configure`: HTTP/3 needs TLS; the certificate and key are loaded here, in the master
  before the privilege drop, into aioquic's configuration that the workers inherit;
* `skitai_register_sockets`: the UDP socket, bound by the master and kept across reloads;
* `skitai_register_response_fields`: `Alt-Svc: h3=":<port>"` on HTTP/1.1 and HTTP/2 answers
  (the port of `skitai.set_http3_advertised_port`, else the QUIC port);
* `skitai_server_start` / `skitai_server_stop`: each worker's QUIC endpoint on that socket.
"""
from __future__ import annotations

import functools
import socket

from skitai.listeners import bind_socket
from skitai.plugin import hookimpl

from .connection import H3ServerConnection
from .endpoint import QuicEndpoint, StopAccepting
from .settings import Limits, quic_configuration

SOCKET_NAME = "quic"            # skitai.api.QUIC_SOCKET: the core tells a missing plugin by it
ALT_SVC_MAX_AGE = 86400
LIMITS = Limits()
# aioquic's configuration per server settings of this process (tests run several servers)
_configurations: dict[int, object] = {}
_endpoints: dict[int, QuicEndpoint] = {}


@hookimpl
def skitai_configure(config):
    if config.quic_port is None:
        return
    if not (config.ssl_certfile and config.ssl_keyfile):
        raise ValueError(f"skitai.run(quic={config.quic_port}) needs skitai.enable_ssl(certfile, keyfile): "
                         "HTTP/3 is always encrypted")
    _configurations[id(config)] = quic_configuration(config, LIMITS)


@hookimpl
def skitai_register_sockets(sockets, config):
    if config.quic_port is not None:
        sockets.add(SOCKET_NAME, functools.partial(bind_socket, config.address, config.quic_port,
                                                   kind=socket.SOCK_DGRAM))


@hookimpl
def skitai_register_response_fields(fields, config):
    if config.quic_port is not None:
        port = config.quic_advertised_port or config.quic_port
        fields.add("Alt-Svc", f'h3=":{port}"; ma={ALT_SVC_MAX_AGE}', protocols=("HTTP/1.1", "HTTP/2.0"))


@hookimpl
def skitai_server_start(server):
    socks = server.sockets(SOCKET_NAME)
    if not socks:
        return None

    async def open_endpoint():
        create_protocol = functools.partial(H3ServerConnection, server=server, limits=LIMITS)
        _, endpoint = await server.loop.create_datagram_endpoint(
            lambda: QuicEndpoint(configuration=_configurations[id(server.config)],
                                 create_protocol=create_protocol),
            sock=socks[0])
        _endpoints[id(server)] = endpoint
        server.add_acceptor(StopAccepting(endpoint))
    return open_endpoint()


@hookimpl
def skitai_server_stop(server):
    endpoint = _endpoints.pop(id(server), None)
    if endpoint is not None:
        endpoint.shutdown()
