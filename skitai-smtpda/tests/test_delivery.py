"""The agent's delivery (`Agent.run_once`, in the test process) against aiosmtpd: plain,
STARTTLS, implicit TLS, AUTH, private CAs; retries with back-off on 4xx answers and failed
connections, dead letters with their reason on 5xx answers and past the retry limit, partial
refusals, every attempt logged."""
import email
import email.policy
import logging
import time

import pytest
from smtputil import PASSWORD, USER, SmtpServer

from skitai.testing import free_port
from skitai_smtpda import settings as smtpda_settings
from skitai_smtpda.agent import Agent
from skitai_smtpda.compose import Email
from skitai_smtpda.smtpserver import SmtpServer as Server
from skitai_smtpda.spool import Spool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool")).create()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(smtpda_settings.settings, "retry_delay", 0.2)
    monkeypatch.setattr(smtpda_settings.settings, "max_attempts", 3)


def spool_message(spool, server, rcpt="you@example.com", subject="hello", **login):
    e = Email(spool, subject, "Me <me@example.com>", rcpt)
    e.set_smtp(server, **login)
    e.add_content(f"body of {subject}")
    return e.send()


def run_until(agent, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the agent did not get there in time"
        if not agent.run_once():
            time.sleep(0.05)


def dead_reasons(spool):
    return {message_id: spool.read(message_id, spool.dead)[0].reason for message_id in spool.ids(spool.dead)}


@pytest.mark.parametrize("mode", ["plain", "starttls", "ssl"])
def test_delivery_over_each_transport_with_auth(spool, tmp_path, mode, caplog):
    with SmtpServer(str(tmp_path), mode, auth=True) as server:
        ca = server.certificates.ca if server.certificates else None
        options = {"ssl": mode == "ssl", "starttls": mode == "starttls", "ca": ca}
        ids = [spool_message(spool, server.address, subject=f"n{n}", user=USER, password=PASSWORD, **options)
               for n in range(3)]
        with caplog.at_level(logging.INFO, "skitai.smtpda"):
            assert Agent(spool, timeout=5, connections=1).run_once() == 3
        received = server.handler.wait_for(3)
    assert spool.ids() == [] and spool.ids(spool.dead) == []
    assert [r.sender for r in received] == ["me@example.com"] * 3
    subjects = [email.message_from_bytes(r.data, policy=email.policy.default)["Subject"] for r in received]
    assert subjects == ["n0", "n1", "n2"]  # oldest first
    assert server.handler.sessions == (2 if mode == "starttls" else 1)  # one connection for all three
    for message_id in ids:
        assert f"sent {message_id} (attempt 1)" in caplog.text


def test_a_wrong_password_is_a_permanent_failure(spool, tmp_path):
    with SmtpServer(str(tmp_path), "ssl", auth=True) as server:
        message_id = spool_message(spool, server.address, user=USER, password="wrong", ssl=True,
                                   ca=server.certificates.ca)
        Agent(spool, timeout=5).run_once()
    assert "535" in dead_reasons(spool)[message_id] and "permanent failure" in dead_reasons(spool)[message_id]


def test_a_certificate_of_an_unknown_ca_is_refused_and_retried(spool, tmp_path):
    """Without the private CA the certificate is not trusted: nothing is sent in the clear, the
    message waits for a retry (the operator may fix the setting) and dies past the limit."""
    with SmtpServer(str(tmp_path), "ssl") as server:
        message_id = spool_message(spool, server.address, ssl=True)
        agent = Agent(spool, timeout=5)
        run_until(agent, lambda: spool.ids(spool.dead))
        assert server.handler.received == []
    assert "certificate not trusted" in dead_reasons(spool)[message_id]
    assert "gave up after 3 attempts" in dead_reasons(spool)[message_id]


def test_a_server_that_requires_starttls_is_not_sent_to_in_the_clear(spool, tmp_path):
    with SmtpServer(str(tmp_path), "starttls") as server:
        message_id = spool_message(spool, server.address)
        Agent(spool, timeout=5).run_once()
    assert server.handler.received == []  # 530 to MAIL FROM: a permanent answer
    assert "530 Must issue a STARTTLS command first" in dead_reasons(spool)[message_id]


def test_4xx_then_success_retries_with_exponential_back_off(spool, tmp_path, caplog):
    with SmtpServer(str(tmp_path)) as server:
        server.handler.data_answer = "451 4.3.0 try again later"
        message_id = spool_message(spool, server.address)
        agent = Agent(spool, timeout=5)
        with caplog.at_level(logging.INFO, "skitai.smtpda"):
            agent.run_once()
            envelope = spool.read(message_id)[0]
            assert envelope.attempts == 1 and envelope.next_attempt > time.time()
            assert agent.run_once() == 0  # not due yet
            run_until(agent, lambda: spool.read(message_id)[0].attempts == 2)
            assert spool.read(message_id)[0].next_attempt > time.time()
            assert spool.counts() == {"queued": 0, "retrying": 1, "dead": 0}
            server.handler.data_answer = None
            run_until(agent, lambda: not spool.ids())
        server.handler.wait_for(1)
    assert f"retry {message_id} (attempt 1 of 3) to you@example.com in 0.2 s: " in caplog.text
    # 0.2 s after the first failure, 0.4 s after the second
    assert f"retry {message_id} (attempt 2 of 3) to you@example.com in 0.4 s: " in caplog.text
    assert "451 4.3.0 try again later" in caplog.text
    assert f"sent {message_id} (attempt 3)" in caplog.text


def test_5xx_goes_to_the_dead_letters_at_once(spool, tmp_path):
    with SmtpServer(str(tmp_path)) as server:
        server.handler.data_answer = "554 5.6.0 message refused"
        message_id = spool_message(spool, server.address)
        Agent(spool, timeout=5).run_once()
    assert spool.ids() == []
    assert dead_reasons(spool) == {message_id: f"permanent failure: localhost:{server.port}: 554 5.6.0 message refused"}
    assert spool.counts() == {"queued": 0, "retrying": 0, "dead": 1}


def test_a_refused_connection_is_retried_until_the_limit(spool, caplog):
    message_id = spool_message(spool, f"127.0.0.1:{free_port()}")
    agent = Agent(spool, timeout=5)
    with caplog.at_level(logging.INFO, "skitai.smtpda"):
        run_until(agent, lambda: spool.ids(spool.dead))
    envelope, message = spool.read(message_id, spool.dead)
    assert envelope.attempts == 3 and len(envelope.errors) == 3
    assert "ConnectionRefusedError" in envelope.reason and "gave up after 3 attempts" in envelope.reason
    assert caplog.text.count(f"retry {message_id}") == 2 and caplog.text.count(f"dead {message_id}") == 1
    assert b"body of hello" in message  # the dead letter keeps the message


def test_a_dropped_connection_is_retried_and_the_next_message_goes_on_a_new_one(spool, tmp_path):
    with SmtpServer(str(tmp_path)) as server:
        server.handler.drop = True
        first = spool_message(spool, server.address, subject="first")
        agent = Agent(spool, timeout=5)
        agent.run_once()
        assert spool.read(first)[0].attempts == 1
        assert "SMTPServerDisconnected" in spool.read(first)[0].errors[0]
        server.handler.drop = False
        run_until(agent, lambda: not spool.ids())
        assert len(server.handler.wait_for(1)) == 1


def test_recipients_refused_in_part(spool, tmp_path):
    """The server takes the message for some recipients, refuses one for good and one for now:
    the permanent one is a dead letter of its own, the temporary one is retried alone."""
    with SmtpServer(str(tmp_path)) as server:
        message_id = spool_message(spool, server.address,
                                   rcpt=["ok@example.com", "perm@example.com", "temp@example.com"])
        agent = Agent(spool, timeout=5)
        agent.run_once()
        assert [r.recipients for r in server.handler.wait_for(1)] == [["ok@example.com"]]
        retrying = spool.read(message_id)[0]
        assert retrying.recipients == ["temp@example.com"] and retrying.attempts == 1
        dead = spool.read(f"{message_id}-refused", spool.dead)[0]
        assert dead.recipients == ["perm@example.com"] and "550 5.1.1 no such user" in dead.reason
        run_until(agent, lambda: not spool.ids())
    assert "gave up after 3 attempts" in dead_reasons(spool)[message_id]
    assert len(server.handler.received) == 1  # ok@ got it once, no duplicate on the retries


def test_every_recipient_refused(spool, tmp_path):
    with SmtpServer(str(tmp_path)) as server:
        message_id = spool_message(spool, server.address, rcpt=["perm1@example.com", "perm2@example.com"])
        Agent(spool, timeout=5).run_once()
    reason = dead_reasons(spool)[message_id]
    assert "perm1@example.com: 550" in reason and "perm2@example.com: 550" in reason


def test_a_message_buried_but_not_yet_removed_is_not_sent_again(spool, tmp_path):
    """Killed between the dead letter's copy and the queued file's removal: the next agent
    finishes the move instead of sending."""
    with SmtpServer(str(tmp_path)) as server:
        message_id = spool_message(spool, server.address)
        envelope, message = spool.read(message_id)
        spool._write(spool.dead, envelope, message)
        Agent(spool, timeout=5).run_once()
        assert server.handler.received == [] and spool.ids() == [] and spool.ids(spool.dead) == [message_id]


def test_a_file_that_is_no_message_is_left_alone(spool, tmp_path):
    with open(f"{spool.queue}/junk", "wb") as file:
        file.write(b"not json\nat all")
    with SmtpServer(str(tmp_path)) as server:
        spool_message(spool, server.address)
        assert Agent(spool, timeout=5).run_once() == 1
    assert spool.ids() == ["junk"]


def test_settings_reach_the_envelope(spool):
    message_id = spool_message(spool, "localhost:25")
    envelope = spool.read(message_id)[0]
    assert (envelope.retry_delay, envelope.max_attempts) == (0.2, 3)
    assert Server.from_dict(envelope.smtp) == Server("localhost", 25)


def test_messages_to_one_server_go_over_several_connections(spool, tmp_path):
    with SmtpServer(str(tmp_path)) as server:
        for number in range(10):
            spool_message(spool, server.address, subject=f"n{number}")
        assert Agent(spool, timeout=5, connections=4).run_once() == 10
        received = server.handler.wait_for(10)
    assert server.handler.sessions == 4 and spool.ids() == []
    subjects = {email.message_from_bytes(r.data, policy=email.policy.default)["Subject"] for r in received}
    assert subjects == {f"n{number}" for number in range(10)}


def test_a_server_that_is_down_is_not_asked_once_per_message(spool, monkeypatch):
    """The connection fails once: the other messages of that connection fail with it."""
    from skitai_smtpda import delivery

    opened = []
    original = delivery.Connection.open
    monkeypatch.setattr(delivery.Connection, "open", lambda self: (opened.append(1), original(self)))
    port = free_port()
    for number in range(6):
        spool_message(spool, f"127.0.0.1:{port}", subject=f"n{number}")
    assert Agent(spool, timeout=5, connections=2).run_once() == 6
    assert len(opened) == 2
    assert spool.counts() == {"queued": 0, "retrying": 6, "dead": 0}
