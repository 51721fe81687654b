"""The check before a reload: the script runs once more in a child process, imports and mounts
everything, and exits in `skitai.run()` (which sees `SKITAI_PREFLIGHT`) before binding anything.

The master re-executes itself only when that check exits 0. A syntax error or a failing import
in the edited code then costs a log message instead of the service: without the check, the
re-executed master would die on it and leave its workers unsupervised. The workers go on
serving the previous version, and the next change (or SIGHUP) tries again.

Code that an app imports only on its first request (a Django URLconf and its views) is not
checked: after the reload, such an error is the app's 500 answer, with its traceback in the
log, until the next change fixes it.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

PREFLIGHT_ENV = "SKITAI_PREFLIGHT"
PREFLIGHT_TIMEOUT = 120.0  # a script that does not reach skitai.run() by then is reported


def is_preflight() -> bool:
    """True in the child that checks the new code: `skitai.run()` must return before serving."""
    return bool(os.environ.get(PREFLIGHT_ENV))


def script_command() -> list[str] | None:
    """The command that runs this script again as it was started, or None without a script."""
    script = getattr(sys.modules.get("__main__"), "__file__", None)
    if not script:
        return None
    return [sys.executable, os.path.realpath(script), *sys.argv[1:]]


class Preflight:
    """One run of the check; its output is kept in a file, shown only when it fails."""

    def __init__(self, command: list[str]) -> None:
        self._output = tempfile.TemporaryFile()
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=self._output,
                                        stderr=subprocess.STDOUT, env={**os.environ, PREFLIGHT_ENV: "1"})

    def status(self) -> int | None:
        """The exit status once it has ended; a check past its time is ended and fails."""
        status = self.process.poll()
        if status is None and time.monotonic() - self.started > PREFLIGHT_TIMEOUT:
            self.cancel()
            self._output.write(f"\n(did not reach skitai.run() within {PREFLIGHT_TIMEOUT:.0f} s)\n".encode())
            status = self.process.returncode
        return status

    def output(self) -> str:
        self._output.seek(0)
        return self._output.read().decode("utf-8", "replace")

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def close(self) -> None:
        self.cancel()
        self._output.close()
