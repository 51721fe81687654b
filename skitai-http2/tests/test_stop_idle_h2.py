"""A graceful stop is not held by idle HTTP/2 clients: an idle connection gets GOAWAY and the
stop goes on at once, over h2c and over TLS, while a stream in flight still completes; a SIGHUP reload's old workers
exit just as promptly, and the idle pool's next request reaches a new worker.

A pooling client (httpx) keeps its idle connection open and does not read it, so it never
answers the server's FIN or TLS close_notify. The linger after GOAWAY is made longer than the
test waits, and the shutdown timeout longer still, so a stop that waited for such a client
would outlast the test's join: no timing is measured, the stop either happened or it did not.
"""
import os
import signal
import ssl
import threading

import httpx
import pytest
from apps import hello
from h2.errors import ErrorCodes
from h2peer import RawPeer
from hyperframe.frame import DataFrame, GoAwayFrame

import skitai.closing
from skitai.testing import ServerProcess, make_certificates, wait_for

PATIENT = 120.0  # the shutdown timeout: far longer than any join below
JOIN = 15.0      # how long a test waits for the stop


@pytest.fixture(autouse=True)
def long_linger(monkeypatch):
    monkeypatch.setattr(skitai.closing, "LINGER_SECONDS", PATIENT)


def stopped(server) -> bool:
    server.server.request_stop()
    server._thread.join(JOIN)
    return not server._thread.is_alive()


def test_an_idle_h2c_connection_gets_goaway_and_does_not_hold_the_stop(serve):
    server = serve(hello, shutdown_timeout=PATIENT)
    pooled = httpx.Client(http1=False, http2=True, trust_env=False, timeout=10)  # prior knowledge
    peer = RawPeer(server.port)  # idle too, and reads only after the stop
    try:
        assert pooled.get(server.url("/")).http_version == "HTTP/2"
        peer.send(peer.request(1))
        assert stopped(server)
        frames = list(peer.frames())  # what the server sent, up to its close
        body = b"".join(frame.data for frame in frames if isinstance(frame, DataFrame))
        assert body.startswith(b"HTTP/2.0 GET")
        goaway = [frame for frame in frames if isinstance(frame, GoAwayFrame)]
        assert [(frame.error_code, frame.last_stream_id) for frame in goaway] == [(ErrorCodes.NO_ERROR, 1)]
        with pytest.raises(httpx.TransportError):
            pooled.get(server.url("/"))
    finally:
        peer.close()
        pooled.close()


def test_an_idle_h2_tls_connection_does_not_hold_the_stop(serve, tmp_path):
    """Over TLS the close waits for the client's close_notify, which an idle pool never sends."""
    certs = make_certificates(str(tmp_path))
    server = serve(hello, shutdown_timeout=PATIENT, ssl_certfile=certs.cert, ssl_keyfile=certs.key)
    pooled = httpx.Client(http2=True, verify=ssl.create_default_context(cafile=certs.ca), trust_env=False,
                          timeout=10)
    try:
        response = pooled.get(f"https://localhost:{server.port}/")
        assert response.http_version == "HTTP/2"
        assert stopped(server)
        with pytest.raises(httpx.TransportError):
            pooled.get(f"https://localhost:{server.port}/")
    finally:
        pooled.close()


def test_a_stream_in_flight_completes_after_goaway_and_then_the_stop_goes_on(serve):
    started, release = threading.Event(), threading.Event()

    def slow(environ, start_response):
        started.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    server = serve(slow, shutdown_timeout=PATIENT)
    active, idle = RawPeer(server.port), RawPeer(server.port)
    try:
        idle.send(idle.request(1, "/idle"))
        release.set()  # the idle connection's one request is answered at once
        assert any("END_STREAM" in frame.flags for frame in idle.frames() if isinstance(frame, DataFrame))
        started.clear()
        release.clear()
        active.send(active.request(1))
        assert started.wait(10)
        server.server.request_stop()
        frames = active.frames()
        goaway = next(frame for frame in frames if isinstance(frame, GoAwayFrame))
        assert goaway.error_code == ErrorCodes.NO_ERROR and goaway.last_stream_id == 1
        assert server._thread.is_alive()  # the stream in flight holds the stop
        release.set()
        data = [frame for frame in frames if isinstance(frame, DataFrame) and frame.stream_id == 1]
        assert b"".join(frame.data for frame in data) == b"finished"
        assert "END_STREAM" in data[-1].flags
        # neither the finished connection (its client does not close) nor the idle one holds it now
        server._thread.join(JOIN)
        assert not server._thread.is_alive()
        assert isinstance(idle.goaway(), GoAwayFrame)
    finally:
        release.set()
        active.close()
        idle.close()


RELOAD_SCRIPT = '''
import os
import skitai
import skitai.closing

skitai.closing.LINGER_SECONDS = 120.0  # a stop held by an idle client would outlast the test


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.api.get_kernel().config.shutdown_timeout = 120.0
    skitai.run(workers=2)
'''


def workers_of(master: int) -> set[int]:
    with open(f"/proc/{master}/task/{master}/children") as handle:
        return {int(pid) for pid in handle.read().split()}


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
                    reason="/proc/<pid>/task/<pid>/children is not available")
def test_a_reload_is_not_held_by_an_idle_h2c_pool_which_then_reaches_a_new_worker(tmp_path):
    script = tmp_path / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    env = {"SKITAI_LOG_DIR": str(tmp_path / "log"), "SKITAI_RUN_DIR": str(tmp_path / "run")}
    with ServerProcess(str(script), env=env) as server, \
            httpx.Client(http1=False, http2=True, trust_env=False, timeout=10) as pooled:
        master = server.process.pid
        old = wait_for(lambda: len(workers_of(master)) == 2 and workers_of(master), timeout=15)
        first = pooled.get(server.url("/"))
        assert first.http_version == "HTTP/2" and int(first.text) in old
        server.signal(signal.SIGHUP)
        wait_for(lambda: all(gone(pid) for pid in old), timeout=JOIN + 10)  # not the 120 s linger
        again = pooled.get(server.url("/"))  # the pool finds its connection closed and reconnects
        assert again.status_code == 200 and int(again.text) in workers_of(master) - old
