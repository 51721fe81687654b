"""`python app.py start|stop|restart|status` and `-d`/`-s`/`-r`: real daemons of a real script,
with their pid file and logs in the test's folder. Every daemon a test saw is killed by pid at
teardown if it outlived the test."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from skitai.pidfile import AlreadyRunning, PidFile, is_alive
from skitai.testing import free_port, wait_for

SCRIPT = '''
import json
import os
import sys
import skitai


class Broken(skitai.plugin.RequestHandler):
    def bind(self, server):
        raise RuntimeError("no database")


def app(environ, start_response):
    print("the app got", environ["PATH_INFO"])  # no flush: the daemon's stdout is line-buffered
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"pid": os.getpid(), "master": os.getppid(), "argv": sys.argv[1:]}).encode()]


if __name__ == "__main__":
    print("the app says hello")
    skitai.mount("/", app)
    if os.environ.get("BREAK_BEFORE_SERVING"):
        skitai.api.get_kernel().handlers.add(Broken())
    skitai.run(port=5000, workers=int(os.environ.get("WORKERS", "1")))
'''


class Service:
    """The test script, its folders, and the daemons it started (for the teardown)."""

    def __init__(self, tmp_path, workers=1, **env):
        self.folder = tmp_path / "svc"
        self.folder.mkdir(parents=True)
        self.script = self.folder / "app.py"
        self.script.write_text(textwrap.dedent(SCRIPT))
        self.run_dir = tmp_path / "run"
        self.log_dir = tmp_path / "log"
        self.port = free_port()
        self.env = {**os.environ, "SKITAI_RUN_DIR": str(self.run_dir), "SKITAI_LOG_DIR": str(self.log_dir),
                    "WORKERS": str(workers), **env}
        self.seen: list[psutil.Process] = []

    @property
    def pid_file(self):
        return self.run_dir / "skitai.pid"

    def cli(self, *args, timeout=60):
        result = subprocess.run([sys.executable, str(self.script), f"--port={self.port}", *args],
                                capture_output=True, text=True, env=self.env, timeout=timeout)
        self.track()
        return result

    def track(self):
        """Remember the daemon the pid file names, and its workers."""
        try:
            master = psutil.Process(int(self.pid_file.read_text()))
            self.seen.extend([master, *master.children()])
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            pass

    def pid(self):
        return int(self.pid_file.read_text())

    def get(self, path="/"):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, json.loads(response.read())
        finally:
            conn.close()

    def server_log(self):
        return (self.log_dir / "server.log").read_text()

    def cleanup(self):
        for process in self.seen:
            if is_alive(process):
                process.kill()  # psutil checks the create time: a recycled pid is left alone
        psutil.wait_procs(self.seen, timeout=10)


@pytest.fixture
def service(tmp_path):
    services = []

    def make(workers=1, **env):
        services.append(Service(tmp_path / f"s{len(services)}", workers, **env))
        return services[-1]

    yield make
    for made in services:
        made.cleanup()


def gone(pid):
    try:
        return not is_alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def test_start_status_refuse_restart_stop(service):
    svc = service()
    started = svc.cli("start")
    assert started.returncode == 0, started.stderr
    pid = svc.pid()
    assert f"started (pid {pid})" in started.stdout and str(svc.log_dir) in started.stdout
    assert "the app says hello" in started.stdout  # printed before detaching: on the terminal
    # detached: another session, not a session leader, not our child
    assert os.getsid(pid) not in (pid, os.getsid(0)) and psutil.Process(pid).ppid() != os.getpid()

    answer = svc.get()[1]
    assert answer["master"] == pid and answer["argv"] == [f"--port={svc.port}"]  # no command word
    status = svc.cli("status")
    assert status.returncode == 0 and f"is running (pid {pid})" in status.stdout

    again = svc.cli("start")
    assert again.returncode == 1 and f"already running (pid {pid})" in again.stderr
    assert svc.pid() == pid and svc.get()[1]["master"] == pid

    restarted = svc.cli("restart")
    assert restarted.returncode == 0, restarted.stderr
    new_pid = svc.pid()
    assert new_pid != pid and gone(pid)
    assert f"stopped (pid {pid})" in restarted.stdout and f"started (pid {new_pid})" in restarted.stdout
    answer = svc.get()[1]
    assert answer["master"] == new_pid and answer["argv"] == [f"--port={svc.port}"]

    stopped = svc.cli("stop")
    assert stopped.returncode == 0 and f"stopped (pid {new_pid})" in stopped.stdout
    assert gone(new_pid) and not svc.pid_file.exists()
    status = svc.cli("status")
    assert status.returncode == 3 and "is not running" in status.stdout
    again = svc.cli("stop")
    assert again.returncode == 0 and "is not running" in again.stdout

    log = svc.server_log()  # both daemons' output: the app's prints and the server's messages
    assert log.count("the app got /") == 3 and log.count("skitai.server: serving on") == 2
    assert "skitai.server: stopped" in log
    assert " GET / HTTP/1.1 " in (svc.log_dir / "request.log").read_text()


def test_short_flags(service):
    svc = service()
    started = svc.cli("-d")
    assert started.returncode == 0, started.stderr
    pid = svc.pid()
    assert svc.get()[1]["master"] == pid and svc.get()[1]["argv"] == [f"--port={svc.port}", "-d"]
    restarted = svc.cli("-r")
    assert restarted.returncode == 0, restarted.stderr
    assert svc.pid() != pid and gone(pid)
    new_pid = svc.pid()
    stopped = svc.cli("-s")
    assert stopped.returncode == 0 and gone(new_pid) and not svc.pid_file.exists()


def test_sighup_reload_of_a_daemon_keeps_its_pid_and_stop_leaves_no_worker(service):
    svc = service(workers=2)
    assert svc.cli("-d").returncode == 0
    master = psutil.Process(svc.pid())
    old_workers = wait_for(lambda: len(master.children()) == 2 and master.children(), timeout=15)
    svc.seen.extend(old_workers)

    master.send_signal(signal.SIGHUP)

    def replaced():
        now = master.children()  # one reading: the list changes while we look
        return len(now) == 2 and not set(now) & set(old_workers) and now

    new_workers = wait_for(replaced, timeout=15)
    svc.seen.extend(new_workers)
    wait_for(lambda: all(gone(worker.pid) for worker in old_workers), timeout=15)
    assert svc.pid() == master.pid
    status = svc.cli("status")
    assert status.returncode == 0 and f"is running (pid {master.pid})" in status.stdout
    assert svc.get()[1]["pid"] in {worker.pid for worker in new_workers}
    assert "skitai.server: reloading" in svc.server_log()  # the re-executed master still logs there

    stopped = svc.cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert gone(master.pid) and all(gone(worker.pid) for worker in old_workers + new_workers)
    assert not svc.pid_file.exists()  # removed by the re-executed master
    assert svc.cli("status").returncode == 3


def test_sighup_reloads_a_one_worker_daemon(service):
    svc = service()
    assert svc.cli("start").returncode == 0
    pid = svc.pid()
    worker = svc.get()[1]["pid"]
    os.kill(pid, signal.SIGHUP)
    wait_for(lambda: svc.get()[1]["pid"] != worker, timeout=20)
    assert svc.get()[1]["master"] == pid and svc.pid() == pid
    assert svc.cli("status").returncode == 0
    assert svc.cli("stop").returncode == 0 and gone(pid)


def test_stale_pid_file_of_a_dead_process_is_replaced(service):
    svc = service()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(10)
    svc.run_dir.mkdir()
    svc.pid_file.write_text(f"{dead.pid}\n")
    status = svc.cli("status")
    assert status.returncode == 1 and f"stale pid file {svc.pid_file} names pid {dead.pid}" in status.stdout
    started = svc.cli("start")
    assert started.returncode == 0, started.stderr
    assert svc.pid() != dead.pid and svc.get()[1]["master"] == svc.pid()
    assert svc.cli("stop").returncode == 0 and not svc.pid_file.exists()


def test_pid_file_naming_another_process_never_gets_it_signalled(service):
    svc = service()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        svc.run_dir.mkdir()
        svc.pid_file.write_text(f"{other.pid}\n")
        assert svc.cli("status").returncode == 1
        stopped = svc.cli("stop")
        assert stopped.returncode == 0 and "is not running" in stopped.stdout
        assert other.poll() is None and not svc.pid_file.exists()
    finally:
        other.kill()
        other.wait(10)


def test_daemon_failing_before_serving_reports_why(service):
    svc = service(BREAK_BEFORE_SERVING="1")
    started = svc.cli("start")
    assert started.returncode == 1
    assert "exited before serving" in started.stderr and "RuntimeError: no database" in started.stderr
    assert not svc.pid_file.exists()
    assert svc.cli("status").returncode == 3


def test_taken_port_is_reported_on_the_terminal(service):
    svc = service()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", svc.port))
        taken.listen()
        started = svc.cli("start")
    assert started.returncode != 0 and "Address already in use" in started.stderr
    assert not svc.pid_file.exists()


# the pid file's owner check, with real processes
@pytest.fixture
def sleeper():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "skitai/owner-test"])
    yield process
    process.kill()
    process.wait(10)


def test_owner_is_a_live_process_with_our_title_created_before_the_file(tmp_path, sleeper):
    path = tmp_path / "x.pid"
    path.write_text(f"{sleeper.pid}\n")
    assert PidFile(str(path), "skitai/owner-test", "/nowhere/app.py").owner().pid == sleeper.pid
    assert PidFile(str(path), "skitai/other", "/nowhere/app.py").owner() is None
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))  # the process is younger than the file: a recycled pid
    assert PidFile(str(path), "skitai/owner-test", "/nowhere/app.py").owner() is None


def test_owner_by_script_name_and_zombies_are_gone(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import time\ntime.sleep(60)\n")
    process = subprocess.Popen([sys.executable, str(script)])
    try:
        path = tmp_path / "x.pid"
        path.write_text(f"{process.pid}\n")
        pidfile = PidFile(str(path), "skitai/unused", str(script))
        assert pidfile.owner().pid == process.pid
        process.kill()
        wait_for(lambda: psutil.Process(process.pid).status() == psutil.STATUS_ZOMBIE, timeout=15)
        assert pidfile.owner() is None  # exited, not reaped yet
    finally:
        process.kill()
        process.wait(10)


def test_create_refuses_a_live_owner_and_replaces_a_stale_file(tmp_path, sleeper):
    path = tmp_path / "x.pid"
    pidfile = PidFile(str(path), "skitai/owner-test", "/nowhere/app.py")
    pidfile.create(sleeper.pid)
    assert path.read_text() == f"{sleeper.pid}\n"
    with pytest.raises(AlreadyRunning):
        pidfile.create(os.getpid())
    pidfile.remove(os.getpid())  # not ours: kept
    assert path.exists()
    sleeper.kill()
    sleeper.wait(10)
    pidfile.create(os.getpid())
    assert path.read_text() == f"{os.getpid()}\n" and os.listdir(tmp_path) == ["x.pid"]
    pidfile.remove(os.getpid())
    assert not path.exists()
