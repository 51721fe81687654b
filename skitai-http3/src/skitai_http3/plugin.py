"""The skitai-http3 plugin: HTTP/3 over QUIC on the UDP port `skitai.run(quic=N)` names, through
the core's extension points only.

* `skitai_configure`: HTTP/3 needs TLS; the certificate and key are loaded here, in the master
  before the privilege drop, into aioquic's configuration that the workers inherit (`quic`,
  imported only then: without `quic=` the plugin loads none of aioquic);
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

from skitai.plugin import hookimpl, import_feature

from .steering import bind_group

SOCKET_NAME = "quic"            # skitai.api.QUIC_SOCKET: the core tells a missing plugin by it
ALT_SVC_MAX_AGE = 86400


@hookimpl
def skitai_configure(config):
    if config.quic_port is None:
        return
    if not (config.ssl_certfile and config.ssl_keyfile):
        raise ValueError(f"skitai.run(quic={config.quic_port}) needs skitai.enable_ssl(certfile, keyfile): "
                         "HTTP/3 is always encrypted")
    import_feature("skitai_http3.quic", f"HTTP/3 (skitai.run(quic={config.quic_port}))", "skitai-http3").prepare(config)


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
    from . import quic  # imported by skitai_configure already

    return quic.start(server, socks)


@hookimpl
def skitai_server_stop(server):
    if server.sockets(SOCKET_NAME):
        from . import quic

        quic.stop(server)
