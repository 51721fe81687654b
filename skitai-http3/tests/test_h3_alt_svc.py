"""HTTP/3 is advertised on the TCP answers (`Alt-Svc`), HTTP/1.1 and HTTP/2 alike, with the port
`skitai.set_http3_advertised_port` names when UDP 443 is forwarded to the QUIC port."""
import ssl

import httpx
from h3apps import APP

from skitai_http2 import plugin as http2


def client(certs, http2_on):
    return httpx.Client(http2=http2_on, verify=ssl.create_default_context(cafile=certs.ca),
                        trust_env=False, timeout=10)


def test_alt_svc_names_the_quic_port_on_http1(serve, certs):
    server = serve(APP)
    with client(certs, False) as h1:
        response = h1.get(f"https://localhost:{server.port}/")
    assert response.http_version == "HTTP/1.1"
    assert response.headers["alt-svc"] == f'h3=":{server.quic_port}"; ma=86400'


def test_alt_svc_over_http2_and_the_advertised_port(certs):
    from h3server import h3_server

    server = h3_server(ssl_certfile=certs.cert, ssl_keyfile=certs.key, quic_advertised_port=443)
    http2.skitai_register_protocols(protocols=server.kernel.protocols)
    server.mount("/", APP)
    with server, client(certs, True) as h2:
        response = h2.get(f"https://localhost:{server.port}/")
    assert response.http_version == "HTTP/2"
    assert response.headers["alt-svc"] == 'h3=":443"; ma=86400'
