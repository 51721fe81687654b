"""Nothing lost: 200 messages spooled, the agent SIGKILLed at random moments of its run several
times and started again, every message delivered; duplicates (at-least-once) counted: at most
the messages in flight at each kill, one per connection."""
import asyncio
import collections
import email
import email.policy
import os
import random
import signal
import subprocess
import time

import pytest
from smtputil import Handler, SmtpServer

from skitai.testing import wait_for
from skitai_smtpda.agent import CONNECTIONS, command
from skitai_smtpda.compose import Email
from skitai_smtpda.lock import AgentLock
from skitai_smtpda.smtpserver import SmtpServer as Server
from skitai_smtpda.spool import Spool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
MESSAGES = 200
KILLS = 6


class SlowHandler(Handler):
    """Takes 50 ms per message, so the run (4 connections at once) lasts long enough to be
    killed in the middle several times."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


class KillingHandler(Handler):
    """Kills the agent (SIGKILL) when it has sent the Nth message's data, before the answer
    reaches it: the server has the message, the agent never learns it."""

    def __init__(self, spool_path, nth):
        super().__init__()
        self.spool_path, self.nth, self.seen = spool_path, nth, 0

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        self.seen += 1
        if self.seen == self.nth:
            os.kill(AgentLock(self.spool_path).holder(), signal.SIGKILL)
            await asyncio.sleep(0.2)
        return answer


def spool_messages(spool, address, count):
    for number in range(count):
        e = Email(spool, f"message {number}", "me@example.com", "you@example.com", Server.parse(address))
        e.add_content(f"body {number}")
        e.send()


def start_agent(spool, log, *options):
    return subprocess.Popen([*command(spool.path), *options], stdout=log, stderr=subprocess.STDOUT)


def subjects(handler):
    return [email.message_from_bytes(r.data, policy=email.policy.default)["Subject"] for r in handler.received]


def test_killed_at_random_moments_the_agent_loses_nothing(tmp_path):
    spool = Spool(str(tmp_path / "spool")).create()
    random.seed(18)
    with SmtpServer(str(tmp_path), handler=SlowHandler()) as server, open(tmp_path / "agent.log", "ab") as log:
        spool_messages(spool, server.address, MESSAGES)
        kills = 0
        while kills < KILLS and spool.ids():
            agent = start_agent(spool, log)
            if kills:  # the first one dies while starting; the others once they hold the spool
                wait_for(lambda pid=agent.pid: AgentLock(spool.path).holder() == pid, timeout=30)
                if kills < KILLS - 1:
                    time.sleep(random.uniform(0.0, 0.5))  # reading the spool, or sending
                else:  # the last surely while sending, which a loaded machine may not reach in 0.5 s
                    server.handler.wait_for(len(server.handler.received) + 1, timeout=30)
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            kills += 1
        assert kills == KILLS and spool.ids(), "the run ended before the kills: make it slower"
        assert server.handler.received, "no kill came after the sending started: make them later"
        agent = start_agent(spool, log)
        try:
            wait_for(lambda: not spool.ids(), timeout=120)
        finally:
            agent.terminate()
            agent.wait(30)
        received = collections.Counter(subjects(server.handler))
    assert set(received) == {f"message {number}" for number in range(MESSAGES)}  # every one
    duplicates = sum(received.values()) - MESSAGES
    print(f"\n{MESSAGES} messages, {KILLS} kills: {duplicates} duplicates")
    assert duplicates <= KILLS * CONNECTIONS  # only messages in flight at a kill may go twice
    assert spool.ids(spool.dead) == [] and os.listdir(spool.tmp) == []


def test_killed_after_the_server_took_the_message_it_is_sent_again(tmp_path):
    """The one window of duplicates, made to happen: the documented at-least-once."""
    spool = Spool(str(tmp_path / "spool")).create()
    killing = KillingHandler(spool.path, nth=3)
    with SmtpServer(str(tmp_path), handler=killing) as server:
        spool_messages(spool, server.address, 5)
        with open(tmp_path / "agent.log", "ab") as log:
            first = start_agent(spool, log, "--connections", "1")
            assert first.wait(30) == -signal.SIGKILL
            second = start_agent(spool, log, "--connections", "1")
            try:
                wait_for(lambda: not spool.ids(), timeout=30)
            finally:
                second.terminate()
                second.wait(30)
        received = subjects(killing)
    assert received == [f"message {n}" for n in (0, 1, 2, 2, 3, 4)]

