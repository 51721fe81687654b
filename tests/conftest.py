"""Integration tests run the fixture projects under tests/projects/ the way users run them
(`python serve.py --port=N`) and talk to them over real sockets.

A test module names its project script in `PROJECT`; the module-scoped `server` fixture runs
it once for the module and `client` is an httpx client on it. Everything here depends only on
the installed `skitai`, so `pytest tests` works alone.
"""
from pathlib import Path

import httpx
import pytest

from skitai.testing import ServerProcess

PROJECTS = Path(__file__).resolve().parent / "projects"
TIMEOUT = 10.0


@pytest.fixture(scope="module")
def server(request):
    """The module's project script, serving on a free port until the module's tests are done.

    A traceback in its output fails the module even when every response looked right: an app
    error the tests did not provoke, or one in a worker thread that no client saw.
    """
    with ServerProcess(str(PROJECTS / request.module.PROJECT)) as running:
        yield running
    assert "Traceback" not in running.output, running.output


@pytest.fixture(scope="module")
def client(server):
    """Every request with a timeout, so a server that hangs fails the test instead of stalling it."""
    with httpx.Client(base_url=server.url(""), timeout=TIMEOUT) as session:
        yield session


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "pip_install: builds the wheels and installs them into fresh virtual environments with pip, "
                   "dependencies from PyPI (about a minute); deselect with -m 'not pip_install'")
