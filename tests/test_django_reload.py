"""Auto-reload of a Django project: a copy of tests/projects/django_site with a project app of
its own (`greetings`, in INSTALLED_APPS), run with `--devel` or with the manual's
`pref.use_reloader = True`. The URLconf and the views are imported only on the first request,
in the worker, so what the master imported does not cover them: the reloader watches the
settings package and the project's installed apps as whole folders."""
import shutil
import time
from pathlib import Path

import httpx
import pytest

from skitai.testing import ServerProcess

PROJECTS = Path(__file__).resolve().parent / "projects"

GREETINGS_VIEWS = '''
from django.http import HttpResponse


def greet(request):
    return HttpResponse("greetings {version}")
'''


@pytest.fixture
def site(tmp_path):
    """The Django project copied to tmp_path, with the `greetings` app mounted at /greet/."""
    root = tmp_path / "django_site"
    shutil.copytree(PROJECTS / "django_site", root)
    greetings = root / "mydjango" / "greetings"
    greetings.mkdir()
    (greetings / "__init__.py").write_text("")
    (greetings / "views.py").write_text(GREETINGS_VIEWS.format(version="v1"))
    settings = root / "mydjango" / "mydjango" / "settings.py"
    settings.write_text(settings.read_text().replace('"django.contrib.staticfiles",',
                                                     '"django.contrib.staticfiles",\n    "greetings",'))
    edit(root / "mydjango" / "mydjango" / "urls.py",
         ('    path("echo/", echo),', '    path("echo/", echo),\n    path("greet/", greet),'),
         ("from django.urls import path", "from django.urls import path\nfrom greetings.views import greet"))
    return root


def edit(path, *replacements):
    text = path.read_text()
    for old, new in replacements:
        assert old in text, (path, old)
        text = text.replace(old, new)
    path.write_text(text)


def wait_for_answer(client, path, status, text=None, timeout=30.0):
    """Poll `path` until it answers `status` (and `text`); the server's output explains a failure."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        response = client.get(path)
        last = (response.status_code, response.text[:200])
        if response.status_code == status and (text is None or response.text == text):
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status} {text!r}; last {last}")


@pytest.mark.parametrize("how", ["--devel", "pref.use_reloader"])
def test_edits_to_views_urls_and_a_broken_urlconf(site, how):
    args = ("--devel",) if how == "--devel" else ()
    if how == "pref.use_reloader":
        edit(site / "serve.py", ("pref.debug = True", "pref.debug = True\n        pref.use_reloader = True"))
    env = {"SKITAI_LOG_DIR": str(site / "log"), "SKITAI_RUN_DIR": str(site / "run")}
    with ServerProcess(str(site / "serve.py"), *args, env=env) as server, \
            httpx.Client(base_url=server.url(""), timeout=10.0) as client:
        try:
            assert client.get("/greet/").text == "greetings v1"
            (site / "mydjango" / "greetings" / "views.py").write_text(GREETINGS_VIEWS.format(version="v2"))
            wait_for_answer(client, "/greet/", 200, "greetings v2")

            urls = site / "mydjango" / "mydjango" / "urls.py"
            edit(urls, ("Hello from Django", "Hi from Django"))
            wait_for_answer(client, "/hello/", 200, "Hi from Django: path=/hello/ script=")

            # The URLconf is read on the first request: a syntax error there is Django's 500,
            # the service stays up, and the fix is picked up by the next reload.
            edit(urls, ("def hello(request):", "def hello(request:"))
            wait_for_answer(client, "/hello/", 500)
            edit(urls, ("def hello(request:", "def hello(request):"), ("Hi from", "Hey from"))
            wait_for_answer(client, "/hello/", 200, "Hey from Django: path=/hello/ script=")
            assert client.get("/greet/").text == "greetings v2"
        except AssertionError as error:
            raise AssertionError(f"{error}\n{server.output}") from None
    assert server.returncode == 0
    assert "mydjango/greetings/views.py changed, reloading" in server.output
