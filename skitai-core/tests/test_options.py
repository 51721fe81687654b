"""Command-line options: Skitai's own, the app's (`skitai.add_option`), command words, `--help`,
and the `--devel` / `--silent` modes."""
import http.client
import re
import subprocess
import sys
import textwrap

import pytest

from skitai.options import CommandLine
from skitai.startup import UsageError
from skitai.testing import ServerProcess


def command_line(*argv):
    cli = CommandLine(list(argv))
    cli.add_option("-D", "--dist", "distribute mode")
    cli.add_option(None, "--db=DB_NAME", "use that database")
    return cli


def test_app_options_by_any_name():
    cli = command_line("--db=prod", "-D")
    assert cli.get("--db", "testdb") == "prod"
    assert cli.get_option("-D", "--dist") is True
    assert cli.get_option("--dist") is True
    assert "--db" in cli and "--dist" in cli
    assert cli["--db"] == "prod"


def test_absent_options_give_the_default():
    cli = command_line("--port=8000")
    assert cli.get("--db", "testdb") == "testdb"
    assert cli.get_option("-D", "--dist") is None
    assert "--dist" not in cli
    with pytest.raises(KeyError):
        cli["--db"]


def test_value_as_a_separate_word():
    assert command_line("--db", "other").get("--db") == "other"


def test_skitai_options_are_parsed_beside_the_apps():
    parsed = command_line("--devel", "---profile", "---gc", "---memtrack", "--port=7000",
                          "--fallback-user=nobody", "--unknown", "positional").parse()
    assert parsed.devel and parsed.profile and parsed.gc and parsed.memtrack
    assert parsed.port == 7000 and parsed.fallback_user == "nobody"


@pytest.mark.parametrize("argv, command", [
    (("start",), "start"), (("-d",), "start"), (("stop",), "stop"), (("-s",), "stop"),
    (("restart",), "restart"), (("-r",), "restart"), (("status",), "status"),
    (("--devel", "install"), "install"), (("update",), "update"), (("remove",), "remove"),
    (("--devel",), None), (("starting",), None),
])
def test_command_words(argv, command):
    cli = command_line(*argv)
    cli.parse()
    assert cli.command == command


def test_no_abbreviations():
    """`--dev` must not silently mean `--devel`."""
    assert not command_line("--dev").parse().devel


@pytest.mark.parametrize("short, long", [(None, "---mine"), ("-d", None), ("-s", "--stop-it")])
def test_reserved_options_are_refused(short, long):
    with pytest.raises(ValueError):
        CommandLine([]).add_option(short, long, "x")


def test_an_option_needs_a_name():
    with pytest.raises(ValueError):
        CommandLine([]).add_option(None, None, "x")


SCRIPT = '''
import sys
import skitai

skitai.add_option("-D", "--dist", "distribute mode, disable NodeJS proxing")
skitai.add_option(None, "--db=DB_NAME", "use specified database")
ACTIVE_DB = skitai.options.get("--db", "testdb")
IS_DIST = skitai.get_option("-D", "--dist")
ARGV = list(sys.argv)
if not skitai.is_devel():
    skitai.set_max_age("/", 300)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom in the app")
    body = f"{ACTIVE_DB} {IS_DIST} {ARGV[1:]} devel={skitai.isdev()} debug={app.debug} " \\
           f"reloader={app.use_reloader}"
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]


app.debug = True
app.use_reloader = True

if __name__ == "__main__":
    skitai.mount("/", app)
    skitai.mount("/", "static")
    skitai.run(port=5000)
'''


@pytest.fixture
def script(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "page.html").write_text("<p>page</p>")
    path = tmp_path / "serve.py"
    path.write_text(textwrap.dedent(SCRIPT))
    return str(path)


def fetch(server, path):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read().decode(), dict(response.getheaders())


def test_help_lists_skitai_and_app_options(script):
    result = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("usage: serve.py [OPTION]... [COMMAND]...")
    assert "COMMAND can be one of [start|stop|restart|status|install|update|remove]" in out
    for text in ("---profile", "---gc", "---memtrack", "--silent", "--devel", "--port PORT_NUMBER",
                 "-d ", "-D, --dist", "distribute mode, disable NodeJS proxing",
                 "--db DB_NAME", "use specified database", "--disable-plugin NAME"):
        assert text in out, text


def test_the_app_reads_its_options(script):
    with ServerProcess(script, "--db=live", "-D", "other") as server:
        status, body, _ = fetch(server, "/")
    assert status == 200
    assert body.startswith("live True ")
    assert "'other'" in body  # words that are not options stay the app's


def test_undeclared_options_are_recorded_and_refused():
    cli = command_line("--db=x", "--bogus", "word", "--also=1", "-")
    assert cli.parse().port is None
    assert cli.unknown == ["--bogus", "--also=1"]
    with pytest.raises(UsageError, match="unrecognized option: --bogus --also=1"):
        cli.check_unknown()
    command_line("--db=x", "-D", "word", "--disable-plugin=forward").check_unknown()


@pytest.mark.parametrize("port, message", [
    ("70000", "argument --port: 70000 is not a port number (0-65535)"),
    ("-1", "argument --port: -1 is not a port number (0-65535)"),
    ("http", "argument --port: 'http' is not a port number"),
])
def test_a_port_out_of_range_is_a_usage_error(port, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        command_line(f"--port={port}").parse()


def test_production_mode_keeps_the_apps_settings(script):
    with ServerProcess(script) as server:
        status, body, _ = fetch(server, "/")
        assert "devel=False debug=True reloader=True" in body
        assert fetch(server, "/page.html")[2]["Cache-Control"] == "max-age=300"


def test_devel_mode(script):
    with ServerProcess(script, "--devel") as server:
        status, body, _ = fetch(server, "/")
        assert "devel=True debug=True reloader=True" in body
        assert "Cache-Control" not in fetch(server, "/page.html")[2]
        status, body, _ = fetch(server, "/boom")
    assert status == 500
    assert "RuntimeError: boom in the app" in body


def test_silent_mode_forces_debug_and_reloader_off(script):
    with ServerProcess(script, "--silent") as server:
        assert "devel=False debug=False reloader=False" in fetch(server, "/")[1]
        status, body, _ = fetch(server, "/boom")
    assert status == 500
    assert "boom in the app" not in body
