"""`h3_server()`: an in-process server with HTTP/3 on a UDP port beside its TCP one, for the
`serve` fixture. A module of its own because test modules must not import a conftest."""
import socket

from skitai.testing import ServerThread
from skitai_http3 import plugin


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def h3_server(**settings) -> ServerThread:
    """A ServerThread (which loads no entry points) with the HTTP/3 plugin, serving QUIC on a
    free UDP port (`server.quic_port`) when `ssl_certfile` and `ssl_keyfile` are given."""
    settings.setdefault("quic_port", free_udp_port())
    server = ServerThread(**settings)
    server.kernel.pm.register(plugin)
    server.quic_port = settings["quic_port"]
    return server
