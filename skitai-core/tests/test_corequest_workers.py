"""Corequest state shared between worker processes (`skitai.run(workers=2)`): last-update keys
invalidate the result cache of every worker, integer states and named locks are common, and
`was.restart()`/`was.shutdown()` reach the master. The served script loads the echo test plugin."""
import http.client
import json
import os
import textwrap
import time

import pytest

from skitai.testing import ServerProcess, wait_for

TESTS = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent('''
    import json
    import os
    import sys
    import time

    sys.path.insert(0, {tests!r})
    import skitai
    from plugins import echo
    from skitai import was


    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/query":
            result = was.echo("rows", use_cache=was.getlu("users")).dispatch(cache=600)
            body = {{"cached": result.cached}}
        elif path == "/update":
            body = {{"at": was.setlu("users")}}
        elif path == "/bump":
            with was.get_lock("bump"):
                was.setgs("count", was.getgs("count") + 1)
            body = {{"count": was.getgs("count")}}
        elif path == "/count":
            body = {{"count": was.getgs("count")}}
        elif path == "/hold":
            with was.get_lock("held"):
                was.setgs("holding", 1)  # until /release (or 30 s, should the test be gone)
                deadline = time.monotonic() + 30
                while was.getgs("holding") and time.monotonic() < deadline:
                    time.sleep(0.01)
            body = {{}}
        elif path == "/holding":
            body = {{"holding": was.getgs("holding")}}
        elif path == "/release":
            was.setgs("holding", 0)
            body = {{}}
        elif path == "/try":
            lock = was.get_lock("held")
            got = lock.acquire(blocking=False)
            if got:
                lock.release()
            body = {{"got": got}}
        elif path == "/restart":
            was.restart()
            body = {{}}
        elif path == "/shutdown":
            was.shutdown()
            body = {{}}
        body["pid"] = os.getpid()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


    if __name__ == "__main__":
        skitai.get_kernel().pm.register(echo)
        skitai.register_cache_keys("users")
        skitai.register_states("count", "holding")
        skitai.mount("/", app)
        skitai.run(workers={workers}, threads=4)
''')


@pytest.fixture
def script(tmp_path):
    def write(workers):
        path = tmp_path / f"serve{workers}.py"
        path.write_text(SCRIPT.format(tests=TESTS, workers=workers))
        return str(path)
    return write


def call(port, path):
    """One request on a new connection, so successive calls may reach either worker."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return json.loads(response.read())
    finally:
        conn.close()


def from_each_worker(port, path, count=2, seconds=60):
    """The first answer of each of `count` workers to `path` (new connections until all have
    answered, for up to `seconds`: on a loaded machine a worker may start long after the other
    has served hundreds of requests), by pid."""
    answers = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = call(port, path)
        answers.setdefault(answer["pid"], answer)
        if len(answers) == count:
            return answers
    raise AssertionError(f"only workers {sorted(answers)} answered {path} in {seconds} s")


def test_setlu_in_one_worker_invalidates_the_cache_of_all(script):
    with ServerProcess(script(2)) as server:
        first = from_each_worker(server.port, "/query")
        assert len(first) == 2
        warm = from_each_worker(server.port, "/query")
        assert all(answer["cached"] for answer in warm.values())  # each worker's own cache
        updater = call(server.port, "/update")["pid"]
        after = from_each_worker(server.port, "/query")
        assert not any(answer["cached"] for answer in after.values())
        assert set(after) - {updater}  # including the worker that did not update
        assert all(answer["cached"] for answer in from_each_worker(server.port, "/query").values())
    assert "Traceback" not in server.output, server.output


def test_states_and_locks_are_shared_by_the_workers(script):
    with ServerProcess(script(2)) as server:
        seen = set()
        for _ in range(20):
            seen.add(call(server.port, "/bump")["pid"])
        counts = from_each_worker(server.port, "/count")
        assert {answer["count"] for answer in counts.values()} == {20}
        assert len(seen | set(counts)) == 2
        # a lock held by one worker is busy for the other
        import threading

        holder = {}
        thread = threading.Thread(target=lambda: holder.update(call(server.port, "/hold")))
        thread.start()
        wait_for(lambda: call(server.port, "/holding")["holding"], timeout=15)
        tried = from_each_worker(server.port, "/try")
        call(server.port, "/release")
        thread.join(15)
        assert not any(answer["got"] for answer in tried.values()), tried
        assert call(server.port, "/try")["got"] is True
    assert "Traceback" not in server.output, server.output


@pytest.mark.parametrize("workers", [1, 2])
def test_shutdown_stops_the_server(script, workers):
    server = ServerProcess(script(workers))
    with server:
        call(server.port, "/shutdown")
        assert server.process.wait(20) == 0
    assert "stopped" in server.output


@pytest.mark.parametrize("workers", [1, 2])
def test_restart_reloads_through_the_master(script, workers):
    with ServerProcess(script(workers)) as server:
        before = from_each_worker(server.port, "/count", count=workers)
        call(server.port, "/restart")
        deadline = time.monotonic() + 20
        while "skitai: reloading" not in server.output and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "skitai: reloading" in server.output
        fresh = set()
        while len(fresh) < workers and time.monotonic() < deadline:
            pid = call(server.port, "/count")["pid"]
            if pid not in before:
                fresh.add(pid)
        assert len(fresh) == workers
        assert server.process.poll() is None
