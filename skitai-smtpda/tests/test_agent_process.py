"""The agent as a process: `skitai smtpda start|stop|status`, one agent per spool, and
`serve.py --smtpda`, whose master starts the agent, starts it again when it dies, and leaves it
running when the app stops."""
import email
import email.policy
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from agentapp import SCRIPT
from smtputil import SmtpServer

from skitai.testing import ServerProcess, http_get, wait_for
from skitai_smtpda.compose import Email
from skitai_smtpda.lock import AgentLock
from skitai_smtpda.smtpserver import SmtpServer as Server
from skitai_smtpda.spool import Envelope, Spool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture
def spool(tmp_path, monkeypatch):
    monkeypatch.setenv("SKITAI_SMTPDA_SPOOL", str(tmp_path / "spool"))
    spool = Spool(str(tmp_path / "spool")).create()
    yield spool
    holder = AgentLock(spool.path).holder()  # an agent a failed test left running
    if holder and holder > 0:
        os.kill(holder, signal.SIGKILL)


def skitai(*args):
    return subprocess.run([sys.executable, "-m", "skitai", *args], capture_output=True, text=True, timeout=90)


def send(spool, server, count=1):
    for number in range(count):
        e = Email(spool, f"n{number}", "me@example.com", "you@example.com", Server.parse(server))
        e.add_content("hello")
        e.send()


def test_start_status_stop(spool, tmp_path):
    result = skitai("smtpda", "status")
    assert result.returncode == 3
    assert result.stdout == f"skitai smtpda: not running, spool {spool.path}: 0 queued, 0 retrying, 0 dead\n"
    with SmtpServer(str(tmp_path)) as server:
        send(spool, server.address, 3)
        result = skitai("smtpda", "start")
        assert result.returncode == 0 and "started (pid " in result.stdout, result
        pid = AgentLock(spool.path).holder()
        assert os.getsid(pid) == pid  # detached from the command's session
        server.handler.wait_for(3)
        wait_for(lambda: not spool.ids())
        os.rename(os.path.join(spool.path, "smtpda.log"), os.path.join(spool.path, "smtpda.log.1"))  # logrotate
        send(spool, server.address, 1)
        server.handler.wait_for(4)
        again = skitai("smtpda", "start")
        assert again.returncode == 0 and f"already running (pid {pid})" in again.stdout
        status = skitai("smtpda", "status")
        assert status.returncode == 0 and f"running (pid {pid})" in status.stdout
    result = skitai("smtpda", "stop")
    assert result.returncode == 0 and result.stdout == f"skitai smtpda: stopped (pid {pid})\n"
    assert AgentLock(spool.path).holder() is None
    assert skitai("smtpda", "stop").stdout == "skitai smtpda: not running\n"
    rotated = open(os.path.join(spool.path, "smtpda.log.1")).read()
    log = open(os.path.join(spool.path, "smtpda.log")).read()
    assert rotated.count(" INFO sent ") == 3 and " INFO stopped" not in rotated
    assert log.count(" INFO sent ") == 1 and " INFO stopped" in log


def test_status_counts_queued_retrying_and_dead(spool):
    smtp = Server.parse("localhost:25").as_dict()
    for number, attempts in enumerate([0, 0, 1, 2]):
        spool.put(Envelope(f"m{number}", "a@example.com", ["b@example.com"], smtp, 60, 8, attempts=attempts,
                           next_attempt=2e9), b"Subject: x\r\n\r\nx\r\n")
    spool.bury(Envelope("m9", "a@example.com", ["b@example.com"], smtp, 60, 8), b"x", "permanent failure: 550")
    result = skitai("smtpda", "status", "--spool", spool.path)
    assert result.stdout.endswith(": 2 queued, 2 retrying, 1 dead\n")


def test_a_bad_command_line_is_one_line():
    result = skitai("smtpda", "restart")
    assert result.returncode == 2
    assert result.stderr.startswith("skitai: error: argument action: invalid choice: 'restart'")
    assert len(result.stderr.splitlines()) == 1


def test_one_agent_per_spool(spool):
    assert skitai("smtpda", "start").returncode == 0
    first = AgentLock(spool.path).holder()
    second = subprocess.run([sys.executable, "-m", "skitai_smtpda.agent", "--spool", spool.path],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 0
    log = open(os.path.join(spool.path, "smtpda.log")).read()
    assert f"another agent delivers from {spool.path} (pid {first}): exiting" in log
    assert AgentLock(spool.path).holder() == first
    assert skitai("smtpda", "stop").returncode == 0


def test_the_master_runs_the_agent_restarts_it_and_leaves_it_running(spool, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = {"SKITAI_LOG_DIR": str(tmp_path / "log")}
    with SmtpServer(str(tmp_path)) as server:
        with ServerProcess(str(script), "--smtpda", env=env) as app:
            first = wait_for(lambda: AgentLock(spool.path).holder(), timeout=15)
            os.kill(first, signal.SIGKILL)
            second = wait_for(lambda: (AgentLock(spool.path).holder() or first) != first and
                              AgentLock(spool.path).holder(), timeout=15)
            send(spool, server.address, 2)
            server.handler.wait_for(2)
            assert http_get(app.port)[0] == 200
        assert app.returncode == 0
        assert AgentLock(spool.path).holder() == second  # the app stopped, the agent runs on
        send(spool, server.address, 1)
        server.handler.wait_for(3)
    assert "the supervised process smtpda exited (status -9), starting it again" in app.output
    assert skitai("smtpda", "stop").returncode == 0


def test_a_master_leaves_a_running_agent_alone(spool, tmp_path):
    """Many apps, one agent: a master started while an agent runs starts none; when that one
    is stopped, the master starts its own."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    assert skitai("smtpda", "start").returncode == 0
    outside = AgentLock(spool.path).holder()
    with ServerProcess(str(script), "--smtpda", env={"SKITAI_LOG_DIR": str(tmp_path / "log")}) as app:
        http_get(app.port)
        assert AgentLock(spool.path).holder() == outside
        assert skitai("smtpda", "stop").returncode == 0
        ours = wait_for(lambda: AgentLock(spool.path).holder(), timeout=15)
        assert ours != outside
    assert skitai("smtpda", "stop").returncode == 0
    assert "started the supervised process smtpda" in app.output


def test_without_the_option_no_agent_runs(spool, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    with ServerProcess(str(script), env={"SKITAI_LOG_DIR": str(tmp_path / "log")}) as app:
        http_get(app.port)
        assert AgentLock(spool.path).holder() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder of another user needs root")
def test_a_spool_of_another_user_is_one_line(tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, -1)
    result = skitai("smtpda", "start", "--spool", str(foreign / "smtpda"))
    assert result.returncode == 1
    assert result.stderr == f"skitai: error: skitai-smtpda: {foreign} belongs to uid 65534, not to this user " \
                            f"(uid 0): choose another spool\n"


def test_an_app_that_sends_no_mail_makes_no_spool(tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    env = {"SKITAI_LOG_DIR": str(tmp_path / "log"), "SKITAI_SMTPDA_SPOOL": str(tmp_path / "unused")}
    with ServerProcess(str(script), env=env) as app:
        assert http_get(app.port)[0] == 200
    assert not (tmp_path / "unused").exists()


SENDING_SCRIPT = textwrap.dedent('''
    import os
    import skitai
    from skitai import was


    def app(environ, start_response):
        e = was.email(environ["QUERY_STRING"], "app@example.com", "you@example.com")
        e.add_content("hello")
        e.send()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]


    if __name__ == "__main__":
        skitai.set_smtp(os.environ["SMTP"])
        skitai.mount("/", app)
        skitai.run(port=5000, workers=2)
''')


def test_two_apps_and_their_workers_feed_one_agent(spool, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SENDING_SCRIPT)
    with SmtpServer(str(tmp_path)) as server:
        env = {"SKITAI_LOG_DIR": str(tmp_path / "log"), "SMTP": server.address}
        with ServerProcess(str(script), "--smtpda", env=env) as first, \
                ServerProcess(str(script), "--smtpda", env=env) as second:
            agent = wait_for(lambda: AgentLock(spool.path).holder(), timeout=15)
            workers = set()
            for number in range(20):
                app = first if number % 2 else second
                workers.add(http_get(app.port, f"/?{number}")[1])
            received = server.handler.wait_for(20)
            assert AgentLock(spool.path).holder() == agent
        assert len(workers) >= 2  # both apps (and whichever of their workers took the connection)
        subjects = sorted(email.message_from_bytes(r.data, policy=email.policy.default)["Subject"]
                          for r in received)
        assert subjects == sorted(str(number) for number in range(20))
    # one master started the agent and the other found it running; or both started one at
    # the same moment, and the one that did not get the spool's lock left at once
    starts = [app.output.count("started the supervised process smtpda") for app in (first, second)]
    assert sorted(starts) in ([0, 1], [1, 1])
    if starts == [1, 1]:
        assert "another instance runs" in first.output + second.output
    assert skitai("smtpda", "stop").returncode == 0


def test_a_reload_keeps_the_agent(spool, tmp_path):
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    with ServerProcess(str(script), "--smtpda", env={"SKITAI_LOG_DIR": str(tmp_path / "log")}) as app:
        agent = wait_for(lambda: AgentLock(spool.path).holder(), timeout=15)
        app.signal(signal.SIGHUP)
        wait_for(lambda: "reloading" in app.output, timeout=60)
        wait_for(lambda: app.output.count("serving on") >= 2, timeout=60)
        assert AgentLock(spool.path).holder() == agent
        os.kill(agent, signal.SIGKILL)  # the re-executed master watches it still
        wait_for(lambda: (AgentLock(spool.path).holder() or agent) != agent, timeout=15)
    assert app.output.count("started the supervised process smtpda") == 2
    assert skitai("smtpda", "stop").returncode == 0
