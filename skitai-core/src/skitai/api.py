"""The functions a Skitai script calls (`skitai.mount`, `skitai.run`, `skitai.set_*` ...)."""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from .kernel import Kernel
from .paths import getswd, process_label
from .preference import Preference

_kernel: Kernel | None = None


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


def log_off(*patterns: str) -> None:
    get_kernel().config.log_off.extend(patterns)


def _parse_command_line(kernel: Kernel) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=os.path.basename(sys.argv[0] or "skitai"), add_help=False)
    parser.add_argument("--port", type=int, help="port to listen on (overrides the script)")
    kernel.pm.hook.skitai_add_options(parser=parser)
    options, _ = parser.parse_known_args(sys.argv[1:])
    return options


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
    config.options = _parse_command_line(kernel)
    if config.options.port:
        config.port = config.options.port
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
    if workers == 1:
        set_title(f"{process_label(config.name)}: master")
        Server(kernel).serve(sock)
    else:
        WorkerSupervisor(kernel, sock, workers).run()
