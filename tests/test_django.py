"""The manual's Django mount (tests/projects/django_site/serve.py): the project's
`mydjango/mydjango/wsgi:application` at / with a preference, its static folder at /static and
Django's admin static files at /static/admin."""
import re

PROJECT = "django_site/serve.py"


def test_a_view_sees_the_whole_path_and_an_empty_script_name(client):
    hello = client.get("/hello/")
    assert hello.status_code == 200 and hello.text == "Hello from Django: path=/hello/ script="


def test_post_to_a_csrf_exempt_view(client):
    echo = client.post("/echo/", data={"q": "skitai"})
    assert echo.json() == {"method": "POST", "post": {"q": "skitai"}, "size": 8}


def test_csrf_protection_still_applies_to_other_views(client):
    assert client.post("/hello/", data={"q": "skitai"}).status_code == 403


def test_djangos_own_404(client):
    assert client.get("/nope/").status_code == 404


def test_admin_login_page(client):
    login = client.get("/admin/", follow_redirects=True)
    assert login.status_code == 200 and "csrfmiddlewaretoken" in login.text
    assert login.url.raw_path == b"/admin/login/?next=/admin/"


def test_admin_stylesheet_the_login_page_links_to(client):
    login = client.get("/admin/login/")
    stylesheets = re.findall(r'href="(/static/admin/css/[^"]+\.css)"', login.text)
    assert "/static/admin/css/base.css" in stylesheets
    for href in stylesheets:
        css = client.get(href)
        assert css.status_code == 200 and css.headers["content-type"] == "text/css", href


def test_the_projects_own_static_folder(client):
    assert client.get("/static/site.css").text == "h1 { color: navy; }\n"


def test_a_generator_websocket_view(server):
    from websockets.sync.client import connect

    with connect(server.url("/chat/").replace("http", "ws", 1), open_timeout=10,
                 user_agent_header="djangotest/1.0") as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "ECHO:hi user-agent=djangotest"


def test_a_per_message_websocket_view_answers_with_its_response_body(server):
    from websockets.sync.client import connect

    with connect(server.url("/shout/").replace("http", "ws", 1), open_timeout=10) as ws:
        ws.send("quiet")
        assert ws.recv(timeout=10) == "QUIET"


def test_a_plain_get_of_a_websocket_view(client):
    assert client.get("/chat/").status_code == 426
