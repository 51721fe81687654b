"""The request log is formatted and written by a thread of its own: the event loop only hands a
second's records over (issue 20, goal 6), and a stop writes everything before it returns."""
import threading

from skitai import accesslog
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



class Lines:
    """A stream that keeps each write (one per batch) and can hold the writer in its write."""

    def __init__(self):
        self.writes = []
        self.release = threading.Event()
        self.release.set()
        self.writing = threading.Event()

    def write(self, text):
        self.writing.set()
        assert self.release.wait(10), "the test never released the write"
        self.writes.append(text)

    def flush(self):
        pass

    def paths(self):
        return [line.split(" ")[5] for text in self.writes for line in text.splitlines()]


def test_the_batch_th_record_hands_the_records_over_without_waiting_for_the_timer():
    stream = Lines()
    log = AccessLog(stream)
    for index in range(accesslog.BATCH - 1):
        record(log, f"/r{index}")
    assert log._writer is None and log._batches.empty()  # still with the loop
    record(log, "/last")
    assert stream.writing.wait(10)
    log.close()
    assert len(stream.writes) == 1
    assert stream.paths() == [f"/r{index}" for index in range(accesslog.BATCH - 1)] + ["/last"]


def record_in_a_thread(log, paths):
    """The loop's side, on a thread of its own so the test sees it wait; `done` is set when
    every record call has returned."""
    done = threading.Event()

    def run():
        for path in paths:
            record(log, path)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done


def test_a_full_backlog_makes_the_loop_wait_for_the_writer_and_loses_nothing(monkeypatch):
    monkeypatch.setattr(accesslog, "BATCH", 4)
    monkeypatch.setattr(accesslog, "BACKLOG_WAIT", 30.0)
    stream = Lines()
    stream.release.clear()  # the writer takes the first batch and stays in its write
    log = AccessLog(stream)
    # BACKLOG batches (the one being written and those waiting), and more that find no room
    paths = [f"/r{index}" for index in range(4 * (accesslog.BACKLOG + 2))]
    done = record_in_a_thread(log, paths)
    assert stream.writing.wait(10)
    assert not done.wait(0.5), "the loop went on although the backlog was full"
    assert log._batches.qsize() == accesslog.BACKLOG - 1  # the writer holds the first
    stream.release.set()
    assert done.wait(10)
    log.close()
    assert stream.paths() == paths


def test_records_a_stuck_writer_could_not_take_stay_with_the_loop_for_the_next_hand_over(monkeypatch):
    monkeypatch.setattr(accesslog, "BATCH", 4)
    monkeypatch.setattr(accesslog, "BACKLOG_WAIT", 0.01)
    stream = Lines()
    stream.release.clear()
    log = AccessLog(stream)
    paths = [f"/r{index}" for index in range(4 * (accesslog.BACKLOG + 4) + 2)]
    assert record_in_a_thread(log, paths).wait(10)  # the loop gave up waiting: it went on
    assert len(log._records) > 4  # kept, not dropped
    stream.release.set()
    log.flush()  # the timer's hand-over
    log.close()
    assert stream.paths() == paths


def test_every_record_is_written_once_and_in_order_across_batches_and_timer_flushes(monkeypatch):
    monkeypatch.setattr(accesslog, "BATCH", 8)
    stream = Lines()
    log = AccessLog(stream)
    paths = []
    for index in range(100):
        paths.append(f"/r{index}")
        record(log, paths[-1])
        if index % 13 == 0:
            log.flush()  # the once-a-second timer, between batches
    log.close()
    assert stream.paths() == paths


def test_close_writes_a_full_backlog_and_the_records_still_with_the_loop(monkeypatch):
    monkeypatch.setattr(accesslog, "BATCH", 4)
    stream = Lines()
    log = AccessLog(stream)
    paths = [f"/r{index}" for index in range(4 * accesslog.BACKLOG + 3)]
    stream.release.clear()
    for path in paths[:-3]:
        record(log, path)  # the writer holds one batch, the rest of the backlog waits
    assert stream.writing.wait(10)
    assert log._batches.qsize() == accesslog.BACKLOG - 1
    for path in paths[-3:]:
        record(log, path)  # below BATCH: with the loop until the stop
    threading.Timer(0.2, stream.release.set).start()
    log.close()
    assert stream.paths() == paths
    assert not any(thread.name == "skitai-accesslog" for thread in threading.enumerate())


def test_each_line_has_its_own_second_though_the_stamp_is_formatted_once_a_second():
    import time
    log = AccessLog(None, worker_id="W0")
    base = 1_700_000_000
    whens = [base + 0.1, base + 0.9, base + 1.0, base + 1.5, base - 5.2, base + 0.2]  # a clock step back too
    headers = [("Host", "x"), ("host", "example.com"), ("user-agent", "curl/8"), ("referer", "http://r/")]
    lines = [log._format((when, ("127.0.0.1", 5000), "GET", "/", "1.1", headers, 0, 200, 11, 1, 0.0, 0.0, None))
             for when in whens]
    for when, line in zip(whens, lines, strict=True):
        assert line.startswith(time.strftime("%Y.%m.%d %H:%M:%S ", time.localtime(when)))
        assert ' example.com GET / HTTP/1.1 0 200 11 - - - - "http://r/" "curl/8" - W0 ' in line
