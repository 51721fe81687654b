"""The mount table and the resolution of objects passed to `skitai.mount()`.

A mount point holds at most one static directory and one app. Requests go to the longest mount
point that is a path-segment prefix of the (percent-decoded) path; where a point has both, the
static file wins when it exists, otherwise the app answers.
"""
from __future__ import annotations

import hashlib
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
from .startup import StartupError
from .static.handler import StaticRoot


class MountError(StartupError):
    """What `skitai.mount()` was given cannot be mounted: a path that is not there, a module
    or attribute that does not exist, an object no adapter takes. Errors raised by the app's
    own code while it is imported are not wrapped: their traceback is the app's."""


@dataclass
class MountPoint:
    point: str
    handlers: dict[str, RequestHandler] = field(default_factory=dict)
    # The handler every request here goes to when there is no static + app pair to choose
    # between (most points): resolving then costs no call of `choose`.
    sole: RequestHandler | None = None

    def put(self, kind: str, handler: RequestHandler) -> None:
        self.handlers[kind] = handler
        static, app = self.handlers.get("static"), self.handlers.get("app")
        self.sole = None if static is not None and app is not None else static or app

    def choose(self, exchange: Exchange) -> RequestHandler | None:
        static = self.handlers.get("static")
        app = self.handlers.get("app")
        if static is not None and app is not None:
            # Only reads can be files; a POST to a path that happens to exist is the app's.
            reads = exchange.method in ("GET", "HEAD")
            return static if reads and static.has_file(exchange) else app
        return static or app


def normalize_point(point: str) -> str:
    """One leading slash and no trailing one (`"v1/"` -> `"/v1"`); applying it twice is harmless."""
    return "/" + point.strip("/")


def wsgi_point(point: str) -> str:
    """A mount point as request paths are compared with it and as SCRIPT_NAME carries it: escapes
    decoded and non-ASCII characters as UTF-8 bytes read as latin-1 (PEP 3333), so `"/café"`
    matches a request for `/caf%C3%A9`. Apply it once, to a point as the script wrote it."""
    return unquote_to_bytes(normalize_point(point)).decode("latin-1")


def decode_path(path: str) -> str:
    """Percent-decoded path as a latin-1 str, as PEP 3333 wants PATH_INFO. `path` holds the
    request's bytes as latin-1, so they are re-encoded as such, never as UTF-8."""
    if "%" not in path:
        return path
    return unquote_to_bytes(path.encode("latin-1")).decode("latin-1")


class MountTable(RequestHandler):
    def __init__(self) -> None:
        self.points: dict[str, MountPoint] = {}
        self._ordered: list[MountPoint] = []

    def add(self, point: str, kind: str, handler: RequestHandler) -> None:
        """Put `handler` in the `kind` slot of `point` (as the script wrote it, see `wsgi_point`)."""
        point = wsgi_point(point)
        entry = self.points.setdefault(point, MountPoint(point))
        if kind in entry.handlers:
            raise MountError(f"skitai.mount: {point!r} already has a mounted {kind}: {entry.handlers[kind]!r}")
        entry.put(kind, handler)
        self._ordered = sorted(self.points.values(), key=lambda item: len(item.point), reverse=True)

    def handlers(self) -> list[RequestHandler]:
        return [handler for entry in self._ordered for handler in entry.handlers.values()]

    def bind(self, server) -> None:
        for handler in self.handlers():
            handler.bind(server)

    def resolve(self, exchange: Exchange) -> RequestHandler | None:
        if exchange.method == "CONNECT" and exchange.connect_protocol is None:
            # a plain CONNECT's target is a host to tunnel to, not a path: only a proxy takes it
            # (an extended CONNECT, RFC 8441, has a path: a WebSocket view's)
            return None
        path = exchange.path
        if "%" in path:  # decode_path's own test, asked here to spare most requests the call
            path = decode_path(path)
        for entry in self._ordered:
            point = entry.point
            if point == "/":
                exchange.script_name, exchange.path_info = "", path
            elif path == point or path.startswith(point + "/"):
                exchange.script_name, exchange.path_info = point, path[len(point):]
            else:
                continue
            return entry.sole or entry.choose(exchange)
        return None


class MountResolver:
    """Turns what a script passes to `skitai.mount()` into the object an adapter understands.

    Strings are paths relative to the script's directory: a directory becomes a `StaticRoot`;
    `"file"`, `"dir/file"` or `"dir/file:name"` load a Python file; `"package.module:name"`
    imports a module. A module object follows the export spec (`pkg/export/skitai/__export__.py`,
    `(pkg, "file:name")` for another file there) or simply has the app as an attribute. The
    preference, when given, is applied to the app found.
    """

    def __init__(self, base_dir: str) -> None:
        self.base_dir = base_dir

    def resolve(self, obj: Any, app_name: str = "app", pref: Preference | None = None) -> Any:
        if isinstance(obj, tuple):
            module, spec = _export_tuple(obj)
            return self._from_export(module, spec, app_name, pref)
        if isinstance(obj, types.ModuleType):
            return self._from_module(obj, app_name, pref)
        if isinstance(obj, str):
            return self._from_string(obj, app_name, pref)
        return self.finish(obj, pref)

    def finish(self, obj: Any, pref: Preference | None) -> Any:
        """The app with `pref` applied; other mount objects (directories, plugin aliases) as they are."""
        if pref is not None and callable(obj):
            apply_preference(obj, pref)
        return obj

    def _path(self, text: str) -> str:
        return text if os.path.isabs(text) else os.path.join(self.base_dir, text)

    def _from_string(self, text: str, app_name: str, pref: Preference | None) -> Any:
        path = self._path(text)
        if os.path.isdir(path):
            return StaticRoot(os.path.realpath(path))
        target, _, name = text.partition(":")
        return self._attribute(self._load(target, text), name or app_name, pref)

    def _load(self, target: str, text: str) -> types.ModuleType:
        """A Python file when `target` names one (".py" optional), else a dotted module name.

        Something path-like that is not there is an error rather than an import attempt, which
        would only report a confusing module name.
        """
        file_path = self._path(target if target.endswith(".py") else target + ".py")
        if os.path.isfile(file_path):
            return load_file(file_path)
        if "/" in target or os.sep in target or target.endswith(".py"):
            raise MountError(f"skitai.mount: {text!r} is no directory or Python file in {self.base_dir}")
        return self._import(target, text)

    def _import(self, name: str, text: str) -> types.ModuleType:
        """Import a dotted name; the script started as that module (`python -m pkg.serve`) is
        `__main__` already and must not run a second time."""
        main = sys.modules.get("__main__")
        if getattr(getattr(main, "__spec__", None), "name", None) == name:
            return main
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
                raise  # the module exists; something it imports does not
            raise MountError(f"skitai.mount: {text!r} is no directory or Python file in {self.base_dir} "
                             "and no importable module") from None

    def _from_module(self, module: types.ModuleType, app_name: str, pref: Preference | None) -> Any:
        if has_export(module):
            return self._from_export(module, "__export__", app_name, pref)
        return self._attribute(module, app_name, pref)

    def _from_export(self, module: types.ModuleType, spec: str, app_name: str,
                     pref: Preference | None) -> Any:
        """The export spec: `__setup__(pref)` (or `__bootstrap__`) of `pkg.export.skitai` runs
        before the app's file is imported, the preference is applied, then `__mount__(app)`."""
        if not has_export(module):
            raise MountError(f"skitai.mount: {module.__name__} has no export/skitai folder to mount")
        file_name, _, name = spec.partition(":")
        package = importlib.import_module(f"{module.__name__}.export.skitai")
        pref = pref or Preference()
        setup = getattr(package, "__setup__", None) or getattr(package, "__bootstrap__", None)
        if setup is not None:
            setup(pref)
        app_module = importlib.import_module(f"{package.__name__}.{file_name or '__export__'}")
        app = self._attribute(app_module, name or app_name, pref)
        mount_hook = getattr(package, "__mount__", None)
        if mount_hook is not None:
            mount_hook(app)
        return app

    def _attribute(self, module: types.ModuleType, name: str, pref: Preference | None) -> Any:
        try:
            obj = getattr(module, name)
        except AttributeError:
            raise MountError(f"skitai.mount: {module.__name__} has no {name!r}") from None
        return self.finish(obj, pref)


def _export_tuple(obj: tuple) -> tuple[types.ModuleType, str]:
    if len(obj) == 2 and isinstance(obj[0], types.ModuleType) and isinstance(obj[1], str):
        return obj
    raise MountError(f"skitai.mount: a tuple is (module, 'file:app'), not {obj!r}")


def has_export(module: types.ModuleType) -> bool:
    """Whether a package ships `export/skitai/` (with or without an `__init__.py`)."""
    return any(os.path.isdir(os.path.join(base, "export", "skitai"))
               for base in getattr(module, "__path__", None) or ())


def _file_of(module: types.ModuleType) -> str:
    file = getattr(module, "__file__", None)
    return os.path.realpath(file) if file else ""


def load_file(path: str) -> types.ModuleType:
    """Import a Python file by path, once.

    The running script is `__main__` and is returned as such. A file inside packages
    (directories with `__init__.py`) is imported under its dotted name with the first directory
    above the packages on sys.path, so `mydjango/mydjango/wsgi.py` imports as `mydjango.wsgi`
    and its settings module resolves. Another file gets its directory on sys.path (for its
    sibling imports) and keeps its stem as module name unless a different file holds that name
    already (the `app.py` of each service version), in which case a name made from its path
    keeps the two apart.
    """
    path = os.path.realpath(path)
    if _file_of(sys.modules.get("__main__")) == path:
        return sys.modules["__main__"]
    root, parts = _package_root(path)
    if root not in sys.path:
        sys.path.insert(0, root)
    if len(parts) > 1:
        return _import_package_file(".".join(parts), path)
    stem = parts[0]
    for name in (stem, f"skitai_mount_{hashlib.sha1(path.encode()).hexdigest()[:10]}_{stem}"):
        existing = sys.modules.get(name)
        if existing is None:
            return _exec_file(name, path)
        if _file_of(existing) == path:
            return existing
    raise MountError(f"skitai.mount: no free module name for {path}")


def _package_root(path: str) -> tuple[str, list[str]]:
    """The directory above the packages holding `path`, and the module's dotted name parts."""
    directory, file_name = os.path.split(path)
    parts = [file_name[:-3]]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, parts


def _import_package_file(name: str, path: str) -> types.ModuleType:
    module = importlib.import_module(name)
    if _file_of(module) != path:
        raise MountError(f"skitai.mount: {name} is {module.__file__}, not {path}: "
                         f"another package of that name comes first")
    return module


def _exec_file(name: str, path: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
