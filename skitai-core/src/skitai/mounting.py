"""The mount table and the resolution of objects passed to `skitai.mount()`.

A mount point holds at most one static directory and one app. Requests go to the longest mount
point that is a path-segment prefix of the (percent-decoded) path; where a point has both, the
static file wins when it exists, otherwise the app answers.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from .exchange import Exchange, RequestHandler
from .preference import Preference, apply_preference
from .static.handler import StaticRoot


@dataclass
class MountPoint:
    point: str
    handlers: dict[str, RequestHandler] = field(default_factory=dict)

    def choose(self, exchange: Exchange) -> RequestHandler | None:
        static = self.handlers.get("static")
        app = self.handlers.get("app")
        if static is not None and app is not None:
            # Only reads can be files; a POST to a path that happens to exist is the app's.
            reads = exchange.method in ("GET", "HEAD")
            return static if reads and static.has_file(exchange) else app
        return static or app


def normalize_point(point: str) -> str:
    if not point.startswith("/"):
        point = "/" + point
    return "/" if point == "/" else point.rstrip("/")


def decode_path(path: str) -> str:
    """Percent-decoded path as a latin-1 str, as PEP 3333 wants PATH_INFO."""
    if "%" not in path:
        return path
    return unquote_to_bytes(path).decode("latin-1")


class MountTable(RequestHandler):
    def __init__(self) -> None:
        self.points: dict[str, MountPoint] = {}
        self._ordered: list[MountPoint] = []

    def add(self, point: str, kind: str, handler: RequestHandler) -> None:
        point = normalize_point(point)
        entry = self.points.setdefault(point, MountPoint(point))
        if kind in entry.handlers:
            raise ValueError(f"{point!r} already has a mounted {kind}: {entry.handlers[kind]!r}")
        entry.handlers[kind] = handler
        self._ordered = sorted(self.points.values(), key=lambda item: len(item.point), reverse=True)

    def handlers(self) -> list[RequestHandler]:
        return [handler for entry in self._ordered for handler in entry.handlers.values()]

    def bind(self, server) -> None:
        for handler in self.handlers():
            handler.bind(server)

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        path = decode_path(exchange.path)
        for entry in self._ordered:
            point = entry.point
            if point == "/":
                exchange.script_name, exchange.path_info = "", path
            elif path == point or path.startswith(point + "/"):
                exchange.script_name, exchange.path_info = point, path[len(point):]
            else:
                continue
            return entry.choose(exchange)
        return None


class MountResolver:
    """Turns what a script passes to `skitai.mount()` into the object an adapter understands.

    Strings are paths relative to the script's directory: a directory becomes a `StaticRoot`;
    `"file"`, `"dir/file"` or `"dir/file:name"` load a Python file; `"package.module:name"`
    imports a module. A module object follows the export spec (`pkg/export/skitai/__export__.py`)
    or simply has the app as an attribute.
    """

    def __init__(self, base_dir: str) -> None:
        self.base_dir = base_dir

    def resolve(self, obj: Any, app_name: str, pref: Preference | None) -> Any:
        if isinstance(obj, tuple):
            module, spec = obj
            return self._from_export(module, spec, app_name, pref)
        if isinstance(obj, types.ModuleType):
            return self._from_module(obj, app_name, pref)
        if isinstance(obj, str):
            return self._from_string(obj, app_name, pref)
        return self._finish(obj, pref)

    def _from_string(self, text: str, app_name: str, pref: Preference | None) -> Any:
        path = text if os.path.isabs(text) else os.path.join(self.base_dir, text)
        if os.path.isdir(path):
            return StaticRoot(os.path.realpath(path))
        target, _, name = text.partition(":")
        name = name or app_name
        file_path = target if os.path.isabs(target) else os.path.join(self.base_dir, target)
        if not file_path.endswith(".py"):
            file_path += ".py"
        if os.path.isfile(file_path):
            module = load_file(file_path)
        elif "/" in target or os.sep in target:
            raise FileNotFoundError(f"skitai.mount: no directory or Python file at {path!r}")
        else:
            module = importlib.import_module(target)
        return self._attribute(module, name, pref)

    def _from_module(self, module: types.ModuleType, app_name: str, pref: Preference | None) -> Any:
        if _export_dir(module) is not None:
            return self._from_export(module, f"__export__:{app_name}", app_name, pref)
        return self._attribute(module, app_name, pref)

    def _from_export(self, module: types.ModuleType, spec: str, app_name: str,
                     pref: Preference | None) -> Any:
        if _export_dir(module) is None:
            raise ValueError(f"{module.__name__} has no export/skitai package to mount")
        file_name, _, name = spec.partition(":")
        package = importlib.import_module(f"{module.__name__}.export.skitai")
        pref = pref or Preference()
        setup = getattr(package, "__setup__", None) or getattr(package, "__bootstrap__", None)
        if setup is not None:
            setup(pref)
        app_module = importlib.import_module(f"{package.__name__}.{file_name}")
        app = self._attribute(app_module, name or app_name, pref)
        mount_hook = getattr(package, "__mount__", None)
        if mount_hook is not None:
            mount_hook(app)
        return app

    def _attribute(self, module: types.ModuleType, name: str, pref: Preference | None) -> Any:
        try:
            obj = getattr(module, name)
        except AttributeError:
            raise AttributeError(f"skitai.mount: {module.__name__} has no {name!r}") from None
        return self._finish(obj, pref)

    def _finish(self, obj: Any, pref: Preference | None) -> Any:
        if pref is not None and callable(obj):
            apply_preference(obj, pref)
        return obj


def _export_dir(module: types.ModuleType) -> str | None:
    for base in getattr(module, "__path__", []) or []:
        path = os.path.join(base, "export", "skitai")
        if os.path.isfile(os.path.join(path, "__init__.py")):
            return path
    return None


def load_file(path: str) -> types.ModuleType:
    """Import a Python file by path.

    A file inside packages (directories with `__init__.py`) is imported under its dotted name with
    the first directory above the packages on sys.path, so `mydjango/mydjango/wsgi.py` imports as
    `mydjango.wsgi` and its settings module resolves. A top-level file keeps its stem as module
    name unless another file already took that name (two versions' `app.py`).
    """
    path = os.path.realpath(path)
    main = sys.modules.get("__main__")
    if main is not None and os.path.realpath(getattr(main, "__file__", "") or "") == path:
        return main
    directory, file_name = os.path.split(path)
    parts = [file_name[:-3]]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    name = ".".join(parts)
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.realpath(getattr(existing, "__file__", "") or "") == path:
            return existing
        if len(parts) > 1:
            raise ImportError(f"{name} is already imported from {existing.__file__}")
        name = f"skitai_mount_{abs(hash(path)):x}_{parts[0]}"
    if len(parts) > 1:
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
