"""The core imports a feature's libraries only when the feature is configured or used: a hello
worker must not carry the WebSocket machinery (wsproto, h11), the test client (http.client and
the email package), psutil (the daemon's pid file checks), the profiler, ctypes (supervised
processes, HTTP/3's steering) or html (`was.status()`) (issue 20's memory goal: a worker <= 30
MB; each is 0.3 to 2 MB). The served app reports its own `sys.modules`."""
import textwrap

import httpx

from skitai.testing import ServerProcess

OPTIONAL = ("wsproto", "h11", "http.client", "skitai.testclient", "psutil", "cProfile", "pstats", "ctypes",
            "html")

APP = f"""
import sys

import skitai


def app(environ, start_response):
    body = ",".join(name for name in {OPTIONAL!r} if name in sys.modules).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


skitai.mount("/", app)
skitai.run(address="127.0.0.1", port=5000)
"""


def test_a_hello_worker_imports_them_only_when_a_request_needs_them(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(APP))
    with ServerProcess(str(script)) as server:
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url("/")).text == ""
            handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
            # the app does not accept it: answered as a plain request, after the machinery was asked
            assert client.get(server.url("/"), headers=handshake).status_code == 200
            assert "wsproto" in client.get(server.url("/")).text.split(",")
    assert "Traceback" not in server.output, server.output
