"""Startup errors: a mistake that stops a server before it serves is one line on stderr that
names its cause, and an exit status, as gunicorn and uvicorn report them.

The code that knows the cause (binding a port, resolving a mount, loading a plugin, a plugin's
`skitai_configure`, the command line) raises `StartupError` with a message that names the
address, the path or the plugin. The entry points a script or the console script calls
(`skitai.mount`, `skitai.run`, `skitai ...`) report it with `reported()`:
`skitai: error: <message>` and exit status 1 (2 for a command-line mistake, as argparse
does). The traceback is shown only with `--devel`, where it helps the one who develops.
"""
from __future__ import annotations

import contextlib
import sys
import traceback
from collections.abc import Iterator

FAILURE = 1  # what a failed start exits with
USAGE = 2    # a command line the script does not understand, as argparse exits


class StartupError(Exception):
    """Raised where the cause of a failed start is known; the message names it."""

    status = FAILURE


class UsageError(StartupError):
    """A command line the script does not understand."""

    status = USAGE


def shows_tracebacks() -> bool:
    """`--devel` on the command line. Read from `sys.argv` itself: the error may be that the
    command line could not be parsed."""
    return "--devel" in sys.argv[1:]


def describe(error: BaseException) -> str:
    """The one line for an error: a startup error's message, else its type and message."""
    if isinstance(error, StartupError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def report(message: str, error: BaseException | None = None) -> None:
    """Write `skitai: error: <message>` to stderr, after the traceback of `error` with --devel."""
    if error is not None and shows_tracebacks():
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(f"skitai: error: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn a `StartupError` raised inside into its line on stderr and its exit status."""
    try:
        yield
    except StartupError as error:
        report(describe(error), error)
        raise SystemExit(error.status) from None
