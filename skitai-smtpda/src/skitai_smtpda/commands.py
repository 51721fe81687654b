"""`skitai smtpda start|stop|status [--spool PATH]`: the delivery agent managed on its own, with
LSB exit codes (status: 0 running, 3 not running)."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import time

from skitai.startup import StartupError, UsageError, describe

from .agent import command, log_path
from .lock import AgentLock
from .settings import default_spool
from .spool import ForeignSpool, Spool

START_TIMEOUT = 10.0
STOP_TIMEOUT = 60.0  # the agent finishes the message it sends (SMTP timeouts are 30 s)
OK, FAILED, NOT_RUNNING = 0, 1, 3


def _say(message: str) -> None:
    print(f"skitai smtpda: {message}", flush=True)


def start(spool: Spool) -> int:
    lock = AgentLock(spool.path)
    pid = lock.holder()
    if pid is not None:
        _say(f"already running (pid {pid}), spool {spool.path}")
        return OK
    spool.create()
    with open(log_path(spool.path), "ab") as output:  # what the agent's log cannot hold (a crash)
        process = subprocess.Popen(command(spool.path), stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        pid = lock.holder()
        if pid is not None and pid > 0:
            _say(f"started (pid {pid}), spool {spool.path}, log {log_path(spool.path)}")
            return OK
        if process.poll() is not None:
            break
        time.sleep(0.05)
    _say(f"the agent did not start; see {log_path(spool.path)}")
    return FAILED


def stop(spool: Spool) -> int:
    lock = AgentLock(spool.path)
    pid = lock.holder()
    if pid is None:
        _say("not running")
        return OK
    if pid <= 0:  # never signal pid 0 or -1: that is a process group, or every process
        _say(f"an agent holds {lock.path} but has not written its pid; try again")
        return FAILED
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    except PermissionError:
        _say(f"no permission to stop the agent (pid {pid})")
        return FAILED
    deadline = time.monotonic() + STOP_TIMEOUT
    while lock.holder() is not None:
        if time.monotonic() >= deadline:
            _say(f"the agent (pid {pid}) did not stop within {STOP_TIMEOUT:g} s")
            return FAILED
        time.sleep(0.05)
    _say(f"stopped (pid {pid})")
    return OK


def status(spool: Spool) -> int:
    pid = AgentLock(spool.path).holder()
    counts = spool.counts()
    state = f"running (pid {pid})" if pid is not None else "not running"
    _say(f"{state}, spool {spool.path}: {counts['queued']} queued, {counts['retrying']} retrying, "
         f"{counts['dead']} dead")
    return OK if pid is not None else NOT_RUNNING


ACTIONS = {"start": start, "stop": stop, "status": status}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (usage: skitai smtpda {{{','.join(sorted(ACTIONS))}}} "
                         "[--spool PATH])")


def smtpda(args: list[str]) -> int:
    parser = _Parser(prog="skitai smtpda", description="Manage the SMTP delivery agent.")
    parser.add_argument("action", choices=sorted(ACTIONS))
    parser.add_argument("--spool", help="the spool folder (default: the per-user one, or "
                                        "SKITAI_SMTPDA_SPOOL)")
    parsed = parser.parse_args(args)
    try:
        return ACTIONS[parsed.action](Spool(os.path.abspath(parsed.spool or default_spool())))
    except ForeignSpool as error:  # one line, as for any mistake of the operator's
        raise StartupError(str(error)) from None
    except OSError as error:  # a spool that cannot be made
        raise StartupError(describe(error)) from None
