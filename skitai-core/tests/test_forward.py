"""`skitai.enable_forward`: http -> https on a second listener, www.<domain> -> <domain> on the
TLS one; the rules on their own, then real scripts with http.client, httpx and curl."""
import contextlib
import http.client
import os
import signal
import subprocess

import pytest
from tlsutil import client_context, failed_start, wait_for_output

from skitai.forward import BadHost, ForwardRules
from skitai.testing import ServerProcess, free_port, make_certificates, requires_commands

SCRIPT = '''
import os
import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{environ['HTTP_HOST']} {environ['PATH_INFO']}?{environ['QUERY_STRING']}".encode()]


if __name__ == "__main__":
    if os.environ.get("TEST_CERT"):
        skitai.enable_ssl(os.environ["TEST_CERT"], os.environ["TEST_KEY"])
    skitai.enable_forward(int(os.environ["TEST_FORWARD_PORT"]), int(os.environ["TEST_TO_PORT"]),
                          os.environ.get("TEST_DOMAIN"))
    skitai.mount("/", app)
    skitai.run(port=5000, workers=int(os.environ.get("TEST_WORKERS", "1")))
'''

DOMAIN = "example.test"


# the rules
@pytest.mark.parametrize("rules, scheme, host, target, location", [
    (ForwardRules(443), "http", "shop.example.com", "/a?b=1", "https://shop.example.com/a?b=1"),
    (ForwardRules(443), "http", "shop.example.com:80", "/", "https://shop.example.com/"),
    (ForwardRules(8443), "http", "shop.example.com:8080", "/a/b?c=d&e", "https://shop.example.com:8443/a/b?c=d&e"),
    (ForwardRules(443), "http", "[::1]:80", "/x", "https://[::1]/x"),
    (ForwardRules(443), "http", None, "/x", "https://10.0.0.5/x"),
    (ForwardRules(443, DOMAIN), "http", "anything.else", "/x?y", "https://example.test/x?y"),
    (ForwardRules(443, DOMAIN), "http", None, "*", "https://example.test/"),
    (ForwardRules(443, DOMAIN), "https", "www.example.test", "/x?y", "https://example.test/x?y"),
    (ForwardRules(443, DOMAIN), "https", "WWW.Example.TEST:8443", "/", "https://example.test:8443/"),
    (ForwardRules(443, DOMAIN), "https", "www.example.test:junk", "/", None),
    (ForwardRules(443, DOMAIN), "https", "example.test", "/x", None),
    (ForwardRules(443, DOMAIN), "https", "www.other.test", "/x", None),
    (ForwardRules(443), "https", "www.example.test", "/x", None),
])
def test_where_requests_are_sent(rules, scheme, host, target, location):
    path, _, query = target.partition("?")
    assert rules.location(scheme, host, "10.0.0.5", path, query) == location


def test_a_local_ipv6_address_is_bracketed():
    assert ForwardRules(8443).location("http", None, "::1", "/", "") == "https://[::1]:8443/"


@pytest.mark.parametrize("host", ["evil.com/x", "a b", "user@evil.com", "-x", "host:port", "[::1"])
def test_hosts_that_cannot_go_into_a_location_are_refused(host):
    with pytest.raises(BadHost):
        ForwardRules(443).location("http", host, "10.0.0.5", "/", "")


# real scripts
@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path), "localhost", "127.0.0.1", DOMAIN, "www." + DOMAIN)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(SCRIPT)
    return str(path)


@contextlib.contextmanager
def started(script, certs, to_port=None, domain=None, workers=1):
    """The script on a free port with a forward listener on another; `to_port` defaults to the
    TLS port itself. Yields the ServerProcess and the forward port."""
    port, forward_port = free_port(), free_port()
    env = {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_FORWARD_PORT": str(forward_port),
           "TEST_TO_PORT": str(to_port or port), "TEST_WORKERS": str(workers)}
    if domain:
        env["TEST_DOMAIN"] = domain
    with ServerProcess(script, port=port, env=env) as server:
        yield server, forward_port


def get(connection, target, host):
    connection.request("GET", target, headers={"Host": host})
    response = connection.getresponse()
    return response.status, response.getheader("Location"), response.read()


def plain(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def tls(port, certs):
    return http.client.HTTPSConnection("localhost", port, timeout=10, context=client_context(certs.ca))


@pytest.mark.parametrize("workers", [1, 2])
def test_plain_http_goes_to_https_at_the_host_asked_for(script, certs, workers):
    with started(script, certs, workers=workers) as (server, forward_port):
        connection = plain(forward_port)
        status, location, body = get(connection, "/a/b?x=1&y=%20", f"localhost:{forward_port}")
        assert status == 301 and location == f"https://localhost:{server.port}/a/b?x=1&y=%20"
        assert location.encode() in body
        assert get(connection, "/again", "127.0.0.1")[:2] == (301, f"https://127.0.0.1:{server.port}/again")
        assert get(tls(server.port, certs), "/c?d", f"localhost:{server.port}")[2] == (
            f"localhost:{server.port} /c?d".encode())


def test_the_https_port_443_is_left_out_of_the_location(script, certs):
    with started(script, certs, to_port=443) as (server, forward_port):
        assert get(plain(forward_port), "/p?q", "shop.test:80")[:2] == (301, "https://shop.test/p?q")


def test_a_bad_host_gets_400(script, certs):
    with started(script, certs) as (server, forward_port):
        status, location, body = get(plain(forward_port), "/", "evil.test/phish")
    assert status == 400 and location is None and b"invalid Host header" in body


@pytest.mark.parametrize("workers", [1, 2])
def test_with_a_domain_http_and_www_go_to_the_domain(script, certs, workers):
    with started(script, certs, domain=DOMAIN, workers=workers) as (server, forward_port):
        assert get(plain(forward_port), "/a?b=1", "www.example.test")[:2] == (
            301, f"https://{DOMAIN}:{server.port}/a?b=1")
        with contextlib.closing(tls(server.port, certs)) as connection:
            assert get(connection, "/a?b=1", f"www.{DOMAIN}:{server.port}")[:2] == (
                301, f"https://{DOMAIN}:{server.port}/a?b=1")
            assert get(connection, "/a?b=1", f"{DOMAIN}:{server.port}")[::2] == (
                200, f"{DOMAIN}:{server.port} /a?b=1".encode())


@requires_commands("curl", install="apt-get install curl")
def test_curl_follows_http_www_to_https_domain(script, certs):
    with started(script, certs, domain=DOMAIN) as (server, forward_port):
        resolve = [arg for name in (DOMAIN, "www." + DOMAIN) for port in (server.port, forward_port)
                   for arg in ("--resolve", f"{name}:{port}:127.0.0.1")]
        result = subprocess.run(
            ["curl", "-sS", "-L", "--max-time", "10", "--cacert", certs.ca, *resolve,
             "-w", "\n%{num_redirects} %{url_effective}", f"http://www.{DOMAIN}:{forward_port}/p?q=1"],
            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    body, summary = result.stdout.split("\n")
    assert body == f"{DOMAIN}:{server.port} /p?q=1"
    assert summary == f"1 https://{DOMAIN}:{server.port}/p?q=1"


def test_a_reload_keeps_both_listeners(script, certs):
    """SIGHUP re-executes the master with both sockets inherited: a forward port bound afresh
    would clash with the old workers still listening on it."""
    with started(script, certs, workers=2) as (server, forward_port):
        serving = f"serving on http://127.0.0.1:{forward_port}/"
        wait_for_output(server, serving, 2)
        server.signal(signal.SIGHUP)
        wait_for_output(server, serving, 4)  # the old workers and the new ones
        assert get(plain(forward_port), "/r", "localhost")[:2] == (301, f"https://localhost:{server.port}/r")
        with contextlib.closing(tls(server.port, certs)) as connection:
            assert get(connection, "/r", "localhost")[0] == 200
    assert "skitai: reloading" in server.output and "Traceback" not in server.output


def test_forward_without_ssl_stops_the_start(script):
    env = {**os.environ, "TEST_FORWARD_PORT": str(free_port()), "TEST_TO_PORT": "443"}
    result = failed_start(script, f"--port={free_port()}", env=env)
    assert result.returncode != 0 and "call skitai.enable_ssl() too" in result.stdout


def test_forward_from_the_https_port_stops_the_start(script, certs):
    port = free_port()
    env = {**os.environ, "TEST_CERT": certs.cert, "TEST_KEY": certs.key, "TEST_FORWARD_PORT": str(port),
           "TEST_TO_PORT": str(port)}
    result = failed_start(script, f"--port={port}", env=env)
    assert result.returncode != 0 and f"port {port} already serves https" in result.stdout
