"""`skitai.enable_ssl(cert, key)` + `skitai.run(port=..., quic=...)` as a script runs it: HTTP/3
on the UDP port beside HTTPS on the TCP one, and the operator's mistakes as one line."""
import os
import socket
import ssl
import subprocess
import sys
import textwrap

import httpx
import pytest
from h3server import free_udp_port

from skitai.testing import ServerProcess, free_port, make_certificates
from skitai_http3.testing import h3_connect, run

SCRIPT = textwrap.dedent('''
    import os
    import skitai


    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["SERVER_PROTOCOL"].encode() + b" " + str(os.getpid()).encode()]


    if __name__ == "__main__":
        if os.environ.get("TEST_CERT"):
            skitai.enable_ssl(os.environ["TEST_CERT"], os.environ["TEST_KEY"])
        if os.environ.get("TEST_RETRY"):
            skitai.enable_http3_retry()
        if os.environ.get("TEST_EARLY"):
            skitai.enable_http3_early_data()
        skitai.mount("/", app)
        skitai.run(port=5000, quic=int(os.environ["TEST_QUIC"]), workers=int(os.environ.get("TEST_WORKERS", "1")))
''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(SCRIPT)
    return str(path)


@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path))


def h3_get(port, ca, path="/"):
    async def go():
        async with h3_connect("127.0.0.1", port, cafile=ca) as client:
            return await client.request("GET", path)
    return run(go, timeout=20)


def refusal(script, env, *args):
    result = subprocess.run([sys.executable, script, f"--port={free_port()}", *args],
                            env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("skitai: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0][len("skitai: error: "):]


def test_a_script_serves_http3_beside_https(script, certs):
    quic = free_udp_port()
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic)}
    with ServerProcess(script, env=env) as server:
        response = h3_get(quic, certs.ca)
        assert response.status == 200 and response.body.startswith(b"HTTP/3.0 ")
        tcp = httpx.get(f"https://localhost:{server.port}/", timeout=10,
                        verify=ssl.create_default_context(cafile=certs.ca))
        assert tcp.headers["alt-svc"] == f'h3=":{quic}"; ma=86400'
        assert tcp.text.split()[1] == response.body.split()[1].decode()  # the same worker
    assert server.returncode == 0


def test_http3_without_tls_is_refused(script):
    message = refusal(script, {"TEST_QUIC": str(free_udp_port())})
    assert message.endswith("needs skitai.enable_ssl(certfile, keyfile): HTTP/3 is always encrypted")
    assert "http3" in message


def test_http3_without_the_plugin_names_the_extra(script, certs):
    quic = free_udp_port()
    message = refusal(script, {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic)},
                      "--disable-plugin=http3")
    assert message == f'skitai.run(quic={quic}) needs the HTTP/3 plugin: pip install "skitai[http3]"'


def test_a_taken_quic_port_is_one_line(script, certs):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        quic = taken.getsockname()[1]
        message = refusal(script, {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic)})
    assert message == f"cannot bind UDP 127.0.0.1:{quic}: Address already in use"


def test_an_unreadable_key_is_one_line(script, certs, tmp_path):
    message = refusal(script, {"TEST_CERT": certs.cert, "TEST_KEY": str(tmp_path / "missing.pem"),
                               "TEST_QUIC": str(free_udp_port())})
    assert "missing.pem" in message


def test_early_data_with_two_workers_resumes_on_the_ticket_s_worker_only(script, certs):
    """`skitai.enable_http3_early_data()` with workers=2: tickets are kept by the worker that
    issued them, so a resumption is accepted in 0-RTT when it reaches that worker (its early POST
    is 425) and otherwise makes a full handshake (the POST is served); none fails."""
    quic = free_udp_port()
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_QUIC": str(quic), "TEST_EARLY": "1",
           "TEST_WORKERS": "2"}

    async def attempt():
        tickets = []
        async with h3_connect("127.0.0.1", quic, cafile=certs.ca, session_ticket_handler=tickets.append) as client:
            await client.request("GET", "/")
        assert tickets
        async with h3_connect("127.0.0.1", quic, cafile=certs.ca, session_ticket=tickets[0]) as client:
            post = await client.request("POST", "/", body=b"x", timeout=10)
            return client._quic.tls.early_data_accepted, post.status

    with ServerProcess(script, env=env):
        outcomes = {run(attempt, timeout=30) for _ in range(16)}
    assert outcomes <= {(True, 425), (False, 200)}, outcomes
    assert (True, 425) in outcomes  # 1 in 2 resumptions reach the ticket's worker
