"""Connection lifetime: GOAWAY on graceful stop with the streams in flight finished, idle
timeout, and the plugin found through its entry point by a real `skitai.run()` script."""
import signal
import subprocess
import threading

import h2.events
from apps import APP
from h2.errors import ErrorCodes
from h2peer import Client, RawPeer
from h2server import h2_server
from hyperframe.frame import DataFrame, GoAwayFrame, HeadersFrame

from skitai.testing import ServerProcess, requires_commands


def test_goaway_on_graceful_stop_finishes_the_stream_in_flight():
    started, release = threading.Event(), threading.Event()

    def slow(environ, start_response):
        started.set()
        release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]

    server = h2_server().mount("/", slow)
    server.__enter__()
    peer = RawPeer(server.port)  # h2's client refuses frames after a GOAWAY; this one reads on
    try:
        peer.send(peer.request(1))
        assert started.wait(10)
        server.server.request_stop()
        frames = peer.frames()
        goaway = next(frame for frame in frames if isinstance(frame, GoAwayFrame))
        assert goaway.error_code == ErrorCodes.NO_ERROR and goaway.last_stream_id == 1
        release.set()
        rest = list(frames)  # until the server closes the connection
        data = [frame for frame in rest if isinstance(frame, DataFrame) and frame.stream_id == 1]
        assert any(isinstance(frame, HeadersFrame) and frame.stream_id == 1 for frame in rest)
        assert b"".join(frame.data for frame in data) == b"finished"
        assert "END_STREAM" in data[-1].flags
    finally:
        release.set()
        peer.close()
        server._thread.join(20)
    assert not server._thread.is_alive()


def test_idle_connection_gets_goaway_and_is_closed(serve):
    server = serve(APP, keep_alive=1)
    peer = Client(server.port)
    try:
        headers, _ = peer.response(peer.request("/"))
        assert headers[":status"] == "200"
        events = peer.until(lambda e: isinstance(e, h2.events.ConnectionTerminated), timeout=15)
        assert events[-1].error_code == ErrorCodes.NO_ERROR
        peer.until(lambda e: False, timeout=10)
        assert peer.closed
    finally:
        peer.close()


SCRIPT = '''
import skitai

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["SERVER_PROTOCOL"].encode()]

skitai.mount("/", app)
skitai.run()
'''


@requires_commands("curl", install="apt-get install curl")
def test_installed_plugin_is_loaded_by_a_script(tmp_path):
    """The entry point `[project.entry-points.skitai] http2` is all it takes."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = {"SKITAI_LOG_DIR": str(tmp_path / "log"), "SKITAI_RUN_DIR": str(tmp_path / "run")}
    with ServerProcess(str(script), env=env) as server:
        result = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", server.url("/")],
                                capture_output=True, timeout=30, check=True)
        assert result.stdout == b"HTTP/2.0"
        plugins = subprocess.run(["curl", "-sS", "--max-time", "10", server.url("/")], capture_output=True,
                                 timeout=30, check=True)
        assert plugins.stdout == b"HTTP/1.1"


RELOAD_SCRIPT = '''
import skitai

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["SERVER_PROTOCOL"].encode()]

if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(workers=2)
'''


@requires_commands("curl", install="apt-get install curl")
def test_reload_sends_goaway_to_http2_connections(tmp_path):
    """SIGHUP: the old workers stop gracefully, so their HTTP/2 connections get a GOAWAY
    (NO_ERROR) rather than a reset, and new connections reach the new workers."""
    script = tmp_path / "reload.py"
    script.write_text(RELOAD_SCRIPT)
    env = {"SKITAI_LOG_DIR": str(tmp_path / "log"), "SKITAI_RUN_DIR": str(tmp_path / "run")}
    with ServerProcess(str(script), env=env) as server:
        peer = RawPeer(server.port)
        try:
            peer.send(peer.request(1))
            frames = peer.frames()
            assert any(isinstance(frame, DataFrame) and frame.data == b"HTTP/2.0" for frame in frames)
            server.signal(signal.SIGHUP)
            goaway = next((frame for frame in frames if isinstance(frame, GoAwayFrame)), None)
            assert goaway is not None and goaway.error_code == ErrorCodes.NO_ERROR
            assert goaway.last_stream_id == 1
        finally:
            peer.close()
        result = subprocess.run(["curl", "-sS", "--max-time", "10", "--http2-prior-knowledge", server.url("/")],
                                capture_output=True, timeout=30, check=True)
        assert result.stdout == b"HTTP/2.0"
