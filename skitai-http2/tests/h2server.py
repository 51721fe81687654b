"""`h2_server()`: an in-process server with the HTTP/2 plugin's protocols, for the `serve`
fixture and for tests that start and stop a server themselves. A module of its own because
test modules must not import `conftest` (another test folder's conftest may hold that name
when every distribution's tests run in one pytest session)."""
from skitai.testing import ServerThread
from skitai_http2 import plugin


def h2_server(**settings) -> ServerThread:
    """A ServerThread (which loads no entry points) with the HTTP/2 plugin's protocols."""
    server = ServerThread(**settings)
    plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    return server
