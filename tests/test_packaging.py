"""Installing Skitai as a user does: the wheels of every distribution, built from their folders,
installed with pip into fresh virtual environments while PyPI is reachable (the dependencies come
from there, and so would PyPI's old `skitai` 0.57.16 if our version lost to it).

`pip install "skitai[http2]"` (or `skitai-http2` alone) brings the core and the HTTP/2 plugin,
`skitai[gateway]` the gateway plugin, `skitai[http3]` the HTTP/3 plugin (and aioquic), and
`skitai plugins` lists it; `skitai[dbi]` and `skitai[http2,dbi]` bring the database plugin and
its drivers; `skitai[smtpda]` was.email and its delivery agent; plain `skitai` has no plugin;
`skitai[testclient]` is enough for `skitai.test_client` and brings none of the project's own
test tools. Every distribution carries one final version (a pre-release would lose to 0.57.16
without `--pre`), each plugin pins the core to it, and the core's extras pin the plugins the same
way."""
from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pip_install, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = sorted(path.parent for path in ROOT.glob("skitai-*/pyproject.toml"))
VERSION = re.search(r'__version__ = "([^"]+)"',
                    (ROOT / "skitai-core" / "src" / "skitai" / "_version.py").read_text()).group(1)
PIP_TIMEOUT = 600


def run(*command: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, cwd=cwd,
                            timeout=PIP_TIMEOUT)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-4000:]}{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    """One wheel per distribution, built once from a copy of its folder (no stale build/ of a
    source tree can leak into it)."""
    base = tmp_path_factory.mktemp("wheels")
    sources = []
    for folder in DISTRIBUTIONS:
        copy = base / "src" / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns(
            "tests", "build", "dist", "*.egg-info", "__pycache__"))
        sources.append(copy)
    wheelhouse = base / "dist"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheelhouse, *sources)
    return wheelhouse


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        return email.parser.Parser().parsestr(archive.read(name).decode())


class Venv:
    """A fresh virtual environment without pip of its own: the test's pip installs into it
    (`pip --python`), which saves bootstrapping pip into every environment."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        run(sys.executable, "-m", "venv", "--without-pip", folder)
        self.python = folder / "bin" / "python"

    def install(self, wheels: Path, *requirements: str) -> None:
        run(sys.executable, "-m", "pip", "--python", self.python, "install", "-q", "--find-links", wheels,
            *requirements)

    def run(self, *command: str | Path, cwd: Path | None = None) -> str:
        return run(self.folder / "bin" / command[0], *command[1:], cwd=cwd)

    def has_module(self, name: str) -> bool:
        code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is None)"
        return subprocess.run([self.python, "-c", code], timeout=60).returncode == 0

    def installed(self, module: str, relative_path: str) -> Path:
        """Where `module`'s file `relative_path` was installed."""
        code = f"import {module}, os; print(os.path.dirname({module}.__file__))"
        return Path(run(self.python, "-c", code).strip()) / relative_path


def assert_installed_from_this_tree(venv: Venv, distribution: str, module: str, folder: str) -> None:
    """Installed from our wheels, not a release from PyPI (0.57.16, or one of the same number):
    the version is ours and the files are this tree's."""
    code = f"import importlib.metadata; print(importlib.metadata.version({distribution!r}))"
    assert run(venv.python, "-c", code).strip() == VERSION
    for relative in ("__init__.py", "plugin.py" if module != "skitai" else "_version.py"):
        installed = venv.installed(module, relative)
        assert installed.is_relative_to(venv.folder), installed
        assert installed.read_bytes() == (ROOT / folder / "src" / module / relative).read_bytes()


def test_one_final_version_pinned_between_core_and_plugins(wheels):
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), f"{VERSION} is a pre-release: pip skips it without --pre"
    built = {meta["Name"]: meta for meta in map(metadata, wheels.glob("*.whl"))}
    assert sorted(built) == sorted("skitai" if folder.name == "skitai-core" else folder.name
                                   for folder in DISTRIBUTIONS)
    assert {name: meta["Version"] for name, meta in built.items()} == {name: VERSION for name in built}
    core = built.pop("skitai")
    plugins = sorted(built)
    for name in plugins:
        assert f"skitai=={VERSION}" in built[name].get_all("Requires-Dist"), name
    extras = {name.removeprefix("skitai-") for name in plugins}
    assert extras | {"all"} <= set(core.get_all("Provides-Extra"))
    requires = core.get_all("Requires-Dist")
    for extra in extras:
        assert f'skitai-{extra}=={VERSION}; extra == "{extra}"' in requires
        assert f'skitai-{extra}=={VERSION}; extra == "all"' in requires


@pytest.mark.parametrize("requirement, distribution, plugin", [
    ("skitai[http2]", "skitai-http2", "http2"),
    ("skitai-http2", "skitai-http2", "http2"),
    ("skitai[gateway]", "skitai-gateway", "gateway"),
    ("skitai[smtpda]", "skitai-smtpda", "smtpda"),
    ("skitai[http3]", "skitai-http3", "http3"),
])
def test_an_extra_or_the_plugin_alone_installs_both_and_lists_the_plugin(wheels, tmp_path, requirement,
                                                                        distribution, plugin):
    venv = Venv(tmp_path / "venv")
    venv.install(wheels, requirement)
    assert_installed_from_this_tree(venv, "skitai", "skitai", "skitai-core")
    module = distribution.replace("-", "_")
    assert_installed_from_this_tree(venv, distribution, module, distribution)
    listing = venv.run("skitai", "plugins")
    assert re.search(rf"^{distribution}:{plugin} {re.escape(VERSION)} \(plugin\)", listing, re.M), listing


@pytest.mark.parametrize("requirement", ["skitai[dbi]", "skitai[http2,dbi]"])
def test_the_dbi_extra_installs_the_plugin_and_its_driver(wheels, tmp_path, requirement):
    venv = Venv(tmp_path / "venv")
    venv.install(wheels, requirement)
    assert_installed_from_this_tree(venv, "skitai", "skitai", "skitai-core")
    assert_installed_from_this_tree(venv, "skitai-dbi", "skitai_dbi", "skitai-dbi")
    assert venv.has_module("psycopg2") and venv.has_module("redis") and venv.has_module("pymongo")
    assert venv.has_module("skitai_http2") == ("http2" in requirement)
    listing = venv.run("skitai", "plugins")
    assert re.search(rf"^skitai-dbi:dbi {re.escape(VERSION)} \(plugin\)", listing, re.M), listing


def test_plain_skitai_has_no_plugin_and_the_testclient_extra_is_small(wheels, tmp_path):
    venv = Venv(tmp_path / "venv")
    venv.install(wheels, "skitai")
    assert_installed_from_this_tree(venv, "skitai", "skitai", "skitai-core")
    listing = venv.run("skitai", "plugins")
    for plugin in ("http2", "gateway", "dbi", "smtpda", "http3"):
        assert plugin not in listing, listing
        assert not venv.has_module(f"skitai_{plugin}")
    assert "skitai.builtin.http1" in listing, listing

    venv.install(wheels, "skitai[testclient]")
    assert venv.has_module("httpx")
    assert not [name for name in ("flask", "django", "pytest", "kosoku", "trustme") if venv.has_module(name)]
    (tmp_path / "app.py").write_text(textwrap.dedent('''
        import skitai

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"hello from a wheel"]

        if __name__ == "__main__":
            skitai.mount("/", app)
            skitai.run(port=5000)
    '''))
    answer = venv.run("python", "-c", textwrap.dedent('''
        import skitai
        with skitai.test_client("app.py") as cli:
            print(cli.get("/").text)
    '''), cwd=tmp_path)
    assert answer.strip() == "hello from a wheel"
