import pytest

from skitai.testing import ServerThread
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
    started = []

    def start(*mounts, **settings):
        server = h2_server(**settings)
        if mounts and not isinstance(mounts[0], tuple):
            mounts = (("/", mounts[0]),)
        for point, obj in mounts:
            server.mount(point, obj)
        server.__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__(None, None, None)
