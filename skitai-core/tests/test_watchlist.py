"""What the auto-reloader watches for the mounted apps, and the stale-bytecode trap it avoids."""
import os
import subprocess
import sys
import time

import pytest

from skitai import watchlist
from skitai.config import ServerConfig
from skitai.kernel import Kernel
from skitai.reloader import forget_bytecode
from skitai.watchlist import WatchList, watch_list


@pytest.fixture
def imports(tmp_path, monkeypatch):
    """import(name) from tmp_path/lib, forgotten again after the test; the script is
    tmp_path/site/serve.py."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "serve.py").write_text("")
    monkeypatch.setattr(watchlist, "script_path", lambda: str(tmp_path / "site" / "serve.py"))
    monkeypatch.syspath_prepend(str(lib))
    before = set(sys.modules)

    def load(name):
        __import__(name)
        return sys.modules[name]
    yield lib, load
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return os.path.realpath(path)


def mounted(*apps):
    kernel = Kernel(ServerConfig(), entry_points=False)
    for index, app in enumerate(apps):
        kernel.mount(f"/{index}", app)
    return watch_list(kernel)


def test_an_app_in_a_package_watches_the_whole_package(imports):
    lib, load = imports
    package = os.path.dirname(write(lib / "shop" / "__init__.py"))
    write(lib / "shop" / "views.py", "def app(environ, start_response):\n    return []\n")
    later = write(lib / "shop" / "orders" / "late.py")  # imported only on some request
    write(lib / "shop" / "orders" / "__init__.py")
    (lib / "shop" / "__pycache__").mkdir()
    watched = mounted(load("shop.views").app)
    assert package in watched.packages
    assert os.path.dirname(later) in watched.package_folders()
    assert os.path.join(package, "__pycache__") not in watched.package_folders()
    assert watched.accepts(None, later)
    assert not watched.accepts(None, os.path.join(package, "templates.html"))
    assert not watched.accepts(None, later + "c")


def test_a_flask_app_in_a_plain_module_watches_its_file_not_flasks(imports):
    import flask

    lib, load = imports
    app_file = write(lib / "web.py", "import flask\napp = flask.Flask(__name__)\n")
    helper = write(lib / "helper.py")
    load("helper")
    watched = mounted(load("web").app)
    assert {app_file, helper} <= watched.files
    flask_folder = os.path.dirname(os.path.realpath(flask.__file__))
    assert not any(path.startswith(flask_folder) for path in watched.files | watched.packages)


def test_modules_imported_from_the_script_folder_are_watched(imports, tmp_path, monkeypatch):
    _, load = imports
    site = tmp_path / "site"
    monkeypatch.syspath_prepend(str(site))
    beside = write(site / "settings_local.py")
    load("settings_local")
    watched = mounted(lambda environ, start_response: [])
    assert {os.path.realpath(site / "serve.py"), beside} <= watched.files


def test_installed_code_is_never_watched(imports):
    from wsgiref import simple_server  # the standard library's demo WSGI app

    watched = mounted(simple_server.demo_app)
    stdlib = os.path.dirname(os.path.realpath(simple_server.__file__))
    assert not any(path.startswith(stdlib) for path in watched.files | watched.packages)


def test_written_since_ignores_older_and_future_files(tmp_path):
    old, new, future = (write(tmp_path / name) for name in ("old.py", "new.py", "future.py"))
    now = time.time()
    os.utime(old, (now - 60, now - 60))
    os.utime(future, (now + 3600, now + 3600))
    assert WatchList(files={old, new, future}).written_since(now - 30) == [new]


def test_forget_bytecode_makes_a_same_size_edit_in_the_same_second_visible(tmp_path):
    module = tmp_path / "same.py"
    module.write_text("VALUE = 'v1'\n")
    stat = module.stat()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}

    def imported_value():
        return subprocess.run([sys.executable, "-c", "import same; print(same.VALUE)"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30, check=True).stdout.strip()

    assert imported_value() == "v1"  # and its bytecode is cached
    module.write_text("VALUE = 'v2'\n")
    os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same second, the same size
    assert imported_value() == "v1"  # the trap: the cached bytecode still looks current
    forget_bytecode([str(module)])
    assert imported_value() == "v2"
