"""The QUIC side of the plugin: aioquic's configuration, prepared by the master, and each
worker's QUIC endpoint. A module of its own, imported by `plugin` only when `skitai.run(quic=N)`
asks for HTTP/3: aioquic (with cryptography) costs every worker about 11 MiB, which a server
without HTTP/3 should not pay for having the plugin installed."""
from __future__ import annotations

import functools
import os
from collections.abc import Awaitable
from dataclasses import dataclass

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.retry import QuicRetryTokenHandler

from .connection import H3ServerConnection
from .early import TicketStore
from .endpoint import Admission, QuicEndpoint
from .settings import Limits, quic_configuration
from .steering import ConnectionIds, attach_steering, current_generation, next_generation_on_reload

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


def prepare(config) -> None:
    """In the master, before the privilege drop: the certificate and key loaded into aioquic's
    configuration, which the workers inherit."""
    _prepared[id(config)] = Prepared(quic_configuration(config, LIMITS), current_generation(),
                                     QuicRetryTokenHandler() if config.quic_retry else None, os.urandom(32))
    next_generation_on_reload()


def start(server, socks: list) -> Awaitable[None]:
    """This worker's steering attached to its socket of the group, and the opening of its QUIC
    endpoint on it, for the server to await."""
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


def stop(server) -> None:
    endpoint = _endpoints.pop(id(server), None)
    if endpoint is not None:
        endpoint.shutdown()
