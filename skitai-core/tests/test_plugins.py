"""The plugin kernel: built-ins registered through hooks, and a third-party plugin installed as
a real distribution with an entry point, adding a request handler and a CLI subcommand without
any change to the core."""
import os
import subprocess
import sys
import textwrap

import httpx
import pytest
from h1util import split_responses
from rawhttp import exchange

from skitai.kernel import Kernel
from skitai.plugins import DEFAULT_PLUGINS, describe_plugins
from skitai.testing import ServerProcess

PLUGIN_MODULE = '''
from skitai.plugin import RequestHandler, hookimpl


class Ping(RequestHandler):
    """Answers /__ping before any mounted app sees it."""

    def resolve(self, exchange):
        return self if exchange.path == "/__ping" else None

    def handle(self, exchange):
        exchange.send_response("200 OK", [("Content-Type", "text/plain")], b"pong from plugin")


class Broken(RequestHandler):
    """Raises in resolve() for /__boom: a defect that must cost that request alone."""

    def resolve(self, exchange):
        if exchange.path == "/__boom":
            raise LookupError("broken resolve")
        return None


def hello(args):
    print("hello", *args)
    return 3


@hookimpl
def skitai_register_handlers(handlers):
    handlers.add(Ping(), priority=100)
    handlers.add(Broken(), priority=100)


@hookimpl
def skitai_register_commands(commands):
    commands.add("hello", hello, help="say hello")
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "skitai-hello-plugin"
version = "0.4.2"

[project.entry-points.skitai]
hello = "skitai_hello_plugin.plugin"
'''

SERVER_SCRIPT = '''
import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the app"]


if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.run(port=5000)
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """The throwaway plugin built and installed with pip into its own site directory."""
    root = tmp_path_factory.mktemp("plugin")
    source = root / "src"
    (source / "skitai_hello_plugin").mkdir(parents=True)
    (source / "skitai_hello_plugin" / "__init__.py").write_text("")
    (source / "skitai_hello_plugin" / "plugin.py").write_text(PLUGIN_MODULE)
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, timeout=300)
    return site


def _env(site):
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_builtin_features_are_plugins():
    kernel = Kernel(entry_points=False)
    names = {info.name for info in describe_plugins(kernel.pm)}
    assert set(DEFAULT_PLUGINS) <= names
    assert kernel.protocols.default().name == "http/1.1"
    assert len(kernel.handlers.adapters) == 2  # WSGI apps and static directories


def test_plugins_command_lists_builtins_with_version():
    output = subprocess.run([sys.executable, "-m", "skitai", "plugins"], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    assert "skitai.builtin.http1 1.0.0.dev0 (builtin): skitai_register_protocols" in output


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "skitai")
    output = subprocess.run([script, "plugins"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "skitai.builtin.wsgi" in output


def test_entry_point_plugin_is_listed_with_its_version(plugin_site):
    output = subprocess.run([sys.executable, "-m", "skitai", "plugins"], capture_output=True, text=True,
                            check=True, timeout=60, env=_env(plugin_site)).stdout
    assert "skitai-hello-plugin:hello 0.4.2 (plugin): skitai_register_commands, skitai_register_handlers" in output


def test_entry_point_plugin_adds_a_cli_subcommand(plugin_site):
    result = subprocess.run([sys.executable, "-m", "skitai", "hello", "plugin", "world"], capture_output=True,
                            text=True, timeout=60, env=_env(plugin_site))
    assert result.stdout == "hello plugin world\n" and result.returncode == 3
    listing = subprocess.run([sys.executable, "-m", "skitai", "help"], capture_output=True, text=True,
                             timeout=60, env=_env(plugin_site)).stdout
    assert "hello" in listing and "say hello" in listing


def test_entry_point_plugin_adds_a_request_handler(plugin_site, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    with ServerProcess(str(script), env={"PYTHONPATH": _env(plugin_site)["PYTHONPATH"]}) as server:
        with httpx.Client(timeout=5) as client:
            assert client.get(server.url("/__ping")).text == "pong from plugin"
            assert client.get(server.url("/other")).text == "the app"


def test_a_handler_that_raises_in_resolve_costs_only_its_request(plugin_site, tmp_path):
    """The request before and after the failing one on the same connection are answered; the
    failure is logged once, naming the plugin."""
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    with ServerProcess(str(script), env={"PYTHONPATH": _env(plugin_site)["PYTHONPATH"]}) as server:
        response = exchange(server.port, b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n"
                                         b"GET /__boom HTTP/1.1\r\nHost: x\r\n\r\n"
                                         b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=10)
    statuses = [status for status, _, _ in split_responses(response)]
    assert statuses == [b"HTTP/1.1 200 OK", b"HTTP/1.1 500 Internal Server Error", b"HTTP/1.1 200 OK"], response
    failures = [line for line in server.output.splitlines() if "failed to resolve" in line]
    assert len(failures) == 1 and "plugin 'hello'" in failures[0] and "/__boom" in failures[0], server.output
    assert server.output.count("LookupError: broken resolve") == 1


def test_unknown_command_is_an_error():
    result = subprocess.run([sys.executable, "-m", "skitai", "nope"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown command" in result.stderr
