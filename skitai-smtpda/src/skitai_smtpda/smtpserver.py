"""Which SMTP server a message goes through, as `set_smtp` names it and its envelope in the
spool carries it."""
from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_PORT = 25


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = DEFAULT_PORT
    user: str | None = None
    password: str | None = None
    ssl: bool = False       # TLS from the first byte (port 465)
    starttls: bool = False  # a plain connection upgraded with STARTTLS (port 587)
    ca: str | None = None   # a PEM file of CAs trusted in addition to the system's

    @classmethod
    def parse(cls, server: str, user: str | None = None, password: str | None = None, ssl: bool = False,
              starttls: bool = False, ca: str | None = None) -> "SmtpServer":
        """From `set_smtp("host:port", user, password, ssl=..., starttls=..., ca=...)`;
        ValueError for what cannot work."""
        text = str(server or "").strip()
        host, colon, port = text.rpartition(":")
        if not colon:
            host, port = text, str(DEFAULT_PORT)
        host = host.strip("[]")  # "[::1]:25"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"the SMTP server must be 'host:port', not {server!r}")
        if ssl and starttls:
            raise ValueError("ssl=True (TLS from the first byte) and starttls=True exclude each other")
        if (user is None) != (password is None):
            raise ValueError("an SMTP login needs both a user and a password")
        return cls(host, int(port), user, password, bool(ssl), bool(starttls), ca)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SmtpServer":
        return cls(**data)
