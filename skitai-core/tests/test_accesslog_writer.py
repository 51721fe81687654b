"""The request log is formatted and written by a thread of its own: the event loop only hands a
second's records over (issue 20, goal 6), and a stop writes everything before it returns."""
import threading

from skitai.accesslog import AccessLog
from skitai.logs import LogFile


class HeldFile(LogFile):
    """request.log whose writes wait until the test lets them go, noting the writing thread."""

    def __init__(self, path):
        super().__init__(path)
        self.release = threading.Event()
        self.writing = threading.Event()
        self.threads = []

    def write(self, text):
        self.threads.append(threading.current_thread())
        self.writing.set()
        assert self.release.wait(10), "the test never released the write"
        return super().write(text)


def record(log, path, status=200):
    log.record(("127.0.0.1", 5000), "GET", path, "1.1",
               [("host", "example.com"), ("user-agent", "curl/8")], 0, status, 11, 1, 0.001, 0.0)


def test_flush_hands_the_batch_over_and_another_thread_writes_it(tmp_path):
    stream = HeldFile(str(tmp_path / "request.log"))
    log = AccessLog(stream, worker_id="W0")
    for index in range(3):
        record(log, f"/r{index}")
    log.flush()  # returns although the write is held: the loop does not wait for the file
    assert stream.writing.wait(10)
    assert stream.threads and stream.threads[0] is not threading.current_thread()
    stream.release.set()
    log.close()
    lines = (tmp_path / "request.log").read_text().splitlines()
    assert [line.split(" ")[5] for line in lines] == ["/r0", "/r1", "/r2"]
    assert all('"curl/8"' in line and " W0 " in line for line in lines)
    stream.close()


def test_close_writes_what_was_recorded_since_the_last_flush_in_order(tmp_path):
    stream = LogFile(str(tmp_path / "request.log"))
    log = AccessLog(stream)
    record(log, "/first")
    log.flush()
    record(log, "/second", status=404)
    log.close()  # the stop: nothing may be left in memory when the process exits
    lines = (tmp_path / "request.log").read_text().splitlines()
    assert [(line.split(" ")[5], line.split(" ")[8]) for line in lines] == [("/first", "200"), ("/second", "404")]
    assert not any(thread.name == "skitai-accesslog" for thread in threading.enumerate())
    stream.close()

