"""A test plugin that asks the master to run a process (`skitai_register_processes`): the
sidecar in `sidecar_process.py`, configured by environment variables so one script serves
every case: SIDECAR_DIR (where the sidecar records its starts and stops), SIDECAR_ON_STOP,
SIDECAR_ON_RELOAD, SIDECAR_EXIT_AT_ONCE (a sidecar that exits as soon as it starts)."""
import os
import sys

from skitai.plugin import hookimpl

HERE = os.path.dirname(os.path.abspath(__file__))


def running_elsewhere():
    """The pid of a sidecar started outside this master (by the test), if it still runs."""
    try:
        with open(os.path.join(os.environ["SIDECAR_DIR"], "outside.pid")) as file:
            pid = int(file.read())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


@hookimpl
def skitai_register_processes(processes, config):
    command = [sys.executable, os.path.join(HERE, "sidecar_process.py"), os.environ["SIDECAR_DIR"]]
    if os.environ.get("SIDECAR_EXIT_AT_ONCE"):
        command.append("--exit-at-once")
    processes.add("sidecar", command, on_stop=os.environ.get("SIDECAR_ON_STOP", "stop"),
                  on_reload=os.environ.get("SIDECAR_ON_RELOAD", "keep"),
                  running_elsewhere=running_elsewhere,
                  output=os.path.join(os.environ["SIDECAR_DIR"], "output.log"))
