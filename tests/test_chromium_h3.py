"""Headless Chromium loads a page with many assets from Skitai over HTTP/3: the same site, app
and checks as over h2 (test_chromium_h2), with QUIC forced for the server's origin
(`--origin-to-force-quic-on`) and the server's key pinned
(`--ignore-certificate-errors-spki-list`). The origin's port is the QUIC port: Chromium goes
there over UDP from the first request, no TCP involved."""
from __future__ import annotations

import hashlib
import socket

import pytest
from chromium import Chromium, can_trust_ca, requires_chromium
from test_chromium_h2 import FETCHES, STREAM_SIZE, UPLOAD_SIZE, app, check_page, make_site, pattern

from skitai.testing import ServerThread, make_certificates

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("site3"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(str(tmp_path_factory.mktemp("certs3")))


@pytest.fixture
def h3_server(site, certs):
    plugin = pytest.importorskip("skitai_http3.plugin")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        quic = probe.getsockname()[1]
    server = ServerThread(ssl_certfile=certs.cert, ssl_keyfile=certs.key, quic_port=quic)
    server.kernel.pm.register(plugin)
    server.mount("/", str(site.root)).mount("/", app)
    with server:
        yield server, quic


@pytest.fixture
def browser(certs, h3_server):
    _, quic = h3_server
    # Chromium takes QUIC only from certificates chaining to a public root unless their key is
    # pinned: the pin is what lets HTTP/3 on, the CA (when certutil can add it) checks the chain
    trust = {"ca_certificates": [certs.ca]} if can_trust_ca() else {}
    # localhost is ::1 first for Chromium, and QUIC does not fall back to 127.0.0.1 as TCP does
    with Chromium(f"--origin-to-force-quic-on=localhost:{quic}", "--host-resolver-rules=MAP localhost 127.0.0.1",
                  quic=True, pinned_certificates=[certs.cert],
                  **trust, timeout=60) as running:
        yield running


def test_chromium_loads_every_asset_over_h3(h3_server, site, browser):
    _, quic = h3_server
    origin = f"https://localhost:{quic}"
    page = browser.open(origin + "/")
    check_page(page, site, origin, "h3")
    assert page.evaluate("window.appSaw") == {"protocol": "HTTP/3.0", "scheme": "https",
                                              "host": f"localhost:{quic}"}


def test_fetch_streams_and_uploads_over_h3(h3_server, browser):
    _, quic = h3_server
    page = browser.open(f"https://localhost:{quic}/")
    result = page.evaluate(FETCHES)
    seen = {"protocol": "HTTP/3.0", "scheme": "https", "host": f"localhost:{quic}"}
    assert result["fromApp"] == seen
    assert result["streamedSize"] == STREAM_SIZE
    assert result["streamedSha256"] == hashlib.sha256(pattern(STREAM_SIZE)).hexdigest()
    assert result["uploadSha256"] == hashlib.sha256(pattern(UPLOAD_SIZE)).hexdigest()
    assert result["upload"] == {"size": UPLOAD_SIZE, "sha256": result["uploadSha256"], **seen}
