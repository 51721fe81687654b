"""A Flask app mounted at /flaskapp (tests/projects/flask_site): Flask must see the mount point
as SCRIPT_NAME and the rest as PATH_INFO, and bodies, files and errors must pass unchanged."""
import hashlib

import httpx
import pytest

PROJECT = "flask_site/serve.py"
CSS = b"body { color: teal; }\n"


@pytest.fixture(scope="module")
def flask(server):
    with httpx.Client(base_url=server.url("/flaskapp"), timeout=10) as session:
        yield session


def test_routes_below_the_mount_point(flask):
    response = flask.get("/hello")
    assert response.status_code == 200 and response.text == "Hello"


def test_url_for_includes_the_mount_point(flask, server):
    urls = flask.get("/urls").json()
    assert urls == {"path": "/flaskapp/hello", "external": server.url("/flaskapp/hello"),
                    "script_root": "/flaskapp", "path_info": "/urls"}
    redirect = flask.get("/go")
    assert redirect.status_code == 302 and redirect.headers["location"] == "/flaskapp/hello"


def test_paths_outside_the_mount_point_are_not_flasks(client):
    assert client.get("/hello").status_code == 404
    assert client.get("/flaskapphello").status_code == 404


def test_form_and_json_bodies(flask):
    assert flask.post("/form", data={"name": "skitai"}).text == "name=skitai"
    assert flask.post("/json", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}


def test_a_large_raw_body_arrives_whole(flask):
    body = bytes(range(256)) * 12_000  # ~3 MB
    assert flask.post("/upload", content=body).json() == {
        "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_a_large_multipart_upload_arrives_whole(flask):
    data = hashlib.sha256(b"seed").digest() * 262_144  # 8 MiB
    response = flask.post("/upload", files={"blob": ("blob.bin", data)}, data={"note": "big"})
    assert response.json() == {
        "files": {"blob": {"filename": "blob.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}},
        "fields": {"note": "big"}}


def test_send_file_whole_and_by_range(flask):
    whole = flask.get("/file")
    assert whole.status_code == 200 and whole.content == CSS
    assert whole.headers["content-type"].startswith("text/css")
    first = flask.get("/file", headers={"Range": "bytes=0-3"})
    assert first.status_code == 206 and first.content == b"body"
    assert first.headers["content-range"] == f"bytes 0-3/{len(CSS)}"
    last = flask.get("/file", headers={"Range": "bytes=-2"})
    assert last.status_code == 206 and last.content == b"}\n"


def test_flasks_own_404(flask):
    missing = flask.get("/missing")
    assert missing.status_code == 404 and "The requested URL was not found" in missing.text


def test_error_handlers_answer(flask):
    teapot = flask.get("/teapot")
    assert teapot.status_code == 418 and teapot.text == "short and stout"
    broken = flask.get("/broken")
    assert broken.status_code == 400 and broken.text == "handled: no such value"
