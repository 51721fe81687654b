"""Workers whose master died abruptly (SIGKILL, the OOM killer) stop on their own, gracefully,
instead of running on as orphans that hold the listening socket."""
import http.client
import signal
import socket
import textwrap
import threading

import psutil
import pytest

from skitai.testing import ServerProcess, wait_for

SCRIPT = '''
import time
import skitai


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done " + environ["PATH_INFO"].encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(address="127.0.0.1", port=5000, workers=2, threads=2)
'''


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return str(path)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def slow_get(port: int, result: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/slow")
        response = conn.getresponse()
        result.append((response.status, response.read()))
    finally:
        conn.close()


def test_workers_stop_when_the_master_is_killed(script):
    server = ServerProcess(script).start()
    workers: list[psutil.Process] = []
    try:
        master = psutil.Process(server.process.pid)
        # the master's only children here are its two workers (no reloader outside development)
        workers = wait_for(lambda: len(master.children()) == 2 and master.children(), timeout=10)
        result: list = []
        in_flight = threading.Thread(target=slow_get, args=(server.port, result))
        in_flight.start()
        wait_for(lambda: any(conn.laddr and conn.laddr.port == server.port and conn.status == "ESTABLISHED"
                             for worker in workers for conn in worker.net_connections()), timeout=5)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(5)
        gone, alive = psutil.wait_procs(workers, timeout=8)
        assert not alive, f"orphaned workers still running: {alive}\n{server.output}"
        in_flight.join(10)
        assert result == [(200, b"done /slow")]  # the request in flight was finished first
        assert refused(server.port) and bindable(server.port)
        lines = [line for line in server.output.splitlines() if "is gone: stopping" in line]
        assert len(lines) == 2 and all(f"the master (pid {master.pid})" in line for line in lines), server.output
    finally:
        for worker in workers:
            if worker.is_running():
                worker.kill()  # psutil checks the create time: a recycled pid is left alone
        server.stop()
