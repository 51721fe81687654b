"""The spool: a folder of message files that app processes write and the delivery agent reads.

A file holds one message: its envelope (sender, recipients, SMTP server, attempts made) as one
JSON line, then the message bytes exactly as they go on the wire. Every change is a whole new
file written in `tmp/`, flushed to disk (fsync) and renamed into place, as Maildir and qmail
do: at every moment, and after a crash or SIGKILL of any process at any point, a message is
either wholly in `queue/` (or `dead/`) or not at all. The folder itself is not flushed after the
rename (a journal commit per message, which halved the throughput of apps sending at once):
after a power failure, the renames of the filesystem's last commit interval (5 s on ext4) may
be undone, never half done. Leftovers in `tmp/` are never read; the agent removes those older
than `STALE_TMP` seconds.

    queue/<id>   waiting: new (no attempt yet) or retrying (its envelope says when next)
    dead/<id>    given up: its envelope's `reason` says why
    tmp/         files being written
    agent.lock   held by the running agent (see `lock`)

Ids sort in the order messages were spooled, so the oldest goes first.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field

QUEUE, DEAD, TMP = "queue", "dead", "tmp"
STALE_TMP = 3600.0


class ForeignSpool(PermissionError):
    """The spool, or the folder it is in, belongs to another user."""


@dataclass
class Envelope:
    id: str
    sender: str            # the SMTP envelope's MAIL FROM
    recipients: list[str]  # its RCPT TO
    smtp: dict             # skitai_smtpda.smtpserver.SmtpServer.as_dict()
    retry_delay: float
    max_attempts: int
    created: float = field(default_factory=time.time)
    attempts: int = 0
    next_attempt: float = 0.0  # time.time() before which it is not tried
    errors: list[str] = field(default_factory=list)  # one line per failed attempt
    reason: str | None = None  # why it is in dead/

    def line(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=True).encode("ascii") + b"\n"


def new_id() -> str:
    """Sorts by spooling time; unique across processes without coordination."""
    return f"{time.time_ns():020d}-{os.getpid()}-{secrets.token_hex(4)}"


class Spool:
    def __init__(self, path: str) -> None:
        self.path = path
        self.queue = os.path.join(path, QUEUE)
        self.dead = os.path.join(path, DEAD)
        self.tmp = os.path.join(path, TMP)

    def create(self) -> "Spool":
        """Make the folders, readable by their owner only (messages carry SMTP passwords).
        ForeignSpool when the spool, or the folder it is in, belongs to another user (made
        there first in /var/tmp, it could read or swap the messages)."""
        for folder in (self.path, self.queue, self.dead, self.tmp):
            os.makedirs(folder, mode=0o700, exist_ok=True)
        me = os.geteuid()
        for folder in (os.path.dirname(self.path), self.path):
            owner = os.stat(folder).st_uid
            if owner not in (me, 0):
                raise ForeignSpool(f"skitai-smtpda: {folder} belongs to uid {owner}, not to this user "
                                      f"(uid {me}): choose another spool")
        if os.stat(self.path).st_mode & 0o077:
            os.chmod(self.path, 0o700)
        return self

    # writing
    def _write(self, folder: str, envelope: Envelope, message: bytes) -> None:
        temporary = os.path.join(self.tmp, f"{envelope.id}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(envelope.line())
                file.write(message)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, os.path.join(folder, envelope.id))
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise

    def put(self, envelope: Envelope, message: bytes) -> None:
        """Spool a new message (or replace a queued one's envelope, same id)."""
        self._write(self.queue, envelope, message)

    def bury(self, envelope: Envelope, message: bytes, reason: str) -> None:
        """Move to the dead letters with `reason` (a copy first, then the queued file goes: a
        crash in between leaves it in both, and the agent finishes the move)."""
        envelope.reason = reason
        self._write(self.dead, envelope, message)
        self.remove(envelope.id)

    def remove(self, message_id: str) -> None:
        """Delivered: the queued file goes (a power failure may bring it back: the message
        goes twice, as at-least-once allows)."""
        try:
            os.unlink(os.path.join(self.queue, message_id))
        except FileNotFoundError:
            pass

    # reading
    def ids(self, folder: str | None = None) -> list[str]:
        try:
            return sorted(name for name in os.listdir(folder or self.queue) if not name.startswith("."))
        except FileNotFoundError:
            return []

    def read(self, message_id: str, folder: str | None = None) -> tuple[Envelope, bytes] | None:
        """The envelope and message of a file, or None when it is gone (or unreadable: a
        file of another program in the folder is no message)."""
        try:
            with open(os.path.join(folder or self.queue, message_id), "rb") as file:
                data = file.read()
        except (FileNotFoundError, IsADirectoryError):
            return None
        line, _, message = data.partition(b"\n")
        try:
            envelope = Envelope(**json.loads(line))
        except (ValueError, TypeError):
            return None
        return envelope, message

    def counts(self) -> dict[str, int]:
        """queued (never tried yet), retrying (tried, failed for now), dead."""
        queued = retrying = 0
        for message_id in self.ids():
            item = self.read(message_id)
            if item is None:
                continue
            if item[0].attempts:
                retrying += 1
            else:
                queued += 1
        return {"queued": queued, "retrying": retrying, "dead": len(self.ids(self.dead))}

    def sweep_tmp(self, older_than: float = STALE_TMP) -> None:
        """Files a writer left half-written when it died: they were never messages."""
        limit = time.time() - older_than
        for name in self.ids(self.tmp):
            path = os.path.join(self.tmp, name)
            try:
                if os.stat(path).st_mtime < limit:
                    os.unlink(path)
            except FileNotFoundError:
                pass
