"""The script's working directory: where the file that calls `skitai.run()` lives.

Mount paths and `skitai.abspath()` are relative to it, and `skitai.run()` makes it the process's
working directory, so an app finds its resources however it was started.
"""
from __future__ import annotations

import os
import sys


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
    main = sys.modules.get("__main__")
    script = os.path.realpath(getattr(main, "__file__", None) or "skitai")
    folder = os.path.basename(os.path.dirname(script))
    return f"skitai({folder}/{os.path.splitext(os.path.basename(script))[0]})"
