"""Large response bodies over h2c: sent from views of the body (no copy of what is left per
frame, which made a 16 MiB body cost time quadratic in its size), files read in blocks, and
written slice by slice so other streams are served while a large body is going out."""
import hashlib
import os

import h2.events
import h2.settings
from h2peer import Client

from skitai.outbox import FILE_BLOCK, Outbox
from skitai.plugin import FileSegment

MiB = 1024 * 1024
BIG = os.urandom(MiB) * 16  # 16 MiB, not all alike, so a misplaced slice shows


def big(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [BIG]


def small(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"small"]


def app(environ, start_response):
    return {"/big": big, "/small": small}[environ["PATH_INFO"]](environ, start_response)


def wide_client(port: int) -> Client:
    """A client whose windows never hold the server back."""
    client = Client(port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
    client.conn.increment_flow_control_window(2 ** 31 - 1 - 65535)
    client.flush()
    return client


def test_a_bytes_body_is_cut_into_views_of_itself():
    box = Outbox()
    box.add(BIG)
    first = box.take(16384)
    rest = box.pieces[0]
    assert isinstance(first, memoryview) and first.obj is BIG
    assert isinstance(rest, memoryview) and rest.obj is BIG and len(rest) == len(BIG) - 16384
    assert bytes(box.take(16384)) == BIG[16384:32768]


def test_a_file_body_is_read_in_blocks(tmp_path):
    path = tmp_path / "body"
    path.write_bytes(BIG[:3 * FILE_BLOCK])
    with open(path, "rb") as file:
        box = Outbox()
        box.add(FileSegment(file, 0, 3 * FILE_BLOCK))
        blocks = []
        while box.pieces:
            blocks.append(box.take(10 * FILE_BLOCK))
    assert [len(block) for block in blocks] == [FILE_BLOCK] * 3
    assert b"".join(blocks) == BIG[:3 * FILE_BLOCK]


def test_a_large_wsgi_body_arrives_whole(serve):
    server = serve(app)
    client = wide_client(server.port)
    try:
        headers, body = client.response(client.request("/big"))
    finally:
        client.close()
    assert headers[":status"] == "200" and headers["content-length"] == str(len(BIG))
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()


def test_a_large_static_file_arrives_whole(serve, tmp_path):
    (tmp_path / "big.bin").write_bytes(BIG)
    server = serve(("/", str(tmp_path)))
    client = wide_client(server.port)
    try:
        headers, body = client.response(client.request("/big.bin"))
    finally:
        client.close()
    assert headers[":status"] == "200"
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()


def test_a_large_body_does_not_hold_back_a_later_stream(serve):
    """The client asks for 16 MiB, then, once the first DATA frame came, for a small answer: the
    small answer ends before the large one does, because the large body goes out in slices with
    the loop free in between (framed whole, it sat in the socket buffer ahead of everything)."""
    server = serve(app)
    client = wide_client(server.port)
    try:
        large = client.request("/big")
        client.until(lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == large)
        later = client.request("/small")
        ended = [e.stream_id for e in client.until(
            lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == large, timeout=30)
            if isinstance(e, h2.events.StreamEnded)]
    finally:
        client.close()
    assert ended == [later, large]
