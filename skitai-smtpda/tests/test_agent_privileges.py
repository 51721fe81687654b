"""A server started as root that drops its privileges (`--fallback-user`) spools, and has its
agent deliver, as the user it runs as: the workers' messages land in that user's default spool
(`/var/tmp/skitai-<user>/smtpda`, owned by the user), the agent the master starts runs as that
user from that spool, and aiosmtpd gets the message."""
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap

import httpx
import psutil
import pytest
from smtputil import SmtpServer

from skitai.testing import ServerProcess, wait_for
from skitai_smtpda.lock import AgentLock

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

USER = "nobody"
SCRIPT = textwrap.dedent('''
    import os

    from flask import Flask, jsonify

    import skitai
    from skitai import was

    app = Flask(__name__)


    @app.post("/send")
    def send():
        e = was.email("as " + os.environ.get("USER", "?"), "me@example.com", "you@example.com")
        e.add_content("hello")
        return jsonify(id=e.send(), spool=e.spool.path, uid=os.geteuid())


    if __name__ == "__main__":
        skitai.set_smtp(os.environ["SMTP"])
        skitai.mount("/", app)
        skitai.run(port=5000, workers=2)
''')


def why_not_runnable() -> str | None:
    """Why this test cannot run here, or None: it needs root, and a Python the dropped user
    may run (the agent is a new process of that Python, started after the drop)."""
    if os.geteuid() != 0:
        return f"dropping privileges needs root; the tests run as uid {os.geteuid()}"
    try:
        user = pwd.getpwnam(USER)
    except KeyError:
        return f"no user {USER} here"
    try:
        result = subprocess.run([sys.executable, "-c", "import skitai_smtpda, flask"], user=user.pw_uid,
                                group=user.pw_gid, capture_output=True, text=True, timeout=60)
    except PermissionError as error:
        return f"{USER} cannot run this Python ({sys.executable}): {error}"
    if result.returncode:
        return f"{USER} cannot run this Python ({sys.executable}) with skitai_smtpda: " \
               f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}"
    return None


@pytest.fixture
def script():
    """The script in a folder anyone may read (root's pytest folders are 0700)."""
    folder = tempfile.mkdtemp(prefix="skitai-smtpda-privileges-")
    try:
        os.chmod(folder, 0o755)
        path = os.path.join(folder, "serve.py")
        with open(path, "w") as file:
            file.write(SCRIPT)
        yield path
    finally:
        shutil.rmtree(folder)


def test_a_root_start_spools_and_delivers_as_the_dropped_user(script, tmp_path):
    reason = why_not_runnable()
    if reason:
        pytest.skip(reason)
    user = pwd.getpwnam(USER)
    spool = f"/var/tmp/skitai-{USER}/smtpda"
    made_here = not os.path.exists(os.path.dirname(spool))
    env = {"SUDO_USER": "", "SKITAI_SMTPDA_SPOOL": "", "SKITAI_LOG_DIR": str(tmp_path / "log")}
    agent = None
    try:
        with SmtpServer(str(tmp_path)) as server:
            env["SMTP"] = f"127.0.0.1:{server.port}"
            with ServerProcess(script, "--fallback-user", USER, "--smtpda", env=env) as app:
                answer = httpx.post(app.url("/send"), timeout=20).json()
                agent = wait_for(lambda: AgentLock(spool).holder(), timeout=15)
                [received] = server.handler.wait_for(1)
            assert answer["uid"] == user.pw_uid and answer["spool"] == spool
            assert received.sender == "me@example.com" and b"Subject: as nobody" in received.data
            assert psutil.Process(agent).uids().real == user.pw_uid
            assert psutil.Process(agent).uids().effective == user.pw_uid
            for folder in (os.path.dirname(spool), spool, os.path.join(spool, "queue")):
                assert os.stat(folder).st_uid == user.pw_uid, folder
            wait_for(lambda: not os.listdir(os.path.join(spool, "queue")))
            with open(os.path.join(spool, "smtpda.log")) as log:
                assert f"sent {answer['id']} (attempt 1)" in log.read()
    finally:
        holder = AgentLock(spool).holder() or agent
        if holder and holder > 0 and psutil.pid_exists(holder):
            os.kill(holder, signal.SIGTERM)
            wait_for(lambda: AgentLock(spool).holder() is None, timeout=30)
        if made_here:
            shutil.rmtree(os.path.dirname(spool), ignore_errors=True)
