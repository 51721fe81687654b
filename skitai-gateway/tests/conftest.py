import pytest
from gwservers import UpstreamApp, gateway_server
from proxyservers import Gunicorn

from skitai.testing import ServerThread, StartedServers


@pytest.fixture(scope="module")
def gunicorn():
    """A gunicorn member (`proxyservers.Gunicorn`) shared by a test module's tests (one that
    needs another kind defines its own)."""
    server = Gunicorn()
    yield server
    server.close()


@pytest.fixture
def serve():
    """serve(routes, **settings) -> a started gateway server whose app runs `routes`, stopped
    after the test."""
    servers = StartedServers(lambda **settings: gateway_server(settings.pop("routes"), **settings))
    yield lambda routes, **settings: servers(routes=routes, **settings)
    servers.stop()


@pytest.fixture
def upstream():
    """upstream(name="a", **settings) -> a started Skitai server running an UpstreamApp (as
    `.app`), stopped after the test."""
    servers = StartedServers(ServerThread)

    def start(name="a", **settings):
        app = UpstreamApp(name)
        server = servers(app, **settings)
        server.app = app
        return server

    yield start
    servers.stop()
