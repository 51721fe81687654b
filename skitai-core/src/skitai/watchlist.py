"""Which source files the auto-reloader watches: the mounted apps' code and the script's.

An app's code is the module that defines it and, when that module is part of a package, the
whole package folder at any depth: sub-modules that are imported only later (a Django project's
`urls.py` and views, read on the first request, in the workers) must trigger a reload too.
Besides that: the script itself and every module imported from under the script's folder or an
app's folder. Installed code (the standard library, site-packages) is never watched: it does
not change while one develops, and a virtualenv inside the project folder would otherwise have
the watcher follow thousands of files.

Only `.py` files count. Templates are the framework's business (Flask and Django re-read them in
debug mode), static files are read from disk on every request, and a burst of reloads for every
saved stylesheet would only get in the way.
"""
from __future__ import annotations

import os
import site
import sys
import sysconfig
import time
import types
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .paths import script_path

if TYPE_CHECKING:
    from .kernel import Kernel

SOURCE_SUFFIX = ".py"
SKIPPED_FOLDERS = ("__pycache__", "node_modules")  # and hidden ones (.git, .venv ...)


@dataclass
class WatchList:
    files: set[str] = field(default_factory=set)     # single module files
    packages: set[str] = field(default_factory=set)  # package folders: every .py below them
    _folders: set[str] | None = field(default=None, repr=False)

    def package_folders(self) -> set[str]:
        """Every folder of the watched packages (looked up once: a folder added later is watched
        from the next reload on, which adding an import of it causes anyway)."""
        if self._folders is None:
            self._folders = set()
            for package in self.packages:
                for folder, subfolders, _ in os.walk(package):
                    subfolders[:] = [name for name in subfolders
                                     if not name.startswith(".") and name not in SKIPPED_FOLDERS]
                    self._folders.add(folder)
        return self._folders

    def folders(self) -> list[str]:
        """The folders to watch, each without its subfolders: those of the single files and of
        the packages. A file is watched through its folder because editors often save by
        writing a new file and renaming it over the old one, which ends a watch on the file."""
        folders = self.package_folders() | {os.path.dirname(path) for path in self.files}
        return sorted(folder for folder in folders if os.path.isdir(folder))

    def accepts(self, change: Any, path: str) -> bool:
        """Whether a change of `path` (a `watchfiles` filter) is one of the watched sources."""
        if path in self.files:
            return True
        return path.endswith(SOURCE_SUFFIX) and os.path.dirname(path) in self.package_folders()

    def sources(self) -> list[str]:
        found = set(self.files)
        for folder in self.package_folders():
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            found.update(os.path.join(folder, name) for name in names if name.endswith(SOURCE_SUFFIX))
        return sorted(found)

    def written_since(self, since: float) -> list[str]:
        """Sources modified after `since` (and not in the future, which only a skewed clock of a
        network file system gives): edits made while the apps were being imported."""
        now = time.time()
        written = []
        for path in self.sources():
            try:
                modified = os.stat(path).st_mtime
            except OSError:
                continue
            if since < modified <= now:
                written.append(path)
        return written

    def as_dict(self) -> dict:
        return {"files": sorted(self.files), "packages": sorted(self.packages)}

    @classmethod
    def from_dict(cls, data: dict) -> "WatchList":
        return cls(set(data["files"]), set(data["packages"]))


def mounted_apps(kernel: "Kernel") -> list[Any]:
    return [handler.app for handler in kernel.mounts.handlers() if getattr(handler, "app", None) is not None]


def watch_list(kernel: "Kernel") -> WatchList:
    """The sources of the apps mounted in `kernel`, of the script and of what they imported."""
    installed = _installed_folders()
    script = script_path()
    roots = {os.path.dirname(script)}
    for name in {name for app in mounted_apps(kernel) for name in app_module_names(app)}:
        source = _source_file(sys.modules.get(name))
        if source is not None and not _under_any(source, installed):
            roots.add(_package_folder(source) or os.path.dirname(source))
    watched = WatchList()
    if script.endswith(SOURCE_SUFFIX):
        watched.files.add(script)
    for module in list(sys.modules.values()):
        source = _source_file(module)
        if source is None or _under_any(source, installed) or not _under_any(source, roots):
            continue
        package = _package_folder(source)
        if package is None:
            watched.files.add(source)
        else:
            watched.packages.add(package)
    watched.files = {path for path in watched.files if not _under_any(path, watched.packages)}
    return watched


def app_module_names(app: Any) -> list[str]:
    """The modules that hold an app's code: for a Django handler its settings module and the
    project's own installed apps; for a Flask or Atila app its `import_name`; for a function,
    a class or an instance of one the module defining it."""
    if type(app).__module__.startswith("django."):
        return _django_module_names()
    name = getattr(app, "import_name", None)
    if not isinstance(name, str):
        name = getattr(app, "__module__", None)
    return [name] if isinstance(name, str) else []


def _django_module_names() -> list[str]:
    """The settings module and the installed apps that live under the script's folder (not
    Django's own contrib apps nor other installed packages)."""
    names = []
    settings = os.environ.get("DJANGO_SETTINGS_MODULE")
    if settings:
        names.append(settings)
    registry = getattr(sys.modules.get("django.apps"), "apps", None)
    if registry is not None and registry.ready:
        base = os.path.dirname(script_path())
        names.extend(config.name for config in registry.get_app_configs()
                     if _under(os.path.realpath(config.path), base))
    return names


def _source_file(module: types.ModuleType | None) -> str | None:
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not file.endswith(SOURCE_SUFFIX):
        return None
    return os.path.realpath(file)


def _package_folder(source: str) -> str | None:
    """The top folder of the packages (folders with `__init__.py`) holding `source`, if any."""
    folder = os.path.dirname(source)
    top = None
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        top = folder
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return top


def _installed_folders() -> set[str]:
    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    folders.update(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        folders.add(site.getusersitepackages())
    return {os.path.realpath(folder) for folder in folders}


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _under_any(path: str, folders: set[str]) -> bool:
    return any(_under(path, folder) for folder in folders)
