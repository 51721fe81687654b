"""Corequests over a real served app (`from skitai import was`): the Task protocol, Tasks and
Mask, background threads/processes/subprocesses, the result cache, shared state, utilities and
the driver API (the `was.echo` test plugin in plugins/echo.py)."""
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from plugins import echo

import skitai
from skitai import HTTPError, was
from skitai.corequest import STA_NETERR, STA_NORMAL, STA_REQFAIL, STA_TIMEOUT, STA_UNSENT, LoopBlockedError, Mask
from skitai.plugin import hookimpl
from skitai.services import WasUnboundError
from skitai.testing import ServerThread, StartedServers, wait_for


def routes_app(routes):
    """A WSGI app calling `routes[PATH_INFO]()`; the return value goes back as JSON."""
    def app(environ, start_response):
        value = routes[environ["PATH_INFO"]]()
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            start_response(value[0], [("Content-Type", "text/plain")])
            return [value[1].encode()]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(value).encode()]
    return app


@pytest.fixture
def serve_was():
    """serve_was(routes, **settings) -> a started ServerThread with the echo plugin loaded."""
    def with_echo(**settings):
        server = ServerThread(**settings)
        server.kernel.pm.register(echo)
        return server

    servers = StartedServers(with_echo)
    yield lambda routes, **settings: servers(routes_app(routes), **settings)
    servers.stop()


def get(server, path, timeout=20):
    return httpx.get(server.url(path), timeout=timeout)


def echo_driver(server):
    return server.server.was.echo


def overlapping(runs):
    """All runs were in progress at one moment: the last start came before the first end."""
    return max(started for _, started, _ in runs) < min(ended for _, _, ended in runs)


# binding
def test_was_outside_a_served_request_names_what_is_missing():
    with pytest.raises(WasUnboundError, match="only available while Skitai serves a request"):
        was.Thread(print)
    with pytest.raises(WasUnboundError):
        was.env.get("PATH_INFO")


def test_was_is_bound_to_the_request_and_its_worker(serve_was):
    server = serve_was({"/": lambda: [was.env["PATH_INFO"], repr(was)],
                        "/missing": lambda: was.no_such_service})
    path, text = get(server, "/").json()
    assert path == "/" and "echo" in text and "Thread" in text
    response = get(server, "/missing")
    assert response.status_code == 500


# the Task protocol, through the driver API
def test_plugin_driver_adds_was_echo(serve_was):
    server = serve_was({"/": lambda: was.echo("hello").fetch()})
    assert get(server, "/").json() == "hello"


def test_corequests_run_concurrently_on_the_worker_loop(serve_was):
    def five():
        tasks = [was.echo(index, delay=0.2) for index in range(5)]
        return [task.fetch() for task in tasks]

    server = serve_was({"/": five})
    assert get(server, "/").json() == [0, 1, 2, 3, 4]
    runs = echo_driver(server).runs
    assert len(runs) == 5 and overlapping(runs)


def test_dispatch_result_fields(serve_was):
    def call():
        result = was.echo("x", fail=201).dispatch()
        return [result.status, result.status_code, result.reason, result.data, result.get_header("x-echo"),
                result.get_header("missing", "-")]

    server = serve_was({"/": call})
    assert get(server, "/").json() == [STA_NORMAL, 201, "Created", "x", "x", "-"]


def test_timeout_gives_sta_timeout_and_504(serve_was):
    def dispatch():
        result = was.echo(1, delay=5).dispatch(timeout=0.1)
        return [result.status, result.status_code]

    server = serve_was({"/dispatch": dispatch, "/fetch": lambda: was.echo(1, delay=5).fetch(timeout=0.1)})
    assert get(server, "/dispatch").json() == [STA_TIMEOUT, 504]
    assert get(server, "/fetch").status_code == 504


def test_timeout_cancels_the_operation_on_the_loop(serve_was):
    def dispatch():
        result = was.echo("abandoned", gate="g").dispatch(timeout=0.1)
        return [result.status, result.status_code]

    server = serve_was({"/timeout": dispatch, "/after": lambda: was.echo("after").fetch()})
    driver = echo_driver(server)
    assert get(server, "/timeout").json() == [STA_TIMEOUT, 504]
    driver.open_gate("g")  # a run still waiting at the gate would now record itself first
    assert get(server, "/after").json() == "after"
    driver.wait_for_runs(1)
    assert [value for value, _, _ in driver.runs] == ["after"]
    assert server.server.was.engine.running == 0


def test_a_driver_may_answer_its_own_pools_future(serve_was):
    def call():
        value, thread = was.pooled_echo("x").fetch(timeout=5)
        cached = [was.pooled_echo("c").dispatch(timeout=5, cache=60).cached for _ in range(2)]
        failed = was.pooled_echo("y", fail="timeout").dispatch(timeout=5)
        return [value, thread.startswith("pooled-echo"), cached, failed.status, failed.status_code]

    server = serve_was({"/": call})
    assert get(server, "/").json() == ["x", True, [False, True], STA_TIMEOUT, 504]
    assert server.server.was.engine.started == 0  # the loop was never asked


def test_a_failing_error_mapping_is_a_request_failure(serve_was):
    def dispatch():
        result = was.echo(1, fail="neterr").dispatch()
        return [result.status, type(result.expt).__name__]

    server = serve_was({"/": dispatch})

    def broken_mapping(error):
        raise LookupError("no mapping")

    echo_driver(server).map_error = broken_mapping
    assert get(server, "/").json() == [STA_REQFAIL, "LookupError"]


@pytest.mark.parametrize("fail, status, code", [
    ("neterr", STA_NETERR, 502), ("reqfail", STA_REQFAIL, 500), ("timeout", STA_TIMEOUT, 504),
    (404, STA_NORMAL, 404), (503, STA_NORMAL, 503)])
def test_failures_map_to_statuses_and_http_errors(serve_was, fail, status, code):
    def dispatch():
        result = was.echo(1, fail=fail).dispatch()
        return [result.status, result.status_code]

    server = serve_was({"/dispatch": dispatch, "/fetch": lambda: was.echo(1, fail=fail).fetch(),
                        "/commit": lambda: was.echo(1, fail=fail).commit()})
    assert get(server, "/dispatch").json() == [status, code]
    assert get(server, "/fetch").status_code == code
    assert get(server, "/commit").status_code == code


def test_fetch_reraises_the_operations_own_exception(serve_was):
    def call():
        try:
            was.echo(1, fail="reqfail").fetch()
        except ValueError as error:
            return str(error)

    server = serve_was({"/": call})
    assert get(server, "/").json() == "echo: cannot echo that"


def test_one_answers_the_single_record_or_410(serve_was):
    server = serve_was({"/one": lambda: was.echo([{"id": 7}]).one(),
                        "/none": lambda: was.echo([]).one(),
                        "/two": lambda: was.echo([1, 2]).one(),
                        "/scalar": lambda: was.echo(5).one()})
    assert get(server, "/one").json() == {"id": 7}
    for path in ("/none", "/two", "/scalar"):
        response = get(server, path)
        assert response.status_code == 410 and "one() expects" in response.text


def test_wait_and_commit_of_a_success(serve_was):
    def call():
        task = was.echo("done", delay=0.05)
        result = task.wait()
        task.commit()
        return [result.status, result.data, task.done()]

    server = serve_was({"/": call})
    assert get(server, "/").json() == [STA_NORMAL, "done", True]


def test_returning_answers_before_the_task_ends_and_the_task_completes(serve_was):
    server = serve_was({"/": lambda: was.echo("late", gate="g").returning(("202 Accepted", "accepted"))})
    driver = echo_driver(server)
    response = get(server, "/")
    assert response.status_code == 202 and response.text == "accepted"
    assert driver.runs == []  # still waiting at its gate: the answer did not wait for it
    driver.open_gate("g")
    driver.wait_for_runs(1)
    assert driver.runs[0][0] == "late"


def test_returning_cancels_the_operation_past_the_tasks_timeout(serve_was):
    server = serve_was({"/": lambda: was.echo("late", gate="g").returning(("202 Accepted", "accepted")),
                        "/after": lambda: was.echo("after").fetch()})
    driver = echo_driver(server)
    driver.timeout = 0.3  # the tasks' default wait
    assert get(server, "/").status_code == 202
    wait_for(lambda: server.server.was.engine.running == 0, timeout=10)  # no one opened the gate
    driver.open_gate("g")
    assert get(server, "/after").json() == "after"
    driver.wait_for_runs(1)
    assert [value for value, _, _ in driver.runs] == ["after"]  # "late" never ran on


def test_waiting_on_the_loop_thread_raises_instead_of_deadlocking(serve_was):
    def wait_on_loop():
        try:
            was.echo(1, delay=0.1).fetch()
        except LoopBlockedError as error:
            return str(error)

    server = serve_was({"/": wait_on_loop,
                        "/returning": lambda: was.echo("bg").returning(("202 Accepted", "ok"))}, threads=0)
    assert "threads=0" in get(server, "/").json()
    assert get(server, "/returning").status_code == 202
    echo_driver(server).wait_for_runs(2)


def test_app_raised_http_error_becomes_the_response(serve_was):
    def forbidden():
        raise HTTPError("403 Forbidden", "not yours")

    server = serve_was({"/": forbidden})
    response = get(server, "/")
    assert response.status_code == 403 and "not yours" in response.text


def test_corequests_after_the_server_stopped_are_unsent():
    server = ServerThread()
    server.kernel.pm.register(echo)
    with server:
        services = server.server.was
    result = services.echo(1).dispatch()
    assert result.status == STA_UNSENT and result.status_code == 503


# Tasks and Mask
def test_tasks_list_variadic_and_named(serve_was):
    def call():
        listed = was.Tasks([was.echo(1), was.echo(2)], timeout=5, meta={"page": 3})
        variadic = was.Tasks(was.echo("a"), b=was.echo("b"), c=was.echo("c"))
        return [listed.fetch(), listed.meta, variadic.fetch(), variadic.dict(), len(variadic)]

    server = serve_was({"/": call})
    assert get(server, "/").json() == [[1, 2], {"page": 3}, ["a", "b", "c"], {"b": "b", "c": "c"}, 3]


def test_tasks_iteration_indexing_slicing_add_merge(serve_was):
    def call():
        tasks = was.Tasks([was.echo(1), was.echo([2])])
        tasks.add(was.Mask(3))
        nested = was.Tasks(was.echo(4), was.echo(5))
        flat = was.Tasks()
        flat.merge(nested)
        flat.merge(was.echo(6))
        outer = was.Tasks(was.echo(0))
        outer.add(nested)
        return {"iter": [result.data for result in tasks], "index": tasks[1].one(),
                "slice": [result.data for result in tasks[1:]], "merged": flat.fetch(), "nested": outer.fetch(),
                "statuses": [result.status for result in flat.wait()],
                "one": was.Tasks(was.echo([1]), was.Mask([2])).one()}

    server = serve_was({"/": call})
    assert get(server, "/").json() == {
        "iter": [1, [2], 3], "index": 2, "slice": [[2], 3], "merged": [4, 5, 6], "nested": [0, [4, 5]],
        "statuses": [STA_NORMAL] * 3, "one": [1, 2]}


def test_tasks_fetch_raises_the_first_failure_and_shares_one_deadline(serve_was):
    def deadline():
        results = was.Tasks(was.echo(1, delay=5), was.echo(2, delay=5), timeout=0.2).dispatch()
        return [result.status for result in results]

    server = serve_was({"/fail": lambda: was.Tasks(was.echo(1), was.echo(2, fail=404)).fetch(),
                        "/deadline": deadline,
                        "/bad": lambda: was.Tasks([1, 2])})
    assert get(server, "/fail").status_code == 404
    assert get(server, "/deadline").json() == [STA_TIMEOUT, STA_TIMEOUT]
    assert get(server, "/bad").status_code == 500


def test_tasks_returning(serve_was):
    server = serve_was({"/": lambda: was.Tasks(was.echo(1, gate="t"), was.echo(2, gate="t")).returning(
        ("202 Accepted", "queued"))})
    driver = echo_driver(server)
    assert get(server, "/").status_code == 202
    assert driver.runs == []
    driver.open_gate("t")
    driver.wait_for_runs(2)


def test_mask_has_the_task_methods():
    assert Mask(1).fetch() == 1
    assert Mask([1, 2]).fetch() == [1, 2]
    assert Mask([{"id": 1}]).one() == {"id": 1}
    assert Mask(7).dispatch().status == STA_NORMAL and Mask(7).wait().data == 7
    assert Mask(None).commit() is None
    assert Mask(1).returning("response") == "response"
    with pytest.raises(HTTPError) as error:
        Mask([1, 2]).one()
    assert error.value.code == 410


# background work
def stamped_sleep(seconds, value=None):
    """A target for threads and processes: sleeps, answers (value, started, ended, pid)."""
    started = time.time()
    time.sleep(seconds)
    return [value, started, time.time(), os.getpid()]


def crash():
    os._exit(7)


def raise_lookup():
    raise LookupError("nothing there")


def test_threads_run_concurrently_with_filter_and_kwargs(serve_was):
    def four():
        tasks = [was.Thread(stamped_sleep, 0.2, value=index) for index in range(4)]
        return [task.fetch() for task in tasks] + [was.Thread(sum, [1, 2], filter=lambda total: total * 10).fetch()]

    server = serve_was({"/": four})
    *runs, filtered = get(server, "/").json()
    assert [run[0] for run in runs] == [0, 1, 2, 3] and overlapping([run[:3] for run in runs])
    assert filtered == 30


def test_thread_failure_is_reqfail_and_reraised(serve_was):
    def call():
        result = was.Thread(raise_lookup).dispatch()
        return [result.status, result.status_code, type(result.expt).__name__]

    server = serve_was({"/": call, "/fetch": lambda: was.Thread(raise_lookup).fetch(),
                        "/bad": lambda: was.Thread("not callable")})
    assert get(server, "/").json() == [STA_REQFAIL, 500, "LookupError"]
    assert get(server, "/fetch").status_code == 500
    assert get(server, "/bad").status_code == 500


def test_thread_returning_completes_after_the_answer(serve_was, tmp_path):
    marker = tmp_path / "written"
    server = serve_was({"/": lambda: was.Thread(write_later, str(marker)).returning(("202 Accepted", "later"))})
    assert get(server, "/").status_code == 202
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "done"


def write_later(path):
    time.sleep(0.2)
    with open(path + ".tmp", "w") as file:
        file.write("done")
    os.replace(path + ".tmp", path)


def test_processes_run_in_other_processes_concurrently_and_survive_a_crash(serve_was):
    workers = min(os.cpu_count() or 1, 4)

    def parallel():
        warm = was.Tasks([was.Process(stamped_sleep, 0) for _ in range(workers)], timeout=60).fetch()
        runs = was.Tasks([was.Process(stamped_sleep, 0.5, index) for index in range(workers)], timeout=60).fetch()
        return {"warm": warm, "runs": runs, "me": os.getpid(),
                "filtered": was.Process(pow, 2, 10, filter=str).fetch(timeout=60)}

    def crashed():
        result = was.Process(crash).dispatch(timeout=60)
        return [result.status, result.status_code, type(result.expt).__name__]

    server = serve_was({"/": parallel, "/crash": crashed, "/fetch-crash": lambda: was.Process(crash).fetch(60)})
    before = get(server, "/", timeout=120).json()
    assert all(run[3] != before["me"] for run in before["runs"])
    assert [run[0] for run in before["runs"]] == list(range(workers)) and overlapping(
        [run[:3] for run in before["runs"]])
    assert before["filtered"] == "1024"
    assert get(server, "/crash", timeout=120).json() == [STA_REQFAIL, 500, "TerminatedWorkerError"]
    assert get(server, "/fetch-crash", timeout=120).status_code == 500
    after = get(server, "/", timeout=120).json()  # a new pool replaced the broken one
    assert [run[0] for run in after["runs"]] == list(range(workers))


def test_subprocess_output_failure_timeout_and_filter(serve_was):
    def failed():
        result = was.Subprocess([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"]).dispatch()
        return [result.status, result.status_code, result.data, result.expt.returncode]

    def too_long():
        result = was.Subprocess("sleep 5", timeout=0.2).dispatch()
        return [result.status, result.status_code]

    def caught():
        try:
            was.Subprocess("echo oops >&2; exit 2").fetch()
        except subprocess.CalledProcessError as error:
            return [error.returncode, error.stderr]

    server = serve_was({"/": lambda: was.Subprocess("echo hello").fetch(),
                        "/filter": lambda: was.Subprocess(["echo", "a b"], filter=str.split).fetch(),
                        "/failed": failed, "/caught": caught, "/timeout": too_long,
                        "/fetch-failed": lambda: was.Subprocess("exit 1").fetch(),
                        "/missing": lambda: was.Subprocess(["/nonexistent/program"]).dispatch().status,
                        "/returning": lambda: was.Subprocess("true").returning(("202 Accepted", "started"))})
    assert get(server, "/").json() == "hello\n"
    assert get(server, "/filter").json() == ["a", "b"]
    assert get(server, "/failed").json() == [STA_NORMAL, 500, "out\n", 3]
    assert get(server, "/caught").json() == [2, "oops\n"]
    assert get(server, "/timeout").json() == [STA_TIMEOUT, 504]
    assert get(server, "/fetch-failed").status_code == 500
    assert get(server, "/missing").json() == STA_REQFAIL
    assert get(server, "/returning").status_code == 202


# the result cache
def test_dispatch_cache_serves_later_calls_until_use_cache_false(serve_was):
    def call(**options):
        result = was.echo("v", **options).dispatch(cache=60)
        return [result.data, result.cached]

    server = serve_was({"/": call, "/fresh": lambda: call(use_cache=False),
                        "/stale": lambda: call(use_cache=time.time())})
    driver = echo_driver(server)
    assert get(server, "/").json() == ["v", False]
    assert get(server, "/").json() == ["v", True]
    assert len(driver.runs) == 1
    assert get(server, "/fresh").json() == ["v", False]
    assert get(server, "/stale").json() == ["v", False]  # cached before that timestamp: stale
    assert get(server, "/").json() == ["v", True]
    assert len(driver.runs) == 3


def test_cache_if_and_failures(serve_was):
    def call(fail=None, cache_if=(200,)):
        result = was.echo("c", fail=fail).dispatch(cache=60, cache_if=cache_if)
        return result.cached

    server = serve_was({"/created": lambda: call(201), "/created-ok": lambda: call(201, (200, 201)),
                        "/failed": lambda: call("neterr"), "/fetch": lambda: was.echo("f").fetch(cache=60)})
    assert [get(server, "/created").json() for _ in range(2)] == [False, False]
    assert [get(server, "/created-ok").json() for _ in range(2)] == [False, True]
    assert [get(server, "/failed").json() for _ in range(2)] == [False, False]
    get(server, "/fetch")
    runs = len(echo_driver(server).runs)
    assert get(server, "/fetch").json() == "f" and len(echo_driver(server).runs) == runs


def test_max_rcache_bounds_the_cache(serve_was):
    def call(value):
        return was.echo(value).dispatch(cache=60).cached

    server = serve_was({"/a": lambda: call("a"), "/b": lambda: call("b")}, max_rcache=1)
    assert [get(server, path).json() for path in ("/a", "/a", "/b", "/a")] == [False, True, False, False]


def test_use_cache_and_rm_cache_by_cache_key_names(serve_was):
    def query():
        result = was.echo("rows", use_cache=was.getlu("users", "photos")).dispatch(cache=60)
        return result.cached

    def update():
        was.echo("update", rm_cache="users").commit()
        return "ok"

    server = serve_was({"/query": query, "/named": lambda: was.echo("rows2", use_cache="users").dispatch(
                        cache=60).cached, "/update": update,
                        "/setlu": lambda: was.setlu("photos")}, cache_keys=["users", "photos"])
    assert [get(server, "/query").json() for _ in range(2)] == [False, True]
    assert [get(server, "/named").json() for _ in range(2)] == [False, True]
    get(server, "/update")
    assert [get(server, "/query").json() for _ in range(2)] == [False, True]
    assert get(server, "/named").json() is False
    get(server, "/setlu")
    assert get(server, "/query").json() is False


# shared state
def test_states_and_last_updates(serve_was):
    def bump():
        was.setgs("visits", was.getgs("visits") + 1)
        return was.getgs("visits")

    def errors():
        found = []
        for call in (lambda: was.setgs("visits", "1"), lambda: was.getgs("nope"), lambda: was.setlu("visits"),
                     lambda: was.setgs("visits", 2 ** 63)):
            try:
                call()
            except (TypeError, KeyError, OverflowError) as error:
                found.append(type(error).__name__)
        return found

    server = serve_was({"/bump": bump, "/errors": errors, "/lu": lambda: [was.getlu("m"), was.setlu("m"),
                        was.getlu("m")]}, states=["visits"], cache_keys=["m"])
    assert [get(server, "/bump").json() for _ in range(3)] == [1, 2, 3]
    assert get(server, "/errors").json() == ["TypeError", "KeyError", "KeyError", "OverflowError"]
    before, set_at, after = get(server, "/lu").json()
    assert before == 0.0 and set_at == after > 0


def test_register_names_limits_and_clear_errors(monkeypatch):
    from skitai import api
    from skitai.corequest.shared import MAX_SLOTS, SharedTable
    from skitai.kernel import Kernel

    kernel = Kernel(entry_points=False)
    monkeypatch.setattr(api, "_kernel", kernel)
    skitai.register_cache_keys(*[f"key-{index}" for index in range(MAX_SLOTS - 1)])
    skitai.register_states("last")
    skitai.register_states("last")  # the same name twice is one slot
    with pytest.raises(ValueError, match="at most 256 cache keys and states together"):
        skitai.register_states("one-too-many")
    with pytest.raises(ValueError, match="registered as a cache key already"):
        skitai.register_states("key-0")
    with pytest.raises(TypeError):
        skitai.register_cache_keys("")
    kernel.shared = SharedTable(kernel.config.cache_keys, kernel.config.states)
    with pytest.raises(RuntimeError, match="before skitai.run"):
        skitai.register_states("late")
    kernel.shared.setgs("last", -5)
    assert kernel.shared.getgs("last") == -5


# utilities
def test_status_lock_gentemp_log_traceback(serve_was, caplog):
    def status():
        was.Thread(sum, [1]).fetch()
        return ("200 OK", was.status())

    def lock():
        held = was.get_lock("job")
        with held:
            other = was.get_lock("job")
            busy = other.acquire(blocking=False)
        free = other.acquire(blocking=False)
        other.release()
        return [busy, free]

    def temp():
        path = was.gentemp()
        exists = os.path.isfile(path)
        os.remove(path)
        return [os.path.isabs(path), exists]

    def traceback():
        was.log("plain message")
        was.log("tagged message", "audit")
        try:
            raise KeyError("broken key")
        except KeyError:
            return was.traceback("while testing")

    server = serve_was({"/status": status, "/lock": lock, "/temp": temp, "/traceback": traceback},
                       states=["online"])
    page = get(server, "/status").text
    for row in ("connections", "threads", "queue", "workers", "requests served", "corequests started",
                "background threads", "shared: online"):
        assert f"<th>{row}</th>" in page
    assert page.startswith("<!DOCTYPE html>")
    assert get(server, "/lock").json() == [False, True]
    assert get(server, "/temp").json() == [True, True]
    with caplog.at_level("INFO", logger="skitai.app"):
        text = get(server, "/traceback").json()
    assert "KeyError: 'broken key'" in text
    messages = [record.getMessage() for record in caplog.records if record.name == "skitai.app"]
    assert "plain message" in messages and "[audit] tagged message" in messages
    assert any("while testing" in message and "broken key" in message for message in messages)


def test_restart_needs_a_master(serve_was):
    server = serve_was({"/": lambda: was.restart()}, devel=True)
    response = get(server, "/")
    assert response.status_code == 500 and "was.restart() reloads through the master process" in response.text


class LazyServices:
    """A plugin whose `was.shared_a` and `was.shared_b` are made together by one factory at the
    first use of either (as the gateway's services share their connection pool)."""

    def __init__(self):
        self.made = []     # the thread of each making
        self.closed = []

    @hookimpl
    def skitai_register_services(self, was):
        made = {}

        def make(name):
            if not made:
                time.sleep(0.2)  # long enough for the other threads to ask meanwhile
                self.made.append(threading.get_ident())
                made.update(shared_a=Closing(self.closed, "a"), shared_b=Closing(self.closed, "b"))
            return made[name]

        for name in ("shared_a", "shared_b"):
            was.add_lazy_service(name, lambda name=name: make(name))


class Closing:
    def __init__(self, closed, name):
        self.closed, self.name = closed, name

    def close(self):
        self.closed.append(self.name)


def test_a_lazy_service_is_made_once_at_its_first_use_whichever_thread_asks():
    lazy = LazyServices()

    def first_use():
        return [was.service_names(), was.shared_a is was.shared_a, was.shared_b.name]

    def with_lazy(**settings):
        server = ServerThread(**settings)
        server.kernel.pm.register(echo)
        server.kernel.pm.register(lazy)
        return server

    servers = StartedServers(with_lazy)
    try:
        server = servers(routes_app({"/": lambda: repr(was), "/use": first_use}), threads=4)
        assert "shared_a" in get(server, "/").text and lazy.made == []   # listed, not made
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: get(server, "/use").json(), range(4)))
        assert all(answer[0][-2:] == ["shared_a", "shared_b"] and answer[1:] == [True, "b"] for answer in answers)
        assert len(lazy.made) == 1                                         # once, by one of the threads
        with pytest.raises(ValueError, match="was.shared_a is taken already"):
            server.server.was.add_service("shared_a", object())
    finally:
        servers.stop()
    assert sorted(lazy.closed) == ["a", "b"]


def test_a_lazy_service_never_used_is_never_made_nor_closed():
    lazy = LazyServices()

    def with_lazy(**settings):
        server = ServerThread(**settings)
        server.kernel.pm.register(lazy)
        return server

    servers = StartedServers(with_lazy)
    server = servers(routes_app({"/": lambda: "hello"}))
    assert get(server, "/").json() == "hello"
    servers.stop()
    assert lazy.made == [] and lazy.closed == []
