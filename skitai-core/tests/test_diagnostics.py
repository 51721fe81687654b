"""`---profile`, `---gc` and `---memtrack` on real servers, and the GC schedule and memory line
interval on their own."""
import gc
import logging
import re

import pytest

from skitai import diagnostics
from skitai.testing import ServerProcess, http_get, wait_for

SCRIPT = '''
import gc
import os
import skitai


def distinctive_profiled_function():
    return sum(range(1000))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/gc":
        return [f"{os.getpid()} {gc.isenabled()}".encode()]
    return [str(distinctive_profiled_function()).encode()]


if __name__ == "__main__":
    skitai.mount("/", app)
    if os.environ.get("TEST_FILE_LOGGING"):
        skitai.enable_file_logging()
    skitai.run(port=5000, workers=int(os.environ["TEST_WORKERS"]))
'''


def get(port, path):
    status, body = http_get(port, path)
    return status, body.decode()


def text_so_far(path):
    """The file's text, or "" while the server has not created it yet: the port answers before
    every worker has opened its log."""
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def server_for(tmp_path, workers, *options, file_logging=False):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = {"TEST_WORKERS": str(workers), "SKITAI_LOG_DIR": str(tmp_path / "logs"),
           "TEST_FILE_LOGGING": "1" if file_logging else ""}
    return ServerProcess(str(script), *options, env=env)


@pytest.mark.parametrize("workers, reports", [(1, ["W0"]), (2, ["W0", "W1"])])
def test_profile_writes_a_report_per_process_naming_the_app_function(tmp_path, workers, reports):
    with server_for(tmp_path, workers, "---profile") as server:
        wait_for(lambda: server.output.count("skitai: serving on") == workers, timeout=15)
        for _ in range(10):
            assert get(server.port, "/work") == (200, "499500")
    assert server.returncode == 0
    texts = []
    for worker in reports:
        text = (tmp_path / "logs" / f"profile.{worker}.log").read_text()
        assert text.startswith(f"skitai profile of worker {worker} (pid ")
        assert "Ordered by: cumulative time" in text
        texts.append(text)
    assert re.search(r"serve\.py:\d+\(distinctive_profiled_function\)", "".join(texts))
    assert sorted(path.name for path in (tmp_path / "logs").iterdir()) == [f"profile.{w}.log" for w in reports]


def test_a_profile_that_cannot_be_written_is_reported_and_serving_goes_on(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    server = server_for(tmp_path, 1, "---profile")
    server.env["SKITAI_LOG_DIR"] = str(blocker / "logs")
    with server:
        assert get(server.port, "/work") == (200, "499500")
    assert server.returncode == 0
    assert "skitai: cannot write the profile: skitai: cannot write logs to" in server.output


@pytest.mark.parametrize("workers", [1, 2])
def test_manual_gc_turns_automatic_collection_off_and_keeps_serving(tmp_path, workers):
    with server_for(tmp_path, workers, "---gc", "--devel") as server:
        answers = {}
        def every_worker_answered():
            status, body = get(server.port, "/gc")
            assert status == 200
            pid, enabled = body.split()
            answers[pid] = enabled
            return len(answers) == workers
        wait_for(every_worker_answered, timeout=15)
        assert set(answers.values()) == {"False"}
        wait_for(lambda: server.output.count("skitai: gc: generation 0 collected") >= workers, timeout=10)
        for _ in range(20):
            assert get(server.port, "/work") == (200, "499500")
    assert server.returncode == 0
    assert server.output.count("skitai: gc: automatic collection off") == workers


def test_without_manual_gc_collection_stays_automatic(tmp_path):
    with server_for(tmp_path, 1) as server:
        assert get(server.port, "/gc")[1].split()[1] == "True"
    assert "gc:" not in server.output


def test_memtrack_lines_at_startup_and_stop_in_the_server_log(tmp_path):
    log_file = tmp_path / "logs" / "server.log"
    with server_for(tmp_path, 2, "---memtrack", file_logging=True) as server:
        wait_for(lambda: text_so_far(log_file).count("memory at startup") == 2, timeout=15)
        assert get(server.port, "/work")[0] == 200
    assert server.returncode == 0
    log = log_file.read_text()
    status = r"rss \d+\.\d MiB, gc counts \(\d+, \d+, \d+\), tracked objects \d+, frozen \d+"
    for worker in ("W0", "W1"):
        assert re.search(rf"INFO {worker} skitai\.server: memory at startup: {status}\n", log), log
        assert re.search(rf"INFO {worker} skitai\.server: memory at stop: {status}\n", log), log


def test_memory_line_every_interval(caplog):
    tracker = diagnostics.MemoryTracker(interval=60.0)
    with caplog.at_level(logging.INFO, logger="skitai.server"):
        tracker.start()
        first = tracker.next_at
        tracker.tick(first - 1)
        tracker.tick(first)
        tracker.tick(first + 59)
        tracker.tick(first + 60)
    messages = [record.getMessage() for record in caplog.records]
    assert [message.split(":")[0] for message in messages] == ["memory at startup", "memory", "memory"]


def test_gc_schedule_young_often_full_rarely():
    collected = []
    def record(phase, info):
        if phase == "stop":
            collected.append(info["generation"])
    manual = diagnostics.ManualGC()
    manual.start()
    gc.callbacks.append(record)
    try:
        assert not gc.isenabled()
        for _ in range(diagnostics.GC_FULL_EVERY):
            manual.tick(0.0)
    finally:
        gc.callbacks.remove(record)
        manual.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert len(collected) == diagnostics.GC_FULL_EVERY
    assert collected.count(2) == 1 and collected[-1] == 2
    assert collected.count(1) == diagnostics.GC_FULL_EVERY // diagnostics.GC_MIDDLE_EVERY - 1
    assert collected[diagnostics.GC_MIDDLE_EVERY - 1] == 1
    assert collected.count(0) == len(collected) - collected.count(1) - 1
