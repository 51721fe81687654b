"""`was.push` in Flask (the spec's example) and Django apps (tests/projects/push_frameworks):
over HTTP/2 the images come as pushed streams before the page, over HTTP/1.1 `was.push`
returns False and the page is served as usual."""
import re
import subprocess
from pathlib import Path

import pytest

from skitai.testing import requires_commands

PROJECT = "push_frameworks/serve.py"
IMAGES = Path(__file__).resolve().parent / "projects" / "push_frameworks" / "static" / "images"
nghttp = requires_commands("nghttp", install="apt-get install nghttp2-client")

CASES = [("/flask/promise", ["/images/A.png", "/images/B.png"]), ("/django/promise", ["/images/B.png"])]


def nghttp_run(*args):
    result = subprocess.run(["nghttp", *args], capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@nghttp
@pytest.mark.parametrize("path, images", CASES)
def test_push_promises_then_the_page(server, path, images):
    out = nghttp_run("-nv", server.url(path)).decode()
    assert out.count("recv PUSH_PROMISE frame") == len(images)
    for image in images:
        assert f":path: {image}" in out
    assert f"x-pushed: {' '.join(['True'] * len(images))}" in out
    assert len(re.findall(r"recv DATA frame <length=\d+, flags=0x01, stream_id=\d*[02468]>", out)) == len(images)


@nghttp
@pytest.mark.parametrize("path, images", CASES)
def test_pushed_bodies_are_the_files(server, path, images):
    out = nghttp_run(server.url(path))
    for image in images:
        assert (IMAGES / image.rsplit("/", 1)[1]).read_bytes() in out
    assert b'<img src="/images/B.png">' in out


@nghttp
def test_client_without_push_gets_the_page_only(server):
    out = nghttp_run("-nv", "--no-push", server.url("/flask/promise")).decode()
    assert "PUSH_PROMISE" not in out and "x-pushed: False False" in out and ":status: 200" in out


@pytest.mark.parametrize("path, images", CASES)
def test_http11_push_is_a_no_op(client, path, images):
    response = client.get(path)
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert response.headers["x-pushed"] == " ".join(["False"] * len(images))
    assert 'src="/images/B.png"' in response.text
