"""Headless Chromium loads a page with many assets from Skitai over HTTPS: over h2 with the
HTTP/2 plugin, over http/1.1 without it (ALPN then offers only http/1.1).

The page (a static folder generated per module) references 60 assets: 40 PNG images, two of
them larger than Chromium's 6 MiB stream window and six of a few hundred KiB, 10 stylesheets and
10 scripts, one of each a few hundred KiB, plus a script made by the WSGI app mounted at the
same point. What the page saw is read back from JavaScript (`performance` entries and their
`nextHopProtocol`, image sizes, computed styles, flags the scripts set); the app reports
`SERVER_PROTOCOL` and digests of a streamed download and of an upload made with `fetch`.
"""
from __future__ import annotations

import hashlib
import json
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from chromium import Chromium, can_trust_ca, requires_chromium

from skitai.testing import ServerThread, StartedServers, make_certificates

pytestmark = requires_chromium

SMALL_IMAGES = 32          # 16 x 16, a few hundred bytes each
MEDIUM_IMAGES = 6          # 300 x 300 of noise: ~270 KiB each
LARGE_IMAGES = 2           # 1500 x 1500 of noise: ~6.4 MiB each, beyond the 6 MiB stream window
STYLESHEETS = 10
SCRIPTS = 10
STREAM_SIZE = 3 * 1024 * 1024 + 123
UPLOAD_SIZE = 2 * 1024 * 1024 + 45   # beyond the server's 256 KiB stream window


def pattern(size: int) -> bytes:
    """The bytes the page uploads and the app streams: i % 251, computed the same way in JS."""
    block = bytes(i % 251 for i in range(251 * 1024))
    return (block * (size // len(block) + 1))[:size]


def png(width: int, height: int, rng: random.Random | None = None) -> bytes:
    """An RGB PNG: noise (incompressible) when given `rng`, else one flat colour."""
    if rng is None:
        row = b"\x00" + bytes((40, 120, 200)) * width
        raw, level = row * height, 9
    else:
        raw, level = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height)), 1

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(raw, level)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass
class Site:
    root: Path
    assets: list[str]          # paths of the static assets the page references
    images: dict[str, int]     # image path -> its width


def make_site(root: Path) -> Site:
    rng = random.Random(20240601)
    (root / "assets").mkdir(parents=True)
    assets, images, body = [], {}, []
    sizes = [(16, None)] * SMALL_IMAGES + [(300, rng)] * MEDIUM_IMAGES + [(1500, rng)] * LARGE_IMAGES
    for number, (width, noise) in enumerate(sizes):
        path = f"/assets/image-{number}.png"
        (root / path[1:]).write_bytes(png(width, width, noise))
        assets.append(path)
        images[path] = width
        body.append(f'<img src="{path}" alt="">')
    head = []
    for number in range(STYLESHEETS):
        path = f"/assets/style-{number}.css"
        padding = f"/* {'p' * 300_000} */\n" if number == 0 else ""
        (root / path[1:]).write_text(f"{padding}#probe-{number} {{ width: {number + 1}px; height: 1px; }}\n")
        assets.append(path)
        head.append(f'<link rel="stylesheet" href="{path}">')
        body.append(f'<div id="probe-{number}"></div>')
    for number in range(SCRIPTS):
        path = f"/assets/script-{number}.js"
        padding = f"/* {'s' * 400_000} */\n" if number == 0 else ""
        (root / path[1:]).write_text(f"{padding}(window.scriptsRan = window.scriptsRan || []).push({number});\n")
        assets.append(path)
        body.append(f'<script src="{path}"></script>')
    body.append('<script src="/app/protocol.js"></script>')   # from the WSGI app, not a file
    (root / "index.html").write_text(
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>many assets</title>\n'
        '<link rel="icon" href="data:,">\n'   # no /favicon.ico request racing the checks
        + "\n".join(head) + "\n</head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    return Site(root, assets, images)


def app(environ, start_response):
    """/app/protocol.js, /app/protocol (JSON), /app/stream?size=N and POST /app/digest."""
    path = environ["PATH_INFO"]
    seen = {"protocol": environ["SERVER_PROTOCOL"], "scheme": environ["wsgi.url_scheme"],
            "host": environ.get("HTTP_HOST")}
    if path == "/app/protocol.js":
        start_response("200 OK", [("Content-Type", "text/javascript")])
        return [f"window.appSaw = {json.dumps(seen)};".encode()]
    if path == "/app/protocol":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(seen).encode()]
    if path == "/app/stream":
        size = int(environ["QUERY_STRING"].removeprefix("size="))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        data = pattern(size)
        return (data[offset:offset + 65536] for offset in range(0, size, 65536))   # sent as produced
    if path == "/app/digest" and environ["REQUEST_METHOD"] == "POST":
        digest, size = hashlib.sha256(), 0
        while chunk := environ["wsgi.input"].read(65536):
            digest.update(chunk)
            size += len(chunk)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"size": size, "sha256": digest.hexdigest(), **seen}).encode()]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return make_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certificates(str(tmp_path_factory.mktemp("certs")))


def h2_server(**settings) -> ServerThread:
    """A ServerThread (which loads no entry points) with the HTTP/2 plugin's protocols."""
    plugin = pytest.importorskip("skitai_http2.plugin")
    server = ServerThread(**settings)
    plugin.skitai_register_protocols(protocols=server.kernel.protocols)
    return server


@pytest.fixture
def serve_h2():
    servers = StartedServers(h2_server)
    yield servers
    servers.stop()


@pytest.fixture
def serve_http1():
    servers = StartedServers(ServerThread)
    yield servers
    servers.stop()


@pytest.fixture
def browser(certs):
    """Chromium trusting the test CA (certutil), or, without certutil, the server's key."""
    trust = {"ca_certificates": [certs.ca]} if can_trust_ca() else {"pinned_certificates": [certs.cert]}
    with Chromium(**trust, timeout=60) as running:
        yield running


def start(serve, site, certs):
    return serve(("/", str(site.root)), ("/", app), ssl_certfile=certs.cert, ssl_keyfile=certs.key)


PAGE_STATE = """(() => {
    const probes = {};
    for (const probe of document.querySelectorAll('div[id^="probe-"]')) probes[probe.id] = probe.offsetWidth;
    return {
        navigation: performance.getEntriesByType('navigation').map(e => [e.name, e.nextHopProtocol, e.responseStatus]),
        resources: performance.getEntriesByType('resource').map(e => [e.name, e.nextHopProtocol, e.responseStatus]),
        images: [...document.images].map(img => [new URL(img.src).pathname, img.complete, img.naturalWidth]),
        scripts: (window.scriptsRan || []).slice().sort((a, b) => a - b),
        probes, appSaw: window.appSaw || null,
    };
})()"""

FETCHES = """(async () => {
    const hex = buffer => [...new Uint8Array(buffer)].map(b => b.toString(16).padStart(2, '0')).join('');
    const fromApp = await (await fetch('/app/protocol')).json();
    const streamed = await (await fetch('/app/stream?size=%(stream)d')).arrayBuffer();
    const body = new Uint8Array(%(upload)d).map((_, i) => i %% 251);
    const upload = await (await fetch('/app/digest', {method: 'POST', body})).json();
    const sha256 = async data => hex(await crypto.subtle.digest('SHA-256', data));
    return {fromApp, streamedSize: streamed.byteLength, streamedSha256: await sha256(streamed),
            upload, uploadSha256: await sha256(body)};
})()""" % {"stream": STREAM_SIZE, "upload": UPLOAD_SIZE}


def check_page(page, site: Site, origin: str, protocol: str) -> None:
    """Every asset of the page loaded, over `protocol`, and did what it should."""
    state = page.evaluate(PAGE_STATE)
    assert state["navigation"] == [[f"{origin}/", protocol, 200]], state["navigation"]
    by_url = {name: (hop, status) for name, hop, status in state["resources"]}
    expected = [*site.assets, "/app/protocol.js"]
    assert sorted(by_url) == sorted(origin + path for path in expected), (by_url, page.console)
    assert {hop for hop, _ in by_url.values()} == {protocol}, by_url
    assert {status for _, status in by_url.values()} == {200}, by_url
    assert sorted(state["images"]) == sorted([path, True, width] for path, width in site.images.items())
    assert state["scripts"] == list(range(SCRIPTS))
    assert state["probes"] == {f"probe-{number}": number + 1 for number in range(STYLESHEETS)}
    assert page.exceptions == [] and [entry for entry in page.console if "error" in entry[0]] == []


def test_chromium_loads_every_asset_over_h2(serve_h2, site, certs, browser):
    server = start(serve_h2, site, certs)
    origin = f"https://localhost:{server.port}"
    page = browser.open(origin + "/")
    check_page(page, site, origin, "h2")
    seen = {"protocol": "HTTP/2.0", "scheme": "https", "host": f"localhost:{server.port}"}
    assert page.evaluate("window.appSaw") == seen


def test_fetch_streams_and_uploads_over_h2(serve_h2, site, certs, browser):
    server = start(serve_h2, site, certs)
    page = browser.open(f"https://localhost:{server.port}/")
    result = page.evaluate(FETCHES)
    seen = {"protocol": "HTTP/2.0", "scheme": "https", "host": f"localhost:{server.port}"}
    assert result["fromApp"] == seen
    assert result["streamedSize"] == STREAM_SIZE
    assert result["streamedSha256"] == hashlib.sha256(pattern(STREAM_SIZE)).hexdigest()
    assert result["uploadSha256"] == hashlib.sha256(pattern(UPLOAD_SIZE)).hexdigest()
    assert result["upload"] == {"size": UPLOAD_SIZE, "sha256": result["uploadSha256"], **seen}
    hops = page.evaluate("performance.getEntriesByType('resource').filter(e => e.initiatorType === 'fetch')"
                         ".map(e => e.nextHopProtocol)")
    assert hops == ["h2", "h2", "h2"]


STREAMING_UPLOAD = """(async () => {
    let sent = 0;
    const body = new ReadableStream({async pull(controller) {
        if (sent >= %(size)d) return controller.close();
        const chunk = new Uint8Array(Math.min(65536, %(size)d - sent)).map((_, i) => (sent + i) %% 251);
        sent += chunk.length;
        controller.enqueue(chunk);
        await new Promise(resolve => setTimeout(resolve, 1));
    }});
    const response = await fetch('/app/digest', {method: 'POST', body, duplex: 'half'});
    return [response.status, await response.json()];
})()""" % {"size": UPLOAD_SIZE}


def test_streaming_upload_over_h2(serve_h2, site, certs, browser):
    """A fetch with a ReadableStream body (Chromium sends those over HTTP/2 only): no
    Content-Length, the body as the page produces it, through the 256 KiB stream window."""
    server = start(serve_h2, site, certs)
    page = browser.open(f"https://localhost:{server.port}/")
    status, answer = page.evaluate(STREAMING_UPLOAD)
    assert status == 200
    assert answer == {"size": UPLOAD_SIZE, "sha256": hashlib.sha256(pattern(UPLOAD_SIZE)).hexdigest(),
                      "protocol": "HTTP/2.0", "scheme": "https", "host": f"localhost:{server.port}"}


def test_reload_revalidates_every_asset_over_h2(serve_h2, site, certs, browser):
    """With max-age=0 a reload asks again for every file with If-None-Match: 304s over h2, the
    cached bodies still good; the app's script (no validator) comes again with 200."""
    server = serve_h2(("/", str(site.root)), ("/", app), ssl_certfile=certs.cert, ssl_keyfile=certs.key,
                      max_ages=[("/", 0)])
    origin = f"https://localhost:{server.port}"
    page = browser.open(origin + "/", network=True)
    check_page(page, site, origin, "h2")
    assert {(r["status"], r["protocol"]) for r in page.responses} == {(200, "h2")}
    assert all("date" in r["headers"] and "server" in r["headers"] for r in page.responses)
    first = len(page.responses)
    page.reload()
    check_page(page, site, origin, "h2")
    again = {r["url"].removeprefix(origin): (r["status"], r["protocol"]) for r in page.responses[first:]}
    assert again.pop("/")[1] == "h2"   # the server answers 304, CDP shows the cached 200 of a document
    assert again == {"/app/protocol.js": (200, "h2"), **{path: (304, "h2") for path in site.assets}}


def test_chromium_falls_back_to_http11_without_the_plugin(serve_http1, site, certs, browser):
    server = start(serve_http1, site, certs)
    origin = f"https://localhost:{server.port}"
    page = browser.open(origin + "/")
    check_page(page, site, origin, "http/1.1")
    seen = {"protocol": "HTTP/1.1", "scheme": "https", "host": f"localhost:{server.port}"}
    assert page.evaluate("window.appSaw") == seen
    result = page.evaluate(FETCHES)
    assert result["fromApp"] == seen and result["upload"]["protocol"] == "HTTP/1.1"
    assert result["streamedSha256"] == hashlib.sha256(pattern(STREAM_SIZE)).hexdigest()
    assert result["upload"]["sha256"] == result["uploadSha256"] == hashlib.sha256(pattern(UPLOAD_SIZE)).hexdigest()
