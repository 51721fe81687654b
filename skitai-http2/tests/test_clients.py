"""Real clients against the HTTP/2 plugin: curl (prior knowledge and h2c upgrade, also with a
request body), httpx with http2=True, nghttp2's h2load and nghttp."""
import hashlib
import subprocess

import httpx
import pytest
from apps import APP

from skitai.testing import requires_commands

curl = requires_commands("curl", install="apt-get install curl")
nghttp2 = requires_commands("h2load", "nghttp", install="apt-get install nghttp2-client")


def run(*args, check=True):
    return subprocess.run(args, capture_output=True, timeout=60, check=check)


@curl
def test_curl_prior_knowledge(serve):
    server = serve(APP)
    result = run("curl", "-sS", "--max-time", "10", "-v", "--http2-prior-knowledge", server.url("/"))
    assert result.stdout == f"HTTP/2.0 GET 127.0.0.1:{server.port}".encode()
    assert b"< HTTP/2 200" in result.stderr


@curl
def test_curl_upgrade_h2c(serve):
    server = serve(APP)
    result = run("curl", "-sS", "--max-time", "10", "-v", "--http2", server.url("/"))
    assert b"< HTTP/1.1 101 Switching Protocols" in result.stderr
    assert b"< HTTP/2 200" in result.stderr
    assert result.stdout == f"HTTP/2.0 GET 127.0.0.1:{server.port}".encode()


@curl
@pytest.mark.parametrize("size", [5, 3 * 1024 * 1024])
def test_curl_upgrade_h2c_with_a_body(serve, tmp_path, size):
    """RFC 7540 3.2: the body of the upgrade request is read as HTTP/1.1, then the request is
    answered as stream 1 over HTTP/2 (large bodies also go through Expect: 100-continue)."""
    server = serve(APP)
    body = (b"0123456789" * (size // 10 + 1))[:size]
    upload = tmp_path / "upload.bin"
    upload.write_bytes(body)
    result = run("curl", "-sS", "--max-time", "20", "-v", "--http2", "--data-binary", f"@{upload}",
                 server.url("/echo"))
    assert b"101 Switching Protocols" in result.stderr
    assert result.stdout.decode() == f"{size} {hashlib.sha256(body).hexdigest()} HTTP/2.0"


@curl
def test_curl_follows_with_more_requests_on_the_upgraded_connection(serve):
    server = serve(APP)
    result = run("curl", "-sS", "--max-time", "10", "-v", "--http2", server.url("/"), server.url("/echo"))
    assert result.stderr.count(b"101 Switching Protocols") == 1
    assert result.stdout.endswith(b"HTTP/2.0")
    assert b"Re-using existing connection" in result.stderr or b"Reusing existing connection" in result.stderr


def test_httpx_http2_prior_knowledge(serve):
    server = serve(APP)
    with httpx.Client(http1=False, http2=True, timeout=10) as client:
        for _ in range(3):
            response = client.get(server.url("/"))
            assert response.http_version == "HTTP/2"
            assert response.text == f"HTTP/2.0 GET 127.0.0.1:{server.port}"
        big = client.get(server.url("/stream"))
        assert big.http_version == "HTTP/2"
        assert len(big.content) == 4 * 1024 * 1024


def test_plain_http11_still_served_with_the_plugin_loaded(serve):
    server = serve(APP)
    response = httpx.get(server.url("/"), timeout=10)
    assert response.http_version == "HTTP/1.1"
    assert response.text.startswith("HTTP/1.1 GET")


def test_upgrade_without_http2_settings_stays_http11(serve):
    server = serve(APP)
    response = httpx.get(server.url("/"), headers={"Connection": "Upgrade", "Upgrade": "h2c"}, timeout=10)
    assert response.status_code == 200
    assert response.text.startswith("HTTP/1.1 GET")


@nghttp2
def test_h2load_smoke(serve):
    server = serve(APP)
    result = run("h2load", "-n", "500", "-c", "4", "-m", "10", server.url("/"))
    out = result.stdout.decode()
    assert "requests: 500 total, 500 started, 500 done, 500 succeeded, 0 failed, 0 errored, 0 timeout" in out
    assert "status codes: 500 2xx" in out


@nghttp2
@pytest.mark.parametrize("path, args", [
    ("/", ["-n", "20000", "-c", "10", "-m", "100"]),
    # 16 KiB stream windows: a WINDOW_UPDATE for about every DATA frame
    ("/piece", ["-n", "2000", "-c", "10", "-m", "100", "-w", "14", "-W", "16"]),
])
def test_h2load_many_streams_trip_no_flood_protection(serve, path, args):
    server = serve(APP)
    result = run("h2load", *args, server.url(path))
    count = args[1]
    out = result.stdout.decode()
    assert f"{count} succeeded, 0 failed, 0 errored, 0 timeout" in out, out
    assert f"status codes: {count} 2xx" in out


@nghttp2
def test_nghttp_upgrade_with_a_body(serve, tmp_path):
    server = serve(APP)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"x" * 100000)
    result = run("nghttp", "-u", server.url("/"))
    assert result.stdout == f"HTTP/2.0 GET 127.0.0.1:{server.port}".encode()
    result = run("nghttp", "-u", "-d", str(upload), server.url("/echo"))
    assert result.stdout.decode() == f"100000 {hashlib.sha256(b'x' * 100000).hexdigest()} HTTP/2.0"
