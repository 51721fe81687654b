"""Mount table routing, the resolution of mount objects and preferences, without sockets."""
import importlib
import os
import sys
import types

import pytest
from h1util import Harness

from skitai.config import ServerConfig
from skitai.kernel import Kernel
from skitai.mounting import MountError, MountPoint, MountResolver, MountTable, decode_path, normalize_point, wsgi_point
from skitai.preference import Preference, apply_preference
from skitai.static.handler import StaticRoot


class Named:
    def __init__(self, name):
        self.name = name


class FakeExchange:
    def __init__(self, path, method="GET"):
        self.path, self.method = path, method
        self.script_name = self.path_info = None


@pytest.fixture
def table():
    table = MountTable()
    for point in ("/", "/v1", "/v1/deep", "/static"):
        table.add(point, "app", Named(point))
    return table


@pytest.mark.parametrize("path, point, script_name, path_info", [
    ("/", "/", "", "/"),
    ("/v1", "/v1", "/v1", ""),
    ("/v1/", "/v1", "/v1", "/"),
    ("/v10", "/", "", "/v10"),
    ("/v1/deep/x", "/v1/deep", "/v1/deep", "/x"),
    ("/v1/deeper", "/v1", "/v1", "/deeper"),
    ("/v%31/x", "/v1", "/v1", "/x"),
    ("/static/a%20b", "/static", "/static", "/a b"),
])
def test_longest_segment_prefix_wins(table, path, point, script_name, path_info):
    exchange = FakeExchange(path)
    assert table.resolve(exchange).name == point
    assert (exchange.script_name, exchange.path_info) == (script_name, path_info)


def test_a_point_takes_one_app_and_one_static_directory():
    table = MountTable()
    table.add("/x/", "app", Named("app"))
    table.add("/x", "static", Named("static"))
    with pytest.raises(MountError, match="already has a mounted app"):
        table.add("/x", "app", Named("again"))


def test_points_and_paths_are_normalised():
    assert normalize_point("v1/") == "/v1" and normalize_point("/") == "/" and normalize_point("//") == "/"
    assert normalize_point(normalize_point("/v1/")) == "/v1"
    assert decode_path("/a%2Fb%ff") == "/a/b\xff"
    # The request's raw bytes arrive as latin-1; decoding must not re-encode them as UTF-8.
    assert decode_path("/caf\xc3\xa9%20x") == "/caf\xc3\xa9 x"


@pytest.mark.parametrize("point", ["/café", "/caf%C3%A9/"])
def test_non_ascii_points_route_in_the_form_of_path_info(point):
    assert wsgi_point(point) == "/caf\xc3\xa9"
    table = MountTable()
    table.add(point, "app", Named("cafe"))
    exchange = FakeExchange("/caf%C3%A9/menu")
    assert table.resolve(exchange).name == "cafe"
    assert (exchange.script_name, exchange.path_info) == ("/caf\xc3\xa9", "/menu")


class FakeStatic(Named):
    def __init__(self, files):
        super().__init__("static")
        self.files = files

    def has_file(self, exchange):
        return exchange.path_info in self.files


@pytest.mark.parametrize("method, path, chosen", [
    ("GET", "/a.css", "static"), ("HEAD", "/a.css", "static"),
    ("GET", "/page", "app"), ("POST", "/a.css", "app"),
])
def test_a_shared_point_serves_existing_files_and_leaves_the_rest_to_the_app(method, path, chosen):
    entry = MountPoint("/", {"static": FakeStatic({"/a.css"}), "app": Named("app")})
    exchange = FakeExchange(path, method)
    exchange.path_info = path
    assert entry.choose(exchange).name == chosen


def test_preference_applies_to_dict_and_attribute_configs():
    from flask import Flask

    flask_app = Flask("t")
    pref = Preference()
    pref.config.answer = 42
    pref.debug = True
    apply_preference(flask_app, pref)
    assert flask_app.config["answer"] == 42 and flask_app.debug is True

    def plain(environ, start_response):
        return []

    pref.use_reloader = True
    apply_preference(plain, pref)
    assert plain.config.answer == 42 and plain.debug is True and plain.use_reloader is True


def test_preference_path_goes_first_on_sys_path(tmp_path):
    saved = list(sys.path)
    try:
        with Preference(path=str(tmp_path)) as pref:
            assert sys.path[0] == str(tmp_path) == pref.path
    finally:
        sys.path[:] = saved


def test_mounting_an_unknown_object_is_a_clear_error():
    with pytest.raises(MountError, match="cannot mount 42 at /: no mount adapter accepts it"):
        Harness(("/", 42)).close()


def test_config_setters_land_in_one_config():
    config = ServerConfig()
    config.max_ages += [("/", 10), ("/img", 60), ("/img", 90)]
    assert config.max_age_for("/a.js") == 10 and config.max_age_for("/img/x.png") == 90
    config.log_off += ["/static/", "*.css"]
    assert not config.is_logged("/static/x") and not config.is_logged("/a/b.css") and config.is_logged("/x")


# resolving mount objects

APP = '''
def {name}(environ, start_response):
    start_response("200 OK", [])
    return [{text!r}]
'''


@pytest.fixture
def project(tmp_path):
    """A script folder to write files into; the modules and sys.path entries that resolving
    them adds are taken away afterwards so tests cannot see each other's `app` modules."""
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    importlib.invalidate_caches()
    yield Project(tmp_path)
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


class Project:
    def __init__(self, root):
        self.root = root
        self.resolver = MountResolver(str(root))

    def write(self, relative, text=""):
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def app_file(self, relative, text, name="app"):
        return self.write(relative, APP.format(name=name, text=text.encode()))

    def resolve(self, obj, app_name="app", pref=None):
        return self.resolver.resolve(obj, app_name, pref)


def body(app):
    return b"".join(app({}, lambda status, headers: None))


def test_a_directory_is_a_static_root(project):
    (project.root / "static").mkdir()
    for text in ("static", str(project.root / "static"), "static/"):
        root = project.resolve(text)
        assert isinstance(root, StaticRoot) and root == os.path.realpath(project.root / "static")


@pytest.mark.parametrize("text, app_name", [
    ("svc/hello", "app"), ("svc/hello.py", "app"), ("svc/hello:other", "x"), ("svc/hello.py:other", "x"),
])
def test_an_app_file_by_path_relative_to_the_script(project, text, app_name):
    project.write("svc/hello.py", APP.format(name="app", text=b"app") + APP.format(name="other", text=b"other"))
    expected = b"other" if text.endswith(":other") else b"app"
    assert body(project.resolve(text, app_name)) == expected


def test_an_app_file_by_absolute_path(project):
    path = project.app_file("svc/hello.py", "absolute")
    assert body(project.resolve(str(path))) == b"absolute"


def test_versions_with_the_same_file_name_are_distinct_apps_loaded_once(project):
    project.app_file("app_v1/app.py", "v1")
    project.app_file("app_v2/app.py", "v2")
    v1, v2 = project.resolve("app_v1/app"), project.resolve("app_v2/app")
    assert (body(v1), body(v2)) == (b"v1", b"v2")
    assert sys.modules[v1.__module__] is not sys.modules[v2.__module__]
    assert project.resolve("app_v1/app:app") is v1 and project.resolve("app_v2/app") is v2


def test_the_manuals_first_versioning_layout(project):
    """`static/`, `app_v1.py` and `app_v2.py` side by side, mounted by bare names."""
    (project.root / "static").mkdir()
    project.app_file("app_v1.py", "Ver.1")
    project.app_file("app_v2.py", "Ver.2")
    assert isinstance(project.resolve("static"), StaticRoot)
    assert (body(project.resolve("app_v1")), body(project.resolve("app_v2"))) == (b"Ver.1", b"Ver.2")


def test_a_file_inside_packages_imports_under_its_dotted_name(project):
    project.write("site/proj/__init__.py")
    project.write("site/proj/settings.py", "GREETING = b'from settings'\n")
    project.write("site/proj/wsgi.py", "from proj import settings\n" + APP.format(name="application", text=b"")
                  .replace("[b''", "[settings.GREETING"))
    application = project.resolve("site/proj/wsgi:application")
    assert application.__module__ == "proj.wsgi" and body(application) == b"from settings"
    assert project.resolve("site/proj/wsgi:application") is application


def test_a_package_of_the_same_name_elsewhere_is_reported(project):
    for site in ("one", "two"):
        project.write(f"{site}/proj/__init__.py")
        project.app_file(f"{site}/proj/wsgi.py", site)
    project.resolve("one/proj/wsgi")
    with pytest.raises(MountError, match="another package of that name"):
        project.resolve("two/proj/wsgi")


def test_a_dotted_module_name(project):
    project.write("pkgapps/__init__.py")
    project.app_file("pkgapps/api.py", "api", name="application")
    sys.path.insert(0, str(project.root))
    assert body(project.resolve("pkgapps.api:application")) == b"api"
    assert body(project.resolve("pkgapps.api", "application")) == b"api"


def fake_main(monkeypatch, path, spec_name=None):
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    main.__spec__ = types.SimpleNamespace(name=spec_name) if spec_name else None
    main.app = lambda environ, start_response: [b"main"]
    monkeypatch.setitem(sys.modules, "__main__", main)
    return main


def test_the_running_script_mounting_itself_is_not_imported_again(project, monkeypatch):
    script = project.app_file("serve.py", "imported twice")
    main = fake_main(monkeypatch, script)
    assert project.resolve(str(script)) is main.app
    assert project.resolve("serve:app") is main.app
    assert "serve" not in sys.modules


def test_a_script_started_as_a_module_is_not_imported_again(project, monkeypatch):
    project.write("pkgapps/__init__.py")
    main = fake_main(monkeypatch, project.app_file("pkgapps/serve.py", "imported twice"), "pkgapps.serve")
    sys.path.insert(0, str(project.root))
    assert project.resolve("pkgapps.serve:app") is main.app


@pytest.mark.parametrize("text, message", [
    ("nowhere/app", "is no directory or Python file"),
    ("nowhere.py", "is no directory or Python file"),
    ("statics", "no importable module"),
    ("svc/hello:missing", "has no 'missing'"),
])
def test_what_cannot_be_found_is_a_clear_error(project, text, message):
    project.app_file("svc/hello.py", "hello")
    with pytest.raises(MountError, match=message):
        project.resolve(text)


def test_a_missing_import_inside_the_app_is_reported_as_such(project):
    project.write("svc/broken.py", "import no_such_dependency_here\n")
    with pytest.raises(ModuleNotFoundError) as caught:
        project.resolve("svc/broken")
    assert caught.value.name == "no_such_dependency_here"


def export_package(project, name, init=None):
    """`name/export/skitai/` with `__export__.py` (app "export") and `app_v1.py` (app "v1")."""
    project.write(f"{name}/__init__.py")
    project.app_file(f"{name}/export/skitai/__export__.py", "export")
    project.app_file(f"{name}/export/skitai/app_v1.py", "v1")
    if init is not None:
        project.write(f"{name}/export/skitai/__init__.py", init)
    sys.path.insert(0, str(project.root))
    return importlib.import_module(name)


HOOKS = '''
def {setup}(pref):
    pref.config.urls = pref.config.urlfile.upper()

def __mount__(app):
    app.mounted = getattr(app, "mounted", 0) + 1
'''


@pytest.mark.parametrize("setup", ["__setup__", "__bootstrap__"])
def test_a_module_following_the_export_spec(project, setup):
    unsub = export_package(project, "unsub", HOOKS.format(setup=setup))
    pref = Preference()
    pref.config.urlfile = "urls.txt"
    app = project.resolve(unsub, "app", pref)
    assert body(app) == b"export"
    assert app.config == {"urlfile": "urls.txt", "urls": "URLS.TXT"} and app.mounted == 1


@pytest.mark.parametrize("spec", ["app_v1:app", "app_v1"])
def test_a_module_and_file_tuple(project, spec):
    unsub = export_package(project, "unsub", HOOKS.format(setup="__setup__"))
    pref = Preference()
    pref.config.urlfile = "u"
    app = project.resolve((unsub, spec), "app", pref)
    assert body(app) == b"v1" and app.config.urls == "U" and app.mounted == 1


def test_the_export_hooks_are_optional(project):
    assert body(project.resolve(export_package(project, "bare"))) == b"export"


def test_a_module_without_export_folder_has_the_app_as_attribute(project):
    project.app_file("plain.py", "plain")
    sys.path.insert(0, str(project.root))
    assert body(project.resolve(importlib.import_module("plain"))) == b"plain"


def test_wrong_tuples_are_clear_errors(project):
    project.app_file("plain.py", "plain")
    sys.path.insert(0, str(project.root))
    with pytest.raises(MountError, match="no export/skitai folder"):
        project.resolve((importlib.import_module("plain"), "app_v1:app"))
    with pytest.raises(MountError, match="a tuple is"):
        project.resolve(("plain", "app"))


# the kernel: preferences and extensions

@pytest.fixture
def kernel():
    return Kernel(ServerConfig(), entry_points=False)


def wsgi(text):
    def app(environ, start_response):
        return [text]
    return app


def test_a_preference_reaches_an_app_mounted_as_object(kernel):
    app = wsgi(b"x")
    pref = Preference()
    pref.config.answer = 42
    pref.debug = True
    kernel.mount("/", app, pref)  # the manual's form: the preference as third argument
    assert app.config.answer == 42 and app.debug is True


def test_pref_mount_calls_the_extensions_mount_hook(kernel):
    app, extension = wsgi(b"x"), types.ModuleType("apis")
    extension.__mount__ = lambda target: setattr(target, "extended_by", "apis")
    pref = Preference()
    pref.mount("/apis", extension)
    kernel.mount("/v1", app, "app", pref)
    assert app.extended_by == "apis"


def test_pref_mount_uses_the_apps_own_mount_when_it_has_one(kernel):
    class Framework:
        def __init__(self):
            self.mounted = []

        def __call__(self, environ, start_response):
            return []

        def mount(self, point, obj):
            self.mounted.append((point, obj))

    app, extension = Framework(), types.ModuleType("apis")
    pref = Preference()
    pref.mount("/apis", extension)
    kernel.mount("/v1", app, pref)
    assert app.mounted == [("/apis", extension)]


def test_pref_mount_of_a_plain_app_mounts_it_below_the_point(kernel):
    sub = wsgi(b"sub")
    pref = Preference()
    pref.mount("/apis/", sub)
    kernel.mount("/v1/", wsgi(b"main"), pref)
    exchange = FakeExchange("/v1/apis/x")
    assert kernel.mounts.resolve(exchange).app is sub
    assert (exchange.script_name, exchange.path_info) == ("/v1/apis", "/x")
