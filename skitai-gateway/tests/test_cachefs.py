"""cachefs over real sockets: a gateway whose `was.get` calls an upstream Skitai server that sets
cache headers and counts what it answered; the memory tier, the disk tier (damaged files
dropped, shared by the worker processes of a script) and the app's use_cache / rm_cache."""
import email.utils
import json
import os
import textwrap
import threading
import time

import httpx
import pytest

import skitai
from skitai import was
from skitai.testing import ServerProcess, ServerThread, StartedServers

MiB = 1024 * 1024
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


class CachingUpstream:
    """Answers with cache headers by path and counts, per path, full answers (`hits`) and 304s
    (`not_modified`). `version` is in every body and in the ETag of `/etag`."""

    CACHE_CONTROL = {"/fresh": "max-age=60", "/private": "max-age=60, private", "/no-store": "no-store",
                     "/etag": "no-cache", "/modified": "max-age=0", "/vary": "max-age=60",
                     "/short": "max-age=1"}

    def __init__(self):
        self.version = 1
        self.hits: dict[str, int] = {}
        self.not_modified: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        method = environ["REQUEST_METHOD"]
        headers = [("Content-Type", "application/json")]
        if path in self.CACHE_CONTROL:
            headers.append(("Cache-Control", self.CACHE_CONTROL[path]))
        if path == "/etag":
            headers.append(("ETag", f'"v{self.version}"'))
        if path == "/modified":
            headers.append(("Last-Modified", LAST_MODIFIED))
        if path == "/vary":
            headers.append(("Vary", "Accept"))
        if path == "/expires":
            headers += [("Date", email.utils.formatdate(time.time(), usegmt=True)),
                        ("Expires", email.utils.formatdate(time.time() + 60, usegmt=True))]
        unchanged = (environ.get("HTTP_IF_NONE_MATCH") == f'"v{self.version}"' and path == "/etag"
                     or environ.get("HTTP_IF_MODIFIED_SINCE") == LAST_MODIFIED and path == "/modified")
        with self._lock:
            counter = self.not_modified if unchanged else self.hits
            counter[f"{method} {path}"] = counter.get(f"{method} {path}", 0) + 1
        if unchanged:
            start_response("304 Not Modified", headers)
            return [b""]
        body = json.dumps({"path": path, "version": self.version, "accept": environ.get("HTTP_ACCEPT"),
                           "pid": os.getpid()}).encode()
        start_response("200 OK", headers + [("Content-Length", str(len(body)))])
        return [body]


@pytest.fixture
def caching_upstream():
    servers = StartedServers(ServerThread)

    def start():
        app = CachingUpstream()
        server = servers(app)
        server.app = app
        return server

    yield start
    servers.stop()


def answer(result):
    return {"code": result.status_code, "data": result.data, "age": result.get_header("Age")}


def ask(server, path="/"):
    response = httpx.get(server.url(path), timeout=20)
    assert response.status_code == 200, response.text
    return response.json()


def cached_gateway(serve, routes, tmp_path=None, memmax=MiB, diskmax=0, **settings):
    return serve(routes, cachefs_memmax=memmax, cachefs_diskmax=diskmax,
                 cachefs_path=str(tmp_path) if tmp_path else None, **settings)


@pytest.mark.parametrize("path", ["/fresh", "/expires"])
def test_a_fresh_answer_is_served_from_the_cache(serve, caching_upstream, path):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: [answer(was.get(up.url(path)).dispatch()) for _ in range(3)]})
    first, second, third = ask(gateway)
    assert first["code"] == second["code"] == third["code"] == 200
    assert first["data"] == second["data"] == third["data"] and first["data"]["path"] == path
    assert first["age"] is None and second["age"] is not None  # served from the cache: with its Age
    assert up.app.hits == {f"GET {path}": 1}


def test_without_cachefs_nothing_is_cached(serve, caching_upstream):
    up = caching_upstream()
    gateway = serve({"/": lambda: [was.get(up.url("/fresh")).fetch() for _ in range(2)]})
    ask(gateway)
    assert up.app.hits == {"GET /fresh": 2}


@pytest.mark.parametrize("path", ["/private", "/no-store", "/echo"])
def test_what_the_upstream_does_not_allow_is_not_cached(serve, caching_upstream, path):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: [was.get(up.url(path)).fetch() for _ in range(2)]})
    ask(gateway)
    assert up.app.hits == {f"GET {path}": 2}


@pytest.mark.parametrize("path", ["/etag", "/modified"])
def test_a_stale_entry_is_revalidated_and_a_304_refreshes_it(serve, caching_upstream, path):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: answer(was.get(up.url(path)).dispatch())})
    answers = [ask(gateway) for _ in range(3)]
    assert [item["code"] for item in answers] == [200, 200, 200]  # a 304 is the app's 200 from the cache
    assert all(item["data"] == answers[0]["data"] for item in answers)
    assert up.app.hits == {f"GET {path}": 1} and up.app.not_modified == {f"GET {path}": 2}


def test_a_changed_resource_replaces_the_entry(serve, caching_upstream):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: was.get(up.url("/etag")).fetch()["version"]})
    assert ask(gateway) == 1
    up.app.version = 2
    assert [ask(gateway), ask(gateway)] == [2, 2]
    assert up.app.hits == {"GET /etag": 2} and up.app.not_modified == {"GET /etag": 1}


def test_vary_keeps_variants_apart(serve, caching_upstream):
    up = caching_upstream()

    def call(accept):
        return was.get(up.url("/vary"), headers={"Accept": accept}).fetch()["accept"]

    gateway = cached_gateway(serve, {"/": lambda: [call("application/json"), call("application/json"),
                                                   call("application/json, text/plain")]})
    assert ask(gateway) == ["application/json", "application/json", "application/json, text/plain"]
    assert up.app.hits == {"GET /vary": 2}


def test_the_call_can_ask_for_revalidation(serve, caching_upstream):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: [
        was.get(up.url("/fresh")).fetch(),
        was.get(up.url("/fresh"), headers={"Cache-Control": "no-cache"}).fetch()]})
    ask(gateway)
    assert up.app.hits == {"GET /fresh": 2}


def test_use_cache_false_and_rm_cache_ask_the_upstream_and_refresh(serve, caching_upstream):
    up = caching_upstream()
    gateway = cached_gateway(serve, {
        "/": lambda: was.get(up.url("/fresh")).fetch()["version"],
        "/reload": lambda: was.get(up.url("/fresh"), use_cache=False).fetch()["version"],
        "/changed": lambda: was.get(up.url("/fresh"), rm_cache="model").fetch()["version"],
        "/since": lambda: was.get(up.url("/fresh"), use_cache="model").fetch()["version"],
    }, cache_keys=["model"])
    assert ask(gateway) == 1
    up.app.version = 2
    assert ask(gateway) == 1                   # fresh in the cache
    assert ask(gateway, "/reload") == 2        # asked, and the entry refreshed
    assert ask(gateway) == 2
    up.app.version = 3
    assert ask(gateway, "/since") == 2         # "model" never changed: the entry is good
    assert ask(gateway, "/changed") == 3       # marks "model" changed and asks
    assert ask(gateway, "/since") == 3 and ask(gateway) == 3
    assert up.app.hits == {"GET /fresh": 3}


def test_use_cache_as_a_timestamp_makes_older_entries_stale(serve, caching_upstream):
    up = caching_upstream()
    marks = {}
    gateway = cached_gateway(serve, {
        "/": lambda: was.get(up.url("/fresh"), use_cache=marks.get("changed", True)).fetch()["version"]})
    assert ask(gateway) == 1
    up.app.version = 2
    marks["changed"] = time.time()
    assert [ask(gateway), ask(gateway)] == [2, 2]
    assert up.app.hits == {"GET /fresh": 2}


def test_an_unsafe_call_drops_its_target(serve, caching_upstream):
    up = caching_upstream()
    gateway = cached_gateway(serve, {
        "/": lambda: was.get(up.url("/fresh")).fetch()["version"],
        "/post": lambda: was.post(up.url("/fresh"), {"a": 1}).fetch()["version"],
    })
    assert ask(gateway) == 1
    up.app.version = 2
    assert ask(gateway, "/post") == 2
    assert ask(gateway) == 2
    assert up.app.hits == {"GET /fresh": 2, "POST /fresh": 1}


def test_the_result_cache_is_asked_first(serve, caching_upstream):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: [
        was.get(up.url("/etag")).dispatch(cache=60).cached, was.get(up.url("/etag")).dispatch(cache=60).cached]})
    assert ask(gateway) == [False, True]
    assert up.app.hits == {"GET /etag": 1} and up.app.not_modified == {}


def test_load_balanced_calls_share_one_entry_for_the_alias(serve, caching_upstream):
    one, two = caching_upstream(), caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: [was.get.lb("@up/fresh").fetch()["path"] for _ in range(4)]})
    gateway.kernel.aliases.add("@up", skitai.PROTO_HTTP, [f"127.0.0.1:{one.port}", f"127.0.0.1:{two.port}"])
    assert ask(gateway) == ["/fresh"] * 4
    assert sum(up.app.hits.get("GET /fresh", 0) for up in (one, two)) == 1


def test_the_disk_tier_serves_after_the_memory_tier(serve, caching_upstream, tmp_path):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: was.get(up.url("/fresh")).fetch()["version"]},
                             tmp_path, memmax=0, diskmax=MiB)
    assert [ask(gateway), ask(gateway)] == [1, 1]
    assert up.app.hits == {"GET /fresh": 1}
    assert len(cache_files(tmp_path)) == 1


def cache_files(path):
    return [os.path.join(folder, name) for folder, _, names in os.walk(path)
            if os.path.basename(folder) != "tmp" for name in names if name not in ("lock", "usage")]


def truncate(filename):
    with open(filename, "r+b") as file:
        file.truncate(os.path.getsize(filename) - 3)


def corrupt(filename):
    with open(filename, "r+b") as file:
        data = file.read()
        file.seek(0)
        file.write(data.replace(b'"version": 1', b'"version": 9'))


@pytest.mark.parametrize("damage", [truncate, corrupt])
def test_a_damaged_cache_file_is_dropped_never_served(serve, caching_upstream, tmp_path, damage):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: was.get(up.url("/fresh")).fetch()["version"]},
                             tmp_path, memmax=0, diskmax=MiB)
    assert ask(gateway) == 1
    (stored,) = cache_files(tmp_path)
    damage(stored)
    assert ask(gateway) == 1            # from the upstream again, not the damaged file
    assert up.app.hits == {"GET /fresh": 2}
    assert ask(gateway) == 1 and up.app.hits == {"GET /fresh": 2}  # stored anew, whole


def test_enable_cachefs_settings(monkeypatch, tmp_path):
    from skitai import api

    monkeypatch.setattr(api, "_kernel", None)
    skitai.enable_cachefs(memmax=10_000_000, diskmax=100_000_000, path=str(tmp_path))
    config = api.get_kernel().config
    assert (config.cachefs_memmax, config.cachefs_diskmax, config.cachefs_path) == (
        10_000_000, 100_000_000, str(tmp_path))
    with pytest.raises(ValueError, match="needs a path"):
        skitai.enable_cachefs(0, 1000)
    with pytest.raises(ValueError, match="sizes >= 0"):
        skitai.enable_cachefs(-1)


SCRIPT = textwrap.dedent('''
    import json
    import os

    import skitai
    from skitai import was


    def app(environ, start_response):
        answer = was.get(os.environ["UPSTREAM"] + "/fresh").fetch()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"worker": os.getpid(), "version": answer["version"]}).encode()]


    if __name__ == "__main__":
        skitai.enable_cachefs(memmax=1000000, diskmax=10000000, path=os.environ["CACHE"])
        skitai.mount("/", app)
        skitai.run(workers=2)
''')


def test_workers_share_the_disk_tier(caching_upstream, tmp_path):
    up = caching_upstream()
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = {"UPSTREAM": up.url("").rstrip("/"), "CACHE": str(tmp_path / "cache")}
    workers = set()
    with ServerProcess(str(script), env=env) as server:
        assert httpx.get(server.url("/"), timeout=20).json()["version"] == 1
        up.app.version = 2  # a worker that asked the upstream now would say so
        for _ in range(60):  # new connections until both workers have answered
            answer = httpx.get(server.url("/"), headers={"Connection": "close"}, timeout=20).json()
            assert answer["version"] == 1
            workers.add(answer["worker"])
            if len(workers) == 2:
                break
    assert len(workers) == 2, server.output
    assert up.app.hits == {"GET /fresh": 1}
    assert "Traceback" not in server.output, server.output


def test_a_failing_disk_tier_does_not_fail_the_call(serve, caching_upstream, tmp_path, caplog):
    up = caching_upstream()
    gateway = cached_gateway(serve, {"/": lambda: was.get(up.url("/fresh")).fetch()["version"]},
                             tmp_path, memmax=0, diskmax=MiB)
    for bucket in range(256):  # files where the disk tier's folders would go: every write fails
        (tmp_path / f"{bucket:02x}").write_bytes(b"")
    assert [ask(gateway), ask(gateway)] == [1, 1]
    assert up.app.hits == {"GET /fresh": 2}
    assert "cachefs: the disk tier under" in caplog.text


def test_the_readme_example_runs(caching_upstream, tmp_path):
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    section = readme[readme.index("\n### HTTP cache (cachefs)\n"):]
    start = section.index("```python\n") + len("```python\n")
    example = section[start:section.index("\n```", start)]
    up = caching_upstream()
    script = tmp_path / "serve.py"
    script.write_text(example.replace("https://api.example.com/rates", up.url("/fresh"))
                      .replace("/var/tmp/skitai/cache", str(tmp_path / "cache")))
    with ServerProcess(str(script)) as server:
        answers = [httpx.get(server.url("/"), timeout=20).text for _ in range(4)]
    assert len(set(answers)) == 1 and "'version': 1" in answers[0], server.output
    assert up.app.hits == {"GET /fresh": 1}
    assert "Traceback" not in server.output, server.output
