"""The script's command line: Skitai's options, plugins' options, the app's own options
(`skitai.add_option`) and the command words (start, stop, ... install).

The app reads options at import time (`skitai.options.get("--db")`, `skitai.is_devel()`), long
before `skitai.run()`, so the command line is parsed lazily and again whenever an option was
added since. Command words are taken out of `sys.argv` the first time it is parsed, so the app
never sees them.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from .startup import UsageError, reported

COMMANDS = ("start", "stop", "restart", "status", "install", "update", "remove")
# the short forms the manual gives for three of them: (flag, argparse dest, command, help)
SHORT_COMMANDS = (
    ("-d", "daemon", "start", "start as daemon, equivalent to the `start` command"),
    ("-s", "stop", "stop", "stop the daemon, equivalent to the `stop` command"),
    ("-r", "restart", "restart", "restart the daemon, equivalent to the `restart` command"),
)
SHORT_COMMAND_FLAGS = {flag: command for flag, _, command, _ in SHORT_COMMANDS}


@dataclass
class AppOption:
    short: str | None
    long: str | None
    help: str
    metavar: str | None  # set when the option takes a value ('--db=DB_NAME')

    @property
    def flags(self) -> list[str]:
        return [flag for flag in (self.short, self.long) if flag]


def _split_value(flag: str | None) -> tuple[str | None, str | None]:
    """'--db=DB_NAME' -> ('--db', 'DB_NAME'); '-D' -> ('-D', None)."""
    if not flag:
        return None, None
    name, _, metavar = flag.partition("=")
    return name, metavar or None


def _canonical(name: str) -> str:
    return name.lstrip("-").replace("-", "_")


def port_number(text: str) -> int:
    """`--port`'s value: an integer a TCP port can have."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0-65535)")
    return port


class _Parser(argparse.ArgumentParser):
    """argparse, but a mistake is a `UsageError` (one line, exit status 2) instead of a usage
    text and an exit from inside the parser."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see --help)")


class CommandLine:
    """Parses `sys.argv[1:]` into Skitai's settings, the app's options and a command word."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self._argv = argv  # None: read sys.argv at parse time
        # the process's own command line: a mistake in it ends the script, as argparse does
        self._is_process = argv is None
        self.unknown: list[str] = []  # options nobody declared, refused by `check_unknown`
        self.app_options: list[AppOption] = []
        self.plugin_options: Callable[[argparse.ArgumentParser], Any] | None = None
        self._parsed: argparse.Namespace | None = None
        self._values: dict[str, Any] = {}
        self.command: str | None = None

    # declaring
    def add_option(self, short: str | None, long: str | None = None, desc: str = "") -> None:
        short_name, short_metavar = _split_value(short)
        long_name, long_metavar = _split_value(long)
        if not short_name and not long_name:
            raise ValueError("skitai.add_option needs a short or a long name")
        for name in (short_name, long_name):
            if name and name.startswith("---"):
                raise ValueError(f"{name}: triple-hyphen options are reserved for Skitai")
            if name and name in SHORT_COMMAND_FLAGS:
                raise ValueError(f"{name} is Skitai's own option ({SHORT_COMMAND_FLAGS[name]})")
        self.app_options.append(AppOption(short_name, long_name, desc, long_metavar or short_metavar))
        self._parsed = None

    def set_plugin_options(self, add_options: Callable[[argparse.ArgumentParser], Any]) -> None:
        """`add_options(parser)` adds the loaded plugins' options (the `skitai_add_options` hook)."""
        self.plugin_options = add_options
        self._parsed = None

    # parsing
    def build_parser(self) -> argparse.ArgumentParser:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "skitai"
        parser = _Parser(
            prog=prog, add_help=False, allow_abbrev=False,
            usage="%(prog)s [OPTION]... [COMMAND]...",
            description=f"COMMAND can be one of [{'|'.join(COMMANDS)}]",
            formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=32))
        own = parser.add_argument_group("Skitai options")
        own.add_argument("-h", "--help", action="store_true", help="show this help and exit")
        for flag, dest, _, text in SHORT_COMMANDS:
            own.add_argument(flag, dest=dest, action="store_true", help=text)
        own.add_argument("---profile", dest="profile", action="store_true",
                         help="log for performance profiling")
        own.add_argument("---gc", dest="gc", action="store_true", help="enable manual GC")
        own.add_argument("---memtrack", dest="memtrack", action="store_true", help="show memory status")
        own.add_argument("--silent", action="store_true", help="disable auto reloading and debug output")
        own.add_argument("--devel", action="store_true", help="enable auto reloading and debug output")
        own.add_argument("--port", type=port_number, metavar="PORT_NUMBER", help="change port")
        own.add_argument("--fallback-user", metavar="USER",
                         help="user to run as after binding when started as root without sudo")
        own.add_argument("--disable-plugin", action="append", default=[], metavar="NAME",
                         help="turn a plugin off (repeatable; `skitai plugins` lists them)")
        if self.plugin_options is not None:
            self.plugin_options(parser)
        if self.app_options:
            group = parser.add_argument_group("App options")
            for option in self.app_options:
                kwargs: dict[str, Any] = {"help": option.help, "dest": "app:" + _canonical(option.long or option.short)}
                if option.metavar:
                    kwargs["metavar"] = option.metavar
                else:
                    kwargs["action"] = "store_true"
                    kwargs["default"] = None
                group.add_argument(*option.flags, **kwargs)
        return parser

    def parse(self) -> argparse.Namespace:
        if self._parsed is None:
            argv = sys.argv[1:] if self._argv is None else self._argv
            words = [arg for arg in argv if arg in COMMANDS]
            rest = [arg for arg in argv if arg not in COMMANDS]
            if self._argv is None and words:
                sys.argv[1:] = rest  # the app never sees the command words
                self._argv = rest
                self.command = self.command or words[0]
            elif words:
                self.command = self.command or words[0]
            with reported() if self._is_process else contextlib.nullcontext():
                parsed, unknown = self.build_parser().parse_known_args(rest)
            self.unknown = [arg for arg in unknown if arg.startswith("-") and arg != "-"]
            for _, dest, command, _ in SHORT_COMMANDS:
                if getattr(parsed, dest):
                    self.command = self.command or command
            self._parsed = parsed
            self._values = self._index(parsed)
        return self._parsed

    def check_unknown(self) -> None:
        """Refuse options that neither Skitai, a plugin nor the app (`add_option`) declared:
        a misspelled option would otherwise be ignored. Called by `skitai.run()`, when every
        option is declared; words that are not options stay the app's (`sys.argv`)."""
        self.parse()
        if self.unknown:
            raise UsageError(f"unrecognized option: {' '.join(self.unknown)} (see --help)")

    def _index(self, parsed: argparse.Namespace) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for option in self.app_options:
            value = getattr(parsed, "app:" + _canonical(option.long or option.short))
            for flag in option.flags:
                values[flag] = value
        return values

    def help_text(self) -> str:
        return self.build_parser().format_help()

    # reading
    def get(self, name: str, default: Any = None) -> Any:
        """The value of an app option by any of its names ('--db', '-D'); flags give True."""
        self.parse()
        value = self._values.get(name)
        if value is None and name.startswith("-"):
            parsed = self._parsed
            value = getattr(parsed, _canonical(name), None)
            if value is False:
                value = None
        return default if value is None else value

    def get_option(self, *names: str) -> Any:
        for name in names:
            value = self.get(name)
            if value is not None:
                return value
        return None

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def __getitem__(self, name: str) -> Any:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def items(self) -> Iterable[tuple[str, Any]]:
        self.parse()
        return [(name, value) for name, value in self._values.items() if value is not None]
