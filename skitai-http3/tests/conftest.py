import pytest
from h3server import h3_server

from skitai.testing import StartedServers, make_certificates


@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path))


@pytest.fixture
def serve(certs):
    """serve(app_or_obj | (point, obj)..., **settings) -> a started ServerThread serving HTTP/3
    (`server.quic_port`) and HTTPS with the test certificates, stopped after the test."""
    servers = StartedServers(lambda **settings: h3_server(
        ssl_certfile=certs.cert, ssl_keyfile=certs.key, **settings))
    yield servers
    servers.stop()
