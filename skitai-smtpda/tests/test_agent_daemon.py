"""`python serve.py --smtpda start`: a daemonized master makes sure an agent runs, and `stop`
stops the app but leaves the agent delivering, as the README says (the manual: a system-wide
service, stopped by `skitai smtpda stop`)."""
import os
import signal
import subprocess
import sys

import psutil
import pytest
from agentapp import SCRIPT
from smtputil import SmtpServer

from skitai.testing import free_port, http_get, wait_for
from skitai_smtpda.compose import Email
from skitai_smtpda.lock import AgentLock
from skitai_smtpda.smtpserver import SmtpServer as Server
from skitai_smtpda.spool import Spool

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


@pytest.fixture
def daemon(tmp_path):
    """Runs the script's daemon commands; kills by pid whatever a failed test left running."""
    script = tmp_path / "serve.py"
    script.write_text(SCRIPT)
    spool = Spool(str(tmp_path / "spool")).create()
    port = free_port()
    env = {**os.environ, "SKITAI_RUN_DIR": str(tmp_path / "run"), "SKITAI_LOG_DIR": str(tmp_path / "log"),
           "SKITAI_SMTPDA_SPOOL": spool.path}
    seen = []

    def cli(*args):
        result = subprocess.run([sys.executable, str(script), f"--port={port}", *args], capture_output=True,
                                text=True, env=env, timeout=60)
        try:
            seen.append(psutil.Process(int((tmp_path / "run" / "skitai.pid").read_text())))
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            pass
        return result

    cli.spool, cli.port, cli.env = spool, port, env
    yield cli
    holder = AgentLock(spool.path).holder()
    if holder and holder > 0:
        seen.append(psutil.Process(holder))
    for process in seen:
        if process.is_running():
            process.kill()  # psutil checks the create time: a recycled pid is left alone
    psutil.wait_procs(seen, timeout=10)


def send(spool, server, subject):
    e = Email(spool, subject, "me@example.com", "you@example.com", Server.parse(server))
    e.add_content("hello")
    e.send()


def test_a_daemon_runs_the_agent_and_its_stop_leaves_it_running(daemon, tmp_path):
    spool = daemon.spool
    with SmtpServer(str(tmp_path)) as server:
        started = daemon("--smtpda", "start")
        assert started.returncode == 0, started.stderr
        master = int((tmp_path / "run" / "skitai.pid").read_text())
        agent = wait_for(lambda: AgentLock(spool.path).holder(), timeout=15)
        assert agent != master and psutil.Process(agent).ppid() == master
        assert os.getsid(agent) == agent != os.getsid(master)  # a session of its own
        assert http_get(daemon.port)[0] == 200
        send(spool, server.address, "while the app runs")
        server.handler.wait_for(1)

        stopped = daemon("stop")
        assert stopped.returncode == 0 and f"stopped (pid {master})" in stopped.stdout, stopped
        assert not psutil.pid_exists(master) or psutil.Process(master).status() == psutil.STATUS_ZOMBIE
        assert AgentLock(spool.path).holder() == agent  # the app stopped, the agent runs on
        send(spool, server.address, "after the app stopped")
        received = server.handler.wait_for(2)
        assert [r.sender for r in received] == ["me@example.com"] * 2
        wait_for(lambda: not spool.ids())

    status = subprocess.run([sys.executable, "-m", "skitai", "smtpda", "status"], capture_output=True,
                            text=True, env=daemon.env, timeout=60)
    assert status.returncode == 0 and f"running (pid {agent})" in status.stdout
    result = subprocess.run([sys.executable, "-m", "skitai", "smtpda", "stop"], capture_output=True, text=True,
                            env=daemon.env, timeout=60)
    assert result.returncode == 0 and f"stopped (pid {agent})" in result.stdout, result
    assert AgentLock(spool.path).holder() is None
    log = (tmp_path / "log" / "server.log").read_text()
    assert "started the supervised process smtpda" in log


def test_a_daemon_started_while_an_agent_runs_leaves_it_alone(daemon, tmp_path):
    env = daemon.env
    outside = subprocess.run([sys.executable, "-m", "skitai", "smtpda", "start"], capture_output=True, text=True,
                             env=env, timeout=60)
    assert outside.returncode == 0, outside
    agent = AgentLock(daemon.spool.path).holder()
    assert daemon("--smtpda", "start").returncode == 0
    assert http_get(daemon.port)[0] == 200
    assert AgentLock(daemon.spool.path).holder() == agent
    assert daemon("stop").returncode == 0
    assert AgentLock(daemon.spool.path).holder() == agent
    assert "started the supervised process smtpda" not in (tmp_path / "log" / "server.log").read_text()
    os.kill(agent, signal.SIGTERM)
    wait_for(lambda: AgentLock(daemon.spool.path).holder() is None, timeout=15)
