"""Flask, Django and the original manual's "At a Glance" service, run as scripts the way users
run them, over real sockets."""
from pathlib import Path

import httpx
import pytest

from skitai.testing import ServerProcess

APPS = Path(__file__).resolve().parent / "apps"


@pytest.fixture(scope="module")
def flask_server():
    with ServerProcess(str(APPS / "serve_flask.py")) as server:
        yield server


@pytest.fixture(scope="module")
def django_server():
    with ServerProcess(str(APPS / "serve_django.py")) as server:
        yield server


def test_glance_service_runs_as_the_manual_shows():
    with ServerProcess(str(APPS / "glance" / "myservice.py")) as server:
        with httpx.Client(timeout=10) as client:
            assert client.get(server.url("/")).text == "Hello World"
            css = client.get(server.url("/site.css"))
            assert css.status_code == 200 and css.text == "body { color: teal; }\n"
            assert css.headers["content-type"] == "text/css"


def test_flask_routes_under_a_mount_point(flask_server):
    with httpx.Client(base_url=flask_server.url("/flaskapp"), timeout=10) as client:
        assert client.get("/hello").text == "Hello"
        assert client.get("/where").text == "/flaskapp/hello"  # url_for sees SCRIPT_NAME
        assert client.post("/form", data={"name": "skitai"}).text == "name=skitai"
        assert client.post("/json", json={"a": [1, 2]}).json() == {"got": {"a": [1, 2]}}
        assert client.post("/upload", content=b"x" * 3_000_000).text == "3000000"
        assert client.get("/missing").status_code == 404
        teapot = client.get("/teapot")
        assert teapot.status_code == 418 and teapot.text == "short and stout"
    assert httpx.get(flask_server.url("/hello"), timeout=10).status_code == 404  # outside the mount


def test_flask_send_file_with_range(flask_server):
    with httpx.Client(base_url=flask_server.url("/flaskapp"), timeout=10) as client:
        whole = client.get("/file")
        assert whole.status_code == 200 and whole.text == "body { color: teal; }\n"
        part = client.get("/file", headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.text == "body"


def test_django_view_and_post(django_server):
    with httpx.Client(timeout=10) as client:
        hello = client.get(django_server.url("/hello/"))
        assert hello.status_code == 200 and hello.text == "Hello from Django: path=/hello/ script="
        echo = client.post(django_server.url("/echo/"), data={"q": "skitai"})
        assert echo.json() == {"method": "POST", "post": {"q": "skitai"}, "size": 8}
        assert client.get(django_server.url("/nope/")).status_code == 404


def test_django_admin_login_page_and_its_static_files(django_server):
    with httpx.Client(timeout=10, follow_redirects=True) as client:
        login = client.get(django_server.url("/admin/"))
        assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
        assert str(login.url).endswith("/admin/login/?next=/admin/")
        css = client.get(django_server.url("/static/admin/css/base.css"))
        assert css.status_code == 200 and css.headers["content-type"] == "text/css"
        site = client.get(django_server.url("/static/site.css"))
        assert site.text == "h1 { color: navy; }\n"
