"""`skitai.run()` as a script runs it: command-line port, request log, graceful stop."""
import contextlib
import http.client
import os
import signal
import socket
import textwrap
import threading
import time

import pytest

from skitai.testing import ServerProcess, wait_for
from skitai.testing import http_get as get

SCRIPT = '''
import time
import skitai


def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done " + environ["PATH_INFO"].encode()]


if __name__ == "__main__":
    skitai.log_off("/quiet/", "*.css")
    skitai.mount("/", app)
    skitai.run(address="127.0.0.1", port=5000, threads=2)
'''


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return str(path)


def test_command_line_port_overrides_the_script(script):
    with ServerProcess(script) as server:
        assert server.port != 5000
        assert get(server.port, "/a") == (200, b"done /a")


def test_request_log_lines_and_log_off(script):
    with ServerProcess(script) as server:
        for path in ("/logged", "/quiet/x", "/style.css", "/also-logged?q=1"):
            assert get(server.port, path)[0] == 200
    lines = [line for line in server.output.splitlines() if " HTTP/1.1 " in line]
    assert len(lines) == 2, lines
    fields = lines[0].split(" ")
    # date time client host method uri version req-bytes status bytes gtxid ltxid user bearer
    # referer user-agent x-forwarded-for worker connections handle-ms transfer-ms
    assert fields[2] == "127.0.0.1" and fields[3] == f"127.0.0.1:{server.port}"
    assert fields[4:10] == ["GET", "/logged", "HTTP/1.1", "0", "200", "12"]
    assert fields[10].startswith("GTID-P") and fields[11:13] == ["1000", "-"] and fields[17] == "W0"  # one worker
    assert fields[19].endswith("ms") and fields[20].endswith("ms")
    assert "/also-logged?q=1" in lines[1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_finishes_in_flight_request_then_exits_zero(script, signum):
    server = ServerProcess(script)
    with server:
        idle = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        idle.sendall(b"GET /warm HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.recv(4096)
        result = {}
        worker = threading.Thread(target=lambda: result.update(slow=get(server.port, "/slow")))
        worker.start()
        time.sleep(0.5)
        server.signal(signum)
        worker.join(10)
        assert result["slow"] == (200, b"done /slow")
        assert idle.recv(4096) == b""  # the idle keep-alive connection was closed
        assert server.process.wait(10) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1)
    assert "skitai: stopped" in server.output


WORKERS_SCRIPT = '''
import os
import skitai


def app(environ, start_response):
    assert environ["wsgi.multiprocess"] is True
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(port=5000, workers=2, name=os.environ.get("SKITAI_TEST_NAME"))
'''


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def title(pid):
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        return handle.read().split(b"\0")[0].decode()


needs_children_file = pytest.mark.skipif(
    not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"),
    reason="/proc/<pid>/task/<pid>/children is not available")


def running_workers(master, count=2, excluding=(), timeout=15):
    """The master's `count` worker pids, once it has that many and none of them is in `excluding`."""
    def ready():
        current = children(master)  # one reading: the list changes while we look
        return len(current) == count and not set(current) & set(excluding) and current
    return wait_for(ready, timeout=timeout)


@contextlib.contextmanager
def workers_service(path, source, count=2):
    """`source` written to `path` and run (with SKITAI_TEST_WORKERS=`count`); yields the
    ServerProcess, the master's pid and the pids of its `count` workers once they are up. The
    server is stopped on leaving."""
    path.write_text(source)
    with ServerProcess(str(path), env={"SKITAI_TEST_WORKERS": str(count)}) as server:
        master = server.process.pid
        yield server, master, running_workers(master, count)


@needs_children_file
def test_workers_are_titled_replaced_when_they_die_and_stopped_with_the_master(tmp_path):
    folder = tmp_path / "myproject"
    folder.mkdir()
    with workers_service(folder / "app.py", WORKERS_SCRIPT) as (server, master, workers):
        assert title(master) == "skitai(myproject/app): master"
        wait_for(lambda: sorted(title(pid) for pid in workers) == ["skitai(myproject/app): worker #0",
                                                                   "skitai(myproject/app): worker #1"])
        assert int(get(server.port, "/")[1]) in workers
        os.kill(workers[0], signal.SIGKILL)
        replaced = running_workers(master, excluding=[workers[0]])  # within its 15 s, however loaded the machine
        new_worker = (set(replaced) - set(workers)).pop()
        wait_for(lambda: title(new_worker).endswith("worker #0"))
        for _ in range(20):
            assert get(server.port, "/")[0] == 200
        server.signal(signal.SIGTERM)
        assert server.process.wait(20) == 0
    for pid in replaced:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read()
    assert "worker #0 exited, starting a new one" in server.output


def test_named_process_title(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(WORKERS_SCRIPT)
    with ServerProcess(str(script), env={"SKITAI_TEST_NAME": "pets"}) as server:
        # the port answers as soon as the master has bound it, a moment before it takes its title
        wait_for(lambda: title(server.process.pid) == "skitai/pets: master", timeout=10)
    # stopped right after start, while workers may still be forking: every worker still obeys
    # (one that did not would hold the stop until ServerProcess kills it: status -9)
    assert server.returncode == 0


BURNING_SCRIPT = '''
import os
import time
import skitai


def app(environ, start_response):
    if environ["PATH_INFO"] == "/burn":
        end = time.monotonic() + 60
        while time.monotonic() < end:
            pass
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


if __name__ == "__main__":
    # A worker burning CPU gets only its share of a loaded machine (a tenth of a core was seen
    # on a busy two-core one); an idle worker uses none (not one 10 ms clock tick a second, the
    # resolution of a one-second check). 3 % tells them apart even on a crowded machine.
    skitai.set_worker_critical_point(cpu_percent=3.0, continuous=3, interval=1.0)
    skitai.mount("/", app)
    skitai.run(port=5000, workers=2)
'''


@needs_children_file
def test_worker_over_the_cpu_critical_point_is_replaced(tmp_path):
    with workers_service(tmp_path / "burn.py", BURNING_SCRIPT) as (server, master, workers):
        burner = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        burner.sendall(b"GET /burn HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: "passed the CPU critical point" in server.output, timeout=45)
        def replaced():
            current = children(master)
            return len(current) == 2 and set(current) != set(workers) and current

        now = wait_for(replaced, timeout=20)
        assert len(set(now) & set(workers)) == 1  # the idle worker was left alone
        assert burner.recv(100) == b""  # the burning worker is gone
        burner.close()


class LoadLoop:
    """Three client threads sending requests, on new and on kept-alive connections, until
    stopped; every outcome is recorded, so a single failed request shows.

    Like every real HTTP client (RFC 9112 9.3.1; urllib3, httpx and browsers do it), a request
    that finds its *reused* keep-alive connection closed before any answer is sent again once
    on a new connection: a server may close an idle connection at any time, and a stopping
    worker does so after a grace second, which a client thread starved of CPU can outlast. A
    request on a new connection is never retried."""

    STALE_CONNECTION = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)

    def __init__(self, port: int) -> None:
        self.port = port
        self.results: list = []
        self.retried = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(3)]

    def start(self) -> "LoadLoop":
        for thread in self._threads:
            thread.start()
        return self

    def _get(self, conn: http.client.HTTPConnection) -> tuple:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read()

    def _run(self) -> None:
        conn = None
        while not self._stop.is_set():
            reused = conn is not None and len(self.results) % 5 != 0
            try:
                if not reused:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                try:
                    result = self._get(conn)
                except self.STALE_CONNECTION:
                    if not reused:
                        raise
                    self.retried += 1
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    result = self._get(conn)
                self.results.append(result)
            except (OSError, http.client.HTTPException) as error:
                self.results.append((None, repr(error)))
                conn = None

    def go_on(self, count: int = 60) -> None:
        """Wait until `count` more requests have had their outcome: the load ran across whatever
        happens meanwhile, however slowly a loaded machine serves it."""
        target = len(self.results) + count
        wait_for(lambda: len(self.results) >= target, timeout=60)

    def stop(self) -> list:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        return self.results


RELOADING_SCRIPT = '''
import os
import skitai

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "version.txt")) as handle:
    VERSION = handle.read().strip()  # read at import: only a fresh import sees a new version


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [VERSION.encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(port=5000, workers=int(os.environ["SKITAI_TEST_WORKERS"]))
'''


@needs_children_file
@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_apps_with_zero_failed_requests_under_load(tmp_path, workers):
    (tmp_path / "version.txt").write_text("v1")
    with workers_service(tmp_path / "reload.py", RELOADING_SCRIPT, workers) as (server, master, old_workers):
        load = LoadLoop(server.port).start()
        load.go_on()
        (tmp_path / "version.txt").write_text("v2")
        server.signal(signal.SIGHUP)
        wait_for(lambda: load.results and load.results[-1][1] == b"v2", timeout=60)
        load.go_on()
        results = load.stop()
        assert [result for result in results if result[0] != 200] == [] and len(results) > 100
        assert {body for _, body in results} == {b"v1", b"v2"}
        assert server.process.pid == master
        running_workers(master, workers, excluding=old_workers)
    assert "skitai: reloading" in server.output


HELD_START_SCRIPT = '''
import asyncio
import os
import time
import skitai
from skitai.plugin import hookimpl

FOLDER = os.path.dirname(os.path.abspath(__file__))
HOLD = os.path.join(FOLDER, "hold")


async def held():
    deadline = time.monotonic() + 60
    while os.path.exists(HOLD) and time.monotonic() < deadline:  # a worker starting slowly
        await asyncio.sleep(0.05)


class Leaving:
    """An acceptor: closed when the worker's graceful stop begins, which it records."""

    def close(self):
        open(os.path.join(FOLDER, f"leaving.{os.getpid()}"), "w").close()


class HeldStart:
    @hookimpl
    def skitai_server_start(self, server):
        server.add_acceptor(Leaving())
        return held()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


if __name__ == "__main__":
    skitai.get_kernel().pm.register(HeldStart())
    skitai.mount("/", app)
    skitai.run(port=5000, workers=2)
'''


@needs_children_file
def test_a_reload_retires_the_old_workers_only_once_the_new_ones_serve(tmp_path):
    """The old workers are asked to leave only once the new ones serve, however long their
    start takes: a plugin's socket need not be a shared listen queue (HTTP/3 steers new
    connections to the workers that attached the steering last, which they do as they start)."""
    with workers_service(tmp_path / "held.py", HELD_START_SCRIPT) as (server, master, old_workers):
        wait_for(lambda: server.output.count("serving on") == 2, timeout=30)  # the old ones serve
        (tmp_path / "hold").write_text("")
        server.signal(signal.SIGHUP)
        wait_for(lambda: len(children(master)) == 4, timeout=60)  # the new workers are held starting
        held_until = time.monotonic() + 3  # longer than the half second after their fork that the
        while time.monotonic() < held_until:  # old ones once had beside them
            assert not list(tmp_path.glob("leaving.*")), "old workers were asked to leave before the new served"
            time.sleep(0.1)
        (tmp_path / "hold").unlink()
        wait_for(lambda: sorted(path.name for path in tmp_path.glob("leaving.*"))
                 == sorted(f"leaving.{pid}" for pid in old_workers), timeout=30)
        new_workers = running_workers(master, excluding=old_workers, timeout=30)
        assert int(get(server.port, "/")[1]) in new_workers


@needs_children_file
def test_graceful_stop_of_one_worker_under_load_fails_no_request(tmp_path):
    with workers_service(tmp_path / "workers.py", WORKERS_SCRIPT) as (server, master, workers):
        load = LoadLoop(server.port).start()
        load.go_on()
        os.kill(workers[0], signal.SIGTERM)
        running_workers(master, excluding=[workers[0]])
        load.go_on()
        results = load.stop()
    assert [result for result in results if result[0] != 200] == [] and len(results) > 100
    assert "worker #0 exited, starting a new one" in server.output
