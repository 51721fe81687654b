"""The command words of a Skitai script (`python app.py start|stop|restart|status|install|update|
remove`, `-d`, `-s`, `-r`): which ones end the process with an exit code, and which ones go on
to serve as a daemon."""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from . import daemon, systemd

if TYPE_CHECKING:
    from .config import ServerConfig


def prepare(config: "ServerConfig") -> bool:
    """Run `config.command`. Commands that only act (status, stop, install, update, remove)
    exit here. Returns True when the server must detach as a daemon once it has bound."""
    if daemon.is_reexecuted():
        daemon.adopt(config)  # a SIGHUP reload of a daemon: the same process, already detached
        return False
    command = config.command
    if command is None:
        return False
    if command in ("install", "update"):
        sys.exit(systemd.install(config, update=command == "update"))
    if command == "remove":
        sys.exit(systemd.remove(config))
    if command == "status":
        sys.exit(daemon.status(config))
    if command == "stop":
        sys.exit(daemon.stop(config))
    # start, restart
    if not hasattr(os, "fork"):
        sys.exit(f"skitai: the {command} command needs a POSIX system; run the script without it")
    if command == "restart":
        code = daemon.stop(config)
        if code:
            sys.exit(code)
    code = daemon.refuse_if_running(config)
    if code is not None:
        sys.exit(code)
    config.file_logging = True
    return True
