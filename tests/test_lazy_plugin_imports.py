"""Every installed plugin is loaded by every Skitai script (entry points), so a plugin imports
its heavy libraries only when the app configures or uses a feature that needs them: a hello
worker with every plugin installed must not pay for aiohttp, PyJWT, aioquic, redis ... (issue
20's memory goal: a worker <= 30 MB). Each check runs in a fresh interpreter, since this test
session has imported most of them already."""
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from skitai.testing import ServerProcess, make_certificates

SERVE = Path(__file__).resolve().parent / "projects" / "lazy_imports" / "serve.py"
HEAVY = ("aiohttp", "httpx", "jwt", "cryptography", "aioquic", "redis", "psycopg2", "pymongo")
PLUGINS = {"gateway", "dbi", "http3", "http2", "smtpda"}


def loaded_after(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has imported after `code` (which has `skitai` and
    `kernel`, the kernel `skitai.run` uses, with every installed plugin loaded)."""
    script = ("import sys, skitai\nfrom skitai.api import get_kernel\nkernel = get_kernel()\n"
              f"{code}\nprint(sorted(name for name in {HEAVY!r} if name in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_every_plugin_is_installed_and_loaded():
    """The checks below mean something only with every plugin of the repository loaded."""
    code = "assert not kernel.plugins.failed\nprint(sorted(kernel.plugins.distributions))"
    done = subprocess.run([sys.executable, "-c", f"from skitai.api import get_kernel\nkernel = get_kernel()\n{code}"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert PLUGINS <= set(eval(done.stdout.strip())), done.stdout


def test_a_hello_worker_imports_none_of_them_until_a_service_is_used():
    with ServerProcess(str(SERVE)) as server:
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url("/")).json() == []
            # the gateway's corequests (aiohttp; httpx for HTTP/2 members) at their first use
            used = client.get(server.url("/use/get")).json()
            assert {"aiohttp", "httpx"} <= set(used), used
            assert not {"jwt", "aioquic", "redis", "psycopg2", "pymongo"} & set(used), used
    assert "Traceback" not in server.output, server.output


def test_configuring_the_kernel_alone_imports_none_of_them():
    assert loaded_after("kernel.configure()") == []


@pytest.mark.parametrize(("declare", "needs"), [
    ('skitai.alias("@pg", skitai.DB_PGSQL, "127.0.0.1:5432/db")', {"psycopg2"}),
    ('skitai.alias("@r", skitai.DB_REDIS, "127.0.0.1:6379")', {"redis"}),
    ('skitai.alias("@m", skitai.DB_MONGODB, "127.0.0.1:27017/db")', {"pymongo"}),
    ('skitai.enable_gateway(True, secret="s")\nkernel.configure()', {"jwt"}),
])
def test_a_feature_configured_imports_what_it_needs(declare, needs):
    loaded = set(loaded_after(declare))
    assert needs <= loaded <= needs | {"cryptography"}, loaded


def test_http3_configured_imports_aioquic(tmp_path):
    certs = make_certificates(str(tmp_path))
    code = (f"skitai.enable_ssl({certs.cert!r}, {certs.key!r})\n"
            "kernel.config.quic_port = 4433\nkernel.configure()")
    assert "aioquic" in loaded_after(code)


RUN = 'skitai.mount("/", lambda e, s: [])\nskitai.run(address="127.0.0.1", port=PORT)'


def start_without(library: str, code: str) -> subprocess.CompletedProcess:
    """`code` in a script where `library` cannot be imported (a broken installation). Its
    `skitai.run(port=PORT)` is given a port that is taken: a start that got past the check fails
    to bind instead of serving."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        script = (f"import sys\nsys.modules[{library!r}] = None\nimport skitai\n"
                  f"{code.replace('PORT', str(port))}\n")
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("library", "declare", "line"), [
    ("psycopg2", 'skitai.alias("@pg", skitai.DB_PGSQL, "127.0.0.1:5432/db")',
     "a postgresql alias needs psycopg2, which skitai-dbi depends on"),
    ("redis", 'skitai.alias("@r", skitai.DB_REDIS, "127.0.0.1:6379")',
     "a redis alias needs redis, which skitai-dbi depends on"),
    ("jwt", 'skitai.enable_gateway(True, secret="s")\n' + RUN,
     "skitai.enable_gateway(enable_auth=True) needs jwt, which skitai-gateway depends on"),
    # always-on services, imported at their first use: checked (not imported) at the start
    ("aiohttp", RUN,
     "the gateway's was.get needs aiohttp, which skitai-gateway depends on"),
    ("idna", RUN,
     "was.email needs idna, which skitai-smtpda depends on"),
])
def test_a_missing_library_stops_the_script_where_its_feature_is_configured(library, declare, line):
    done = start_without(library, f"{declare}\nprint('went on')")
    assert done.returncode == 1 and "went on" not in done.stdout, done.stdout + done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"skitai: error: {line}") and last.endswith(": pip install " + line.split()[-3]), last


def test_a_missing_aioquic_stops_a_start_with_quic(tmp_path):
    certs = make_certificates(str(tmp_path))
    code = (f"skitai.enable_ssl({certs.cert!r}, {certs.key!r})\nskitai.mount('/', lambda e, s: [])\n"
            "skitai.run(address='127.0.0.1', port=PORT, quic=1)")
    done = start_without("aioquic", code)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "skitai: error: HTTP/3 (skitai.run(quic=1)) needs aioquic, which skitai-http3 depends on"), done.stderr
