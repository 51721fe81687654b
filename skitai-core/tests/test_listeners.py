"""The listening sockets as the kernel sees them once the server's loop serves them."""
import socket
import subprocess
from pathlib import Path

import pytest

from skitai.config import ServerConfig
from skitai.listeners import LISTEN_BACKLOG, bind_listeners, bind_socket
from skitai.testing import make_certificates, requires_commands


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def listen_backlog(port: int) -> int:
    """The accept queue's bound of the socket listening on `port`: `ss` shows it as Send-Q."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         timeout=10, check=True).stdout
    return int(out.split()[2])


@requires_commands("ss", install="apt-get install iproute2")
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_the_loop_keeps_the_listen_backlog_instead_of_asyncios_100(serve, tmp_path, tls):
    settings = {}
    if tls:
        certs = make_certificates(str(tmp_path))
        settings = {"ssl_certfile": certs.cert, "ssl_keyfile": certs.key}
    server = serve(hello, **settings)
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    assert listen_backlog(server.port) == min(LISTEN_BACKLOG, somaxconn)


def deferred_accept(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT)


def test_http_listeners_defer_accept_until_the_client_speaks_and_other_sockets_do_not():
    listeners = bind_listeners(ServerConfig(port=0, forward_port=0), None)
    other = bind_socket("127.0.0.1", 0)  # a plugin's own socket, whose protocol may speak first
    try:
        assert [deferred_accept(listener.sock) > 0 for listener in listeners] == [True, True]
        assert deferred_accept(other) == 0
    finally:
        for sock in [other, *(listener.sock for listener in listeners)]:
            sock.close()
