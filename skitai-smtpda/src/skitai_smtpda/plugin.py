"""The skitai-smtpda plugin: `was.email`, the `--smtpda` option that has the master run the
delivery agent, and the `skitai smtpda` command."""
from __future__ import annotations

from skitai.plugin import hookimpl

from .compose import Email
from .settings import spool_path
from .smtpserver import SmtpServer
from .spool import Spool


def default_server(config) -> SmtpServer | None:
    """The server of `skitai.set_smtp`, checked (ValueError names what is wrong)."""
    if config.smtp_server is None:
        return None
    try:
        return SmtpServer.parse(config.smtp_server, config.smtp_user, config.smtp_password,
                                config.smtp_ssl, config.smtp_starttls, config.smtp_ca)
    except ValueError as error:
        raise ValueError(f"skitai.set_smtp: {error}") from None


class EmailService:
    """`was.email(subject, snd, rcpt)`: an `Email` for the spool of this process."""

    def __init__(self, spool: Spool, smtp: SmtpServer | None) -> None:
        self.spool = spool
        self.smtp = smtp

    def __call__(self, subject: str, snd: str, rcpt: str | list[str]) -> Email:
        return Email(self.spool, subject, snd, rcpt, self.smtp)


@hookimpl
def skitai_configure(config):
    default_server(config)  # a bad setting stops the start, before any socket is bound


@hookimpl
def skitai_register_services(was):
    spool = Spool(spool_path()).create()
    was.add_service("email", EmailService(spool, default_server(was.server.config)))
