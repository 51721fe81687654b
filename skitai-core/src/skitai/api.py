"""The functions a Skitai script calls (`skitai.mount`, `skitai.run`, `skitai.set_*` ...)."""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from .kernel import Kernel
from .options import CommandLine
from .paths import getswd, process_label
from .preference import Preference

_kernel: Kernel | None = None

# `skitai.options`: the app's options, parsed from the command line on first use
options = CommandLine()


def get_kernel() -> Kernel:
    global _kernel
    if _kernel is None:
        _kernel = Kernel()
    return _kernel


def mount(point: str, obj: Any, app_name: Any = "app", pref: Preference | None = None) -> None:
    """Mount a WSGI app, an app file or module, or a static directory at `point`.

    The spec's form `skitai.mount("/", "wsgi:application", pref)` (preference as third argument)
    is accepted too.
    """
    get_kernel().mount(point, obj, app_name, pref)


def preference(path: str | None = None) -> Preference:
    return Preference(path)


def set_max_upload_size(size: int) -> None:
    get_kernel().config.max_upload_size = int(size)


def set_request_timeout(seconds: float) -> None:
    get_kernel().config.request_timeout = float(seconds)


def set_keep_alive(seconds: float) -> None:
    get_kernel().config.keep_alive = float(seconds)


def set_max_age(path: str, seconds: int) -> None:
    get_kernel().config.max_ages.append((path, int(seconds)))


def set_worker_critical_point(cpu_percent: float = 90.0, continuous: int = 3, interval: float = 20) -> None:
    """Replace a worker whose CPU use stays above `cpu_percent` for `continuous` checks made
    every `interval` seconds (0 turns the watch off)."""
    config = get_kernel().config
    config.critical_cpu_percent = float(cpu_percent)
    config.critical_continuous = int(continuous)
    config.critical_interval = float(interval)


def set_max_rcache(entries: int) -> None:
    """How many corequest results each worker's result cache keeps (least recently used go)."""
    get_kernel().config.max_rcache = int(entries)


def register_cache_keys(*keys: str) -> None:
    """Name the models whose changes the workers share (`was.setlu`/`was.getlu`); before run()."""
    _register_shared("cache key", *keys)


def register_states(*names: str) -> None:
    """Name integer states the workers share (`was.setgs`/`was.getgs`); before run()."""
    _register_shared("state", *names)


def _register_shared(kind: str, *names: str) -> None:
    kernel = get_kernel()
    if kernel.shared is not None:
        raise RuntimeError(f"skitai: register {kind}s before skitai.run(); the shared table is allocated "
                           "when the server starts and cannot grow afterwards")
    from .corequest.shared import CACHE_KEY, register

    config = kernel.config
    mine, others = (config.cache_keys, config.states) if kind == CACHE_KEY else (config.states, config.cache_keys)
    register(kind, mine, others, names)


def log_off(*patterns: str) -> None:
    get_kernel().config.log_off.extend(patterns)


def add_option(short: str | None, long: str | None = None, desc: str = "") -> None:
    """Declare an app option: `add_option('-D', '--dist', 'distribute mode')`, or one that takes
    a value: `add_option(None, '--db=DB_NAME', 'use that database')`. It shows in `--help`."""
    options.add_option(short, long, desc)


def get_option(*names: str):
    """The value of the first of `names` given on the command line (True for a flag), else None."""
    return options.get_option(*names)


def is_devel() -> bool:
    """True when the script runs with `--devel`."""
    return bool(options.parse().devel)


isdev = is_devel


def _apply_command_line(kernel: Kernel) -> None:
    """Read the command line into the settings; `--help` prints every option and exits."""
    config = kernel.config
    options.set_plugin_options(lambda parser: kernel.pm.hook.skitai_add_options(parser=parser))
    parsed = options.parse()
    if parsed.help:
        print(options.help_text())
        sys.exit(0)
    config.options = parsed
    config.command = options.command
    if parsed.port:
        config.port = parsed.port
    config.devel = parsed.devel
    config.silent = parsed.silent and not parsed.devel
    config.fallback_user = parsed.fallback_user
    config.profile, config.manual_gc, config.memtrack = parsed.profile, parsed.gc, parsed.memtrack
    _apply_mode(kernel)


def _apply_mode(kernel: Kernel) -> None:
    """`--devel` turns `debug` and `use_reloader` on for every mounted app, `--silent` off."""
    config = kernel.config
    if not (config.devel or config.silent):
        return
    for handler in kernel.mounts.handlers():
        app = getattr(handler, "app", None)
        if app is None:
            continue
        for name in ("debug", "use_reloader"):
            try:
                setattr(app, name, config.devel)
            except (AttributeError, TypeError):
                pass  # an app that takes no attributes; config.devel still shows tracebacks


def run(address: str | None = None, port: int | None = None, threads: int | None = None,
        name: str | None = None, workers: int = 1) -> None:
    """Serve the mounted apps until SIGINT or SIGTERM, then stop gracefully.

    With `workers` > 1 this process becomes the master: it binds, forks the workers that share
    the socket and replaces any that dies.
    """
    if workers < 1:
        raise ValueError("skitai.run(workers=N) needs N >= 1")
    kernel = get_kernel()
    config = kernel.config
    if address is not None:
        config.address = address
    if port is not None:
        config.port = int(port)
    if threads is not None:
        config.threads = int(threads)
    if name is not None:
        config.name = name
    config.workers = workers
    _apply_command_line(kernel)
    if config.command:
        raise NotImplementedError(f"the {config.command!r} command (daemon and systemd commands, issue 3)")
    kernel.pm.hook.skitai_configure(config=config)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.chdir(getswd())
    from .server import Server, bind_socket
    from .supervisor import LISTEN_FD_ENV, WorkerSupervisor, set_title

    inherited = os.environ.pop(LISTEN_FD_ENV, None)
    if inherited is not None:
        sock = socket.socket(fileno=int(inherited))  # a graceful reload: the same socket
    else:
        sock = bind_socket(config.address, config.port)
    from .corequest.shared import SharedTable

    kernel.shared = SharedTable(config.cache_keys, config.states)  # before forking: the workers share it
    if workers == 1:
        set_title(f"{process_label(config.name)}: master")
        Server(kernel).serve(sock)
    else:
        WorkerSupervisor(kernel, sock, workers).run()
