"""The skitai-http3 plugin: HTTP/3 over QUIC on the UDP port `skitai.run(quic=N)` names, through
the core's extension points only.

* `skitai_configure`: HTTP/3 needs TLS; the certificate and key are loaded here, in the master
  before the privilege drop, into aioquic's configuration that the workers inherit;
* `skitai_register_sockets`: the UDP sockets, bound by the master and kept across reloads: two
  per worker, with the steering that brings each connection's datagrams to the worker that
  holds it (`steering`);
* `skitai_register_response_fields`: `Alt-Svc: h3=":<port>"` on HTTP/1.1 and HTTP/2 answers
  (the port of `skitai.set_http3_advertised_port`, else the QUIC port);
* `skitai_server_start` / `skitai_server_stop`: each worker's QUIC endpoint on its socket, with
  the Retry token key (`skitai.enable_http3_retry`) and stateless reset key the master made,
  and its session ticket store when 0-RTT is on (`skitai.enable_http3_early_data`).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.retry import QuicRetryTokenHandler

from skitai.plugin import hookimpl

from .connection import H3ServerConnection
from .early import TicketStore
from .endpoint import Admission, QuicEndpoint
from .settings import Limits, quic_configuration
from .steering import ConnectionIds, attach_steering, bind_group, current_generation, next_generation_on_reload

SOCKET_NAME = "quic"            # skitai.api.QUIC_SOCKET: the core tells a missing plugin by it
ALT_SVC_MAX_AGE = 86400
LIMITS = Limits()


@dataclass
class Prepared:
    """What the master prepares for its workers: aioquic's configuration (the key read while
    root), the steering generation this master's workers serve, the Retry token key they share
    (`skitai.enable_http3_retry`) and the key of their stateless reset tokens."""

    quic: QuicConfiguration
    generation: int
    retry_tokens: QuicRetryTokenHandler | None = None
    reset_key: bytes = b""


# per server settings of this process (tests run several servers in one process)
_prepared: dict[int, Prepared] = {}
_endpoints: dict[int, QuicEndpoint] = {}


@hookimpl
def skitai_configure(config):
    if config.quic_port is None:
        return
    if not (config.ssl_certfile and config.ssl_keyfile):
        raise ValueError(f"skitai.run(quic={config.quic_port}) needs skitai.enable_ssl(certfile, keyfile): "
                         "HTTP/3 is always encrypted")
    _prepared[id(config)] = Prepared(quic_configuration(config, LIMITS), current_generation(),
                                     QuicRetryTokenHandler() if config.quic_retry else None, os.urandom(32))
    next_generation_on_reload()


@hookimpl
def skitai_register_sockets(sockets, config):
    if config.quic_port is not None:
        sockets.add(SOCKET_NAME, functools.partial(bind_group, config.address, config.quic_port,
                                                   max(config.workers, 1)))


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

    prepared = _prepared[id(server.config)]
    workers = len(socks) // 2  # the group a reload inherits keeps the size it was bound with
    index = prepared.generation * workers + server.worker_index % workers
    attach_steering(socks[index], workers, prepared.generation)  # new connections: this generation

    async def open_endpoint():
        connection_ids = ConnectionIds(index, len(socks), prepared.reset_key)
        admission = Admission()
        early_data = server.config.quic_early_data
        tickets = {}
        if early_data:  # 0-RTT: this worker's single-use session tickets (`early`)
            store = TicketStore()
            tickets = {"session_ticket_handler": store.add, "session_ticket_fetcher": store.pop}
        create_protocol = functools.partial(H3ServerConnection, server=server, limits=LIMITS,
                                            connection_ids=connection_ids, admission=admission,
                                            early_data=early_data)
        _, endpoint = await server.loop.create_datagram_endpoint(
            lambda: QuicEndpoint(configuration=prepared.quic, create_protocol=create_protocol, admission=admission,
                                 retry_tokens=prepared.retry_tokens, connection_ids=connection_ids, **tickets),
            sock=socks[index])
        _endpoints[id(server)] = endpoint
        server.add_acceptor(admission)
    return open_endpoint()


@hookimpl
def skitai_server_stop(server):
    endpoint = _endpoints.pop(id(server), None)
    if endpoint is not None:
        endpoint.shutdown()
