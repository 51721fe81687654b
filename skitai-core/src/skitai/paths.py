"""The script's folders: its working directory (where the file that calls `skitai.run()` lives),
and where its logs and pid file go.

Mount paths and `skitai.abspath()` are relative to it, and `skitai.run()` makes it the process's
working directory, so an app finds its resources however it was started.
"""
from __future__ import annotations

import hashlib
import os
import pwd
import sys
import tempfile

LOG_ROOT = "/var/log/skitai"  # the manual's place for logs: /var/log/skitai/<user>/<script hash>/


def getswd() -> str:
    """The directory of the running script (`__main__`), or the working directory without one."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script:
        return os.path.dirname(os.path.realpath(script))
    return os.getcwd()


def abspath(*parts: str) -> str:
    """A path relative to the script's directory, whatever the working directory is."""
    return os.path.normpath(os.path.join(getswd(), *parts))


def process_label(name: str | None = None) -> str:
    """`skitai/<name>` when the script names itself, else `skitai(<folder>/<script>)`, as process
    titles show it."""
    if name:
        return f"skitai/{name}"
    script = script_path()
    folder = os.path.basename(os.path.dirname(script))
    return f"skitai({folder}/{os.path.splitext(os.path.basename(script))[0]})"


def script_path() -> str:
    main = sys.modules.get("__main__")
    return os.path.realpath(getattr(main, "__file__", None) or os.path.join(os.getcwd(), "skitai"))


def script_hash() -> str:
    """A short stable id of the running script, so two apps of one user never share a folder."""
    return hashlib.sha1(script_path().encode("utf-8")).hexdigest()[:12]


def user_name() -> str:
    """The user the server runs as (the one who ran sudo, when run through sudo)."""
    name = os.environ.get("SUDO_USER") if os.geteuid() == 0 else None
    if name:
        return name
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def log_dir(path: str | None = None, root: str = LOG_ROOT) -> str:
    """Where log files go: `path` when given; else `<root>/<user>/<script hash>/`, or, when that
    cannot be created, `<temp dir>/skitai-<user>/<script hash>/log` (with a message saying why).
    `SKITAI_LOG_DIR` overrides the default, for tests and containers."""
    if path:
        path = abspath(path)
        if not _writable_dir(path):
            raise PermissionError(f"skitai: cannot write logs to {path}")
        return path
    override = os.environ.get("SKITAI_LOG_DIR")
    if override:
        return log_dir(override)
    preferred = os.path.join(root, user_name(), script_hash())
    if _writable_dir(preferred):
        return preferred
    fallback = os.path.join(tempfile.gettempdir(), f"skitai-{user_name()}", script_hash(), "log")
    if not _writable_dir(fallback):
        raise PermissionError(f"skitai: cannot write logs to {preferred} nor to {fallback}")
    print(f"skitai: {preferred} is not writable (create {root} and give it to "
          f"{user_name()}); logging to {fallback}", file=sys.stderr, flush=True)
    return fallback


def run_dir() -> str:
    """Where the daemon's pid file lives: `/var/tmp/skitai/<user>/<script hash>/`
    (`SKITAI_RUN_DIR` overrides it)."""
    path = os.environ.get("SKITAI_RUN_DIR") or os.path.join(
        "/var/tmp/skitai", user_name(), script_hash())
    os.makedirs(path, exist_ok=True)
    return path
