"""`python app.py install|update|remove`: the systemd unit's text, checked line by line and by
`systemd-analyze verify` where it exists, written into a test folder (SKITAI_SYSTEMD_DIR) so
systemctl is never run; a `systemctl` on PATH that records its calls proves it."""
import os
import pwd
import shlex
import subprocess
import sys
import textwrap

import pytest

from skitai.systemd import Unit, exec_arg, render_unit
from skitai.testing import requires_commands

SCRIPT = '''
import os
import skitai

if __name__ == "__main__":
    skitai.mount("/", lambda environ, start_response: [])
    skitai.run(port=5000, name=os.environ.get("SERVICE_NAME"))
'''

needs_systemd_analyze = requires_commands("systemd-analyze", install="apt-get install systemd")


def test_render_unit_line_by_line():
    unit = Unit(name="myservice", python="/opt/venv/bin/python3", script="/srv/my app/serve.py",
                args=["--devel", "--port=8000"], working_directory="/srv/my app", user="ubuntu",
                stop_timeout=20.5)
    assert render_unit(unit).splitlines() == [
        "[Unit]",
        "Description=Skitai myservice (/srv/my app/serve.py)",
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        "User=ubuntu",
        "WorkingDirectory=/srv/my app",
        'ExecStart=/opt/venv/bin/python3 "/srv/my app/serve.py" --devel --port=8000',
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "KillMode=mixed",
        "TimeoutStopSec=21",
        "Restart=on-failure",
        "Environment=PYTHONUNBUFFERED=1",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]


@pytest.mark.parametrize("arg", ["plain", "with space", "100%", "$HOME", 'say "hi"', "back\\slash",
                                 "it's", "a;b", ""])
def test_exec_args_survive_systemd_splitting(arg):
    # systemd splits like a POSIX shell in double quotes, after %% -> % and $$ -> $
    word = exec_arg(arg).replace("%%", "%").replace("$$", "$")
    assert shlex.split(word) == [arg]
    assert "%" not in exec_arg(arg).replace("%%", "")


@needs_systemd_analyze
def test_systemd_analyze_accepts_the_unit(tmp_path):
    folder = tmp_path / "my 100% app"
    folder.mkdir()
    (folder / "serve.py").write_text("")
    unit = Unit(name="skitai-test", python=sys.executable, script=str(folder / "serve.py"),
                args=["--devel", "--db=$prod"], working_directory=str(folder), user="root", stop_timeout=20)
    path = tmp_path / "skitai-test.service"
    path.write_text(render_unit(unit))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, "")


@needs_systemd_analyze
def test_systemd_analyze_would_catch_a_bad_unit(tmp_path):
    """The check above can fail: an unbalanced quote is reported."""
    path = tmp_path / "skitai-test.service"
    path.write_text(f'[Service]\nExecStart={sys.executable} "unbalanced\n')
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert "Unbalanced quoting" in result.stderr


class Installer:
    def __init__(self, tmp_path, name="myservice", **env):
        self.folder = tmp_path / "svc"
        self.folder.mkdir()
        self.script = self.folder / "app.py"
        self.script.write_text(textwrap.dedent(SCRIPT))
        self.units = tmp_path / "units"
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        self.calls = tmp_path / "systemctl-calls"
        spy = bin_dir / "systemctl"
        spy.write_text(f'#!/bin/sh\necho "$@" >> {self.calls}\nexit 1\n')
        spy.chmod(0o755)
        self.env = {**os.environ, "SKITAI_SYSTEMD_DIR": str(self.units), "SERVICE_NAME": name,
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        self.env.pop("SUDO_USER", None)  # the user is the test's, unless a test says otherwise
        self.env.update(env)

    @property
    def unit_path(self):
        return self.units / "myservice.service"

    def cli(self, *args):
        return subprocess.run([sys.executable, str(self.script), *args], capture_output=True, text=True,
                              env=self.env, timeout=60)

    def lines(self):
        return self.unit_path.read_text().splitlines()


def current_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def test_install_update_remove(tmp_path):
    installer = Installer(tmp_path)
    installed = installer.cli("--devel", "install")
    assert installed.returncode == 0, installed.stderr
    assert f"installed {installer.unit_path}" in installed.stdout
    assert "systemctl daemon-reload && systemctl enable --now myservice" in installed.stdout
    lines = installer.lines()
    assert f"ExecStart={sys.executable} {installer.script} --devel" in lines  # no command word
    assert f"WorkingDirectory={installer.folder}" in lines
    assert f"User={current_user()}" in lines
    assert "TimeoutStopSec=20" in lines  # shutdown_timeout 10 + the stop margin
    assert oct(installer.unit_path.stat().st_mode & 0o777) == oct(0o644)

    again = installer.cli("--devel", "install")
    assert again.returncode == 1 and "use `update`" in again.stderr

    updated = installer.cli("-d", "--port=9000", "update")
    assert updated.returncode == 0 and f"updated {installer.unit_path}" in updated.stdout
    assert f"ExecStart={sys.executable} {installer.script} --port=9000" in installer.lines()  # no -d

    removed = installer.cli("remove")
    assert removed.returncode == 0 and f"removed {installer.unit_path}" in removed.stdout
    assert not installer.unit_path.exists()
    again = installer.cli("remove")
    assert again.returncode == 0 and "myservice is not installed" in again.stdout
    assert not installer.calls.exists()  # systemctl was never run for a test folder


def test_fallback_user_starts_as_root_and_passes_the_user_on(tmp_path):
    installer = Installer(tmp_path)
    result = installer.cli("--fallback-user", "nobody", "install")
    assert result.returncode == 0, result.stderr
    lines = installer.lines()
    assert "User=root" in lines
    assert f"ExecStart={sys.executable} {installer.script} --fallback-user nobody" in lines


@pytest.mark.skipif(os.geteuid() != 0, reason="SUDO_USER is only honoured when running as root")
def test_the_user_who_ran_sudo_owns_the_service(tmp_path):
    installer = Installer(tmp_path, SUDO_USER="nobody")
    assert installer.cli("install").returncode == 0
    assert "User=nobody" in installer.lines()


@pytest.mark.parametrize("name, message", [
    ("", "a systemd service needs a name: call skitai.run(name='myservice')"),
    ("my service", "'my service' cannot name a systemd service"),
])
def test_a_service_needs_a_valid_name(tmp_path, name, message):
    installer = Installer(tmp_path, name=name)
    for command in ("install", "remove"):
        result = installer.cli(command)
        assert result.returncode == 2 and message in result.stderr
    assert not installer.units.exists()
