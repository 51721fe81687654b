"""Cc, Bcc and international addresses, composed and delivered to aiosmtpd: Cc recipients are
in the headers and the envelope, Bcc recipients in the envelope only; domains go in IDNA form,
local parts beyond ASCII with SMTPUTF8, and to a dead letter with the reason when the server
does not offer it."""
import email
import email.policy

import pytest
from smtputil import SmtpServer

from skitai_smtpda import settings as smtpda_settings
from skitai_smtpda.agent import Agent
from skitai_smtpda.compose import Email
from skitai_smtpda.plugin import EmailService
from skitai_smtpda.smtpserver import SmtpServer as Server
from skitai_smtpda.spool import Spool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture
def spool(tmp_path, monkeypatch):
    monkeypatch.setattr(smtpda_settings.settings, "retry_delay", 0.2)
    monkeypatch.setattr(smtpda_settings.settings, "max_attempts", 3)
    return Spool(str(tmp_path / "spool")).create()


def parsed(data):
    """UTF-8 headers (RFC 6532) read as such: message_from_bytes takes them for ASCII."""
    return email.message_from_string(data.decode("utf-8"), policy=email.policy.default)


def test_cc_and_bcc_reach_the_envelope_and_bcc_no_header(spool, tmp_path):
    with SmtpServer(str(tmp_path)) as server:
        e = Email(spool, "minutes", "Me <me@example.com>", "To <to@example.com>", Server.parse(server.address),
                  cc="Chef <boss@example.com>", bcc="audit@example.com")
        e.add_cc(["Zoë <zoe@example.org>", "to@example.com"])  # to@ twice: one RCPT TO
        e.add_bcc("Archive <archive@example.net>, hidden@example.net")
        e.add_content("see attached")
        message_id = e.send()
        assert spool.read(message_id)[0].recipients == [
            "to@example.com", "boss@example.com", "zoe@example.org",
            "audit@example.com", "archive@example.net", "hidden@example.net"]
        assert Agent(spool, timeout=5).run_once() == 1
        [received] = server.handler.wait_for(1)
    assert sorted(received.recipients) == sorted(["to@example.com", "boss@example.com", "zoe@example.org",
                                                  "audit@example.com", "archive@example.net",
                                                  "hidden@example.net"])
    message = parsed(received.data)
    assert [a.addr_spec for a in message["To"].addresses] == ["to@example.com"]
    assert [(a.display_name, a.addr_spec) for a in message["Cc"].addresses] == [
        ("Chef", "boss@example.com"), ("Zoë", "zoe@example.org"), ("", "to@example.com")]
    assert message["Bcc"] is None
    for hidden in (b"audit", b"archive", b"hidden", b"Archive"):
        assert hidden not in received.data
    assert spool.ids() == [] and spool.ids(spool.dead) == []


def test_was_email_takes_cc_and_bcc(spool):
    e = EmailService(spool, Server.parse("127.0.0.1:2525"))("hi", "me@example.com", "you@example.com",
                                                              cc=["c@example.com"], bcc="b@example.com")
    envelope, data = spool.read(e.send())
    assert envelope.recipients == ["you@example.com", "c@example.com", "b@example.com"]
    assert parsed(data)["Cc"] == "c@example.com" and b"b@example.com" not in data


@pytest.mark.parametrize("method,value", [("add_cc", "no address"), ("add_bcc", ["ok@example.com", "x@"]),
                                          ("add_cc", 42)])
def test_a_cc_or_bcc_that_is_no_address_is_refused(spool, method, value):
    e = Email(spool, "hi", "me@example.com", "you@example.com")
    with pytest.raises(ValueError, match="(Cc|Bcc) recipient"):
        getattr(e, method)(value)


def test_international_domains_go_in_idna_form(spool, tmp_path):
    """A server without SMTPUTF8 takes them: the headers and the envelope are ASCII."""
    with SmtpServer(str(tmp_path), smtputf8=False) as server:
        e = Email(spool, "Grüße", "Jörg <joerg@Bücher.example>", "kim@사례.테스트", Server.parse(server.address),
                  cc="cc@ÉCOLE.example")
        e.add_content("Hallo")
        message_id = e.send()
        envelope, data = spool.read(message_id)
        assert data.isascii()
        assert envelope.sender == "joerg@xn--bcher-kva.example"
        assert envelope.recipients == ["kim@xn--9n2b17m.xn--9t4b11yi5a", "cc@xn--cole-9oa.example"]
        Agent(spool, timeout=5).run_once()
        [received] = server.handler.wait_for(1)
    assert received.sender == "joerg@xn--bcher-kva.example"
    message = parsed(received.data)
    assert message["From"].addresses[0].display_name == "Jörg"
    assert message["From"].addresses[0].domain == "xn--bcher-kva.example"
    assert spool.ids(spool.dead) == []


def test_a_domain_idna_cannot_write_is_refused(spool):
    with pytest.raises(ValueError, match="no valid international name"):
        Email(spool, "hi", "me@example.com", "you@exa\u200dmple.com")


def test_a_non_ascii_local_part_goes_with_smtputf8(spool, tmp_path):
    with SmtpServer(str(tmp_path), smtputf8=True) as server:
        e = Email(spool, "Grüße", "Jörg <jörg@example.com>", "用户@例子.广告", Server.parse(server.address),
                  bcc="zoë@example.org")
        e.add_content("Hallo")
        e.send()
        Agent(spool, timeout=5).run_once()
        [received] = server.handler.wait_for(1)
    assert received.sender == "jörg@example.com"
    assert sorted(received.recipients) == sorted(["用户@xn--fsqu00a.xn--4rr70v", "zoë@example.org"])
    message = parsed(received.data)
    assert message["From"].addresses[0].username == "jörg"
    assert message["To"].addresses[0].addr_spec == "用户@xn--fsqu00a.xn--4rr70v"
    assert "Grüße".encode() in received.data  # UTF-8 headers (RFC 6532), no encoded words needed
    assert "zoë".encode() not in received.data
    assert spool.ids() == [] and spool.ids(spool.dead) == []


def test_a_non_ascii_local_part_is_a_dead_letter_without_smtputf8(spool, tmp_path):
    with SmtpServer(str(tmp_path), smtputf8=False) as server:
        address = Server.parse(server.address)
        e = Email(spool, "hi", "me@example.com", ["ok@example.com", "zoë@example.org"], address)
        e.add_content("Hallo")
        refused = e.send()
        plain = Email(spool, "plain", "me@example.com", "ok@example.com", address)
        plain.add_content("Hallo")
        plain.send()
        assert Agent(spool, timeout=5).run_once() == 2
        [received] = server.handler.wait_for(1)  # the next message goes on the same connection
    assert parsed(received.data)["Subject"] == "plain"
    reason = spool.read(refused, spool.dead)[0].reason
    assert reason.startswith("permanent failure: ")
    assert "does not offer SMTPUTF8" in reason and "zoë@example.org" in reason
    assert spool.ids() == []
