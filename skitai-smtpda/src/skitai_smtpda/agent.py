"""The delivery agent: `python -m skitai_smtpda.agent --spool PATH`, a process of its own (one per
spool, see `lock`) that sends what the apps spool.

It polls the queue, groups due messages by SMTP server and sends them oldest first over a few
connections per server at once (`--connections`, 4: one connection waits on the server's
answers most of the time). A message leaves the queue only after the server has taken it: killed
at any moment, the agent loses nothing, and only a kill between the server's acceptance and the
removal of the file makes a message go twice (at-least-once delivery). A temporary failure is
tried again after the message's retry delay, doubled at each attempt; a permanent one (5xx), or
the last attempt failing, moves the message to the dead letters with the reason. Every attempt
is logged, one line each.
"""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from .delivery import TIMEOUT, Connection, Failure
from .lock import AgentLock
from .settings import default_spool
from .smtpserver import SmtpServer
from .spool import Envelope, Spool

POLL = 0.1   # seconds between looks at an idle queue
CONNECTIONS = 4  # at most this many connections to one server at once, each on a thread
BATCH = 500  # messages read per pass: a huge queue is worked through without holding it all
LOG_FILE = "smtpda.log"

log = logging.getLogger("skitai.smtpda")


def log_path(spool_path: str) -> str:
    """The agent's log, in its spool."""
    return os.path.join(spool_path, LOG_FILE)


def command(spool_path: str | None) -> list[str]:
    """How the master and `skitai smtpda start` run the agent; without a spool, the agent takes
    the default of the user it runs as (a master started by root has dropped its privileges by
    the time it starts the agent, and so have the workers that spool)."""
    return [sys.executable, "-m", "skitai_smtpda.agent", *(["--spool", spool_path] if spool_path else [])]


class Agent:
    def __init__(self, spool: Spool, poll: float = POLL, timeout: float = TIMEOUT,
                 connections: int = CONNECTIONS) -> None:
        self.spool = spool
        self.connections = connections
        self.poll = poll
        self.timeout = timeout
        self.stopping = False
        self.not_before: dict[str, float] = {}  # retrying messages not due yet: not read again

    def stop(self, signum=None, frame=None) -> None:
        """SIGTERM: finish the message being sent, then exit."""
        self.stopping = True

    def run(self) -> None:
        self.spool.sweep_tmp()
        log.info("delivering from %s (pid %d)", self.spool.path, os.getpid())
        while not self.stopping:
            if not self.run_once():
                time.sleep(self.poll)
        log.info("stopped")

    # one pass over the queue
    def run_once(self) -> int:
        """Attempt every due message once; how many were attempted."""
        groups: dict[SmtpServer, list[tuple[Envelope, bytes]]] = {}
        for envelope, message in self._due():
            groups.setdefault(SmtpServer.from_dict(envelope.smtp), []).append((envelope, message))
        jobs = [(server, items[start::self.connections]) for server, items in groups.items()
                for start in range(min(self.connections, len(items)))]
        if len(jobs) <= 1:
            return self._deliver(*jobs[0]) if jobs else 0
        with ThreadPoolExecutor(min(len(jobs), self.connections)) as pool:
            return sum(pool.map(lambda job: self._deliver(*job), jobs))

    def _due(self) -> Iterator[tuple[Envelope, bytes]]:
        now = time.time()
        ids = self.spool.ids()
        self.not_before = {key: at for key, at in self.not_before.items() if at > now}
        count = 0
        for message_id in ids:
            if self.not_before.get(message_id, 0) > now:
                continue
            if os.path.exists(os.path.join(self.spool.dead, message_id)):
                self.spool.remove(message_id)  # buried, but killed before the queued file went
                continue
            item = self.spool.read(message_id)
            if item is None:
                continue
            if item[0].next_attempt > now:
                self.not_before[message_id] = item[0].next_attempt
                continue
            yield item
            count += 1
            if count >= BATCH:
                return

    def _deliver(self, server: SmtpServer, items: list[tuple[Envelope, bytes]]) -> int:
        """Over one connection, opened anew after a failure; a connection that cannot be opened
        fails the rest of `items` with the same reason (each message's attempt counted and
        logged): a server that is down is not asked once per message."""
        connection = Connection(server, self.timeout)
        attempted = 0
        try:
            for index, (envelope, message) in enumerate(items):
                if self.stopping:
                    break
                attempted += 1
                if not connection.is_open:
                    try:
                        connection.open()
                    except Failure as error:
                        for later, data in items[index:]:
                            self._failed(later, data, error.reason, error.temporary)
                        return len(items)
                try:
                    refused = connection.send(envelope.sender, envelope.recipients, message)
                except Failure as error:
                    self._failed(envelope, message, error.reason, error.temporary)
                    continue
                self._sent(envelope, message, refused)
        finally:
            connection.close()
        return attempted

    # outcomes
    def _sent(self, envelope: Envelope, message: bytes, refused: dict[str, tuple[int, str]]) -> None:
        server = SmtpServer.from_dict(envelope.smtp).address
        taken = [rcpt for rcpt in envelope.recipients if rcpt not in refused]
        log.info("sent %s (attempt %d) from %s to %s via %s", envelope.id, envelope.attempts + 1,
                 envelope.sender, ", ".join(taken), server)
        if not refused:
            self.spool.remove(envelope.id)
            return
        # Some recipients refused while the others were taken: the refused ones go on alone.
        permanent = [rcpt for rcpt, (code, _) in refused.items() if 500 <= code < 600]
        if permanent:
            reason = "; ".join(f"{rcpt}: {refused[rcpt][1]}" for rcpt in permanent)
            copy = Envelope(**{**vars(envelope), "id": f"{envelope.id}-refused", "recipients": permanent})
            log.error("dead %s: %s refused for good via %s: %s", copy.id, ", ".join(permanent), server, reason)
            self.spool.bury(copy, message, reason)
        temporary = [rcpt for rcpt in refused if rcpt not in permanent]
        if not temporary:
            self.spool.remove(envelope.id)
            return
        envelope.recipients = temporary
        self._failed(envelope, message, "; ".join(f"{rcpt}: {refused[rcpt][1]}" for rcpt in temporary), True)

    def _failed(self, envelope: Envelope, message: bytes, reason: str, temporary: bool) -> None:
        envelope.attempts += 1
        envelope.errors.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {reason}")
        where = f"{envelope.id} (attempt {envelope.attempts} of {envelope.max_attempts}) to " \
                f"{', '.join(envelope.recipients)}"
        if not temporary:
            log.error("dead %s: permanent failure: %s", where, reason)
            self.spool.bury(envelope, message, f"permanent failure: {reason}")
        elif envelope.attempts >= envelope.max_attempts:
            log.error("dead %s: gave up after %d attempts: %s", where, envelope.attempts, reason)
            self.spool.bury(envelope, message, f"gave up after {envelope.attempts} attempts, the last: {reason}")
        else:
            delay = envelope.retry_delay * 2 ** (envelope.attempts - 1)
            envelope.next_attempt = time.time() + delay
            log.warning("retry %s in %g s: %s", where, delay, reason)
            self.spool.put(envelope, message)
            self.not_before[envelope.id] = envelope.next_attempt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skitai_smtpda.agent",
                                      description="Deliver the messages spooled by was.email.")
    parser.add_argument("--spool", default=None, help="the spool folder (default: the per-user one, or "
                                                       "SKITAI_SMTPDA_SPOOL)")
    parser.add_argument("--log-file", default=None, help=f"where to log (default: {LOG_FILE} in the spool; "
                                                         "- for stderr)")
    parser.add_argument("--poll", type=float, default=POLL, help="seconds between looks at an idle queue")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help="SMTP connect and answer timeout")
    parser.add_argument("--connections", type=int, default=CONNECTIONS,
                        help="connections to one server at once (default: %(default)s)")
    args = parser.parse_args(argv)
    spool = Spool(os.path.abspath(args.spool or default_spool())).create()
    # A log moved away by logrotate is noticed and opened anew (WatchedFileHandler): no signal
    # needed, and the agent is nobody's child to send one.
    handler = (logging.StreamHandler(sys.stderr) if args.log_file == "-"
               else logging.handlers.WatchedFileHandler(args.log_file or log_path(spool.path)))
    logging.basicConfig(level=logging.INFO, handlers=[handler],
                        format="%(asctime)s skitai-smtpda[%(process)d] %(levelname)s %(message)s")
    lock = AgentLock(spool.path)
    if not lock.acquire():
        log.info("another agent delivers from %s (pid %s): exiting", spool.path, lock.holder())
        return 0
    from skitai.supervisor import set_title

    set_title(f"skitai-smtpda: {spool.path}")
    agent = Agent(spool, args.poll, args.timeout, max(1, args.connections))
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a detached service: a closing terminal is no stop
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
