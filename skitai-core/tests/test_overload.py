"""Overload has a bound, over real sockets: a full queue answers 503 at once, a request that
waited longer than the request timeout gets 503, the app never runs for a client that left,
a client that leaves in the middle of its body frees its thread at once, and an app writing to
a client that stopped reading gives up after the request timeout."""
import select
import socket
import textwrap
import time

from rawhttp import status_of

from skitai.body import ClientDisconnected
from skitai.testing import GatedApp, ServerProcess, http_get, wait_for

TIMEOUT = 10


def send_request(port, request=b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n"):
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(request)
    return sock


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def first_answers(socks, count):
    """The response heads of the first `count` of `socks` to be answered (any order)."""
    answers, waiting = {}, list(socks)
    deadline = time.monotonic() + TIMEOUT
    while len(answers) < count and time.monotonic() < deadline:
        readable, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        for sock in readable:
            answers[sock] = read_response(sock)
            waiting.remove(sock)
    return answers


def test_a_flood_over_capacity_gets_503_at_once_and_a_fresh_probe_is_answered(serve):
    gate = GatedApp()
    server = serve(gate, threads=1, max_queued_requests=4)
    holder = send_request(server.port, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    flood = []
    try:
        assert gate.held.wait(TIMEOUT)
        flood = [send_request(server.port) for _ in range(30)]
        answers = first_answers(flood, 26)  # 4 wait in the queue: the rest are refused at once
        assert [status_of(answer) for answer in answers.values()] == [503] * 26
        assert all(b"Retry-After: 1\r\n" in answer for answer in answers.values())
        probe = read_response(send_request(server.port, b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status_of(probe) == 503  # answered, not left waiting, while the thread is held
        gate.release()
        queued = [sock for sock in flood if sock not in answers]
        assert [status_of(read_response(sock)) for sock in queued] == [200] * 4
        assert http_get(server.port, "/probe", timeout=TIMEOUT) == (200, b"/probe")
    finally:
        gate.release()
        for sock in [holder, *flood]:
            sock.close()
    assert gate.calls == ["/hold"] + ["/queued"] * 4 + ["/probe"]


def test_set_max_queued_requests_bounds_the_queue_of_a_script(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent('''
        import time
        import skitai

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/hold":
                time.sleep(3)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        skitai.set_max_queued_requests(1)
        skitai.mount("/", app)
        skitai.run(threads=1)
    '''))
    with ServerProcess(str(script)) as server:
        holder = send_request(server.port, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.5)  # the only thread takes it
        others = [send_request(server.port) for _ in range(3)]
        try:
            statuses = sorted(status_of(read_response(sock)) for sock in others)
        finally:
            for sock in [holder, *others]:
                sock.close()
    assert statuses.count(503) >= 2  # one may wait in the queue of one, the rest are refused


def test_a_request_that_waited_longer_than_the_request_timeout_gets_503(serve):
    gate = GatedApp()
    server = serve(gate, threads=1, request_timeout=1)
    holder = send_request(server.port, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert gate.held.wait(TIMEOUT)
        queued = send_request(server.port)
        wait_for(lambda: server.server.pool.queued == 1, TIMEOUT)
        time.sleep(1.5)  # longer than the request timeout, in the queue
        gate.release()
        answer = read_response(queued)
        queued.close()
    finally:
        gate.release()
        holder.close()
    assert status_of(answer) == 503 and b"Retry-After: 1\r\n" in answer
    assert gate.calls == ["/hold"]


def test_the_app_never_runs_for_a_client_that_left(serve, capsys):
    gate = GatedApp()
    server = serve(gate, threads=1, access_log=True)
    holder = send_request(server.port, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        assert gate.held.wait(TIMEOUT)
        for _ in range(50):
            send_request(server.port).close()  # sent, and gone before a thread was free
        wait_for(lambda: server.server.pool.queued == 50, TIMEOUT)  # all read and queued
        # every one of them noticed as gone: only the held connection is left
        wait_for(lambda: len(server.server.connections) == 1, TIMEOUT)
        gate.release()
        assert http_get(server.port, "/probe", timeout=TIMEOUT) == (200, b"/probe")
    finally:
        gate.release()
        holder.close()
    server.__exit__(None, None, None)  # stopped: the request log is flushed
    assert gate.calls == ["/hold", "/probe"]
    logged = capsys.readouterr().out
    assert logged.count(" GET /queued HTTP/1.1 0 499 0 ") == 50  # logged as aborted


def test_a_client_that_leaves_mid_body_frees_its_thread_at_once(serve, capsys):
    gate = GatedApp()
    server = serve(gate, threads=1, access_log=True)  # the request timeout stays 30 s
    uploader = send_request(server.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
    try:
        assert gate.reading.wait(TIMEOUT)
    finally:
        uploader.close()
    # the only thread is free again well before the request timeout
    assert http_get(server.port, "/next", timeout=5) == (200, b"/next")
    assert len(gate.errors) == 1 and isinstance(gate.errors[0], ClientDisconnected)
    server.__exit__(None, None, None)  # stopped: the request log is flushed
    assert " POST /upload HTTP/1.1 3 499 0 " in capsys.readouterr().out  # logged as aborted


def test_a_half_closed_client_mid_body_frees_its_thread_at_once(serve):
    gate = GatedApp()
    server = serve(gate, threads=1)
    uploader = send_request(server.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
    try:
        assert gate.reading.wait(TIMEOUT)
        uploader.shutdown(socket.SHUT_WR)  # the rest of the body can never come
        assert http_get(server.port, "/next", timeout=5) == (200, b"/next")
    finally:
        uploader.close()
    assert len(gate.errors) == 1 and isinstance(gate.errors[0], ClientDisconnected)


def test_an_app_writing_to_a_client_that_stopped_reading_gives_up_after_the_request_timeout(serve):
    gate = GatedApp()
    server = serve(gate, threads=1, request_timeout=1)
    reader = socket.socket()
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reader.settimeout(TIMEOUT)
    reader.connect(("127.0.0.1", server.port))
    try:
        reader.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "/stream" in gate.calls, TIMEOUT)
        time.sleep(0.5)  # the response fills the socket buffers: the server stops writing
        # A pipelined request arrives meanwhile (the client still sends, it only stopped
        # reading): the app's wait for the client to read must still end.
        reader.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert gate.stream_closed.wait(TIMEOUT)
    finally:
        reader.close()
    assert http_get(server.port, "/probe", timeout=TIMEOUT) == (200, b"/probe")
