"""Started as root, Skitai binds and reads its key, then drops to the sudo user or
`--fallback-user` before it serves or forks; the apps report whom they run as."""
import os
import pwd
import shutil
import signal
import stat
import tempfile

import pytest
from tlsutil import failed_start, https_get, wait_for_output

from skitai.testing import ServerProcess, make_certificates

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason=f"dropping privileges needs root; the tests run as uid {os.geteuid()}")

NOBODY = pwd.getpwnam("nobody")
DAEMON = pwd.getpwnam("daemon")

SCRIPT = '''
import os
import skitai


def regains_root():
    try:
        os.setuid(0)
    except PermissionError:
        return "no"
    return "yes"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    groups = ",".join(str(group) for group in os.getgroups())
    return [f"{os.geteuid()} {os.getegid()} {groups} {regains_root()} {os.environ.get('HOME')} "
            f"{os.environ.get('USER')}".encode()]


if __name__ == "__main__":
    skitai.enable_ssl(os.environ["TEST_CERT"], os.environ["TEST_KEY"])
    skitai.mount("/", app)
    skitai.mount("/files", "files")
    skitai.run(port=5000, workers=int(os.environ.get("TEST_WORKERS", "1")))
'''


@pytest.fixture
def script():
    """The script in a folder anyone may read (root's pytest folders are 0700): the server
    still serves files from it once it is no longer root."""
    folder = tempfile.mkdtemp(prefix="skitai-privileges-")
    try:
        os.chmod(folder, 0o755)
        os.mkdir(os.path.join(folder, "files"), 0o755)
        with open(os.path.join(folder, "files", "hello.txt"), "w") as file:
            file.write("hello")
        path = os.path.join(folder, "serve.py")
        with open(path, "w") as file:
            file.write(SCRIPT)
        yield path
    finally:
        shutil.rmtree(folder)


@pytest.fixture
def certs(tmp_path):
    """A key only root may read, in a folder only root may enter."""
    files = make_certificates(str(tmp_path))
    os.chmod(files.key, stat.S_IRUSR | stat.S_IWUSR)
    assert os.stat(tmp_path).st_mode & 0o077 == 0
    return files


def env_for(certs, **extra):
    return {"TEST_CERT": certs.cert, "TEST_KEY": certs.key, "SUDO_USER": "", **extra}


def nobody_reads_the_python_library():
    library = os.path.dirname(os.__file__)
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            os._exit(0 if os.access(library, os.R_OK | os.X_OK) else 1)
        finally:
            os._exit(2)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def ids(pid):
    """The real, effective, saved and filesystem uids and gids of a process."""
    with open(f"/proc/{pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return fields["Uid"].split(), fields["Gid"].split()


@pytest.mark.parametrize("workers", [1, 2])
def test_root_drops_to_the_fallback_user_after_reading_the_key(script, certs, workers):
    env = env_for(certs, TEST_WORKERS=str(workers))
    with ServerProcess(script, "--fallback-user", "nobody", env=env) as server:
        answer = https_get(certs.ca, server.port, "/").text
        hello = https_get(certs.ca, server.port, "/files/hello.txt").text
        master = ids(server.process.pid)
    uid, gid = NOBODY.pw_uid, NOBODY.pw_gid
    assert answer == f"{uid} {gid} {gid} no {NOBODY.pw_dir} nobody"
    assert hello == "hello"
    assert master == ([str(uid)] * 4, [str(gid)] * 4)
    assert "running as root" not in server.output
    # Python kept in a folder only root may enter (/root/.pyenv) is said at once, not found later
    assert ("nobody cannot read the Python library" in server.output) != nobody_reads_the_python_library()


def test_no_reload_once_the_key_is_out_of_reach(script, certs):
    """A reloaded master would re-read the root-only key as nobody, fail, and orphan the
    workers: the master refuses the reload and goes on serving."""
    env = env_for(certs, TEST_WORKERS="2")
    with ServerProcess(script, "--fallback-user", "nobody", env=env) as server:
        wait_for_output(server, f"serving on https://127.0.0.1:{server.port}/", 2)
        server.signal(signal.SIGHUP)
        wait_for_output(server, "skitai: not reloading")
        assert https_get(certs.ca, server.port, "/").text.startswith(f"{NOBODY.pw_uid} ")
        assert server.process.poll() is None
    assert (f"skitai: not reloading: cannot read {certs.cert}, {certs.key} without root privileges"
            in server.output)
    assert "skitai: reloading" not in server.output


def test_the_sudo_user_comes_before_the_fallback_user(script, certs):
    env = env_for(certs, SUDO_USER="nobody")
    with ServerProcess(script, "--fallback-user", "daemon", env=env) as server:
        assert https_get(certs.ca, server.port, "/").text.startswith(f"{NOBODY.pw_uid} {NOBODY.pw_gid} ")


def test_sudo_by_root_falls_back_to_the_fallback_user(script, certs):
    env = env_for(certs, SUDO_USER="root")
    with ServerProcess(script, "--fallback-user", "daemon", env=env) as server:
        assert https_get(certs.ca, server.port, "/").text.startswith(f"{DAEMON.pw_uid} {DAEMON.pw_gid} ")


def test_without_a_user_to_become_root_stays_root_and_says_so(script, certs):
    with ServerProcess(script, env=env_for(certs)) as server:
        assert https_get(certs.ca, server.port, "/").text.startswith("0 0 ")
    assert "skitai: WARNING: running as root" in server.output


def test_an_unknown_user_stops_the_start(script, certs):
    result = failed_start(script, "--fallback-user", "no-such-user-skitai", env={**os.environ, **env_for(certs)})
    assert result.returncode == 1
    assert result.stdout == "skitai: error: cannot drop root privileges to 'no-such-user-skitai': no such user\n"
