"""Static files over HTTP/3: whole files (sent from the file in blocks as the stream drains),
byte ranges and conditional requests, answered by the core's static handler."""
import os

import pytest

from skitai_http3.testing import h3_connect, run

CONTENT = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def static_dir(tmp_path):
    folder = tmp_path / "static"
    folder.mkdir()
    (folder / "big.bin").write_bytes(CONTENT)
    (folder / "small.txt").write_bytes(b"hello static\n")
    return str(folder)


def requests(server, certs, *calls):
    async def go():
        async with h3_connect("127.0.0.1", server.quic_port, cafile=certs.ca) as client:
            return [await client.request("GET", path, headers=headers) for path, headers in calls]
    return run(go)


def test_a_large_file_arrives_whole(serve, certs, static_dir):
    server = serve(("/", static_dir))
    [response] = requests(server, certs, ("/big.bin", []))
    assert response.status == 200 and response.body == CONTENT
    assert response.header("content-length") == str(len(CONTENT))


def test_ranges_and_conditionals(serve, certs, static_dir):
    server = serve(("/", static_dir))
    whole, part, suffix = requests(server, certs, ("/small.txt", []), ("/big.bin", [("range", "bytes=100-199")]),
                                   ("/big.bin", [("range", "bytes=-10")]))
    assert part.status == 206 and part.body == CONTENT[100:200]
    assert part.header("content-range") == f"bytes 100-199/{len(CONTENT)}"
    assert suffix.status == 206 and suffix.body == CONTENT[-10:]
    etag, modified = whole.header("etag"), whole.header("last-modified")
    assert etag and modified
    unchanged, since, outside = requests(
        server, certs, ("/small.txt", [("if-none-match", etag)]),
        ("/small.txt", [("if-modified-since", modified)]),
        ("/big.bin", [("range", f"bytes={len(CONTENT)}-")]))
    assert unchanged.status == 304 and unchanged.body == b""
    assert since.status == 304
    assert outside.status == 416
