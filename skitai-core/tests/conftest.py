import pytest

from skitai.testing import ServerThread


@pytest.fixture
def serve():
    """serve(app_or_obj, point="/", **settings) -> a started ServerThread, stopped after the test."""
    started = []

    def start(*mounts, **settings):
        server = ServerThread(**settings)
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
