"""The plugin kernel: built-ins registered through hooks, and a third-party plugin installed as
a real distribution with an entry point, adding a request handler and a CLI subcommand without
any change to the core."""
import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest
from h1util import split_responses
from rawhttp import exchange
from startuputil import one_line

import skitai
from skitai.config import ServerConfig
from skitai.forward import ForwardHandler
from skitai.kernel import Kernel
from skitai.mounting import MountError
from skitai.plugin import hookimpl, import_feature, require_libraries
from skitai.plugins import DEFAULT_PLUGINS
from skitai.startup import StartupError
from skitai.testing import ServerProcess, ServerThread, free_port

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


class AliasEcho(RequestHandler):
    """/__alias/@name answers the members of that alias as the core parsed them: how a
    plugin's service finds the script's aliases at request time."""

    def bind(self, server):
        self.aliases = server.kernel.aliases

    def resolve(self, exchange):
        return self if exchange.path.startswith("/__alias/") else None

    def handle(self, exchange):
        alias = self.aliases.get(exchange.path[len("/__alias/"):])
        text = "; ".join(f"{m.user}|{m.password}|{m.address}|{m.database}|{m.weight}" for m in alias.members)
        exchange.send_response("200 OK", [("Content-Type", "text/plain")], f"{alias.kind}: {text}".encode())


def refuse_without_port(alias):
    if any(member.port is None for member in alias.members):
        raise ValueError("every hello member needs a port")


def hello(args):
    print("hello", *args)
    return 3


@hookimpl
def skitai_register_backends(backends):
    backends.add("hello", "hello", validate=refuse_without_port)


@hookimpl
def skitai_register_handlers(handlers):
    handlers.add(Ping(), priority=100)
    handlers.add(Broken(), priority=100)
    handlers.add(AliasEcho(), priority=100)


@hookimpl
def skitai_register_commands(commands):
    commands.add("hello", hello, help="say hello")
'''

# Turned faulty by the test through FAULTY_PLUGIN: fails to import, misspells a hook, or
# refuses the settings in skitai_configure.
FAULTY_MODULE = '''
import os

from skitai.plugin import hookimpl, import_feature, require_libraries

FAULT = os.environ.get("FAULTY_PLUGIN", "")
if FAULT == "import":
    import skitai_no_such_dependency  # noqa: F401


@hookimpl
def skitai_configure(config):
    if FAULT == "configure":
        raise ValueError("faulty: this setting is refused")


if FAULT == "misspelled":
    @hookimpl
    def skitai_configur(config):
        pass
'''

# Registers its handler only when its option turns it on: registration follows configuration.
GREETER_MODULE = '''
from skitai.plugin import RequestHandler, hookimpl


class Greeter(RequestHandler):
    def __init__(self, greeting):
        self.greeting = greeting.encode()

    def resolve(self, exchange):
        return self if exchange.path == "/__greeting" else None

    def handle(self, exchange):
        exchange.send_response("200 OK", [("Content-Type", "text/plain")], self.greeting)


@hookimpl
def skitai_add_options(parser):
    parser.add_argument("--greeting", metavar="TEXT")


@hookimpl
def skitai_register_handlers(handlers, config):
    if config.options is not None and config.options.greeting:
        handlers.add(Greeter(config.options.greeting), priority=100)
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
faulty = "skitai_hello_plugin.faulty"
greeter = "skitai_hello_plugin.greeter"
'''

SERVER_SCRIPT = '''
import os
import skitai


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"the app"]


if __name__ == "__main__":
    for name in filter(None, os.environ.get("DISABLE_IN_SCRIPT", "").split(",")):
        skitai.disable_plugin(name)
    if os.environ.get("ALIAS_KIND"):
        skitai.alias("@backend", os.environ["ALIAS_KIND"], os.environ["ALIAS_MEMBERS"].split(","))
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
    (source / "skitai_hello_plugin" / "faulty.py").write_text(FAULTY_MODULE)
    (source / "skitai_hello_plugin" / "greeter.py").write_text(GREETER_MODULE)
    (source / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, timeout=300)
    return site


def _env(site, **variables):
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **variables}


def test_builtin_features_are_plugins():
    kernel = Kernel(entry_points=False)
    names = {info.name for info in kernel.plugins.describe()}
    assert set(DEFAULT_PLUGINS) <= names
    assert len(kernel.adapters.adapters) == 2  # WSGI apps and static directories
    kernel.configure()
    assert kernel.protocols.default().name == "http/1.1"


def test_plugins_command_lists_builtins_with_version():
    output = subprocess.run([sys.executable, "-m", "skitai", "plugins"], capture_output=True, text=True,
                            check=True, timeout=60).stdout
    assert f"skitai.builtin.http1 {skitai.__version__} (builtin): skitai_register_protocols" in output


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "skitai")
    output = subprocess.run([script, "plugins"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert "skitai.builtin.wsgi" in output


def test_entry_point_plugin_is_listed_with_its_version(plugin_site):
    output = subprocess.run([sys.executable, "-m", "skitai", "plugins"], capture_output=True, text=True,
                            check=True, timeout=60, env=_env(plugin_site)).stdout
    assert ("skitai-hello-plugin:hello 0.4.2 (plugin): skitai_register_backends, skitai_register_commands, "
            "skitai_register_handlers") in output


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
    assert result.returncode == 2 and result.stderr == "skitai: error: unknown command 'nope' (try `skitai help`)\n"


def plugins_listing(site, **variables):
    return subprocess.run([sys.executable, "-m", "skitai", "plugins"], capture_output=True, text=True,
                          check=True, timeout=60, env=_env(site, **variables)).stdout


def failed_start(site, tmp_path, *args, **variables):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    return subprocess.run([sys.executable, str(script), f"--port={free_port()}", *args], capture_output=True,
                          text=True, timeout=60, env=_env(site, **variables))


def test_a_plugin_that_fails_to_import_is_listed_as_failed(plugin_site):
    output = plugins_listing(plugin_site, FAULTY_PLUGIN="import")
    assert ("skitai-hello-plugin:faulty 0.4.2 (failed): ModuleNotFoundError: No module named "
            "'skitai_no_such_dependency'") in output
    assert "skitai-hello-plugin:hello 0.4.2 (plugin)" in output and "skitai.builtin.http1" in output


def test_a_plugin_that_fails_to_import_stops_a_script_in_one_line(plugin_site, tmp_path):
    result = failed_start(plugin_site, tmp_path, FAULTY_PLUGIN="import")
    assert one_line(result) == ("plugin skitai-hello-plugin:faulty 0.4.2 failed to load: ModuleNotFoundError: "
                                "No module named 'skitai_no_such_dependency'")
    devel = failed_start(plugin_site, tmp_path, "--devel", FAULTY_PLUGIN="import")
    assert devel.returncode == 1 and "import skitai_no_such_dependency" in devel.stderr  # the traceback


def test_a_misspelled_hook_fails_its_plugin(plugin_site, tmp_path):
    listed = [line for line in plugins_listing(plugin_site, FAULTY_PLUGIN="misspelled").splitlines()
              if line.startswith("skitai-hello-plugin:faulty ")]
    assert len(listed) == 1 and "(failed): PluginValidationError: unknown hook 'skitai_configur'" in listed[0]
    line = one_line(failed_start(plugin_site, tmp_path, FAULTY_PLUGIN="misspelled"))
    assert line.startswith("plugin skitai-hello-plugin:faulty 0.4.2 failed to load: PluginValidationError: "
                           "unknown hook 'skitai_configur' in plugin")


def test_a_plugin_refusing_the_settings_stops_the_start_in_one_line(plugin_site, tmp_path):
    result = failed_start(plugin_site, tmp_path, FAULTY_PLUGIN="configure")
    assert one_line(result) == "plugin faulty failed in skitai_configure: faulty: this setting is refused"
    devel = failed_start(plugin_site, tmp_path, "--devel", FAULTY_PLUGIN="configure")
    assert devel.returncode == 1 and "ValueError: faulty: this setting is refused" in devel.stderr
    assert devel.stderr.endswith("skitai: error: plugin faulty failed in skitai_configure: faulty: "
                                 "this setting is refused\n")


@pytest.mark.parametrize("how", ["command line", "script"])
def test_a_plugin_turned_off_by_name_is_not_loaded(plugin_site, tmp_path, how):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    # the faulty plugin would refuse to start: off, it is not even imported
    variables = {"FAULTY_PLUGIN": "import", "PYTHONPATH": _env(plugin_site)["PYTHONPATH"]}
    if how == "command line":
        args = ("--disable-plugin=faulty", "--disable-plugin", "hello")
    else:
        args, variables["DISABLE_IN_SCRIPT"] = (), "faulty,hello"
    with ServerProcess(str(script), *args, env=variables) as server:
        with httpx.Client(timeout=5) as client:
            assert client.get(server.url("/__ping")).text == "the app"


def test_turning_off_a_plugin_that_does_not_exist_is_an_error(plugin_site, tmp_path):
    result = failed_start(plugin_site, tmp_path, "--disable-plugin=helo")
    assert one_line(result) == "cannot disable plugin 'helo': no plugin of that name (`skitai plugins` lists them)"


def test_a_builtin_turned_off(tmp_path):
    kernel = Kernel(entry_points=False, disabled=["static"])
    assert "skitai.builtin.static" not in {info.name for info in kernel.plugins.describe()}
    with pytest.raises(MountError, match="no mount adapter accepts it"):
        kernel.mount("/", str(tmp_path))
    kernel = Kernel(entry_points=False, disabled=["skitai.builtin.http1"])
    with pytest.raises(StartupError, match="no default connection protocol"):
        kernel.configure()


def test_handlers_are_registered_after_configuration(plugin_site, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    variables = {"PYTHONPATH": _env(plugin_site)["PYTHONPATH"]}
    with ServerProcess(str(script), "--greeting=hi there", env=variables) as server:
        assert httpx.get(server.url("/__greeting"), timeout=5).text == "hi there"
    with ServerProcess(str(script), env=variables) as server:
        assert httpx.get(server.url("/__greeting"), timeout=5).text == "the app"


def test_the_forward_handler_exists_only_when_forwarding(tmp_path):
    plain = Kernel(entry_points=False)
    plain.configure()
    assert not any(isinstance(handler, ForwardHandler) for handler in plain.handlers.handlers)
    forwarding = Kernel(ServerConfig(forward_port=8080, ssl_certfile="cert.pem"), entry_points=False)
    forwarding.configure()
    assert any(isinstance(handler, ForwardHandler) for handler in forwarding.handlers.handlers)


def test_an_alias_of_a_kind_a_plugin_serves_reaches_its_service_in_the_worker(plugin_site, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER_SCRIPT)
    variables = {"PYTHONPATH": _env(plugin_site)["PYTHONPATH"], "ALIAS_KIND": "hello",
                 "ALIAS_MEMBERS": "app%40x:p%40ss@127.0.0.1:9/db 3,[::1]:8"}
    with ServerProcess(str(script), env=variables) as server:
        answer = httpx.get(server.url("/__alias/@backend"), timeout=5).text
    assert answer == "hello: app@x|p@ss|127.0.0.1:9|db|3; ||[::1]:8||1"


def test_an_alias_of_a_kind_no_plugin_serves_names_the_distribution_to_install(plugin_site, tmp_path):
    # skitai-dbi serves DB_PGSQL where it is installed (every environment of this repository's
    # test sessions): it is turned off, as if absent
    absent = ["--disable-plugin=dbi"] if importlib.util.find_spec("skitai_dbi") else []
    result = failed_start(plugin_site, tmp_path, *absent, ALIAS_KIND=skitai.DB_PGSQL, ALIAS_MEMBERS="pg:5432/test")
    assert one_line(result) == 'DB_PGSQL needs skitai-dbi: pip install "skitai[dbi]"'


def test_a_plugin_refuses_an_alias_when_it_is_declared(plugin_site, tmp_path):
    result = failed_start(plugin_site, tmp_path, ALIAS_KIND="hello", ALIAS_MEMBERS="127.0.0.1")
    assert one_line(result) == "alias @backend: every hello member needs a port"
    turned_off = failed_start(plugin_site, tmp_path, "--disable-plugin=hello", ALIAS_KIND="hello",
                              ALIAS_MEMBERS="127.0.0.1:9")
    assert one_line(turned_off).startswith("unknown alias kind 'hello'")


class ClosesOnTheLoop:
    """A plugin whose `skitai_server_stop` returns a coroutine (a client pool's close)."""

    def __init__(self):
        self.closed_on = None

    @hookimpl
    def skitai_server_stop(self, server):
        async def close():
            await asyncio.sleep(0.05)
            self.closed_on = threading.get_ident()
        return close()


def test_an_awaitable_returned_by_skitai_server_stop_is_awaited_on_the_loop():
    plugin = ClosesOnTheLoop()
    server = ServerThread()
    server.kernel.pm.register(plugin)
    with server.mount("/", lambda environ, start_response: []):
        loop_thread = server._thread.ident
    assert plugin.closed_on == loop_thread


def test_import_feature_imports_a_plugins_part_or_names_the_distribution_to_install(tmp_path, monkeypatch):
    (tmp_path / "lazy_feature_ok.py").write_text("import json\nVALUE = 7\n")
    (tmp_path / "lazy_feature_broken.py").write_text("import skitai_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_feature("lazy_feature_ok", "was.thing", "skitai-thing").VALUE == 7
    with pytest.raises(StartupError) as refused:
        import_feature("lazy_feature_broken", "was.thing", "skitai-thing")
    assert str(refused.value) == ("was.thing needs skitai_no_such_dependency, which skitai-thing depends on and "
                                  "which cannot be imported (No module named 'skitai_no_such_dependency'): "
                                  "pip install skitai-thing")


def test_require_libraries_finds_them_without_importing_them(tmp_path, monkeypatch):
    (tmp_path / "lazy_library_probe.py").write_text("raise AssertionError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    require_libraries("was.thing", "skitai-thing", "json", "lazy_library_probe")
    assert "lazy_library_probe" not in sys.modules
    with pytest.raises(StartupError) as refused:
        require_libraries("was.thing", "skitai-thing", "json", "skitai_no_such_dependency")
    assert str(refused.value) == ("was.thing needs skitai_no_such_dependency, which skitai-thing depends on and "
                                  "which cannot be imported (not installed): pip install skitai-thing")
