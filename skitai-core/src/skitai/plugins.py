"""The plugin manager: Skitai's own features and third-party plugins, loaded the same way.

`DEFAULT_PLUGINS` are the core's built-in plugins, registered exactly like an entry-point
plugin; third-party ones come from the entry-point group `skitai`. Entry points are loaded one
by one (not with pluggy's `load_setuptools_entrypoints`, which stops at the first failure), so
a plugin that fails to import or names a hook that does not exist is recorded as failed with
its error: `skitai plugins` lists it, and a script refuses to start with one line naming it.

Any plugin can be turned off by name before it is loaded (`--disable-plugin=NAME`,
`skitai.disable_plugin(NAME)`): a built-in by the last part of its module name (`forward`) or
its full name, a third-party plugin by its entry-point name.
"""
from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .startup import StartupError, describe

ENTRY_POINT_GROUP = "skitai"
BUILTIN_PREFIX = "skitai.builtin."
DEFAULT_PLUGINS = (
    "skitai.builtin.http1",
    "skitai.builtin.wsgi",
    "skitai.builtin.static",
    "skitai.builtin.forward",
    "skitai.builtin.corequest",
    "skitai.builtin.websocket",
)


@dataclass
class FailedPlugin:
    name: str
    version: str
    error: str
    exception: Exception  # its traceback goes with the refusal under --devel

    def message(self) -> str:
        return f"plugin {self.name} {self.version} failed to load: {self.error}"


class Plugins:
    """The pluggy manager with the built-ins and entry-point plugins registered, the
    distribution each entry-point plugin came from, and the plugins that failed."""

    def __init__(self, entry_points: bool = True, disabled: Iterable[str] = ()) -> None:
        self.manager = pluggy.PluginManager("skitai")
        self.manager.add_hookspecs(hookspecs)
        self.distributions: dict[str, metadata.Distribution] = {}
        self.failed: list[FailedPlugin] = []
        self.seen: set[str] = set()  # every plugin name met, loaded or not
        self.disabled: list[str] = []
        for name in disabled:
            self.disable(name)
        for module in DEFAULT_PLUGINS:
            self._load(module, lambda module=module: importlib.import_module(module))
        if entry_points:
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                if not self.manager.has_plugin(entry_point.name):  # installed twice on sys.path
                    self._load(entry_point.name, entry_point.load, entry_point.dist)

    def _load(self, name: str, load: Callable[[], Any], dist: metadata.Distribution | None = None) -> None:
        self.seen.add(name)
        if self.manager.is_blocked(name):
            return
        try:
            plugin = load()
            self.manager.register(plugin, name=name)
            # a hook implementation no spec knows (a misspelled hook name) fails its plugin,
            # which would otherwise load and never be called; earlier plugins passed already
            self.manager.check_pending()
        except Exception as error:  # a broken plugin is reported, the others still load
            if self.manager.get_plugin(name) is not None:
                self.manager.unregister(name=name)
            version = dist.version if dist is not None else _core_version()
            self.failed.append(FailedPlugin(_display_name(name, dist), version, describe(error), error))
            return
        if dist is not None:
            self.distributions[name] = dist

    def disable(self, name: str) -> None:
        """Turn a plugin off by name (`forward`, `skitai.builtin.forward`, an entry point's
        name): it is not loaded, or unregistered if it already is."""
        self.disabled.append(name)
        for registered in _registered_names(name):
            self.manager.set_blocked(registered)

    def raise_failures(self) -> None:
        """A script does not start with a plugin that failed to load, nor when it asked to turn
        off a plugin that does not exist (a misspelled name would leave it on): the first
        such mistake, named."""
        if self.failed:
            raise StartupError(self.failed[0].message()) from self.failed[0].exception
        for name in self.disabled:
            if self.seen.isdisjoint(_registered_names(name)):
                raise StartupError(f"cannot disable plugin {name!r}: no plugin of that name "
                                   "(`skitai plugins` lists them)")

    def describe(self) -> list[PluginInfo]:
        infos = []
        for name, plugin in self.manager.list_name_plugin():
            if plugin is None:
                continue  # blocked
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])
            dist = self.distributions.get(name)
            if dist is not None:
                infos.append(PluginInfo(_display_name(name, dist), dist.version, hooks, False))
            else:
                infos.append(PluginInfo(name, _core_version(), hooks, name in DEFAULT_PLUGINS))
        return sorted(infos, key=lambda info: (not info.builtin, info.name))


class PluginError(StartupError):
    """A plugin refused the settings or failed in a hook called while starting."""


def call_hook(hook: pluggy.HookCaller, **kwargs: Any) -> list[Any]:
    """Call a startup hook; an exception from an implementation becomes a `PluginError`
    naming the plugin: a `ValueError` (how a plugin refuses a setting, see hookspecs) by its
    message, anything else by its type and message."""
    try:
        return hook(**kwargs)
    except StartupError:
        raise
    except Exception as error:
        plugin = _raising_plugin(hook, error)
        cause = str(error) if isinstance(error, ValueError) and str(error) else describe(error)
        where = f"plugin {plugin}" if plugin else "a plugin"
        raise PluginError(f"{where} failed in {hook.name}: {cause}") from error


async def call_hook_async(hook: pluggy.HookCaller, **kwargs: Any) -> list[Any]:
    """`call_hook`, then await the awaitables the implementations returned, in order; an
    exception from one is a `PluginError` naming its plugin (found, as for `call_hook`, in
    the traceback: the implementation's frame, or one of a function of its file)."""
    results = call_hook(hook, **kwargs)
    done = []
    for result in results:
        if inspect.isawaitable(result):
            try:
                result = await result
            except StartupError:
                raise
            except Exception as error:
                plugin = _raising_plugin(hook, error)
                where = f"plugin {plugin}" if plugin else "a plugin"
                raise PluginError(f"{where} failed in {hook.name}: {describe(error)}") from error
        done.append(result)
    return done


def _raising_plugin(hook: pluggy.HookCaller, error: BaseException) -> str | None:
    """The name of the plugin whose implementation of `hook` is in the error's traceback; else
    the one whose implementation's file is (a coroutine the implementation made and returned)."""
    impls = [impl for impl in hook.get_hookimpls() if hasattr(impl.function, "__code__")]
    owners = {impl.function.__code__: impl.plugin_name for impl in impls}
    files = {impl.function.__code__.co_filename: impl.plugin_name for impl in impls}
    by_file = None
    frame = error.__traceback__
    while frame is not None:
        code = frame.tb_frame.f_code
        name = owners.get(code)
        if name is not None:
            return name
        if by_file is None:
            by_file = files.get(code.co_filename)
        frame = frame.tb_next
    return by_file


def _registered_names(name: str) -> list[str]:
    """The registration names a user's plugin name stands for."""
    if "." not in name and BUILTIN_PREFIX + name in DEFAULT_PLUGINS:
        return [name, BUILTIN_PREFIX + name]
    return [name]


def _display_name(name: str, dist: metadata.Distribution | None) -> str:
    return f"{dist.metadata['Name']}:{name}" if dist is not None else name


def _core_version() -> str:
    from ._version import __version__

    return __version__


@dataclass
class PluginInfo:
    name: str
    version: str
    hooks: list[str]
    builtin: bool


def describe_origin(manager: pluggy.PluginManager, obj: object) -> str:
    """Who brought `obj` (a request handler, an upgrade ...), for error messages: the plugin
    whose module defines its class or whose package holds that module, else the class itself.
    Registries do not record which plugin added what, so the class's module is the trace."""
    cls = type(obj)
    module = cls.__module__
    modules = [(name, plugin.__name__) for name, plugin in manager.list_name_plugin()
               if isinstance(getattr(plugin, "__name__", None), str)]
    # the plugin module that defines the class, else one in the same package (a plugin module
    # whose handlers live beside it); exact first, as several plugins may share a package
    owner = next((name for name, plugin_module in modules if module == plugin_module), None)
    if owner is None:
        owner = next((name for name, plugin_module in modules
                      if module.startswith((plugin_module.rpartition(".")[0] or plugin_module) + ".")), None)
    if owner is not None:
        return f"plugin {owner!r} ({module}.{cls.__qualname__})"
    return f"{module}.{cls.__qualname__}"
