"""The manual's WebSocket client page (examples/websocket), served by Skitai and driven in
headless Chromium: typed messages go out through the page's WebSocket and the echoes come back
into its log, in both of the manual's app styles; over plain HTTP/1.1 and over TLS with the
HTTP/2 plugin, where Chromium opens the WebSocket inside the h2 connection (RFC 8441)."""
from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

import pytest
from chromium import Chromium, requires_chromium

from skitai.testing import ServerProcess, ServerThread, make_certificates

pytestmark = requires_chromium

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "websocket"
TIMEOUT = 15


def example_module():
    spec = importlib.util.spec_from_file_location("websocket_example", EXAMPLE / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def logs(page) -> list[str]:
    return page.evaluate("[...document.querySelectorAll('#logs li')].map(li => li.textContent)")


def wait_log(page, text: str) -> None:
    page.wait_for(f"[...document.querySelectorAll('#logs li')].some(li => li.textContent === {text!r})",
                  timeout=TIMEOUT)


def type_line(page, text: str) -> None:
    """Keystrokes as a user types them: the text, then Enter (keyDown and keyUp)."""
    page.evaluate("document.getElementById('msg').focus()")
    page.call("Input.insertText", text=text)
    for kind in ("keyDown", "keyUp"):
        page.call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                  windowsVirtualKeyCode=13, nativeVirtualKeyCode=13)


def test_the_example_page_talks_to_both_styles_over_http11():
    server = ServerProcess(str(EXAMPLE / "app.py"))
    with server, Chromium() as browser:
        page = browser.open(server.url("/"))
        wait_log(page, "ECHO:Hello!")
        assert logs(page)[:4] == [f"connecting to ws://127.0.0.1:{server.port}/echo", "connected",
                                  "SEND: Hello!", "connected over HTTP/1.1"]
        type_line(page, "héllo wörld")
        wait_log(page, "ECHO:héllo wörld")
        type_line(page, "/quit")
        wait_log(page, "DISCONNECTED (1000)")

        page = browser.open(server.url("/?path=/websocket/echo"))
        wait_log(page, "I said acknowledge")
        type_line(page, "second")
        wait_log(page, "You said,second")
        assert logs(page)[-3:] == ["SEND: second", "You said,second", "I said acknowledge"]
        server.signal(signal.SIGTERM)   # a graceful stop tells the page the server is going away
        wait_log(page, "DISCONNECTED (1001)")
        assert server.process.wait(15) == 0
    assert "Traceback" not in server.output, server.output
    assert " GET /echo HTTP/1.1 0 101 " in server.output


@pytest.fixture
def tls_h2_server(tmp_path):
    from skitai_http2 import plugin

    certs = make_certificates(str(tmp_path), "localhost")
    example = example_module()
    server = ServerThread(ssl_certfile=certs.cert, ssl_keyfile=certs.key, access_log=True)
    plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    server.mount("/echo", example.echo).mount("/websocket/echo", example.direct).mount("/", str(EXAMPLE / "static"))
    with server:
        yield server, certs


def test_chromium_opens_the_websocket_inside_its_h2_connection(tls_h2_server):
    pytest.importorskip("skitai_http2")
    server, certs = tls_h2_server
    with Chromium(ca_certificates=[certs.ca], pinned_certificates=[certs.cert]) as browser:
        page = browser.open(f"https://localhost:{server.port}/")
        assert page.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
        wait_log(page, "ECHO:Hello!")
        assert "connected over HTTP/2.0" in logs(page)
        type_line(page, "over h2")
        wait_log(page, "ECHO:over h2")
        page = browser.open(f"https://localhost:{server.port}/?path=/websocket/echo")
        wait_log(page, "You said,Hello!")
