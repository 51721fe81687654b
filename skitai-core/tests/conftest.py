import pytest

from skitai.testing import StartedServers


@pytest.fixture
def serve():
    """serve(app_or_obj, point="/", **settings) -> a started ServerThread, stopped after the test."""
    servers = StartedServers()
    yield servers
    servers.stop()
