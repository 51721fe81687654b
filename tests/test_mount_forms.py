"""The mount object forms in one real service (tests/projects/mounts/serve.py): the script
mounting itself, static folders sharing points with apps, the manual's versioning layout with
two `app.py` files, a dotted module name, and routing by path segment on the decoded path."""
from pathlib import Path

import pytest

PROJECT = "mounts/serve.py"


@pytest.mark.parametrize("path, body", [
    ("/", "<p>static index</p>\n"),                                # static dir and app share "/"
    ("/root.txt", "static root\n"),
    ("/whoami", "main __main__ script= path=/whoami"),             # __file__ reuses the running script
    ("/v10", "main __main__ script= path=/v10"),                   # a segment prefix, not a string prefix
    ("/v1/", "Hello World Ver.1"),                                 # each version its own templates
    ("/v2/", "Hello World Ver.2"),
    ("/v1/version.txt", "v1 static\n"),                            # ... and its own static folder
    ("/v2/version.txt", "v2 static\n"),
    ("/v2/where/y%20z", "v2 script=/v2 path=/where/y z"),          # PATH_INFO is decoded
    ("/v%31/where/x", "v1 script=/v1 path=/where/x"),              # so is the mount point part
    ("/mod/a", "api pkgapps.api script=/mod path=/a"),             # "package.module:app"
    ("/caf%C3%A9/b", "api pkgapps.api script=/caf\xc3\xa9 path=/b"),  # a non-ASCII point, PEP 3333 form
])
def test_mount_forms(client, path, body):
    response = client.get(path)
    assert response.status_code == 200
    assert response.content.decode("latin-1") == body


def test_a_point_without_its_slash_reaches_the_app_with_an_empty_path_info(client, server):
    redirect = client.get("/v1")  # Flask answers "" with a redirect to its "/" route
    assert redirect.status_code == 308 and redirect.headers["location"] == server.url("/v1/")


def test_script_directory_is_the_working_directory(client, server):
    cwd, swd, path = client.get("/cwd").text.split("|")
    script_dir = str(Path(server.script).parent)
    assert cwd == swd == script_dir
    assert path == f"{script_dir}/static/root.txt"


def test_writes_to_a_shared_point_go_to_the_app_even_where_a_file_exists(client):
    assert client.post("/root.txt", content=b"x").text == "main __main__ script= path=/root.txt"
