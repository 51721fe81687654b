import pytest
from h2server import h2_server

from skitai.testing import StartedServers


@pytest.fixture
def serve():
    """serve(app_or_obj | (point, obj)..., **settings) -> a started HTTP/2-capable ServerThread,
    stopped after the test."""
    servers = StartedServers(h2_server)
    yield servers
    servers.stop()
