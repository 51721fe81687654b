import pytest

from skitai.testing import ServerThread, StartedServers
from skitai_http2 import plugin


def h2_server(**settings) -> ServerThread:
    """A ServerThread (which loads no entry points) with the HTTP/2 plugin's protocols."""
    server = ServerThread(**settings)
    plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    return server


@pytest.fixture
def serve():
    """serve(app_or_obj | (point, obj)..., **settings) -> a started HTTP/2-capable ServerThread,
    stopped after the test."""
    servers = StartedServers(h2_server)
    yield servers
    servers.stop()
