"""aiosmtpd as the real SMTP server of the tests: plain, STARTTLS (required) or implicit TLS with
a trustme certificate, AUTH, and a handler whose answers the test chooses per recipient (by
the address's local part) or for the whole message: 4xx, 5xx, or a dropped connection."""
from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from skitai.testing import free_port, make_certificates

USER, PASSWORD = "mailer", "s3cret"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes


class Handler:
    """Takes every message and records it, except that a recipient whose local part starts
    with `temp` is refused with 450 and `perm` with 550; `data_answer` (when set) answers the
    DATA instead of 250, and `drop` closes the connection at DATA. `accept_after` lets the
    Nth message onwards through."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.data_answer: str | None = None
        self.drop = False
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@")[0]
        if local.startswith("temp"):
            return "450 4.2.1 mailbox busy, try later"
        if local.startswith("perm"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop:
            server.transport.close()
            return "421 closing"  # never reaches the client
        if self.data_answer:
            return self.data_answer
        with self.changed:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            self.changed.notify_all()
        return "250 OK queued"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} messages received in {timeout} s")
            return list(self.received)


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself


class SmtpServer:
    """`mode`: "plain", "starttls" (STARTTLS required before MAIL) or "ssl" (TLS at once);
    `auth=True` requires AUTH (offered only over TLS unless plain); `handler` a `Handler`
    subclass instance that answers otherwise; `smtputf8=True` offers SMTPUTF8 (RFC 6531)."""

    def __init__(self, folder: str, mode: str = "plain", auth: bool = False, handler: Handler | None = None,
                 smtputf8: bool = False) -> None:
        self.handler = handler or Handler()
        self.port = free_port()
        self.mode = mode
        self.certificates = make_certificates(folder, "localhost", "127.0.0.1") if mode != "plain" else None
        options = {"enable_SMTPUTF8": smtputf8}
        if self.certificates is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certificates.cert, self.certificates.key)
            if mode == "ssl":
                options["ssl_context"] = context
            else:
                options.update(tls_context=context, require_starttls=True)
        if auth:
            options.update(authenticator=_authenticate, auth_required=True,
                           auth_require_tls=mode == "starttls")
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", ready_timeout=10, **options)

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.controller.stop()
