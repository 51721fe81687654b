"""`skitai.test_client`: runs a real app script on a port and talks HTTP to it (the manual's
"Testing Mounted App"), as a `with` block, as a pytest fixture and against a server started
by hand (`dry=True`)."""
import os
import socket
import subprocess
import sys
import textwrap

import psutil
import pytest

import skitai
from skitai.testing import ServerProcess, free_port

APP = '''
import json
import os
import skitai


def reply(start_response, status, content_type, body):
    start_response(status, [("Content-Type", content_type)])
    return [body]


def as_json(start_response, value, content_type="application/json"):
    return reply(start_response, "200 OK", content_type, json.dumps(value).encode())


def app(environ, start_response):
    path = environ["PATH_INFO"]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    parts = path.strip("/").split("/")
    if path == "/":
        return reply(start_response, "200 OK", "text/plain; charset=utf-8", "something 한글".encode())
    if parts[:2] == ["apis", "pets"] and len(parts) == 3:
        return as_json(start_response, {
            "id": int(parts[2]), "method": environ["REQUEST_METHOD"],
            "query": environ["QUERY_STRING"], "body": json.loads(body) if body else None,
            "token": environ.get("HTTP_AUTHORIZATION")})
    if parts[0] == "echo":
        return as_json(start_response, {
            "method": environ["REQUEST_METHOD"], "uri": environ["REQUEST_URI"],
            "content_type": environ.get("CONTENT_TYPE"), "body": body.decode(),
            "x_test": environ.get("HTTP_X_TEST"), "remote_port": environ["REMOTE_PORT"]})
    if path == "/image":
        return reply(start_response, "200 OK", "image/png", b"\\x89PNG\\r\\n")
    if path == "/problem":
        return as_json(start_response, {"title": "bad"}, "application/problem+json; charset=utf-8")
    if path == "/empty":
        return reply(start_response, "200 OK", "application/json", b"")
    return reply(start_response, "404 Not Found", "text/plain", b"not found")


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(address="127.0.0.1", port=OWN_PORT, workers=int(os.environ.get("APP_WORKERS", "1")))
'''


def write_app(folder, own_port=5000, name="app.py"):
    path = folder / name
    path.write_text(textwrap.dedent(APP).replace("OWN_PORT", str(own_port)))
    return str(path)


@pytest.fixture(autouse=True)
def tmp_server_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("SKITAI_LOG_DIR", str(tmp_path / "log"))
    monkeypatch.setenv("SKITAI_RUN_DIR", str(tmp_path / "run"))


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """The manual's fixture form, shared by the tests that only send requests."""
    folder = tmp_path_factory.mktemp("app")
    env = {"SKITAI_LOG_DIR": str(folder / "log"), "SKITAI_RUN_DIR": str(folder / "run")}
    c = skitai.test_client(write_app(folder), env=env)
    yield c
    c.stop()


def server_processes(client):
    master = psutil.Process(client.server.process.pid)
    return [master, *master.children(recursive=True)]


def assert_gone(processes):
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive


def test_the_manuals_example(tmp_path, monkeypatch):
    write_app(tmp_path)
    monkeypatch.chdir(tmp_path)  # "./app.py" is relative to where pytest runs
    port = free_port()
    with skitai.test_client("./app.py", port) as cli:
        resp = cli.get("/")
        assert "something" in resp.text

        # api call
        stub = cli.api()
        resp = stub.apis.pets(45).get()
        assert resp.data["id"] == 45
        processes = server_processes(cli)
    assert cli.port == port and cli.script == str(tmp_path / "app.py")
    assert_gone(processes)


def test_the_scripts_own_port_is_ignored(tmp_path):
    own, given = free_port(), free_port()
    with skitai.test_client(write_app(tmp_path, own_port=own), given) as cli:
        assert cli.get("/").status_code == 200
        assert cli.url("/x") == f"http://127.0.0.1:{given}/x"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", own), timeout=1)


def test_response_attributes(cli):
    resp = cli.get("/")
    assert resp.status_code == 200
    assert resp.text == "something 한글" and resp.data == resp.text
    assert resp.content == "something 한글".encode()
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"
    assert resp.is_success  # the rest of httpx's response shows through
    assert repr(resp) == "<Response [200] GET />"


@pytest.mark.parametrize("path, data", [
    ("/image", b"\x89PNG\r\n"),
    ("/problem", {"title": "bad"}),
    ("/empty", None),
    ("/nowhere", "not found"),
])
def test_data_follows_the_media_type(cli, path, data):
    assert cli.get(path).data == data


def test_methods_and_bodies(cli):
    assert cli.get("/echo", params={"q": "a b"}).data["uri"] == "/echo?q=a+b"
    posted = cli.post("/echo", json={"name": "Tom", "tags": [1, 2]}).data
    assert posted["method"] == "POST" and posted["content_type"] == "application/json"
    assert posted["body"] == '{"name":"Tom","tags":[1,2]}'
    form = cli.post("/echo", data={"name": "Tom Cat", "age": "3"}).data
    assert form["content_type"] == "application/x-www-form-urlencoded"
    assert form["body"] == "name=Tom+Cat&age=3"
    raw = cli.put("/echo", content=b"raw", headers={"Content-Type": "text/plain"}).data
    assert (raw["method"], raw["body"], raw["content_type"]) == ("PUT", "raw", "text/plain")
    assert cli.patch("/echo", json=[1]).data["method"] == "PATCH"
    assert cli.delete("/echo").data["method"] == "DELETE"
    assert cli.options("/echo").data["method"] == "OPTIONS"
    head = cli.head("/")
    assert head.status_code == 200 and head.content == b""


def test_request_headers(cli):
    assert cli.get("/echo", headers={"X-Test": "yes"}).data["x_test"] == "yes"
    assert cli.get("/echo").data["x_test"] is None


def test_connections_are_kept_alive(cli):
    ports = {cli.get("/echo").data["remote_port"] for _ in range(3)}
    assert len(ports) == 1


def test_stub_builds_paths_and_sends_params_or_json(cli):
    stub = cli.api()
    assert stub.apis.pets(45).get(limit=3, q="x y").data["query"] == "limit=3&q=x+y"
    assert stub.apis.pets(45).get({"a": 1}, b=2).data["query"] == "a=1&b=2"
    assert stub("apis", "pets", 7).delete(force=1).data == {
        "id": 7, "method": "DELETE", "query": "force=1", "body": None, "token": None}
    assert stub.apis.pets(1).post({"name": "Tom"}).data["body"] == {"name": "Tom"}
    assert stub.apis.pets(1).put(name="Tom", age=3).data["body"] == {"name": "Tom", "age": 3}
    assert stub.apis.pets(1).patch({"name": "Tom"}, age=4).data["body"] == {"name": "Tom", "age": 4}
    assert stub.apis.pets(1).post([1, 2]).data["body"] == [1, 2]
    assert stub.apis.pets(1).post().data["body"] is None
    assert stub.apis.pets(1).options().data["method"] == "OPTIONS"
    assert stub.apis.pets(1).head().status_code == 200
    assert stub.echo("a b/c", "한").get().data["uri"] == "/echo/a%20b%2Fc/%ED%95%9C"
    assert stub.echo("get").get().data["uri"] == "/echo/get"
    assert stub.get().data == "something 한글"
    assert repr(stub.apis.pets(45)) == "<Stub /apis/pets/45>"


def test_stub_refuses_mixed_bodies_and_private_names(cli):
    with pytest.raises(TypeError):
        cli.api().apis.pets(1).post([1], name="Tom")
    with pytest.raises(AttributeError):
        cli.api()._private  # noqa: B018


def test_stub_headers(cli):
    stub = cli.api(headers={"Authorization": "Bearer abc"})
    assert stub.apis.pets(2).get().data["token"] == "Bearer abc"


def test_dry_talks_to_a_server_started_by_hand(tmp_path):
    script = write_app(tmp_path)
    with ServerProcess(script) as by_hand:
        with skitai.test_client(script, by_hand.port, dry=True) as cli:
            assert cli.server is None
            assert cli.api().apis.pets(45).get().data["id"] == 45
        cli.stop()
        assert by_hand.process.poll() is None  # a dry client never stops the server
        with skitai.test_client(script, by_hand.port, dry=True) as again:
            assert again.get("/").status_code == 200


def test_dry_needs_a_port_and_a_running_server(tmp_path):
    script = write_app(tmp_path)
    with pytest.raises(ValueError, match="needs the port"):
        skitai.test_client(script, dry=True)
    port = free_port()
    with pytest.raises(ConnectionError, match=f"no server answers on 127.0.0.1:{port}"):
        skitai.test_client(script, port, dry=True, startup_timeout=0.5)


def test_a_script_that_crashes_at_import_shows_its_output(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import skitai\nraise RuntimeError('boom at import')\n")
    with pytest.raises(RuntimeError) as info:
        skitai.test_client(str(script))
    message = str(info.value)
    assert "exited with status 1" in message
    assert "Traceback" in message and "RuntimeError: boom at import" in message


def test_a_busy_port_is_refused_with_a_hint(tmp_path):
    script = write_app(tmp_path)
    with ServerProcess(script) as other:
        with pytest.raises(RuntimeError, match="already in use.*dry=True"):
            skitai.test_client(script, other.port)
        assert other.process.poll() is None


def test_a_missing_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.py"):
        skitai.test_client(str(tmp_path / "nope.py"))


def test_stop_is_idempotent_and_leaves_no_process(tmp_path):
    cli = skitai.test_client(write_app(tmp_path), env={"APP_WORKERS": "2"})
    processes = server_processes(cli)
    assert len(processes) == 3  # the master and its two workers
    cli.stop()
    cli.stop()
    assert_gone(processes)
    assert cli.server.returncode == 0
    with pytest.raises(RuntimeError):
        cli.get("/")  # the connections are closed too


def test_the_server_stops_when_the_with_body_raises(tmp_path):
    with pytest.raises(AssertionError):
        with skitai.test_client(write_app(tmp_path)) as cli:
            processes = server_processes(cli)
            assert cli.get("/").status_code == 500
    assert_gone(processes)


CONFTEST = '''
import pytest
import skitai


@pytest.fixture(scope="session")
def cli():
    c = skitai.test_client("./app.py", PORT)
    yield c
    c.stop()
'''

TESTS = '''
import os

import skitai
from skitai import test_client  # noqa: F401 - imported into a test module, never collected


def test_myapp(cli):
    with open("pid", "w") as handle:
        handle.write(str(cli.server.process.pid))
    resp = cli.get("/")
    assert "something" in resp.text

    # api call
    stub = cli.api()
    resp = stub.apis.pets(45).get()
    assert resp.data["id"] == 45


def test_same_server(cli):
    with open("pid") as handle:
        assert int(handle.read()) == cli.server.process.pid
'''


def test_session_fixture_in_a_conftest(tmp_path):
    write_app(tmp_path)
    (tmp_path / "conftest.py").write_text(CONFTEST.replace("PORT", str(free_port())))
    (tmp_path / "test_app.py").write_text(TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
    pid = int((tmp_path / "pid").read_text())
    assert not psutil.pid_exists(pid)


def test_a_forgotten_stop_still_stops_the_server_at_exit(tmp_path):
    code = textwrap.dedent(f"""
        import psutil, skitai
        c = skitai.test_client({write_app(tmp_path)!r})
        master = psutil.Process(c.server.process.pid)
        print(*[p.pid for p in (master, *master.children())])
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "APP_WORKERS": "2"})
    assert result.returncode == 0, result.stderr
    pids = [int(pid) for pid in result.stdout.split()]
    assert len(pids) == 3
    assert not any(psutil.pid_exists(pid) for pid in pids)


def test_without_httpx_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "httpx", None)  # what `import httpx` meets when it is absent
    with pytest.raises(ImportError, match=r'pip install "skitai\[testclient\]"'):
        skitai.test_client(write_app(tmp_path))
