"""`was.email(subject, snd, rcpt)`: a message built with the standard `email` package and
spooled by `send()`.

Addresses may carry display names in any script ("홍길동 <gd@example.com>"); the headers encode
them (RFC 2047) and the envelope keeps the bare addresses. Domains in any script are written in
IDNA (xn--) form, which every server takes; a local part in another script than ASCII
("jörg@example.com") cannot be written so, and makes the message one for SMTPUTF8 (RFC 6531):
its headers in UTF-8, sent only to a server that offers SMTPUTF8 (see `delivery`). Cc
recipients are in the headers and the envelope, Bcc recipients in the envelope only. Text parts of both kinds make a
multipart/alternative; images added with a `cid` are related to the HTML part (shown inline
through `<img src="cid:ID">`); other files are attachments, their type guessed from the name.
"""
from __future__ import annotations

import email.policy
import mimetypes
import os
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid

import idna

from .settings import settings
from .smtpserver import SmtpServer
from .spool import Envelope, Spool, new_id

# 7-bit transfer encodings only (quoted-printable, base64): no server needs 8BITMIME
POLICY = email.policy.SMTP.clone(cte_type="7bit")
# a message with a non-ASCII local part: headers in UTF-8, for a server that offers SMTPUTF8
UTF8_POLICY = POLICY.clone(utf8=True)
TEXT_TYPES = ("text/plain", "text/html")


def parse_addresses(value: str | list[str] | tuple[str, ...], role: str) -> list[Address]:
    """"Name <user@host>", a bare address, or a list of them (a string may hold several,
    comma-separated); ValueError for anything that is no address."""
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if not items or not all(isinstance(item, str) for item in items):
        raise ValueError(f"was.email: the {role} must be an address or a list of addresses, not {value!r}")
    addresses = []
    for name, addr in getaddresses(items):
        user, at, domain = addr.rpartition("@")
        if not at or not user or not domain or any(c.isspace() for c in addr):
            raise ValueError(f"was.email: {addr or value!r} is not an e-mail address ({role})")
        addresses.append(Address(display_name=name, username=user, domain=ascii_domain(domain, addr, role)))
    return addresses


def ascii_domain(domain: str, addr: str, role: str) -> str:
    """The domain as it goes on the wire: IDNA (UTS 46 mapped: "Bücher.example" is
    "xn--bcher-kva.example"); ValueError for a name IDNA cannot write."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as error:
        raise ValueError(f"was.email: {addr!r} has a domain that is no valid international name ({role}): "
                         f"{error}") from None


def unique(addresses: list[Address]) -> list[str]:
    """The bare addresses, each once, in order: the SMTP envelope's RCPT TO."""
    return list(dict.fromkeys(address.addr_spec for address in addresses))


class Email:
    """One message; `send()` spools it. Made by `was.email(subject, snd, rcpt)`."""

    def __init__(self, spool: Spool, subject: str, snd: str, rcpt: str | list[str],
                 smtp: SmtpServer | None = None, cc: str | list[str] | None = None,
                 bcc: str | list[str] | None = None) -> None:
        self.spool = spool
        self.subject = str(subject)
        self.sender = parse_addresses(snd, "sender")
        if len(self.sender) != 1:
            raise ValueError(f"was.email: one sender, not {snd!r}")
        self.recipients = parse_addresses(rcpt, "recipient")
        self.cc: list[Address] = []
        self.bcc: list[Address] = []
        if cc:
            self.add_cc(cc)
        if bcc:
            self.add_bcc(bcc)
        self.smtp = smtp
        self.contents: dict[str, tuple[str, str]] = {}  # mimetype -> (body, charset)
        self.inline: list[tuple[bytes, str, str, str]] = []       # data, mimetype, filename, cid
        self.attachments: list[tuple[bytes, str, str]] = []       # data, mimetype, filename
        self.sent_id: str | None = None

    def add_cc(self, rcpt: str | list[str]) -> None:
        """Copy to `rcpt` (one address or a list): named in the Cc header, sent to as well."""
        self.cc.extend(parse_addresses(rcpt, "Cc recipient"))

    def add_bcc(self, rcpt: str | list[str]) -> None:
        """Blind copy to `rcpt` (one address or a list): sent to, named in no header, so no
        recipient learns of them."""
        self.bcc.extend(parse_addresses(rcpt, "Bcc recipient"))

    @property
    def needs_smtputf8(self) -> bool:
        """A local part beyond ASCII anywhere (domains are IDNA already)."""
        return not all(a.username.isascii() for a in (*self.sender, *self.recipients, *self.cc, *self.bcc))

    def set_smtp(self, server: str, user: str | None = None, password: str | None = None, ssl: bool = False,
                 starttls: bool = False, ca: str | None = None) -> None:
        """Send this message through `server` ("host:port") rather than the default of
        `skitai.set_smtp` (same arguments)."""
        self.smtp = SmtpServer.parse(server, user, password, ssl, starttls, ca and os.path.abspath(ca))

    def add_content(self, body: str, mimetype: str = "text/plain", charset: str = "utf-8") -> None:
        """The text of the message, as text/plain or text/html; both make a
        multipart/alternative (readers show the HTML, or the plain text when they cannot)."""
        if mimetype not in TEXT_TYPES:
            raise ValueError(f"was.email: add_content takes {' or '.join(TEXT_TYPES)}, not {mimetype!r}")
        self.contents[mimetype] = (str(body), charset)

    def add_attachment(self, path: str, cid: str | None = None, name: str | None = None,
                       mimetype: str | None = None) -> None:
        """Attach the file at `path` (read now). With `cid` it is an inline part the HTML shows
        with `<img src="cid:CID">`; else an attachment named `name` (default: the file's)."""
        with open(path, "rb") as file:
            data = file.read()
        filename = name or os.path.basename(path)
        mimetype = mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if "/" not in mimetype:
            raise ValueError(f"was.email: {mimetype!r} is not a MIME type")
        if cid:
            self.inline.append((data, mimetype, filename, cid.strip("<>")))
        else:
            self.attachments.append((data, mimetype, filename))

    def message(self) -> EmailMessage:
        """The message as it goes on the wire (its Bcc recipients in no header)."""
        message = EmailMessage(policy=UTF8_POLICY if self.needs_smtputf8 else POLICY)
        message["Subject"] = self.subject
        message["From"] = self.sender[0]
        message["To"] = self.recipients
        if self.cc:
            message["Cc"] = self.cc
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=self.sender[0].domain)
        texts = [(mimetype, *self.contents[mimetype]) for mimetype in TEXT_TYPES if mimetype in self.contents]
        if not texts:
            texts = [("text/plain", "", "utf-8")]
        first, *others = texts
        message.set_content(first[1], subtype=first[0].split("/")[1], charset=first[2])
        for mimetype, body, charset in others:
            message.add_alternative(body, subtype=mimetype.split("/")[1], charset=charset)
        if self.inline:
            html = message.get_body(("html",))
            if html is None:
                raise ValueError("was.email: an inline part (add_attachment with a cid) needs text/html content")
            for data, mimetype, filename, cid in self.inline:
                maintype, subtype = mimetype.split("/", 1)
                html.add_related(data, maintype, subtype, cid=f"<{cid}>", filename=filename,
                                 disposition="inline")
        for data, mimetype, filename in self.attachments:
            maintype, subtype = mimetype.split("/", 1)
            message.add_attachment(data, maintype, subtype, filename=filename)
        return message

    def send(self) -> str:
        """Spool the message (written whole, flushed to disk) and return its spool id at once;
        the delivery agent sends it. ValueError when no SMTP server is known."""
        if self.sent_id is not None:
            raise RuntimeError(f"was.email: this message was sent already (spool id {self.sent_id})")
        if self.smtp is None:
            raise ValueError("was.email: no SMTP server: call e.set_smtp(...) or skitai.set_smtp(...)")
        data = self.message().as_bytes()
        envelope = Envelope(new_id(), self.sender[0].addr_spec, unique(self.recipients + self.cc + self.bcc),
                            self.smtp.as_dict(), settings.retry_delay, settings.max_attempts)
        self.spool.put(envelope, data)
        self.sent_id = envelope.id
        return envelope.id
