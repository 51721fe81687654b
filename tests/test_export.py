"""The export spec (tests/projects/export): the `unsub` package ships apps in
unsub/export/skitai; `__setup__` reads the user's preference, `__mount__` finishes each app,
and `pref.mount` adds the user's extensions."""
PROJECT = "export/serve.py"
URLS = [["home", "https://example.com/"], ["docs", "https://example.com/docs/"]]


def test_a_module_mounts_its_export_app_with_the_setup_result(client):
    assert client.get("/latest/").json() == {"version": "latest", "urls": URLS, "script_root": "/latest"}


def test_a_module_and_file_tuple_mounts_that_file(client):
    assert client.get("/v1/").json() == {"version": "v1", "urls": URLS, "script_root": "/v1"}
    assert client.get("/v2/").json() == {"version": "v2", "urls": URLS, "script_root": "/v2"}


def test_the_packages_mount_hook_ran_for_each_app(client):
    for point in ("/latest", "/v1", "/v2"):
        assert client.get(f"{point}/health").text == "ok"


def test_extensions_mounted_with_the_preference(client):
    assert client.get("/latest/apis").text == "APIS"
    assert client.get("/v2/stats").json() == {"urls": 2}
    assert client.get("/v1/apis").status_code == 404  # extensions belong to their own mount
