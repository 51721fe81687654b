"""Processes a plugin asks the master to run (`skitai_register_processes`), through the sidecar
test plugin (plugins/sidecar.py) in a real master: started with the workers, started again when
it dies, stopped with the master or left running (detached), kept or restarted on a reload,
not started while another instance runs."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from skitai.processes import ProcessRegistry
from skitai.testing import ServerProcess, http_get, wait_for

TESTS = os.path.dirname(os.path.abspath(__file__))

SCRIPT = textwrap.dedent('''
    import os
    import sys

    sys.path.insert(0, {tests!r})
    import skitai
    from plugins import sidecar


    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]


    if __name__ == "__main__":
        skitai.get_kernel().pm.register(sidecar)
        skitai.mount("/", app)
        skitai.run(port=5000)
''').format(tests=TESTS)


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(SCRIPT)
    return str(path)


def events(folder):
    try:
        with open(os.path.join(folder, "events")) as file:
            return [tuple(line.split()) for line in file.read().splitlines()]
    except FileNotFoundError:
        return []


def starts(folder):
    return [int(pid) for event, pid in events(folder) if event == "start"]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie nobody reaped yet is gone as well
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def server(script, folder, **env):
    variables = {"SIDECAR_DIR": str(folder), "SKITAI_LOG_DIR": str(folder / "log")}
    variables.update({f"SIDECAR_{name.upper()}": value for name, value in env.items()})
    return ServerProcess(script, env=variables)


def test_the_master_starts_the_process_and_restarts_it_when_it_dies(script, tmp_path):
    with server(script, tmp_path) as master:
        first = wait_for(lambda: starts(tmp_path))[0]
        assert os.getsid(first) == os.getsid(master.process.pid)  # not detached: the master's session
        os.kill(first, signal.SIGKILL)
        second = wait_for(lambda: starts(tmp_path)[1:], timeout=30)[0]
        assert second != first and alive(second)
    assert ("stop", str(second)) in events(tmp_path)  # on_stop="stop": stopped with the master
    assert not alive(second)
    assert "the supervised process sidecar exited (status -9), starting it again" in master.output
    assert "sidecar %d running" % second in (tmp_path / "output.log").read_text()


def test_a_detached_process_outlives_the_master(script, tmp_path):
    with server(script, tmp_path, on_stop="detach") as master:
        pid = wait_for(lambda: starts(tmp_path))[0]
        assert os.getsid(pid) == pid  # a session of its own: the terminal's Ctrl-C misses it
    try:
        assert master.returncode == 0 and alive(pid)
        assert ("stop", str(pid)) not in events(tmp_path)
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: ("stop", str(pid)) in events(tmp_path))


@pytest.mark.parametrize("on_stop", ["stop", "detach"])
def test_a_killed_master_takes_only_its_stopped_processes_along(script, tmp_path, on_stop):
    """A master that dies without stopping anything (SIGKILL, the OOM killer): an
    on_stop="stop" process gets SIGTERM from the kernel (PR_SET_PDEATHSIG), a detached one
    runs on."""
    with server(script, tmp_path, on_stop=on_stop) as master:
        pid = wait_for(lambda: starts(tmp_path))[0]
        master.signal(signal.SIGKILL)
        master.process.wait(10)
    try:
        if on_stop == "stop":
            wait_for(lambda: ("stop", str(pid)) in events(tmp_path), timeout=10)
            wait_for(lambda: not alive(pid), timeout=10)
        else:
            time.sleep(1.0)  # longer than the stopped process takes to get its signal
            assert alive(pid) and ("stop", str(pid)) not in events(tmp_path)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize("on_reload", ["keep", "restart"])
def test_a_reload_keeps_or_restarts_the_process(script, tmp_path, on_reload):
    with server(script, tmp_path, on_reload=on_reload) as master:
        first = wait_for(lambda: starts(tmp_path))[0]
        worker = http_get(master.port)[1]
        master.signal(signal.SIGHUP)
        wait_for(lambda: http_get(master.port)[1] != worker, timeout=60)  # a check and a start: slow when loaded
        if on_reload == "keep":
            assert alive(first) and starts(tmp_path) == [first]
            os.kill(first, signal.SIGKILL)  # the new master watches the adopted process
            wait_for(lambda: starts(tmp_path)[1:], timeout=30)
        else:
            assert ("stop", str(first)) in events(tmp_path)
            wait_for(lambda: starts(tmp_path)[1:], timeout=30)
        last = starts(tmp_path)[-1]
        assert alive(last) and len(starts(tmp_path)) == 2
    assert not alive(last)
    assert "Traceback" not in master.output


def test_no_start_while_another_instance_runs(script, tmp_path):
    outside = subprocess.Popen([sys.executable, os.path.join(TESTS, "plugins", "sidecar_process.py"),
                                str(tmp_path)])
    try:
        wait_for(lambda: starts(tmp_path))
        (tmp_path / "outside.pid").write_text(str(outside.pid))
        with server(script, tmp_path) as master:
            http_get(master.port)  # served: the master's loop has checked its processes
            assert starts(tmp_path) == [outside.pid]
            outside.terminate()
            outside.wait(10)
            ours = wait_for(lambda: starts(tmp_path)[1:], timeout=30)[0]
            assert alive(ours)
        assert not alive(ours)
    finally:
        if outside.poll() is None:
            outside.kill()
            outside.wait(10)


def test_a_process_that_keeps_failing_is_restarted_with_a_growing_delay(script, tmp_path):
    with server(script, tmp_path, exit_at_once="1") as master:
        wait_for(lambda: len(starts(tmp_path)) >= 3, timeout=30)
        count = len(starts(tmp_path))
        wait_for(lambda: len(starts(tmp_path)) > count, timeout=30)
        # restarted at 0.5, 1, 2, 4 s ...: about five starts in the first eight seconds, where
        # restarting on every turn of the loop would start forty
        assert len(starts(tmp_path)) <= 6, starts(tmp_path)
    assert "exited (status 7), starting it again in 2 s" in master.output


@pytest.mark.parametrize("arguments, message", [
    ({"on_stop": "kill"}, "on_stop must be one of"),
    ({"on_reload": "never"}, "on_reload must be one of"),
    ({"command": []}, "non-empty list of strings"),
    ({"command": "python agent.py"}, "non-empty list of strings"),
])
def test_a_bad_registration_is_refused(arguments, message):
    registry = ProcessRegistry()
    with pytest.raises(ValueError, match=message):
        registry.add("agent", **{"command": ["python", "agent.py"], **arguments})


def test_a_process_registered_twice_is_refused():
    registry = ProcessRegistry()
    registry.add("agent", ["python", "agent.py"])
    with pytest.raises(ValueError, match="registered twice"):
        registry.add("agent", ["python", "agent.py"])
