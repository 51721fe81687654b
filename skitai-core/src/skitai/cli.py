"""The `skitai` console script (also `python -m skitai`): `skitai plugins` and plugin commands."""
from __future__ import annotations

import sys

from .kernel import Kernel
from .startup import UsageError, reported


def _plugins_command(kernel: Kernel) -> int:
    """Every plugin with its version and hooks, and those that failed to load with the error:
    one broken plugin must not hide the others."""
    for info in kernel.plugins.describe():
        kind = "builtin" if info.builtin else "plugin"
        print(f"{info.name} {info.version} ({kind}): {', '.join(info.hooks) or '-'}")
    for failed in kernel.plugins.failed:
        print(f"{failed.name} {failed.version} (failed): {failed.error}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with reported():
        return _main(argv)


def _main(argv: list[str]) -> int:
    kernel = Kernel()
    if argv and argv[0] == "plugins":
        return _plugins_command(kernel)
    for failed in kernel.plugins.failed:  # the other plugins' commands still work
        print(f"skitai: warning: {failed.message()}", file=sys.stderr)
    commands = kernel.commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: skitai COMMAND [ARGS]\n\ncommands:")
        print("  plugins       list loaded plugins with versions and hooks")
        for command in sorted(commands.commands.values(), key=lambda c: c.name):
            print(f"  {command.name:<13} {command.help}")
        return 0
    name, args = argv[0], argv[1:]
    command = commands.commands.get(name)
    if command is None:
        raise UsageError(f"unknown command {name!r} (try `skitai help`)")
    return int(command.function(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
