"""The skitai-smtpda plugin: `was.email`, the `--smtpda` option that has the master run the
delivery agent, and the `skitai smtpda` command.

The composing of messages (`compose`: the email package, idna) is imported at the first
`was.email(...)`, and the agent (`agent`: smtplib, logging.handlers) when it is run or managed:
every script loads every installed plugin, and a worker that sends no mail should not pay for
them (about 1.4 MiB)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from skitai.plugin import hookimpl, import_feature, require_libraries

from .lock import AgentLock
from .settings import settings, spool_path
from .smtpserver import SmtpServer
from .spool import Spool

if TYPE_CHECKING:
    from .compose import Email


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
    """`was.email(subject, snd, rcpt, cc=None, bcc=None)`: an `Email` for the spool of this process, whose folders
    are made on the first call (an app that sends no mail leaves no spool behind)."""

    def __init__(self, spool: Spool, smtp: SmtpServer | None) -> None:
        self.spool = spool
        self.smtp = smtp
        self.ready = False

    def __call__(self, subject: str, snd: str, rcpt: str | list[str], cc: str | list[str] | None = None,
                 bcc: str | list[str] | None = None) -> Email:
        compose = import_feature("skitai_smtpda.compose", "was.email", "skitai-smtpda")
        if not self.ready:
            self.spool.create()
            self.ready = True
        return compose.Email(self.spool, subject, snd, rcpt, self.smtp, cc=cc, bcc=bcc)


@hookimpl
def skitai_configure(config):
    default_server(config)  # a bad setting stops the start, before any socket is bound
    require_libraries("was.email", "skitai-smtpda", "idna")  # imported at its first use


@hookimpl
def skitai_register_services(was):
    was.add_service("email", EmailService(Spool(spool_path()), default_server(was.server.config)))


@hookimpl
def skitai_add_options(parser):
    group = parser.add_argument_group("skitai-smtpda")
    group.add_argument("--smtpda", action="store_true",
                       help="run the SMTP delivery agent if not started (it outlives the app: "
                            "`skitai smtpda stop` stops it)")


@hookimpl
def skitai_register_processes(processes, config):
    """`--smtpda`: the master makes sure an agent serves the spool while it runs, and leaves it
    running when it stops (the manual: a system-wide service, stopped by `skitai smtpda stop`)."""
    if config.options is None or not getattr(config.options, "smtpda", False):
        return
    # The spool is decided where it is used, by the user the master and workers run as once a
    # root start has dropped its privileges (which comes after this hook): the agent (which logs
    # to its spool), the workers, and the master's look for a running agent.
    from . import agent

    processes.add("smtpda", agent.command(settings.spool), on_stop="detach", on_reload="keep",
                  running_elsewhere=lambda: AgentLock(spool_path()).holder())


def smtpda(argv: list[str]) -> int:
    """`skitai smtpda ...` (see `commands`)."""
    from .commands import smtpda

    return smtpda(argv)


@hookimpl
def skitai_register_commands(commands):
    commands.add("smtpda", smtpda, help="start, stop or show the SMTP delivery agent: "
                                        "smtpda {start,stop,status} [--spool PATH]")
