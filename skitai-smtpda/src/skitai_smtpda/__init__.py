"""skitai-smtpda: `was.email(subject, snd, rcpt)` composes a message and spools it at once; a
delivery agent process sends what is spooled over SMTP, retrying what fails for a while.

    e = was.email("Hello", "Me <me@example.com>", ["you@example.com"])
    e.add_content("<p>Hello</p>", "text/html")
    e.send()
"""
from .settings import set_retry, set_spool

__all__ = ["Email", "set_retry", "set_spool"]


def __getattr__(name: str):
    """`Email`, imported at its first use (see `plugin`: the package loads with every script)."""
    if name == "Email":
        from .compose import Email

        return Email
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
