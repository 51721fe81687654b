"""One SMTP connection with smtplib: implicit TLS or STARTTLS, certificates verified against the
system's CAs plus a private one, AUTH; and the verdict on a failure: temporary (4xx answers,
connections that fail or drop: try again later) or permanent (5xx answers: give up).
A message with an address beyond ASCII (a local part: domains are IDNA already, see `compose`)
goes with SMTPUTF8 (RFC 6531), and fails for good, with that reason, at a server that does not
offer it: no other form of the address exists to send instead.

Blocking on purpose: the agent is a process of its own that sends one message at a time per
connection, which is what an SMTP server takes anyway (see bench/README.md for the figures).
"""
from __future__ import annotations

import smtplib
import ssl

from .smtpserver import SmtpServer

TIMEOUT = 30.0  # seconds for connecting and for each answer


class Failure(Exception):
    def __init__(self, reason: str, temporary: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


def is_temporary(code: int) -> bool:
    """RFC 5321 4.2.1: 4yz is a transient failure; 5yz permanent; anything else is no answer a
    client can trust, so it is tried again."""
    return not 500 <= code < 600


def describe_answer(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


def failure(error: BaseException, server: SmtpServer) -> Failure:
    """The verdict on what smtplib or the network raised."""
    where = f"{server.address}: "
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = error.recipients.values()
        temporary = any(is_temporary(code) for code, _ in answers)
        return Failure(where + "; ".join(f"{rcpt}: {describe_answer(*answer)}"
                                         for rcpt, answer in error.recipients.items()), temporary)
    if isinstance(error, smtplib.SMTPResponseException):
        return Failure(where + describe_answer(error.smtp_code, error.smtp_error), is_temporary(error.smtp_code))
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Failure(where + str(error), False)  # STARTTLS or AUTH not offered: no retry helps
    if isinstance(error, ssl.SSLCertVerificationError):
        return Failure(where + f"certificate not trusted: {error.verify_message}", True)
    return Failure(where + (f"{type(error).__name__}: {error}" if str(error) else type(error).__name__), True)


def tls_context(server: SmtpServer) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if server.ca:
        context.load_verify_locations(cafile=server.ca)
    return context


class Connection:
    """An open, logged-in SMTP session to one server, reused for every message to it."""

    def __init__(self, server: SmtpServer, timeout: float = TIMEOUT) -> None:
        self.server = server
        self.timeout = timeout
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        """Connect, upgrade, log in; raises Failure."""
        server = self.server
        try:
            if server.ssl:
                smtp = smtplib.SMTP_SSL(server.host, server.port, timeout=self.timeout, context=tls_context(server))
            else:
                smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as error:
            raise failure(error, server) from None
        self.smtp = smtp
        try:
            smtp.ehlo_or_helo_if_needed()
            if server.starttls:
                smtp.starttls(context=tls_context(server))
                smtp.ehlo()
            if server.user is not None:
                smtp.login(server.user, server.password)
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise failure(error, server) from None

    def send(self, sender: str, recipients: list[str], message: bytes) -> dict[str, tuple[int, str]]:
        """Send one message; the recipients the server refused while it took the message for
        the others ({} when it took them all). Raises Failure when it took none or the
        connection failed; the connection is closed then."""
        options = []
        if not all(address.isascii() for address in (sender, *recipients)):
            if not self.smtp.has_extn("smtputf8"):
                raise Failure(f"{self.server.address}: the server does not offer SMTPUTF8, which the "
                              f"non-ASCII address(es) {', '.join(a for a in (sender, *recipients) if not a.isascii())} "
                              f"need", False)
            options.append("SMTPUTF8")
            if self.smtp.has_extn("8bitmime"):
                options.append("BODY=8BITMIME")  # the headers are UTF-8
        try:
            refused = self.smtp.sendmail(sender, recipients, message, options)
        except smtplib.SMTPRecipientsRefused as error:
            # every recipient refused: the session itself is fine (smtplib sent RSET)
            raise failure(error, self.server) from None
        except (OSError, smtplib.SMTPException) as error:
            self.close()
            raise failure(error, self.server) from None
        return {rcpt: (code, describe_answer(code, text)) for rcpt, (code, text) in refused.items()}

    @property
    def is_open(self) -> bool:
        return self.smtp is not None

    def close(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
