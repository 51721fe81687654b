"""The `skitai` console script (also `python -m skitai`): `skitai plugins` and plugin commands."""
from __future__ import annotations

import sys

from .plugins import describe_plugins


def _plugins_command(kernel) -> int:
    for info in describe_plugins(kernel.pm):
        kind = "builtin" if info.builtin else "plugin"
        print(f"{info.name} {info.version} ({kind}): {', '.join(info.hooks) or '-'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from .api import get_kernel

    argv = list(sys.argv[1:] if argv is None else argv)
    kernel = get_kernel()
    commands = kernel.commands()
    if not argv or argv[0] in ("-h", "--help", "help"):
        print("usage: skitai COMMAND [ARGS]\n\ncommands:")
        print("  plugins       list loaded plugins with versions and hooks")
        for command in sorted(commands.commands.values(), key=lambda c: c.name):
            print(f"  {command.name:<13} {command.help}")
        return 0
    name, args = argv[0], argv[1:]
    if name == "plugins":
        return _plugins_command(kernel)
    command = commands.commands.get(name)
    if command is None:
        print(f"skitai: unknown command {name!r} (try `skitai help`)", file=sys.stderr)
        return 2
    return int(command.function(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
