"""Each mount object form of `skitai.mount()`, in one real service (tests/apps/mounts)."""
from pathlib import Path

import httpx
import pytest

from skitai.testing import ServerProcess

SERVICE = Path(__file__).resolve().parent / "apps" / "mounts" / "serve_mounts.py"


@pytest.fixture(scope="module")
def client():
    with ServerProcess(str(SERVICE)) as server:
        with httpx.Client(base_url=server.url(""), timeout=10) as client:
            yield client


@pytest.mark.parametrize("path, body", [
    ("/", "<p>static index</p>\n"),                         # static dir and app share "/"
    ("/v1.txt", "static v1\n"),
    ("/whoami", "main __main__ script= path=/whoami"),      # __file__ reuses the running script
    ("/v1/x", "v1 script=/v1 path=/x"),                     # "app_v1/app"
    ("/v1", "v1 script=/v1 path="),
    ("/v10", "main __main__ script= path=/v10"),            # a segment prefix, not a string prefix
    ("/v2/y%20z", "v2 script=/v2 path=/y z"),               # "app_v2/app:app", same file name
    ("/mod/a", "api pkgapps.api path=/a"),                  # "package.module:app"
    ("/unsub/", "unsub hi setup=True mounted=True extended=True path=/"),  # export spec + pref
    ("/unsub2/", "unsub v2"),                               # (module, "file:app")
])
def test_mount_forms(client, path, body):
    response = client.get(path)
    assert response.status_code == 200 and response.text == body


def test_script_directory_is_the_working_directory(client):
    cwd, swd, path = client.get("/cwd").text.split("|")
    assert cwd == swd == str(SERVICE.parent)
    assert path == str(SERVICE.parent / "static" / "v1.txt")


def test_writes_to_a_shared_point_go_to_the_app_even_where_a_file_exists(client):
    assert client.post("/v1.txt", content=b"x").text == "main __main__ script= path=/v1.txt"
