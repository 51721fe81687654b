"""The core's extension points for a protocol beside TCP, through the `udpecho` test plugin
(plugins/udpecho.py): sockets a plugin binds in the master before the fork and keeps across
reloads, an asynchronous per-worker start, an acceptor closed when the graceful stop begins,
and response fields added to every TCP response."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
from startuputil import one_line

from skitai.testing import ServerProcess, ServerThread, free_port, wait_for

TESTS = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent('''
    import os
    import sys

    sys.path.insert(0, {tests!r})
    import skitai
    from plugins import udpecho


    def app(environ, start_response):
        headers = [("Content-Type", "text/plain")]
        if environ["PATH_INFO"] == "/own":
            headers.append(("X-Udp-Echo", "mine"))
        start_response("200 OK", headers)
        return [str(os.getpid()).encode()]


    if __name__ == "__main__":
        skitai.get_kernel().pm.register(udpecho)
        skitai.mount("/", app)
        skitai.run(workers=int(os.environ.get("WORKERS", "1")))
''')


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def echo(port, data=b"hi", timeout=2.0):
    """One datagram to the plugin's port; the answer `(pid, data)`, or None when none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, ("127.0.0.1", port))
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            return None
    pid, _, echoed = answer.partition(b" ")
    return int(pid), echoed


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(SCRIPT.format(tests=TESTS))
    return str(path)


@pytest.fixture
def udp_env(tmp_path):
    return {"UDPECHO_PORT": str(free_udp_port()), "UDPECHO_BIND_LOG": str(tmp_path / "binds.log")}


def binders(env):
    with open(env["UDPECHO_BIND_LOG"]) as file:
        return [int(line) for line in file.read().split()]


def test_the_master_binds_the_plugin_socket_once_and_every_worker_serves_it(script, udp_env):
    port = int(udp_env["UDPECHO_PORT"])
    with ServerProcess(script, env={**udp_env, "WORKERS": "2"}) as server:
        master = server.process.pid
        assert binders(udp_env) == [master]  # bound by the master, before the fork
        answered = set()

        def both_workers_answered():
            answer = echo(port)
            assert answer is not None and answer[1] == b"hi"
            answered.add(answer[0])
            return len(answered) == 2
        wait_for(both_workers_answered, timeout=15)
        assert master not in answered
        http_pids = {int(httpx.get(server.url("/"), timeout=5).text) for _ in range(20)}
        assert http_pids <= answered


def test_a_reload_keeps_the_plugin_socket_without_binding_it_again(script, udp_env):
    port = int(udp_env["UDPECHO_PORT"])
    with ServerProcess(script, env=udp_env) as server:
        old_worker = wait_for(lambda: echo(port), timeout=15)[0]
        server.signal(signal.SIGHUP)
        new_worker = wait_for(lambda: (answer := echo(port, timeout=0.5)) and answer[0] != old_worker
                              and answer[0], timeout=60)
        assert new_worker != old_worker
        assert "skitai: reloading" in server.output
        assert binders(udp_env) == [server.process.pid]  # inherited by the new master, not bound
        assert echo(port) is not None


def test_response_fields_of_a_plugin_reach_every_response_unless_the_app_sets_its_own(script, udp_env):
    with ServerProcess(script, env=udp_env) as server:
        response = httpx.get(server.url("/"), timeout=5)
        assert response.headers["x-udp-echo"] == udp_env["UDPECHO_PORT"]
        own = httpx.get(server.url("/own"), timeout=5)
        assert own.headers.get_list("x-udp-echo") == ["mine"]


def test_a_taken_plugin_port_is_one_line_and_exit_status_1(script, udp_env):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, script, f"--port={free_port()}"],
                                env={**os.environ, **udp_env, "UDPECHO_PORT": str(port)},
                                capture_output=True, text=True, timeout=30)
    assert one_line(result) == f"cannot bind UDP 127.0.0.1:{port}: Address already in use"


def test_a_failing_asynchronous_start_stops_the_server_naming_the_plugin(script, udp_env):
    result = subprocess.run([sys.executable, script, f"--port={free_port()}"],
                            env={**os.environ, **udp_env, "UDPECHO_FAIL_START": "1"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert ("failed in skitai_server_start: ConnectionError: udpecho cannot open its endpoint"
            in result.stderr), result.stderr
    assert "udpecho" in result.stderr.split("failed in")[0]


def test_the_acceptor_closes_when_the_graceful_stop_begins(monkeypatch, udp_env):
    from plugins import udpecho

    monkeypatch.setenv("UDPECHO_PORT", udp_env["UDPECHO_PORT"])
    server = ServerThread()
    server.kernel.pm.register(udpecho)
    server.mount("/", lambda environ, start_response: start_response("200 OK", []) or [b"ok"])
    with server:
        assert server.server.sockets("udpecho")[0].getsockname()[1] == int(udp_env["UDPECHO_PORT"])
        endpoint = udpecho.ENDPOINTS[-1]
        assert echo(int(udp_env["UDPECHO_PORT"]))[0] == os.getpid()
        assert httpx.get(server.url("/"), timeout=5).headers["x-udp-echo"] == udp_env["UDPECHO_PORT"]
        started = time.monotonic()
    assert endpoint.closed_at is not None and endpoint.closed_at >= started
    assert endpoint.transport.is_closing()
    server.kernel.sockets.get("udpecho")[0].close()
