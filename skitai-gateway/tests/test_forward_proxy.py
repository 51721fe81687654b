"""The forward proxy (`skitai.enable_proxy`) over real sockets: CONNECT tunnels to real
destinations with curl and requests, the destination policy's refusals (403), unreachable
destinations (502), Proxy-Authorization (407), back-pressure and the idle timeout of tunnels."""
import base64
import os
import socket
import subprocess
import sys
import time

import pytest
import requests
from fwdproxyservers import FLOOD, TcpServer, origin_app, proxy_handler, proxy_server

from skitai.config import ForwardProxySettings
from skitai.testing import ServerThread, StartedServers, free_port, make_certificates, requires_commands, wait_for

CURL = requires_commands("curl", install="apt-get install curl")


@pytest.fixture
def serve():
    """serve(**settings) -> a started proxy server; serve.origin(**settings) -> a started
    origin Skitai server (HTTPS with ssl_certfile/ssl_keyfile); all stopped after the test."""
    proxies = StartedServers(proxy_server)
    origins = StartedServers(ServerThread)

    def start(**settings):
        return proxies(origin_app, **settings)

    start.origin = lambda **settings: origins(origin_app, **settings)
    yield start
    proxies.stop()
    origins.stop()


@pytest.fixture
def tcp():
    servers = []

    def start(behaviour):
        server = TcpServer(behaviour)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def certs(tmp_path):
    return make_certificates(str(tmp_path))


def connect(port: int, target: str, headers: bytes = b"", timeout: float = 10) -> tuple[bytes, socket.socket]:
    """Send `CONNECT target` to the proxy; its answer's head and the socket (the tunnel on 200)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + headers + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        data = sock.recv(1)
        if not data:
            break
        head += data
    return head, sock


def refusal(port: int, target: str, headers: bytes = b"") -> bytes:
    head, sock = connect(port, target, headers)
    with sock:
        length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), b"0"))
        body = b""
        while len(body) < length:
            body += sock.recv(length - len(body))
    return head + body


def allowing(*allow, ports=("*",), **options):
    return ForwardProxySettings(allow=allow, ports=ports, **options)


# tunnels with real clients
@CURL
def test_curl_reaches_an_https_destination_through_a_connect_tunnel(serve, certs):
    origin = serve.origin(ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    proxy = serve()
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-x", f"http://127.0.0.1:{proxy.port}", "--cacert", certs.ca,
         f"https://127.0.0.1:{origin.port}/secret"], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"origin app /secret"


@CURL
def test_curl_tunnels_plain_http_with_proxytunnel(serve):
    origin = serve.origin()
    proxy = serve()
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-p", "-x", f"http://127.0.0.1:{proxy.port}",
         f"http://127.0.0.1:{origin.port}/plain"], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"origin app /plain"


def test_requests_reaches_an_https_destination_through_the_proxy(serve, certs):
    origin = serve.origin(ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    proxy = serve()
    proxies = {"https": f"http://127.0.0.1:{proxy.port}"}
    with requests.Session() as session:
        answers = [session.get(f"https://127.0.0.1:{origin.port}/r{n}", proxies=proxies, verify=certs.ca,
                               timeout=20) for n in range(3)]
    assert [(answer.status_code, answer.text) for answer in answers] == [
        (200, f"origin app /r{n}") for n in range(3)]


def test_a_tunnel_passes_bytes_both_ways_and_half_closes(serve, tcp):
    echo = tcp("echo")
    proxy = serve()
    head, sock = connect(proxy.port, f"127.0.0.1:{echo.port}")
    with sock:
        assert head.startswith(b"HTTP/1.1 200 ")
        assert b"content-length" not in head.lower() and b"transfer-encoding" not in head.lower()
        payload = bytes(range(256)) * 4096  # 1 MiB
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)  # the destination sees the FIN, echoes the rest and closes
        received = b""
        while data := sock.recv(65536):
            received += data
    assert received == payload
    assert echo.peer_closed.wait(10)
    wait_for(lambda: not proxy_handler(proxy).tunnels)


def test_a_destination_that_speaks_first_is_heard(serve, tcp):
    banner = tcp("banner")
    proxy = serve()
    head, sock = connect(proxy.port, f"127.0.0.1:{banner.port}")
    with sock:
        assert head.startswith(b"HTTP/1.1 200 ")
        assert sock.recv(100) == b"220 hello from the destination\r\n"
        sock.sendall(b"ping")
        assert sock.recv(100) == b"ping"


def kernel_buffering_allowance(client_rcvbuf: int) -> int:
    """The most that socket buffers alone may hold between a destination and a client that
    reads nothing: the destination's send buffer, the proxy's receive and send buffers and the
    client's receive buffer, at the kernel's autotuning maxima (which differ between machines),
    plus the proxy's own write-buffer high-water mark (asyncio's 64 KiB)."""
    def tcp_max(name):
        with open(f"/proc/sys/net/ipv4/{name}") as sysctl:
            return int(sysctl.read().split()[2])

    return 2 * tcp_max("tcp_wmem") + tcp_max("tcp_rmem") + 2 * client_rcvbuf + 64 * 1024


def sent_once_stalled(flood: TcpServer, steady_for: float = 1.0, limit: float = 20.0) -> int:
    """`flood.sent` once it has not moved for `steady_for` seconds."""
    deadline = time.monotonic() + limit
    last, since = flood.sent, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        if flood.sent != last:
            last, since = flood.sent, time.monotonic()
        elif time.monotonic() - since >= steady_for:
            return last
    raise AssertionError(f"the destination never stalled: it had sent {flood.sent} bytes after {limit} s")


def test_a_client_that_reads_nothing_stops_the_destination_instead_of_filling_the_proxy(serve, tcp):
    flood = tcp("flood")
    proxy = serve()
    client_rcvbuf = 64 * 1024
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_rcvbuf)  # before connect: fixes the window
    sock.settimeout(30)
    sock.connect(("127.0.0.1", proxy.port))
    target = f"127.0.0.1:{flood.port}"
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    with sock:
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200 ")
        stalled_at = sent_once_stalled(flood)  # not reading: socket buffers alone must hold it back
        allowance = kernel_buffering_allowance(client_rcvbuf)
        assert stalled_at < FLOOD, "the proxy read the whole flood for a client that read nothing"
        assert stalled_at <= allowance, f"the proxy took {stalled_at} bytes; socket buffers hold {allowance}"
        received = 0
        while data := sock.recv(1 << 20):
            received += len(data)
            if received == FLOOD:
                break
    assert received == FLOOD


def test_an_idle_tunnel_is_closed_after_the_tunnel_keep_alive(serve, tcp):
    hold = tcp("hold")
    proxy = serve(proxy_tunnel_keep_alive=0.5)
    head, sock = connect(proxy.port, f"127.0.0.1:{hold.port}")
    with sock:
        assert head.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"a")   # activity keeps it open ...
        time.sleep(0.3)
        sock.sendall(b"b")
        time.sleep(0.3)
        started = time.monotonic()
        assert sock.recv(10) == b""  # ... silence closes it (no reset: what was written went out)
        assert time.monotonic() - started < 5
    assert hold.peer_closed.wait(10)


def test_a_client_that_trickles_its_connect_head_is_dropped(serve, tcp):
    echo = tcp("echo")
    proxy = serve(request_timeout=0.5)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(f"CONNECT 127.0.0.1:{echo.port} HTTP/1.1\r\n".encode())
        received = b""
        while data := sock.recv(65536):  # the head never completes: the server gives up on it
            received += data
    assert time.monotonic() - started < 5
    assert received == b"" or received.startswith(b"HTTP/1.1 408 ")
    assert not echo.accepted.is_set()


# refusals
def test_a_loopback_destination_is_refused_unless_allowed(serve, tcp):
    echo = tcp("echo")
    proxy = serve(forward_proxy=ForwardProxySettings(ports=("*",)))
    for target in (f"127.0.0.1:{echo.port}", f"localhost:{echo.port}", f"[::ffff:127.0.0.1]:{echo.port}",
                   f"0.0.0.0:{echo.port}", f"[::1]:{echo.port}"):
        answer = refusal(proxy.port, target)
        assert answer.startswith(b"HTTP/1.1 403 "), (target, answer)
        assert b"internal address" in answer
    assert not echo.accepted.is_set()


def test_private_and_link_local_destinations_are_refused_without_connecting(serve):
    proxy = serve(forward_proxy=ForwardProxySettings(ports=("*",)))
    for target in ("10.1.2.3:443", "192.168.0.1:443", "172.16.0.1:443", "169.254.169.254:80",
                   "[fe80::1]:443", "100.64.0.1:443", "[fd00::1]:443"):
        assert refusal(proxy.port, target).startswith(b"HTTP/1.1 403 "), target


def test_deny_wins_over_allow_and_ports_are_checked(serve, tcp):
    echo = tcp("echo")
    proxy = serve(forward_proxy=ForwardProxySettings(allow=("127.0.0.0/8",), deny=("127.0.0.1",),
                                                      ports=(echo.port,)))
    assert b"127.0.0.1 is denied" in refusal(proxy.port, f"127.0.0.1:{echo.port}")
    answer = refusal(proxy.port, f"127.0.0.2:{echo.port + 1 if echo.port < 65535 else 1}")
    assert answer.startswith(b"HTTP/1.1 403 ") and b"is not allowed" in answer
    assert not echo.accepted.is_set()


def test_a_destination_that_refuses_the_connection_is_a_502(serve):
    proxy = serve()
    answer = refusal(proxy.port, f"127.0.0.1:{free_port()}")
    assert answer.startswith(b"HTTP/1.1 502 ")


def test_a_name_that_does_not_resolve_is_a_502(serve):
    proxy = serve(forward_proxy=ForwardProxySettings(ports=("*",)))
    answer = refusal(proxy.port, "no-such-host.invalid:443")
    assert answer.startswith((b"HTTP/1.1 502 ", b"HTTP/1.1 504 ")), answer


def test_after_a_refusal_the_connection_serves_the_next_request(serve):
    proxy = serve()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"CONNECT 10.0.0.1:443 HTTP/1.1\r\nHost: 10.0.0.1:443\r\n\r\n"
                     b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"origin app /next" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
    assert received.startswith(b"HTTP/1.1 403 ")


# Proxy-Authorization
def test_without_credentials_the_proxy_answers_407_with_a_challenge(serve, tcp):
    echo = tcp("echo")
    proxy = serve(forward_proxy=allowing("127.0.0.1", users={"alice": "s3cret"}, realm="Test proxy"))
    target = f"127.0.0.1:{echo.port}"
    answer = refusal(proxy.port, target)
    assert answer.startswith(b"HTTP/1.1 407 ")
    assert b'\r\nProxy-Authenticate: Basic realm="Test proxy", charset="UTF-8"\r\n' in answer
    for credentials in (b"alice:wrong", b"bob:s3cret", b"alice", b""):
        header = b"Proxy-Authorization: Basic " + base64.b64encode(credentials) + b"\r\n"
        assert refusal(proxy.port, target, header).startswith(b"HTTP/1.1 407 "), credentials
    assert refusal(proxy.port, target, b"Proxy-Authorization: Bearer abc\r\n").startswith(b"HTTP/1.1 407 ")
    assert not echo.accepted.is_set()


@CURL
def test_curl_with_the_right_proxy_user_gets_through(serve, certs):
    origin = serve.origin(ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    proxy = serve(forward_proxy=allowing("127.0.0.1", users={"alice": "s3cret"}))
    command = ["curl", "-sS", "--max-time", "20", "-x", f"http://127.0.0.1:{proxy.port}", "--cacert", certs.ca,
               "-o", "/dev/null", "-w", "%{http_code} %{http_connect}", f"https://127.0.0.1:{origin.port}/"]
    denied = subprocess.run([*command, "-U", "alice:nope"], capture_output=True, timeout=30)
    assert denied.stdout.startswith(b"000 407"), denied
    allowed = subprocess.run([*command, "-U", "alice:s3cret"], capture_output=True, timeout=30)
    assert allowed.returncode == 0 and allowed.stdout == b"200 200", allowed


def test_requests_with_proxy_credentials_in_the_url(serve, certs):
    origin = serve.origin(ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    proxy = serve(forward_proxy=allowing("127.0.0.1", users={"alice": "s3cret"}))
    url = f"https://127.0.0.1:{origin.port}/auth"
    answer = requests.get(url, proxies={"https": f"http://alice:s3cret@127.0.0.1:{proxy.port}"},
                          verify=certs.ca, timeout=20)
    assert (answer.status_code, answer.text) == (200, "origin app /auth")
    with pytest.raises(requests.exceptions.ProxyError, match="407"):
        requests.get(url, proxies={"https": f"http://alice:x@127.0.0.1:{proxy.port}"}, verify=certs.ca, timeout=20)


# HTTP/2 CONNECT (RFC 9113 8.5)
def h2_proxy_server(**settings):
    from skitai_http2 import plugin as http2

    server = proxy_server(**settings)
    http2.skitai_register_protocols(protocols=server.kernel.protocols)
    return server


def h2_exchange(port: int, authority: str, payload: bytes, headers=()) -> tuple[dict, bytes]:
    """A CONNECT stream over HTTP/2 prior knowledge: send `payload` and END_STREAM, return the
    answer's fields and every byte that came back until the stream ended."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, [(":method", "CONNECT"), (":authority", authority), *headers])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(conn.data_to_send())
        answer, received, sent, ended = None, b"", False, False
        while not ended:
            data = sock.recv(65536)
            assert data, "the proxy closed the connection"
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    answer = dict((name.decode(), value.decode()) for name, value in event.headers)
                    if answer[":status"] == "200" and not sent:
                        conn.send_data(1, payload, end_stream=True)
                        sent = True
                elif isinstance(event, h2.events.DataReceived):
                    received += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    ended = True
            sock.sendall(conn.data_to_send())
    return answer, received


def test_an_http2_connect_tunnels_to_the_destination(tcp):
    pytest.importorskip("skitai_http2")
    echo = tcp("echo")
    servers = StartedServers(h2_proxy_server)
    try:
        proxy = servers(origin_app)
        headers, received = h2_exchange(proxy.port, f"127.0.0.1:{echo.port}", b"over h2" * 1000)
        assert headers[":status"] == "200" and "content-length" not in headers
        assert received == b"over h2" * 1000
        assert echo.peer_closed.wait(10)
        refused, body = h2_exchange(proxy.port, "10.0.0.1:443", b"")
        assert refused[":status"] == "403" and b"internal address" in body
    finally:
        servers.stop()


def test_an_http2_connect_needs_the_proxy_credentials_too(tcp):
    pytest.importorskip("skitai_http2")
    echo = tcp("echo")
    servers = StartedServers(h2_proxy_server)
    try:
        proxy = servers(origin_app, forward_proxy=allowing("127.0.0.1", users={"alice": "s3cret"}))
        target = f"127.0.0.1:{echo.port}"
        refused, _ = h2_exchange(proxy.port, target, b"")
        assert refused[":status"] == "407" and refused["proxy-authenticate"].startswith("Basic realm=")
        credentials = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        allowed, echoed = h2_exchange(proxy.port, target, b"hello", [("proxy-authorization", credentials)])
        assert allowed[":status"] == "200" and echoed == b"hello"
    finally:
        servers.stop()


def test_a_script_with_a_bad_proxy_setting_stops_in_one_line(tmp_path):
    script = tmp_path / "proxy.py"
    script.write_text("import skitai\nskitai.enable_proxy(allow=['10.0.0.0/33'])\nskitai.run()\n")
    result = subprocess.run([sys.executable, str(script), f"--port={free_port()}"], capture_output=True,
                            text=True, timeout=60, env=os.environ)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("skitai: error: ") and "allow: '10.0.0.0/33'" in last, result.stderr


# absolute-form requests, forwarded by the reverse proxy's engine
@CURL
def test_curl_gets_a_plain_http_url_through_the_proxy(serve):
    origin = serve.origin()
    proxy = serve()
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-x", f"http://127.0.0.1:{proxy.port}",
         f"http://127.0.0.1:{origin.port}/plain"], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"origin app /plain"


def test_requests_through_the_proxy_keeps_host_and_query_drops_proxy_fields(serve):
    origin = serve.origin()
    proxy = serve(forward_proxy=allowing("127.0.0.1", users={"alice": "s3cret"}))
    proxies = {"http": f"http://alice:s3cret@127.0.0.1:{proxy.port}"}
    with requests.Session() as session:
        answer = session.get(f"http://127.0.0.1:{origin.port}/headers?a=1&b=%20", proxies=proxies, timeout=20)
        upload = session.post(f"http://127.0.0.1:{origin.port}/upload", data=b"x" * 3_000_000, proxies=proxies,
                              timeout=20)
    assert answer.status_code == 200, answer.text
    fields = answer.json()
    assert fields["host"] == f"127.0.0.1:{origin.port}"
    assert fields["query"] == "a=1&b=%20"
    assert fields["proxy-authorization"] is None and fields["proxy-connection"] is None
    assert fields["via"] == "1.1 skitai" and fields["x-forwarded-for"] == "127.0.0.1"
    assert fields["x-gtxn-id"] and fields["x-ltxn-id"] == "1001"
    assert "skitai" in answer.headers["Via"]
    assert (upload.status_code, upload.text) == (200, "3000000")
    refused = requests.get(f"http://127.0.0.1:{origin.port}/headers", proxies={"http": f"http://127.0.0.1:{proxy.port}"},
                           timeout=20)
    assert refused.status_code == 407 and refused.headers["Proxy-Authenticate"].startswith("Basic ")


def test_an_absolute_form_target_without_a_path_asks_for_the_root(serve):
    origin = serve.origin()
    proxy = serve()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(f"GET http://127.0.0.1:{origin.port}?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{origin.port}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        received = b""
        while data := sock.recv(65536):
            received += data
    assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(b"origin app /"), received


def test_absolute_form_requests_meet_the_same_policy(serve, tcp):
    proxy = serve(forward_proxy=ForwardProxySettings(ports=("*",)))
    hold = tcp("hold")
    for target in (f"http://127.0.0.1:{hold.port}/", f"http://localhost:{hold.port}/x", "http://10.0.0.1/",
                   "http://[::1]/"):
        answer = requests.get(target, proxies={"http": f"http://127.0.0.1:{proxy.port}"}, timeout=20)
        assert answer.status_code == 403, target
    assert not hold.accepted.is_set()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET https://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400 ")


def test_an_absolute_form_destination_that_refuses_is_a_502(serve):
    proxy = serve()
    answer = requests.get(f"http://127.0.0.1:{free_port()}/", proxies={"http": f"http://127.0.0.1:{proxy.port}"},
                          timeout=20)
    assert answer.status_code == 502


def test_origin_form_requests_still_reach_the_proxy_s_own_app(serve):
    proxy = serve()
    assert requests.get(f"http://127.0.0.1:{proxy.port}/own", timeout=20).text == "origin app /own"


def test_cachefs_answers_forward_proxied_gets_and_heads_by_the_corequest_rules(serve):
    """Issue 17 point 5 for absolute-form requests: a cacheable GET is stored under its URL
    (another query, another resource), HEAD is a miss of its own, no-store passes through."""
    calls = []

    def counting(environ, start_response):
        calls.append(environ["PATH_INFO"] + "?" + environ["QUERY_STRING"])
        control = "no-store" if environ["PATH_INFO"] == "/private" else "max-age=60"
        body = f"answer {len(calls)}".encode()
        start_response("200 OK", [("Cache-Control", control), ("Content-Length", str(len(body)))])
        return [body]

    origins = StartedServers(ServerThread)
    try:
        origin = origins(counting)
        proxy = serve(cachefs_memmax=8 * 1024 * 1024)
        proxies = {"http": f"http://127.0.0.1:{proxy.port}"}
        base = f"http://127.0.0.1:{origin.port}"
        with requests.Session() as session:
            first = session.get(base + "/page?a=1", proxies=proxies, timeout=20)
            second = session.get(f"http://127.0.0.1:{origin.port}/page?a=1", proxies=proxies, timeout=20)
            other = session.get(base + "/page?a=2", proxies=proxies, timeout=20)
            head = session.head(base + "/page?a=1", proxies=proxies, timeout=20)
            private = [session.get(base + "/private", proxies=proxies, timeout=20).text for _ in range(2)]
    finally:
        origins.stop()
    assert first.text == second.text == "answer 1" and "age" in second.headers
    assert other.text == "answer 2"
    assert head.status_code == 200 and head.headers["content-length"] == "8" and head.content == b""
    assert private == ["answer 4", "answer 5"]
    assert calls == ["/page?a=1", "/page?a=2", "/page?a=1", "/private?", "/private?"]
