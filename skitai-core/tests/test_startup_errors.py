"""A start that fails says why in one line on stderr (`skitai: error: ...`) and exits non-zero
(2 for a command-line mistake); `--devel` adds the traceback. Real scripts in subprocesses."""
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from startuputil import one_line

from skitai.testing import free_port

SCRIPT = '''
import os
import skitai
from skitai.plugin import RequestHandler


class Broken(RequestHandler):
    def bind(self, server):
        raise RuntimeError("no database")


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


if __name__ == "__main__":
    fault = os.environ.get("FAULT", "")
    skitai.mount("/", app)
    if fault == "missing-path":
        skitai.mount("/static", "assets/missing")
    if fault == "object":
        skitai.mount("/x", 42)
    if fault == "broken-handler":
        skitai.get_kernel().handlers.add(Broken())
    if fault == "workers":
        skitai.run(workers=0)
    if fault == "threads":
        skitai.run(threads=-3)
    skitai.run(port=int(os.environ.get("RUN_PORT", "5000")))
'''

TIMEOUT = 30


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "serve.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def start(script, *args, **env):
    """Run the script that must fail; `--port` is a free one unless given."""
    if not any(arg.startswith("--port") for arg in args) and "RUN_PORT" not in env:
        args = (f"--port={free_port()}", *args)
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env={**os.environ, **env})


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use_names_the_address(script, taken_port):
    result = start(script, f"--port={taken_port}")
    assert one_line(result) == f"cannot listen on 127.0.0.1:{taken_port}: Address already in use"


def test_devel_adds_the_traceback(script, taken_port):
    result = start(script, f"--port={taken_port}", "--devel")
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "OSError: [Errno 98] Address already in use" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"skitai: error: cannot listen on 127.0.0.1:{taken_port}: Address already in use")


def test_a_port_out_of_range_on_the_command_line_is_a_usage_error(script):
    result = start(script, "--port=70000")
    assert one_line(result, status=2) == "argument --port: 70000 is not a port number (0-65535) (see --help)"


def test_a_port_out_of_range_in_the_script(script):
    result = start(script, RUN_PORT="70000")
    assert one_line(result) == "cannot listen on 127.0.0.1:70000: bind(): port must be 0-65535."


def test_an_unknown_option_is_refused(script):
    result = start(script, "--bogus")
    assert one_line(result, status=2) == "unrecognized option: --bogus (see --help)"


def test_a_missing_mount_path_is_named(script):
    result = start(script, FAULT="missing-path")
    assert one_line(result) == (f"skitai.mount: 'assets/missing' is no directory or Python file in "
                                f"{script.parent}")


def test_an_object_no_adapter_takes(script):
    assert one_line(start(script, FAULT="object")) == "cannot mount 42 at /x: no mount adapter accepts it"


def test_a_bad_run_argument(script):
    assert one_line(start(script, FAULT="workers")) == "skitai.run(workers=N) needs N >= 1"
    assert one_line(start(script, FAULT="threads")) == (
        "skitai.run(threads=N) needs N >= 0 (0: apps run on the event loop thread)")


def test_a_worker_that_fails_before_serving_is_one_line_and_stops_the_master(script):
    result = start(script, FAULT="broken-handler")
    assert one_line(result) == ("worker #0 failed before serving: request handler __main__.Broken "
                                "failed to start: RuntimeError: no database")


def test_a_worker_failure_shows_its_traceback_with_devel(script):
    result = start(script, "--devel", FAULT="broken-handler")
    assert result.returncode == 1
    assert 'raise RuntimeError("no database")' in result.stderr
    assert ("skitai: error: worker #0 failed before serving: request handler __main__.Broken failed "
            "to start: RuntimeError: no database\n") in result.stderr
