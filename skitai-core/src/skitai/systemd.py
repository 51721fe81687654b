"""`python app.py install | update | remove`: a systemd service for a script that names itself
(`skitai.run(name="myservice")`), as the manual's "Systemctl" section describes.

The unit runs the script in the foreground (systemd is the supervisor, so no `-d`) with the
same interpreter and options, as the user who installs it; with `--fallback-user` it starts as
root and the server drops to that user after binding (low ports). `render_unit` is a pure
function of what the unit says; the rest finds those values and writes the file.
"""
from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .daemon import stop_timeout
from .options import SHORT_COMMAND_FLAGS
from .paths import script_path, user_name

if TYPE_CHECKING:
    from .config import ServerConfig

UNIT_DIR = "/etc/systemd/system"
UNIT_DIR_ENV = "SKITAI_SYSTEMD_DIR"  # write units elsewhere (tests, packaging): systemctl is left alone
UNIT_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,200}")

# LSB-style exit codes
OK, FAILED, USAGE, PRIVILEGE = 0, 1, 2, 4


@dataclass
class Unit:
    name: str
    python: str
    script: str
    args: list[str]
    working_directory: str
    user: str
    stop_timeout: float


def _specifiers(text: str) -> str:
    """systemd expands %-specifiers everywhere and $VARIABLES in command lines."""
    return text.replace("%", "%%")


def exec_arg(arg: str) -> str:
    """One word of ExecStart, quoted the way systemd splits command lines."""
    arg = _specifiers(arg).replace("$", "$$")
    if arg and not re.search(r"[\s\"'\\;]", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(unit: Unit) -> str:
    command = " ".join(exec_arg(arg) for arg in (unit.python, unit.script, *unit.args))
    return "\n".join([
        "[Unit]",
        f"Description=Skitai {unit.name} ({_specifiers(unit.script)})",
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        f"User={unit.user}",
        f"WorkingDirectory={_specifiers(unit.working_directory)}",
        f"ExecStart={command}",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "KillSignal=SIGTERM",
        "KillMode=mixed",  # SIGTERM to the master only: it stops its workers gracefully
        f"TimeoutStopSec={math.ceil(unit.stop_timeout)}",
        "Restart=on-failure",
        "Environment=PYTHONUNBUFFERED=1",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ])


def unit_for(config: "ServerConfig") -> Unit:
    """The unit of the running script: same interpreter, same options minus the command."""
    if not config.name:
        raise ValueError("a systemd service needs a name: call skitai.run(name='myservice')")
    if not UNIT_NAME.fullmatch(config.name):
        raise ValueError(f"{config.name!r} cannot name a systemd service "
                         "(use letters, digits, '_', '.', ':' and '-')")
    script = script_path()
    return Unit(
        name=config.name, python=sys.executable, script=script,
        args=[arg for arg in sys.argv[1:] if arg not in SHORT_COMMAND_FLAGS],
        working_directory=os.path.dirname(script),
        user="root" if config.fallback_user else user_name(),
        stop_timeout=stop_timeout(config))


def _unit_dir() -> tuple[str, bool]:
    """Where units go, and whether systemctl should be told (only for the system's folder, on
    a machine that runs systemd)."""
    override = os.environ.get(UNIT_DIR_ENV)
    if override:
        return override, False
    managed = shutil.which("systemctl") is not None and os.path.isdir("/run/systemd/system")
    return UNIT_DIR, managed


def _systemctl(*args: str) -> bool:
    command = ["systemctl", *args]
    print("skitai: running", " ".join(command), flush=True)
    try:
        result = subprocess.run(command, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"skitai: {' '.join(command)} failed: {error}", file=sys.stderr, flush=True)
        return False
    return result.returncode == 0


def install(config: "ServerConfig", update: bool = False) -> int:
    try:
        unit = unit_for(config)
    except ValueError as error:
        print(f"skitai: {error}", file=sys.stderr)
        return USAGE
    directory, managed = _unit_dir()
    path = os.path.join(directory, f"{unit.name}.service")
    existed = os.path.exists(path)
    if existed and not update:
        print(f"skitai: {path} exists; use `update` to rewrite it", file=sys.stderr)
        return FAILED
    try:
        os.makedirs(directory, exist_ok=True)
        temporary = f"{path}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(render_unit(unit))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as error:
        print(f"skitai: cannot write {path}: {error.strerror}"
              f"{'; run it with sudo' if isinstance(error, PermissionError) else ''}", file=sys.stderr)
        return PRIVILEGE if isinstance(error, PermissionError) else FAILED
    print(f"skitai: {'updated' if existed else 'installed'} {path}")
    if not managed:
        print(f"skitai: to use it: systemctl daemon-reload && systemctl enable --now {unit.name}")
        return OK
    if not (_systemctl("daemon-reload") and _systemctl("enable", unit.name)):
        return FAILED
    action = "restart" if existed else "start"
    print(f"skitai: {action} it with: sudo systemctl {action} {unit.name}")
    return OK


def remove(config: "ServerConfig") -> int:
    try:
        name = unit_for(config).name
    except ValueError as error:
        print(f"skitai: {error}", file=sys.stderr)
        return USAGE
    directory, managed = _unit_dir()
    path = os.path.join(directory, f"{name}.service")
    if not os.path.exists(path):
        print(f"skitai: {name} is not installed (no {path})")
        return OK
    if managed and not _systemctl("disable", "--now", name):
        return FAILED
    try:
        os.unlink(path)
    except PermissionError:
        print(f"skitai: no permission to remove {path}; run it with sudo", file=sys.stderr)
        return PRIVILEGE
    print(f"skitai: removed {path}")
    if managed:
        return OK if _systemctl("daemon-reload") else FAILED
    print(f"skitai: systemctl was not told; if {name} was enabled: "
          f"systemctl disable --now {name} && systemctl daemon-reload")
    return OK
