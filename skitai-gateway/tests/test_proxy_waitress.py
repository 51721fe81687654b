"""The reverse proxy in front of a waitress member (a peer of the benchmarks, with its own
HTTP/1.1 parser): a streamed upload of unknown length reaches it re-framed as chunked, and its
chunked answer streams back whole, over real sockets with httpx and curl."""
import hashlib
import subprocess

import httpx
import pytest
from proxyservers import Waitress, proxy_server

from skitai.testing import StartedServers, requires_commands

SIZE = 5 * 1024 * 1024 + 123


@pytest.fixture(scope="module")
def waitress():
    server = Waitress()
    yield server
    server.close()


@pytest.fixture
def front(waitress):
    started = StartedServers(lambda **settings: proxy_server({"/w": "@w"}, {"@w": [waitress.member]}, **settings))
    yield started()
    started.stop()


def pieces(size: int, piece: bytes = b"0123456789abcdef" * 4096):
    while size > 0:
        yield piece[:size]
        size -= len(piece)


def test_a_streamed_upload_reaches_waitress_chunked_and_whole(front):
    digest = hashlib.sha256(b"".join(pieces(SIZE))).hexdigest()
    with httpx.Client(timeout=30) as client:
        seen = client.post(front.url("/w/echo"), content=pieces(SIZE))  # no length: chunked
        again = client.post(front.url("/w/echo"), content=b"abc")  # the pooled connection, reused
    assert seen.status_code == 200, seen.text
    body = seen.json()
    assert (body["size"], body["sha256"]) == (SIZE, digest)
    # waitress de-chunks the body before the app sees it, and says its length
    assert body["headers"]["CONTENT_LENGTH"] == str(SIZE) and body["headers"]["VIA"] == "1.1 skitai"
    assert again.json()["size"] == 3


def test_a_chunked_answer_from_waitress_streams_through(front):
    with httpx.Client(timeout=30) as client, client.stream("GET", front.url(f"/w/chunked?size={SIZE}")) as answer:
        assert answer.status_code == 200
        assert "content-length" not in answer.headers and answer.headers["transfer-encoding"] == "chunked"
        received = sum(len(data) for data in answer.iter_bytes())
    assert received == SIZE


@requires_commands("curl", install="apt-get install curl")
def test_curl_uploads_chunked_through_the_proxy_to_waitress(front, tmp_path):
    upload = tmp_path / "upload"
    upload.write_bytes(b"y" * SIZE)
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-H", "Transfer-Encoding: chunked", "--data-binary", f"@{upload}",
         front.url("/w/echo")], capture_output=True, timeout=40)
    assert result.returncode == 0, result.stderr
    assert b'"size": %d' % SIZE in result.stdout, result.stdout[:300]
