"""The plugin manager: Skitai's own features and third-party plugins, loaded the same way.

`DEFAULT_PLUGINS` are the core's built-in plugins, registered exactly like an entry-point
plugin; third-party ones come from the entry-point group `skitai`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import pluggy

from . import hookspecs

DEFAULT_PLUGINS = (
    "skitai.builtin.http1",
    "skitai.builtin.wsgi",
    "skitai.builtin.static",
    "skitai.builtin.forward",
    "skitai.builtin.corequest",
    "skitai.builtin.websocket",
)


def create_plugin_manager(entry_points: bool = True) -> pluggy.PluginManager:
    manager = pluggy.PluginManager("skitai")
    manager.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    if entry_points:
        manager.load_setuptools_entrypoints("skitai")
    return manager


@dataclass
class PluginInfo:
    name: str
    version: str
    hooks: list[str]
    builtin: bool


def describe_plugins(manager: pluggy.PluginManager) -> list[PluginInfo]:
    from ._version import __version__

    distributions = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    infos = []
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        dist = distributions.get(id(plugin))
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        if dist is not None:
            infos.append(PluginInfo(f"{dist.project_name}:{name}", dist.version, hooks, False))
        else:
            infos.append(PluginInfo(name, __version__, hooks, name in DEFAULT_PLUGINS))
    return sorted(infos, key=lambda info: (not info.builtin, info.name))


def describe_origin(manager: pluggy.PluginManager, obj: object) -> str:
    """Who brought `obj` (a request handler, an upgrade ...), for error messages: the plugin
    whose module defines its class or whose package holds that module, else the class itself.
    Registries do not record which plugin added what, so the class's module is the trace."""
    cls = type(obj)
    module = cls.__module__
    for name, plugin in manager.list_name_plugin():
        plugin_module = getattr(plugin, "__name__", None)
        if not isinstance(plugin_module, str):
            continue
        package = plugin_module.rpartition(".")[0] or plugin_module
        if module == plugin_module or module.startswith(package + "."):
            return f"plugin {name!r} ({module}.{cls.__qualname__})"
    return f"{module}.{cls.__qualname__}"
