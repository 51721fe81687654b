"""Processes a plugin asks the master to run beside its workers (a delivery agent, a scheduler),
registered through `skitai_register_processes`, and the watch the master keeps over them.

The master starts each one (unless `running_elsewhere()` names an instance it did not start:
another app's master, a command line), starts it again when it exits while the master runs
(with a back-off when it keeps failing at once), and, when the master reloads or stops, does
what the registration asked: a process kept across a reload is handed to the re-executed master
by pid (it is still this process's child: exec keeps the pid); a detached one outlives the
master's stop and runs in a session of its own, so a Ctrl-C on the master's terminal never
reaches it.

Everything runs on the master's single thread, from its loop (see `supervisor`): `check()` is
cheap enough for every turn.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("skitai.server")

PROCESSES_ENV = "SKITAI_SUPERVISED_PIDS"  # name=pid,... handed to a re-executed master
ON_STOP = ("stop", "detach")
ON_RELOAD = ("keep", "restart")
FIRST_DELAY = 0.5   # seconds before restarting a process that exited at once; doubles ...
MAX_DELAY = 30.0    # ... up to this
STABLE_AFTER = 10.0  # a process that ran this long starts over from FIRST_DELAY when it exits
STOP_WAIT = 10.0     # how long a stop waits for SIGTERM to work before SIGKILL
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass
class ProcessSpec:
    """One process a plugin wants running; see `ProcessRegistry.add`."""

    name: str
    command: list[str]
    on_stop: str = "stop"
    on_reload: str = "keep"
    running_elsewhere: Callable[[], int | None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    output: str | None = None


class ProcessRegistry:
    """Filled by `skitai_register_processes`; read by the master."""

    def __init__(self) -> None:
        self.specs: dict[str, ProcessSpec] = {}

    def add(self, name: str, command: list[str], on_stop: str = "stop", on_reload: str = "keep",
            running_elsewhere: Callable[[], int | None] | None = None,
            env: dict[str, str] | None = None, output: str | None = None) -> None:
        """Ask the master to run `command` (an argv list) as the process `name`.

        `on_stop`: "stop" (SIGTERM with the workers when the master stops, SIGKILL if it does
        not exit in time; on Linux SIGTERM from the kernel when the master dies) or "detach"
        (left running, in its own session, when the master stops or dies: a service that
        outlives the app). `on_reload`: "keep" (the re-executed master
        adopts the running process) or "restart" (stopped before the reload and started anew
        by the new master, for a process that runs the app's code). `running_elsewhere()`, when
        given, returns the pid of an instance the master did not start, or None: the master
        then starts none and checks again on every turn, starting its own once that one is
        gone. `env` is added to the master's environment; `output` is a file the process's
        stdout and stderr are appended to (default: the master's own).
        """
        if name in self.specs:
            raise ValueError(f"supervised process {name!r} is registered twice")
        if on_stop not in ON_STOP:
            raise ValueError(f"supervised process {name!r}: on_stop must be one of {ON_STOP}, not {on_stop!r}")
        if on_reload not in ON_RELOAD:
            raise ValueError(f"supervised process {name!r}: on_reload must be one of {ON_RELOAD}, "
                             f"not {on_reload!r}")
        if not isinstance(command, (list, tuple)) or not command or not all(isinstance(part, str) for part in command):
            raise ValueError(f"supervised process {name!r}: the command must be a non-empty list of strings")
        self.specs[name] = ProcessSpec(name, list(command), on_stop, on_reload, running_elsewhere,
                                       dict(env or {}), output)


class Supervised:
    """The master's view of one registered process: our child's pid (or None), and when to
    start it next."""

    def __init__(self, spec: ProcessSpec, pid: int | None = None) -> None:
        self.spec = spec
        self.pid = pid
        self.started_at = time.monotonic()
        self.delay = FIRST_DELAY
        self.start_after = 0.0  # monotonic time before which no start is tried

    def start(self) -> None:
        spec = self.spec
        stdout = None
        if spec.output:
            stdout = open(spec.output, "ab")  # noqa: SIM115 -- the child keeps its own copy
        try:
            process = subprocess.Popen(
                spec.command, stdin=subprocess.DEVNULL, stdout=stdout,
                stderr=subprocess.STDOUT if stdout else None, env={**os.environ, **spec.env},
                start_new_session=spec.on_stop == "detach",
                preexec_fn=_stop_with_master() if spec.on_stop == "stop" else None)
        except OSError as error:
            log.error("cannot start the supervised process %s: %s", spec.name, error)
            self._back_off()
            return
        finally:
            if stdout is not None:
                stdout.close()
        # The master reaps it itself (waitpid), also after a reload, when no Popen exists:
        # the Popen object must not try to, hence it is dropped once the pid is known.
        process.returncode = 0
        self.pid = process.pid
        self.started_at = time.monotonic()
        log.info("started the supervised process %s (pid %d)", spec.name, self.pid)

    def exit_status(self) -> int | None:
        """The exit status of our child once it has exited (reaped here), else None."""
        if self.pid is None:
            return None
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done, status = self.pid, 0  # not our child any more (reaped elsewhere)
        if not done:
            return None
        self.pid = None
        return os.waitstatus_to_exitcode(status)

    def _back_off(self) -> None:
        self.start_after = time.monotonic() + self.delay
        self.delay = min(self.delay * 2, MAX_DELAY)

    def check(self) -> None:
        """One turn of the master's loop: notice an exit, start when nothing runs."""
        spec = self.spec
        if self.pid is not None:
            status = self.exit_status()
            if status is None:
                return
            if time.monotonic() - self.started_at >= STABLE_AFTER:
                self.delay = FIRST_DELAY
            elsewhere = spec.running_elsewhere() if spec.running_elsewhere else None
            if elsewhere is not None:
                log.info("the supervised process %s exited (status %s): another instance runs "
                         "(pid %d)", spec.name, status, elsewhere)
                return
            log.warning("the supervised process %s exited (status %s), starting it again in %g s",
                        spec.name, status, self.delay)
            self._back_off()
            return
        if time.monotonic() < self.start_after:
            return
        if spec.running_elsewhere is not None and spec.running_elsewhere() is not None:
            return
        self.start()

    def terminate(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait(self, deadline: float) -> None:
        """Until our child exits; SIGKILL at `deadline`."""
        while self.pid is not None and self.exit_status() is None:
            if time.monotonic() >= deadline:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass  # it exited meanwhile
                self.pid = None
                return
            time.sleep(0.05)


class ProcessWatch:
    """Every registered process, as the master runs them."""

    def __init__(self, registry: ProcessRegistry) -> None:
        adopted = _adopted_pids()
        self.processes = [Supervised(spec, adopted.get(spec.name)) for spec in registry.specs.values()]

    def check(self) -> None:
        for process in self.processes:
            process.check()

    def before_reload(self) -> None:
        """Stop what asked to be restarted on a reload; hand the rest to the next master."""
        restarted = [process for process in self.processes if process.spec.on_reload == "restart"]
        for process in restarted:
            process.terminate()
        deadline = time.monotonic() + STOP_WAIT
        for process in restarted:
            process.wait(deadline)
        kept = [f"{process.spec.name}={process.pid}" for process in self.processes if process.pid is not None]
        os.environ[PROCESSES_ENV] = ",".join(kept)

    def stop(self, timeout: float = STOP_WAIT) -> None:
        """The master stops: stop what is to be stopped, leave the detached ones running."""
        stopped = [process for process in self.processes if process.spec.on_stop == "stop"]
        for process in stopped:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in stopped:
            process.wait(deadline)
        for process in self.processes:
            if process.spec.on_stop == "detach" and process.pid is not None:
                log.info("the supervised process %s (pid %d) goes on running", process.spec.name, process.pid)


def _stop_with_master() -> Callable[[], None] | None:
    """Linux: what the forked child runs before exec so that the kernel sends it SIGTERM when
    the master dies without stopping it (SIGKILL, the OOM killer): an `on_stop="stop"` process
    must not outlive it. The death signal is tied to the thread that forked, not the process;
    the master forks from its only thread, its main one, which lives as long as the master.
    A master that died before the child set it is caught by comparing the parent's pid."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # only a server with supervised processes needs it (0.4 MB with libffi)

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child only calls it
    master = os.getpid()

    def set_death_signal() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != master:
            os.kill(os.getpid(), signal.SIGTERM)

    return set_death_signal


def _adopted_pids() -> dict[str, int]:
    """What the master before a reload left running for us (name -> pid)."""
    adopted = {}
    for item in filter(None, os.environ.pop(PROCESSES_ENV, "").split(",")):
        name, _, pid = item.partition("=")
        adopted[name] = int(pid)
    return adopted
