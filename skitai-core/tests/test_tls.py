"""HTTPS (`skitai.enable_ssl`): the TLS context, protocol choice by ALPN, certificate errors at
startup, and real scripts served to httpx, curl, openssl s_client and the ssl module."""
import asyncio
import os
import shutil
import socket
import ssl
import subprocess

import pytest
from tlsutil import client_context, failed_start, handshake, https_get

from skitai.kernel import Kernel
from skitai.testing import ServerProcess, ServerThread, make_certificates, requires_commands
from skitai.tls import TLSConfigError, server_context

SCRIPT = '''
import os
import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['wsgi.url_scheme']} {environ['SERVER_PORT']} {os.getpid()}".encode()]


if __name__ == "__main__":
    skitai.enable_ssl(os.environ["TEST_CERT"], os.environ["TEST_KEY"], os.environ.get("TEST_PASSPHRASE"))
    skitai.mount("/", app)
    if os.environ.get("TEST_STATIC"):
        skitai.mount("/files", os.environ["TEST_STATIC"])
    skitai.run(port=5000, workers=int(os.environ.get("TEST_WORKERS", "1")))
'''

needs_curl = requires_commands("curl", install="apt-get install curl")
needs_openssl = requires_commands("openssl", install="apt-get install openssl")


@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path))


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(SCRIPT)
    return str(path)


def tls_env(certs, **extra):
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, **extra}
    if certs.passphrase is not None:
        env["TEST_PASSPHRASE"] = certs.passphrase
    return env


# the context
def test_context_allows_tls12_and_up_with_ecdhe_aead_only(certs):
    context = server_context(certs.cert, certs.key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    tls12 = [cipher for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.2"]
    assert tls12
    for cipher in tls12:
        assert cipher["kea"] == "kx-ecdhe" and cipher["aead"], cipher["name"]
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION


def test_alpn_ids_put_plugin_protocols_before_http1():
    kernel = Kernel(entry_points=False)
    kernel.configure()
    protocols = kernel.protocols
    assert protocols.alpn_ids() == ["http/1.1"]
    protocols.add("h2", object, alpn=("h2",))
    protocols.add("late", object, alpn=("x-late",), priority=950)
    assert protocols.alpn_ids() == ["h2", "http/1.1", "x-late"]
    assert protocols.for_alpn("h2").name == "h2"
    assert protocols.for_alpn(None).name == protocols.for_alpn("x-unknown").name == "http/1.1"


def rewrite(path, data):
    with open(path, "wb") as file:
        file.write(data)


@pytest.mark.parametrize("problem, message", [
    ("missing certificate", "cannot read {cert}: No such file or directory"),
    ("missing key", "cannot read {key}: No such file or directory"),
    ("certificate is not PEM", "{cert} holds no PEM certificate"),
    ("key is not PEM", "{key} holds no PEM private key"),
    ("key of another certificate", "the key {key} does not belong to the certificate {cert}"),
])
def test_unusable_files_are_explained(tmp_path, certs, problem, message):
    if problem == "missing certificate":
        os.unlink(certs.cert)
    elif problem == "missing key":
        os.unlink(certs.key)
    elif problem == "certificate is not PEM":
        rewrite(certs.cert, b"not a certificate\n")
    elif problem == "key is not PEM":
        rewrite(certs.key, b"not a key\n")
    else:
        (tmp_path / "other").mkdir()
        shutil.copy(make_certificates(str(tmp_path / "other")).key, certs.key)
    with pytest.raises(TLSConfigError) as error:
        server_context(certs.cert, certs.key)
    assert str(error.value) == message.format(cert=certs.cert, key=certs.key)


def test_encrypted_key_needs_its_passphrase_and_never_prompts(tmp_path):
    certs = make_certificates(str(tmp_path), passphrase="s3cret")
    assert server_context(certs.cert, certs.key, "s3cret")
    with pytest.raises(TLSConfigError, match=r"is encrypted: give its passphrase"):
        server_context(certs.cert, certs.key)
    with pytest.raises(TLSConfigError, match=r"^wrong passphrase for the key "):
        server_context(certs.cert, certs.key, "wrong")


# protocol choice by ALPN, with a protocol registered in this process
class Shout(asyncio.Protocol):
    """A made-up protocol: answers every chunk in capitals."""

    def __init__(self, server):
        self.server = server

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data.upper())


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]


@pytest.fixture
def shouting_server(certs):
    server = ServerThread(ssl_certfile=certs.cert, ssl_keyfile=certs.key).mount("/", hello)
    server.kernel.protocols.add("shout", Shout, alpn=("x-skitai-shout",))
    with server:
        yield server


def test_the_negotiated_alpn_id_picks_the_protocol(shouting_server, certs):
    context = client_context(certs.ca, ["x-skitai-shout", "http/1.1"])
    with handshake(shouting_server.port, context) as tls:
        assert tls.selected_alpn_protocol() == "x-skitai-shout"
        tls.sendall(b"hello")
        assert tls.recv(100) == b"HELLO"


@pytest.mark.parametrize("offered, negotiated", [
    (None, None), (["http/1.1"], "http/1.1"), (["h2"], None), (["h2", "http/1.1"], "http/1.1"),
])
def test_clients_without_a_registered_protocol_get_http1(shouting_server, certs, offered, negotiated):
    with handshake(shouting_server.port, client_context(certs.ca, offered)) as tls:
        assert tls.selected_alpn_protocol() == negotiated
        tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := tls.recv(4096):
            response += chunk
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(b"\r\n\r\nhttps")


def test_a_client_that_never_says_hello_is_dropped(certs):
    with ServerThread(ssl_certfile=certs.cert, ssl_keyfile=certs.key, ssl_handshake_timeout=0.5) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            assert sock.recv(100) == b""  # closed by the server, well before the socket timeout


# a real script
def test_httpx_gets_an_https_environ(script, certs):
    with ServerProcess(script, env=tls_env(certs)) as server:
        response = https_get(certs.ca, server.port, "/")
    assert response.status_code == 200
    scheme, port, _ = response.text.split()
    assert (scheme, port) == ("https", str(server.port))
    assert f"serving on https://127.0.0.1:{server.port}/" in server.output


def installed_alpn_ids():
    """The ALPN ids a real script offers: HTTP/1.1, and h2 where the skitai-http2 plugin is
    installed (these tests check the core's choice either way; the plugin tests h2 itself)."""
    from skitai.kernel import Kernel

    kernel = Kernel()
    kernel.configure()
    return kernel.protocols.alpn_ids()


@needs_curl
def test_curl_offering_h2_gets_the_preferred_protocol(script, certs):
    with ServerProcess(script, env=tls_env(certs)) as server:
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "--http2", "--cacert", certs.ca, "-w", " %{http_version}",
             f"https://localhost:{server.port}/"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    expected = " 2" if "h2" in installed_alpn_ids() else " 1.1"
    assert result.stdout.startswith("https ") and result.stdout.endswith(expected)


@needs_openssl
def test_openssl_s_client_negotiates_the_preferred_protocol(script, certs):
    with ServerProcess(script, env=tls_env(certs)) as server:
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{server.port}", "-servername", "localhost",
             "-alpn", "h2,http/1.1", "-CAfile", certs.ca, "-verify_return_error"],
            input="", capture_output=True, text=True, errors="replace", timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ALPN protocol: {installed_alpn_ids()[0]}" in result.stdout
    assert "Verify return code: 0 (ok)" in result.stdout


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version, accepted", [
    (ssl.TLSVersion.TLSv1, False), (ssl.TLSVersion.TLSv1_1, False), (ssl.TLSVersion.TLSv1_2, True),
])
def test_tls10_and_tls11_are_refused(script, certs, version, accepted):
    context = client_context(certs.ca)
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT@SECLEVEL=0")  # let the client really offer the old versions
    with ServerProcess(script, env=tls_env(certs)) as server:
        if accepted:
            with handshake(server.port, context) as tls:
                assert tls.version() == "TLSv1.2"
            return
        with pytest.raises(ssl.SSLError) as error:
            handshake(server.port, context).close()
    # The server hung up on the hello (asyncio drops a failed handshake without flushing the
    # alert): an error of the client's own would have a reason of its own.
    assert error.value.reason in ("UNEXPECTED_EOF_WHILE_READING", "TLSV1_ALERT_PROTOCOL_VERSION")


@pytest.mark.parametrize("cipher, accepted", [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
    ("ECDHE-ECDSA-AES128-SHA", False),    # CBC
    ("ECDHE-ECDSA-AES256-SHA384", False),  # CBC
])
def test_tls12_takes_aead_ciphers_only(script, certs, cipher, accepted):
    context = client_context(certs.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    with ServerProcess(script, env=tls_env(certs)) as server:
        if accepted:
            with handshake(server.port, context) as tls:
                assert tls.cipher()[0] == cipher and tls.compression() is None
        else:
            with pytest.raises(ssl.SSLError) as error:
                handshake(server.port, context).close()
            assert error.value.reason in ("UNEXPECTED_EOF_WHILE_READING", "SSLV3_ALERT_HANDSHAKE_FAILURE")


def test_passphrase_protected_key(script, tmp_path):
    certs = make_certificates(str(tmp_path), passphrase="pass phrase")
    with ServerProcess(script, env=tls_env(certs)) as server:
        assert https_get(certs.ca, server.port, "/").status_code == 200


@needs_openssl
def test_the_manuals_self_signed_certificate_recipe(script, tmp_path):
    """genrsa -des3, req, x509 -signkey, then enable_ssl(crt, key, passphrase), as the manual
    does it (pass phrases given on the command line instead of typed)."""
    key, csr, crt = (str(tmp_path / name) for name in ("server.key", "server.csr", "server.crt"))
    phrase = "pass:s3"
    for command in (["genrsa", "-des3", "-passout", phrase, "-out", key, "2048"],
                    ["req", "-new", "-key", key, "-passin", phrase, "-subj", "/CN=localhost", "-out", csr],
                    ["x509", "-req", "-days", "365", "-in", csr, "-signkey", key, "-passin", phrase, "-out", crt]):
        subprocess.run(["openssl", *command], capture_output=True, timeout=60, check=True)
    context = ssl.create_default_context(cafile=crt)
    context.check_hostname = False  # the recipe's certificate names no host (no subjectAltName)
    with ServerProcess(script, env={"TEST_CERT": crt, "TEST_KEY": key, "TEST_PASSPHRASE": "s3"}) as server:
        with handshake(server.port, context) as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            assert tls.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")


@pytest.mark.parametrize("passphrase, message", [
    ("wrong", "wrong passphrase for the key {key}"),
    (None, "the key {key} is encrypted: give its passphrase"),
])
def test_a_key_that_cannot_be_opened_stops_the_start(script, tmp_path, passphrase, message):
    certs = make_certificates(str(tmp_path), passphrase="right")
    env = {**os.environ, "TEST_CERT": certs.cert, "TEST_KEY": certs.key}
    if passphrase is not None:
        env["TEST_PASSPHRASE"] = passphrase
    result = failed_start(script, env=env)
    assert result.returncode == 1
    assert result.stdout.startswith("skitai: error: " + message.format(key=certs.key))
    assert "Traceback" not in result.stdout
    assert "serving on" not in result.stdout


def test_a_missing_certificate_stops_the_start(script, certs):
    env = {**os.environ, "TEST_CERT": certs.cert + ".missing", "TEST_KEY": certs.key}
    result = failed_start(script, env=env)
    assert result.returncode == 1
    assert result.stdout == f"skitai: error: cannot read {certs.cert}.missing: No such file or directory\n"


def test_two_workers_serve_tls(script, certs):
    with ServerProcess(script, env=tls_env(certs, TEST_WORKERS="2")) as server:
        pids = {https_get(certs.ca, server.port, "/").text.split()[2] for _ in range(8)}
    assert pids and str(server.process.pid) not in pids  # answered by workers, not the master


def test_large_static_file_and_ranges_over_tls(script, certs, tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    content = os.urandom(5 * 1024 * 1024 + 123)
    (static / "big.bin").write_bytes(content)
    (static / "small.txt").write_bytes(b"small, from the cache, head and body in one writelines\n")
    with ServerProcess(script, env=tls_env(certs, TEST_STATIC=str(static))) as server:
        for _ in range(2):   # the second answer is the cached one
            small = https_get(certs.ca, server.port, "/files/small.txt")
            assert small.content == (static / "small.txt").read_bytes()
        whole = https_get(certs.ca, server.port, "/files/big.bin")
        part = https_get(certs.ca, server.port, "/files/big.bin", headers={"Range": "bytes=1000-3000999"})
        tail = https_get(certs.ca, server.port, "/files/big.bin", headers={"Range": "bytes=-10"})
    assert whole.status_code == 200 and whole.content == content
    assert part.status_code == 206 and part.content == content[1000:3001000]
    assert part.headers["content-range"] == f"bytes 1000-3000999/{len(content)}"
    assert tail.status_code == 206 and tail.content == content[-10:]
