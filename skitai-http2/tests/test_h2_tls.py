"""h2 over TLS: offered by ALPN before http/1.1, which stays the fallback (curl, httpx,
openssl s_client), with the certificates of `skitai.testing.make_certificates`."""
import ssl
import subprocess

import httpx
import pytest
from apps import APP

from skitai.testing import make_certificates, requires_commands

curl = requires_commands("curl", install="apt-get install curl")
openssl = requires_commands("openssl", install="apt-get install openssl")


@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path))


@pytest.fixture
def tls_server(serve, certs):
    return serve(APP, ssl_certfile=certs.cert, ssl_keyfile=certs.key)


@curl
@pytest.mark.parametrize("flag, version", [("--http2", "2"), ("--http1.1", "1.1")])
def test_curl_gets_h2_by_alpn_or_http1_when_it_asks(tls_server, certs, flag, version):
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "10", flag, "--cacert", certs.ca, "-w", " %{http_version}",
         f"https://localhost:{tls_server.port}/"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    protocol = "HTTP/2.0" if version == "2" else "HTTP/1.1"
    assert result.stdout == f"{protocol} GET localhost:{tls_server.port} {version}"


def test_httpx_http2_over_tls(tls_server, certs):
    with httpx.Client(http2=True, verify=ssl.create_default_context(cafile=certs.ca), trust_env=False) as client:
        responses = [client.get(f"https://localhost:{tls_server.port}/") for _ in range(3)]
    assert {response.http_version for response in responses} == {"HTTP/2"}
    assert responses[0].text == f"HTTP/2.0 GET localhost:{tls_server.port}"


@openssl
@pytest.mark.parametrize("offered, negotiated", [("h2,http/1.1", "h2"), ("http/1.1,h2", "h2"),
                                                 ("http/1.1", "http/1.1")])
def test_the_server_prefers_h2(tls_server, certs, offered, negotiated):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_server.port}", "-servername", "localhost",
         "-alpn", offered, "-CAfile", certs.ca, "-verify_return_error"],
        input="", capture_output=True, text=True, errors="replace", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ALPN protocol: {negotiated}" in result.stdout


def test_response_fields_a_plugin_registers_reach_h2_responses(certs):
    """`skitai_register_response_fields` (how HTTP/3 advertises Alt-Svc) over HTTP/2 too:
    added to every response, except where the app sent a field of that name itself."""
    from h2server import h2_server

    from skitai.plugin import hookimpl

    class AltSvc:
        @hookimpl
        def skitai_register_response_fields(self, fields):
            fields.add("Alt-Svc", 'h3=":4433"', protocols=("HTTP/2.0",))

    def app(environ, start_response):
        own = [("Alt-Svc", "clear")] if environ["PATH_INFO"] == "/own" else []
        start_response("200 OK", [("Content-Type", "text/plain"), *own])
        return [b"ok"]

    server = h2_server(ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    server.kernel.pm.register(AltSvc())
    server.mount("/", app)
    with server, httpx.Client(http2=True, verify=ssl.create_default_context(cafile=certs.ca),
                              trust_env=False, timeout=10) as client:
        plain = client.get(f"https://localhost:{server.port}/")
        own = client.get(f"https://localhost:{server.port}/own")
    assert plain.http_version == "HTTP/2" and plain.headers["alt-svc"] == 'h3=":4433"'
    assert own.headers.get_list("alt-svc") == ["clear"]
