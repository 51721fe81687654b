"""`skitai.enable_file_logging()`: request.log, app.log and server.log written by real servers
(one process, and a master with two workers), and their reopening after logrotate (SIGUSR1)."""
import os
import re
import signal
import tempfile

import pytest

from skitai import paths
from skitai.testing import ServerProcess, wait_for
from skitai.testing import http_get as get

SCRIPT = '''
import os
import skitai
from skitai import logs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/boom":
        raise RuntimeError("kaboom from the app")
    if path == "/talk":
        print(f"a stray print from {os.getpid()}")
        environ["wsgi.errors"].write("written to wsgi.errors\\n")
        logs.app_log("the app's own line", "note")
        logs.app_log("the app warns", "warning")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.enable_file_logging(os.environ.get("TEST_LOG_PATH"))
    skitai.run(port=5000, workers=int(os.environ["TEST_WORKERS"]))
'''

# date time client host method uri version req-bytes status bytes gtxid ltxid user bearer
# referer user-agent x-forwarded-for worker connections handle-ms transfer-ms
REQUEST_LINE = re.compile(
    r'^\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d 127\.0\.0\.1 127\.0\.0\.1:\d+ GET (?P<uri>\S+) HTTP/1\.1 0 '
    r'(?P<status>\d{3}) \d+ (?P<gtxid>GTID-P[0-9a-f]{8})-R\d+ 1000 - - - - - '
    r'(?P<worker>M|W\d) (?P<connections>\d+) \d+ms \d+ms$')


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()


def request_lines(path):
    """The parsed lines of a request log; every line must have the spec's fields."""
    lines = read_lines(path)
    matches = [REQUEST_LINE.match(line) for line in lines]
    assert all(matches), lines
    return matches


def pids_of_every_worker(port, path, workers):
    """GET `path` (whose answer is the pid) until each of the `workers` has answered."""
    pids = set()
    wait_for(lambda: pids.add(int(get(port, path)[1])) or len(pids) == workers, timeout=15)
    return pids


def serve(tmp_path, workers, by_path):
    """The script with file logging into tmp_path/logs: through `enable_file_logging(path)`
    when `by_path`, else through the SKITAI_LOG_DIR default."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    folder = tmp_path / "logs"
    env = {"TEST_WORKERS": str(workers), "SKITAI_LOG_DIR": "", "TEST_LOG_PATH": ""}
    env["TEST_LOG_PATH" if by_path else "SKITAI_LOG_DIR"] = str(folder)
    return ServerProcess(str(script), env=env), folder


def test_one_worker_writes_the_three_logs(tmp_path):
    server, folder = serve(tmp_path, workers=1, by_path=False)
    with server:
        assert get(server.port, "/first")[0] == 200
        assert get(server.port, "/boom")[0] == 500
        status, worker_pid = get(server.port, "/talk")
        assert status == 200
    assert server.returncode == 0
    assert f"skitai: logging to {folder}" in server.output
    assert " HTTP/1.1 " not in server.output and "kaboom" not in server.output  # all in the files
    assert "serving on" not in server.output

    requests = request_lines(folder / "request.log")
    assert [(m["uri"], m["status"], m["worker"]) for m in requests] == [
        ("/first", "200", "W0"), ("/boom", "500", "W0"), ("/talk", "200", "W0")]
    assert all(int(m["connections"]) >= 1 for m in requests)

    app_log = "\n".join(read_lines(folder / "app.log"))
    assert re.search(r"ERROR W0 skitai\.app: GET /boom failed\nTraceback \(most recent call last\):\n", app_log)
    assert "RuntimeError: kaboom from the app" in app_log
    assert "written to wsgi.errors" in app_log
    assert re.search(r"INFO W0 skitai\.app: \[note\] the app's own line", app_log)
    assert re.search(r"WARNING W0 skitai\.app: the app warns", app_log)

    server_log = read_lines(folder / "server.log")
    assert any(re.search(rf"INFO W0 skitai\.server: serving on http://127\.0\.0\.1:{server.port}/", line)
               for line in server_log), server_log
    assert "INFO W0 skitai.server: stopped" in "\n".join(server_log)
    assert server_log[-1].endswith("INFO M skitai.server: master stopped")
    assert f"a stray print from {int(worker_pid)}" in server_log  # fd 1 points at server.log


def test_master_and_workers_append_to_the_same_logs(tmp_path):
    server, folder = serve(tmp_path, workers=2, by_path=True)
    with server:
        pids_of_every_worker(server.port, "/", 2)
        assert get(server.port, "/boom")[0] == 500
    assert server.returncode == 0
    requests = request_lines(folder / "request.log")
    assert {m["worker"] for m in requests} == {"W0", "W1"}
    # each worker draws its own part of the global transaction ids (none shared after the fork)
    assert len({(m["worker"], m["gtxid"]) for m in requests}) == 2 == len({m["gtxid"] for m in requests})
    assert "/boom" in [m["uri"] for m in requests] and all(int(m["connections"]) >= 1 for m in requests)
    server_log = "\n".join(read_lines(folder / "server.log"))
    for worker in ("W0", "W1"):
        assert f"INFO {worker} skitai.server: serving on" in server_log
        assert f"INFO {worker} skitai.server: stopped" in server_log
    assert "INFO M skitai.server: master stopped" in server_log
    assert re.search(r"ERROR W[01] skitai\.app: GET /boom failed\nTraceback", "\n".join(read_lines(folder / "app.log")))


@pytest.mark.parametrize("workers", [1, 2])
def test_sigusr1_reopens_the_logs_after_rotation_and_loses_nothing(tmp_path, workers):
    server, folder = serve(tmp_path, workers=workers, by_path=True)
    processes = 1 + workers  # the master and its workers
    with server:
        wait_for(lambda: sum("serving on" in line for line in read_lines(folder / "server.log")) == workers,
                 timeout=15)
        for index in range(20):
            assert get(server.port, f"/before/{index}")[0] == 200
        wait_for(lambda: len(read_lines(folder / "request.log")) == 20, timeout=10)
        for name in ("request.log", "app.log", "server.log"):
            os.rename(folder / name, folder / f"{name}.1")
        server.signal(signal.SIGUSR1)
        wait_for(lambda: sum("reopened the log files" in line for line in read_lines(folder / "server.log"))
                 == processes, timeout=10)
        for index in range(20):
            assert get(server.port, f"/after/{index}")[0] == 200
        talkers = pids_of_every_worker(server.port, "/talk", workers)
    assert server.returncode == 0
    old = [m["uri"] for m in request_lines(folder / "request.log.1")]
    new = [m["uri"] for m in request_lines(folder / "request.log")]
    assert sorted(old) == sorted(f"/before/{index}" for index in range(20))  # workers flush in turns
    assert sorted(uri for uri in new if uri.startswith("/after/")) == sorted(f"/after/{index}" for index in range(20))
    assert len(old) + len(new) == 40 + new.count("/talk")
    new_server_log = read_lines(folder / "server.log")
    for pid in talkers:  # every process moved its fds 1 and 2 to the new file too
        assert f"a stray print from {pid}" in new_server_log
    assert any("serving on" in line for line in read_lines(folder / "server.log.1"))
    assert not any("serving on" in line for line in new_server_log)
    assert any("the app's own line" in line for line in read_lines(folder / "app.log"))
    assert read_lines(folder / "app.log.1") == []


def test_log_folder_falls_back_to_the_temp_folder_with_a_message(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log root would be")  # unwritable even for root
    monkeypatch.delenv("SKITAI_LOG_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    folder = paths.log_dir(root=str(blocker / "skitai"))
    assert folder == str(tmp_path / "tmp" / f"skitai-{paths.user_name()}" / paths.script_hash() / "log")
    assert os.path.isdir(folder)
    message = capsys.readouterr().err
    assert f"skitai: {blocker / 'skitai'}/{paths.user_name()}/{paths.script_hash()} is not writable" in message
    assert f"create {blocker / 'skitai'} and give it to {paths.user_name()}" in message
    assert f"logging to {folder}" in message


def test_log_folder_prefers_the_root_and_obeys_the_override(tmp_path, monkeypatch):
    monkeypatch.delenv("SKITAI_LOG_DIR", raising=False)
    root = tmp_path / "var-log-skitai"
    assert paths.log_dir(root=str(root)) == str(root / paths.user_name() / paths.script_hash())
    monkeypatch.setenv("SKITAI_LOG_DIR", str(tmp_path / "override"))
    assert paths.log_dir(root=str(root)) == str(tmp_path / "override")
    assert paths.log_dir(str(tmp_path / "given")) == str(tmp_path / "given")


def test_an_unwritable_log_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PermissionError, match="cannot write logs to"):
        paths.log_dir(str(blocker / "logs"))
