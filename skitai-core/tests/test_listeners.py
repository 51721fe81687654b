"""The listening sockets as the kernel sees them once the server's loop serves them."""
import subprocess
from pathlib import Path

import pytest

from skitai.listeners import LISTEN_BACKLOG
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
