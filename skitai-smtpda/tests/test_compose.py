"""Composing with `Email` and spooling it: headers encoded, the part structure readers expect,
the envelope; what cannot be sent refused when it is written, not when the agent finds it."""
import email
import email.policy
import os

import pytest

from skitai_smtpda import settings as smtpda_settings
from skitai_smtpda.compose import Email
from skitai_smtpda.smtpserver import SmtpServer
from skitai_smtpda.spool import Spool

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SERVER = SmtpServer.parse("127.0.0.1:2525")


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool")).create()


def spooled(spool, message_id):
    envelope, data = spool.read(message_id)
    return envelope, email.message_from_bytes(data, policy=email.policy.default), data


def test_display_names_and_a_non_ascii_subject_are_encoded(spool):
    e = Email(spool, "Grüße, 안녕하세요", "홍길동 <gd@example.com>",
              ["Zoë Ünal <zoe@example.org>", "plain@example.net"], SERVER)
    e.add_content("Bonjour, ça va ?")
    envelope, message, data = spooled(spool, e.send())
    head = data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() and b"=?utf-8?" in head  # RFC 2047 words on the wire
    assert message["Subject"] == "Grüße, 안녕하세요"
    assert message["From"].addresses[0].display_name == "홍길동"
    assert [a.display_name for a in message["To"].addresses] == ["Zoë Ünal", ""]
    assert envelope.sender == "gd@example.com"
    assert envelope.recipients == ["zoe@example.org", "plain@example.net"]
    assert message.get_content().rstrip() == "Bonjour, ça va ?"
    assert message["Message-ID"].endswith("@example.com>") and message["Date"]
    assert data.isascii(), "7-bit transfer encodings only"


def test_plain_and_html_make_an_alternative_with_inline_images_and_attachments(spool, tmp_path):
    image = tmp_path / "001.png"
    image.write_bytes(PNG)
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 not really")
    e = Email(spool, "Report", "me@example.com", "you@example.com", SERVER)
    e.add_content("Hello World<div><img src='cid:ID_A'></div>", "text/html")
    e.add_content("Hello World", "text/plain")
    e.add_attachment(str(image), cid="ID_A")
    e.add_attachment(str(report))
    _, message, _ = spooled(spool, e.send())
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, related = alternative.get_payload()
    assert plain.get_content_type() == "text/plain"  # the last alternative is the preferred one
    assert related.get_content_type() == "multipart/related"
    html, inline = related.get_payload()
    assert "cid:ID_A" in html.get_content()
    assert inline["Content-ID"] == "<ID_A>" and inline.get_content_type() == "image/png"
    assert inline.get_content_disposition() == "inline" and inline.get_content() == PNG
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "report.pdf" and attachment.get_content() == b"%PDF-1.4 not really"


def test_only_html_content(spool):
    e = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    e.add_content("<p>hi</p>", "text/html")
    _, message, _ = spooled(spool, e.send())
    assert message.get_content_type() == "text/html"


def test_an_attachment_of_unknown_type_is_octet_stream(spool, tmp_path):
    blob = tmp_path / "data.weird-extension"
    blob.write_bytes(b"\x00\x01")
    e = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    e.add_attachment(str(blob))
    _, message, _ = spooled(spool, e.send())
    assert message.get_payload()[1].get_content_type() == "application/octet-stream"


@pytest.mark.parametrize("snd, rcpt, error", [
    ("not an address", "you@example.com", "is not an e-mail address"),
    ("me@example.com", "you", "is not an e-mail address"),
    ("me@example.com", [], "address or a list of addresses"),
    ("me@example.com", [None], "address or a list of addresses"),
    ("a@example.com, b@example.com", "you@example.com", "one sender"),
])
def test_what_is_no_address_is_refused(spool, snd, rcpt, error):
    with pytest.raises(ValueError, match=error):
        Email(spool, "x", snd, rcpt, SERVER)


def test_what_cannot_be_sent_is_refused_at_send(spool, tmp_path):
    no_server = Email(spool, "x", "me@example.com", "you@example.com")
    with pytest.raises(ValueError, match="no SMTP server"):
        no_server.send()
    image = tmp_path / "a.png"
    image.write_bytes(PNG)
    inline_without_html = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    inline_without_html.add_attachment(str(image), cid="A")
    with pytest.raises(ValueError, match="needs text/html"):
        inline_without_html.send()
    with pytest.raises(ValueError, match="add_content takes"):
        inline_without_html.add_content("x", "application/json")
    with pytest.raises(FileNotFoundError):
        inline_without_html.add_attachment(str(tmp_path / "missing.png"))
    assert spool.ids() == []


def test_a_message_is_sent_once(spool):
    e = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    first = e.send()
    with pytest.raises(RuntimeError, match=first):
        e.send()
    assert spool.ids() == [first]


@pytest.mark.parametrize("arguments, error", [
    (("nohost:",), "host:port"),
    ((":25",), "host:port"),
    (("host:99999",), "host:port"),
    (("host:25", "user"), "both a user and a password"),
    (("host:465",), "exclude each other"),
])
def test_bad_smtp_settings_are_refused(arguments, error):
    options = {"ssl": True, "starttls": True} if error == "exclude each other" else {}
    with pytest.raises(ValueError, match=error):
        SmtpServer.parse(*arguments, **options)


def test_set_smtp_on_the_message_overrides_the_default(spool):
    e = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    e.set_smtp("mail.example.com:465", "me", "secret", ssl=True)
    envelope, _, _ = spooled(spool, e.send())
    assert envelope.smtp == {"host": "mail.example.com", "port": 465, "user": "me", "password": "secret",
                             "ssl": True, "starttls": False, "ca": None}
    assert SmtpServer.parse("mail.example.com").port == 25


def test_spool_files_are_private_and_ids_sort_in_spooling_order(spool):
    ids = []
    for number in range(5):
        e = Email(spool, f"n{number}", "me@example.com", "you@example.com", SERVER)
        ids.append(e.send())
    assert spool.ids() == ids
    assert os.stat(os.path.join(spool.queue, ids[0])).st_mode & 0o777 == 0o600
    assert os.stat(spool.path).st_mode & 0o777 == 0o700
    assert os.listdir(spool.tmp) == []
    assert spool.counts() == {"queued": 5, "retrying": 0, "dead": 0}


def test_a_message_interrupted_while_written_is_not_in_the_queue(spool, monkeypatch):
    """A failure mid-write (the disk fills up) leaves nothing behind: no partial message to
    deliver, no leftover in tmp/. (A SIGKILL mid-write leaves a tmp/ file the agent sweeps.)"""
    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    e = Email(spool, "x", "me@example.com", "you@example.com", SERVER)
    with pytest.raises(OSError, match="No space"):
        e.send()
    assert spool.ids() == [] and os.listdir(spool.tmp) == []


def test_stale_tmp_files_are_swept(spool):
    old = os.path.join(spool.tmp, "half-written")
    with open(old, "wb") as file:
        file.write(b'{"id": ')
    os.utime(old, (0, 0))
    fresh = os.path.join(spool.tmp, "being-written")
    open(fresh, "wb").close()
    spool.sweep_tmp()
    assert os.listdir(spool.tmp) == ["being-written"]


def test_the_default_spool_is_per_user_unless_root(monkeypatch):
    monkeypatch.delenv(smtpda_settings.SPOOL_ENV, raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(smtpda_settings, "user_name", lambda: "alice")
    assert smtpda_settings.default_spool() == "/var/tmp/skitai-alice/smtpda"
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert smtpda_settings.default_spool() == "/var/tmp/skitai/smtpda"
    monkeypatch.setenv(smtpda_settings.SPOOL_ENV, "/srv/mail")
    assert smtpda_settings.default_spool() == "/srv/mail"


def test_a_spool_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("making a folder of another user needs root")
    import pwd

    nobody = pwd.getpwnam("nobody").pw_uid
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, nobody, -1)
    with pytest.raises(PermissionError, match=f"foreign belongs to uid {nobody}"):
        Spool(str(foreign / "smtpda")).create()
    with pytest.raises(PermissionError, match=f"foreign belongs to uid {nobody}"):
        Spool(str(foreign)).create()


def test_a_spool_made_open_is_closed(tmp_path):
    os.mkdir(tmp_path / "open", 0o777)
    os.chmod(tmp_path / "open", 0o777)
    Spool(str(tmp_path / "open")).create()
    assert os.stat(tmp_path / "open").st_mode & 0o777 == 0o700
