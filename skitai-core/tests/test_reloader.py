"""The auto-reloader: a script run with `--devel` (or an app's `use_reloader`) serves the new code
after its app file or a sub-module is edited; a broken edit leaves the previous version
serving; the reloader process never outlives its master."""
import os
import signal
import textwrap

import psutil
import pytest
from test_run import wait_for

from skitai.testing import ServerProcess, http_get

SERVE = '''
import os
import skitai

if __name__ == "__main__":
    with skitai.preference() as pref:
        if os.environ.get("TEST_PREF_RELOADER"):
            pref.use_reloader = True
        skitai.mount("/", "app", pref)
    skitai.run(port=5000, workers=int(os.environ.get("TEST_WORKERS", "1")))
'''

APP = '''
from helpers.text import text


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("app {version} " + text()).encode()]
'''

SUB_MODULE = '''
def text():
    return "sub {version}"
'''


@pytest.fixture
def project(tmp_path):
    """serve.py mounting app.py, which imports the sub-module helpers/text.py."""
    (tmp_path / "serve.py").write_text(SERVE)
    write_app(tmp_path, "v1")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("")
    (tmp_path / "helpers" / "text.py").write_text(SUB_MODULE.format(version="v1"))
    return tmp_path


def write_app(folder, version, extra=""):
    (folder / "app.py").write_text(APP.format(version=version) + textwrap.dedent(extra))


def run(project, *args, **env):
    env = {"SKITAI_LOG_DIR": str(project / "log"), "SKITAI_RUN_DIR": str(project / "run"), **env}
    return ServerProcess(str(project / "serve.py"), *args, env=env)


def get(port, path="/"):
    status, body = http_get(port, path)
    return status, body.decode()


def wait_for_body(server, expected, timeout=30.0):
    """Poll until the server answers 200 with `expected`; the last answer and the server's
    output explain a failure."""
    seen = []

    def answered():
        seen.append(get(server.port))
        return seen[-1] == (200, expected)
    try:
        wait_for(answered, timeout)
    except AssertionError:
        raise AssertionError(f"never answered {expected!r}, last {seen[-1:]}\n{server.output}") from None


def workers_and_reloaders(master):
    """The master's worker pids and reloader pids, by the titles of its child processes."""
    workers, reloaders = [], []
    for child in psutil.Process(master).children():
        try:
            title = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "worker #" in title:
            workers.append(child.pid)
        elif "reloader" in title:
            reloaders.append(child.pid)
    return workers, reloaders


def the_reloader(master, excluding=()):
    """The pid of the master's one reloader once it runs (and is none of `excluding`)."""
    def found():
        reloaders = workers_and_reloaders(master)[1]
        return len(reloaders) == 1 and reloaders[0] not in excluding and reloaders[0]
    return wait_for(found, timeout=15)


def replaced(master, worker):
    workers = workers_and_reloaders(master)[0]
    return bool(workers) and worker not in workers


def gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_devel_reloads_on_app_and_sub_module_changes(project, workers):
    with run(project, "--devel", TEST_WORKERS=str(workers)) as server:
        master = server.process.pid
        assert get(server.port) == (200, "app v1 sub v1")
        first_reloader = the_reloader(master)
        write_app(project, "v2")
        wait_for_body(server, "app v2 sub v1")
        (project / "helpers" / "text.py").write_text(SUB_MODULE.format(version="v2"))
        wait_for_body(server, "app v2 sub v2")
        assert server.process.pid == master  # reloaded in place, never restarted
        wait_for(lambda: len(workers_and_reloaders(master)[0]) == workers, timeout=15)
        reloader = the_reloader(master, excluding=[first_reloader])
        assert gone(first_reloader)  # each reload replaces the reloader, none piles up
    assert server.returncode == 0
    assert gone(reloader)
    assert "skitai: app.py changed, reloading" in server.output
    assert f"skitai: {os.path.join('helpers', 'text.py')} changed, reloading" in server.output


@pytest.mark.parametrize("how", ["pref", "app"])
def test_use_reloader_without_devel(project, how):
    """`pref.use_reloader = True` (the manual's Django example) or `app.use_reloader = True` in
    the app file turn reloading on without `--devel`."""
    env = {"TEST_PREF_RELOADER": "1"} if how == "pref" else {}
    extra = "" if how == "pref" else "\napp.use_reloader = True\n"
    write_app(project, "v1", extra)
    with run(project, **env) as server:
        assert get(server.port) == (200, "app v1 sub v1")
        the_reloader(server.process.pid)
        write_app(project, "v2", extra)
        wait_for_body(server, "app v2 sub v1")


@pytest.mark.parametrize("args, extra", [((), ""), (("--silent",), "\napp.use_reloader = True\n")],
                         ids=["production", "silent-overrides-the-app"])
def test_no_reloader_without_devel_or_with_silent(project, args, extra):
    write_app(project, "v1", extra)
    with run(project, *args) as server:
        master = server.process.pid
        assert get(server.port) == (200, "app v1 sub v1")
        # A replaced worker shows the master is in its loop, past where it starts a reloader.
        worker = wait_for(lambda: workers_and_reloaders(master)[0])[0]
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: replaced(master, worker), timeout=15)
        assert workers_and_reloaders(master)[1] == []
    assert "watching" not in server.output


def test_a_syntax_error_keeps_the_previous_version_serving_until_fixed(project):
    with run(project, "--devel") as server:
        assert get(server.port) == (200, "app v1 sub v1")
        worker = wait_for(lambda: workers_and_reloaders(server.process.pid)[0])[0]
        (project / "helpers" / "text.py").write_text("def text(:\n")
        wait_for(lambda: "reload cancelled" in server.output, timeout=30)
        assert "SyntaxError" in server.output
        assert get(server.port) == (200, "app v1 sub v1")
        assert workers_and_reloaders(server.process.pid)[0] == [worker]  # the same worker
        (project / "helpers" / "text.py").write_text(SUB_MODULE.format(version="v3"))
        wait_for_body(server, "app v1 sub v3")
    assert server.returncode == 0


def test_sighup_with_a_broken_script_keeps_serving(project):
    """The check before a reload protects a plain SIGHUP too: the master does not re-execute
    into a script that fails, which would end it."""
    with run(project) as server:
        master = server.process.pid
        assert get(server.port) == (200, "app v1 sub v1")
        write_app(project, "v2", "\nraise RuntimeError('not today')\n")
        server.signal(signal.SIGHUP)
        wait_for(lambda: "reload cancelled" in server.output, timeout=30)
        assert "RuntimeError: not today" in server.output
        assert get(server.port) == (200, "app v1 sub v1")
        write_app(project, "v3")
        server.signal(signal.SIGHUP)
        wait_for_body(server, "app v3 sub v1")
        assert server.process.pid == master


def test_reloader_exits_when_its_master_is_killed(project):
    with run(project, "--devel") as server:
        master = server.process.pid
        reloader = the_reloader(master)
        workers = wait_for(lambda: workers_and_reloaders(master)[0])
        try:
            server.process.kill()
            server.process.wait(10)
            wait_for(lambda: gone(reloader), timeout=10)
        finally:
            for pid in workers:  # a killed master leaves its workers behind
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
