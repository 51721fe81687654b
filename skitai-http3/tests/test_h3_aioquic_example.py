"""aioquic's own HTTP/3 client, `examples/http3_client.py` of its source distribution, as a real
client: GET and POST with data, its output checked. The example is not installed with aioquic's
wheel: the test fetches the sdist of the installed version once (`pip download`) into a cache
folder. Without the network it is skipped, saying so; under CI (`CI=true`) it must run."""
import hashlib
import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest
from h3apps import APP

from skitai.testing import in_ci

AIOQUIC = version("aioquic")
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skitai-tests"


def fetch_example() -> Path:
    """aioquic's `examples/http3_client.py` for the installed version, from the cache or from
    its sdist; pytest.skip (pytest.fail under CI) when it cannot be fetched."""
    folder = CACHE / f"aioquic-{AIOQUIC}"
    example = folder / "examples" / "http3_client.py"
    if example.exists():
        return example
    CACHE.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                              f"aioquic=={AIOQUIC}", "-d", str(CACHE)], capture_output=True, text=True, timeout=180)
    sdist = CACHE / f"aioquic-{AIOQUIC}.tar.gz"
    if fetched.returncode != 0 or not sdist.exists():
        reason = f"aioquic {AIOQUIC}'s sdist (for examples/http3_client.py) could not be fetched: " \
                 f"{fetched.stderr.strip()[-300:]}"
        if in_ci():
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with tarfile.open(sdist) as archive:
        members = [member for member in archive.getmembers()
                   if member.name.startswith(f"aioquic-{AIOQUIC}/examples/") and member.isfile()]
        archive.extractall(CACHE, members=members, filter="data")
    return example


@pytest.fixture(scope="module")
def http3_client():
    return fetch_example()


def run_example(example: Path, certs, url: str, tmp_path: Path, *args: str) -> tuple[str, bytes]:
    """Run the example with the test CA; (its log, the response it wrote, headers included)."""
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, str(example), "--ca-certs", certs.ca, "--include",
                           "--output-dir", str(out), *args, url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    written = list(out.iterdir())
    assert len(written) == 1, done.stderr
    return done.stderr, written[0].read_bytes()


def test_aioquic_http3_client_example_gets(serve, certs, http3_client, tmp_path):
    server = serve(APP)
    log, response = run_example(http3_client, certs, f"https://127.0.0.1:{server.quic_port}/", tmp_path)
    head, body = response.split(b"\r\n\r\n", 1)
    assert b":status: 200" in head.split(b"\r\n")
    assert body == b"HTTP/3.0 GET 127.0.0.1:%d https" % server.quic_port
    assert "Response received for GET /" in log


def test_aioquic_http3_client_example_posts_data(serve, certs, http3_client, tmp_path):
    server = serve(APP)
    data = "field=value&other=" + "x" * 5000
    log, response = run_example(http3_client, certs, f"https://127.0.0.1:{server.quic_port}/echo", tmp_path,
                                "--data", data)
    head, body = response.split(b"\r\n\r\n", 1)
    assert b":status: 200" in head.split(b"\r\n")
    assert body == f"{len(data)} {hashlib.sha256(data.encode()).hexdigest()}".encode()
    assert "Response received for POST /echo" in log


def test_aioquic_http3_client_example_in_0rtt_gets_and_is_refused_a_post(serve, certs, http3_client, tmp_path):
    """With 0-RTT on, the example saves a session ticket, then resumes with it and sends its
    request in early data (`--zero-rtt`): a GET is served, a POST is answered 425 Too Early.
    Tickets are single-use and a 0-RTT run may end before its new ticket arrives, so each 0-RTT
    run follows a full one."""
    server = serve(APP, quic_early_data=True)
    url = f"https://127.0.0.1:{server.quic_port}"
    ticket = str(tmp_path / "ticket.pickle")
    for name, args, status in (("ticket-1", (), b"200"), ("get", ("--zero-rtt",), b"200"),
                               ("ticket-2", (), b"200"), ("post", ("--zero-rtt", "--data", "a=1"), b"425")):
        log, response = run_example(http3_client, certs, f"{url}/echo", tmp_path / name,
                                    "--session-ticket", ticket, *args)
        assert b":status: " + status in response.split(b"\r\n\r\n", 1)[0].split(b"\r\n"), (name, response)
        if name.startswith("ticket"):  # a full handshake: the ticket comes before the response
            assert "New session ticket received" in log, name
