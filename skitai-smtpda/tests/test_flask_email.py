"""A real Skitai app: Flask views call `was.email` in requests served by a worker of
`serve.py --smtpda`; the master's agent delivers to aiosmtpd through the default server of
`skitai.set_smtp` (STARTTLS, AUTH, a private CA) or the message's own."""
import email
import email.policy
import os
import signal
import subprocess
import sys
import textwrap

import httpx
import pytest
from smtputil import PASSWORD, USER, SmtpServer

from skitai.testing import ServerProcess, wait_for
from skitai_smtpda.lock import AgentLock

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

SCRIPT = textwrap.dedent('''
    import os

    from flask import Flask, jsonify, request

    import skitai
    from skitai import was

    app = Flask(__name__)


    @app.post("/welcome")
    def welcome():
        e = was.email("Bienvenue, " + request.form["name"], "Équipe <team@example.com>",
                      [f"{request.form['name']} <{request.form['to']}>"])
        e.add_content("<p>Hello</p><img src='cid:LOGO'>", "text/html")
        e.add_content("Hello", "text/plain")
        e.add_attachment(os.path.join(os.path.dirname(__file__), "logo.png"), cid="LOGO")
        return jsonify(id=e.send())


    @app.post("/other-server")
    def other_server():
        e = was.email("via the other", "team@example.com", request.form["to"])
        e.set_smtp(request.form["server"])
        e.add_content("plain")
        return jsonify(id=e.send())


    @app.post("/bad")
    def bad():
        try:
            was.email("x", "team@example.com", request.form["to"])
        except ValueError as error:
            return jsonify(error=str(error)), 400
        return jsonify(ok=True)


    if __name__ == "__main__":
        skitai.set_smtp(os.environ["SMTP"], os.environ.get("SMTP_USER"), os.environ.get("SMTP_PASSWORD"),
                        starttls=True, ca=os.environ.get("SMTP_CA"))
        skitai.mount("/", app)
        skitai.run(port=5000, workers=2)
''')


@pytest.fixture
def app_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SKITAI_SMTPDA_SPOOL", str(tmp_path / "spool"))
    (tmp_path / "serve.py").write_text(SCRIPT)
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nlogo")
    yield tmp_path
    holder = AgentLock(str(tmp_path / "spool")).holder()
    if holder and holder > 0:
        os.kill(holder, signal.SIGTERM)
        wait_for(lambda: AgentLock(str(tmp_path / "spool")).holder() is None, timeout=30)


def test_flask_views_send_through_the_agent(app_folder):
    with SmtpServer(str(app_folder), "starttls", auth=True) as server, SmtpServer(str(app_folder)) as other:
        env = {"SMTP": server.address, "SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD,
               "SMTP_CA": server.certificates.ca, "SKITAI_LOG_DIR": str(app_folder / "log")}
        with ServerProcess(str(app_folder / "serve.py"), "--smtpda", env=env) as app:
            answers = [httpx.post(app.url("/welcome"), data={"name": f"Zoë {n}", "to": f"zoe{n}@example.org"},
                                  timeout=10) for n in range(4)]
            assert [answer.status_code for answer in answers] == [200] * 4
            other_answer = httpx.post(app.url("/other-server"), timeout=10,
                                      data={"to": "x@example.net", "server": other.address})
            assert other_answer.status_code == 200
            bad = httpx.post(app.url("/bad"), data={"to": "not an address"}, timeout=10)
            assert bad.status_code == 400 and "is not an e-mail address" in bad.json()["error"]
            received = server.handler.wait_for(4)
            assert [r.recipients for r in other.handler.wait_for(1)] == [["x@example.net"]]
    messages = sorted((email.message_from_bytes(r.data, policy=email.policy.default) for r in received),
                      key=lambda message: message["Subject"])
    assert [m["Subject"] for m in messages] == [f"Bienvenue, Zoë {n}" for n in range(4)]
    first = messages[0]
    assert first["From"].addresses[0].display_name == "Équipe"
    assert first["To"].addresses[0].display_name == "Zoë 0"
    related = first.get_body(("related",))
    assert related.get_payload()[1]["Content-ID"] == "<LOGO>"
    assert first.get_body(("plain",)).get_content().rstrip() == "Hello"


def test_a_bad_smtp_setting_stops_the_start_in_one_line(app_folder):
    env = {**os.environ, "SMTP": "mail.example.com:notaport", "SKITAI_LOG_DIR": str(app_folder / "log")}
    result = subprocess.run([sys.executable, str(app_folder / "serve.py"), "--port=1"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if not line.startswith("skitai: WARNING: running as root")]
    assert lines == [(
        "skitai: error: plugin smtpda failed in skitai_configure: skitai.set_smtp: the SMTP server must be "
        "'host:port', not 'mail.example.com:notaport'")]
