"""The process-wide state behind the `skitai.*` functions: settings, plugins and what they
registered, and the mount table. Created on first use, so `import skitai` stays cheap."""
from __future__ import annotations

from typing import Any

from .config import ServerConfig
from .mounting import MountResolver, MountTable, normalize_point, wsgi_point
from .paths import getswd
from .plugin import CommandRegistry, HandlerRegistry, ProtocolRegistry
from .plugins import create_plugin_manager
from .preference import Preference

MOUNT_TABLE_PRIORITY = 1000


class Kernel:
    def __init__(self, config: ServerConfig | None = None, entry_points: bool = True) -> None:
        self.config = config or ServerConfig()
        self.pm = create_plugin_manager(entry_points)
        self.mounts = MountTable()
        self.handlers = HandlerRegistry()
        self.handlers.add(self.mounts, priority=MOUNT_TABLE_PRIORITY)
        self.pm.hook.skitai_register_handlers(handlers=self.handlers)
        self.protocols = ProtocolRegistry()
        self.pm.hook.skitai_register_protocols(protocols=self.protocols)
        self.resolver = MountResolver(getswd())
        # the state the worker processes share (skitai.corequest.shared.SharedTable), allocated
        # by skitai.run() before it forks
        self.shared = None

    def commands(self) -> CommandRegistry:
        registry = CommandRegistry()
        self.pm.hook.skitai_register_commands(commands=registry)
        return registry

    def mount(self, point: str, obj: Any, app_name: Any = "app", pref: Preference | None = None) -> Any:
        """Mount `obj` at `point`; returns the handler that serves it.

        `pref` may come third, as the manual writes it (`mount("/", "x/wsgi:application", pref)`).
        Adapters see the object first, so a plugin can claim strings of its own ('@alias'); what
        none claims is resolved (files, modules, directories relative to the script). Either way
        the preference reaches the app.
        """
        if isinstance(app_name, Preference):
            app_name, pref = "app", app_name
        point = normalize_point(point)
        adapter = self._adapter(obj)
        if adapter is None:
            obj = self.resolver.resolve(obj, app_name, pref)
            adapter = self.handlers.adapter_for(obj)
        else:
            obj = self.resolver.finish(obj, pref)
        handler = adapter.create(wsgi_point(point), obj, pref)
        self.mounts.add(point, adapter.kind, handler)
        if pref is not None:
            for sub_point, sub_obj, sub_name in pref.mounts:
                self._mount_extension(point, obj, sub_point, sub_obj, sub_name)
        return handler

    def _adapter(self, obj: Any):
        for adapter in self.handlers.adapters:
            if adapter.accepts(obj):
                return adapter
        return None

    def _mount_extension(self, point: str, app: Any, sub_point: str, sub_obj: Any, sub_name: str) -> None:
        """`pref.mount()` inside a preference: the app's own `mount` when it has one (Atila-like
        frameworks), else the extension's `__mount__(app)`, else a plain mount under the app."""
        if hasattr(app, "mount") and callable(app.mount):
            app.mount(sub_point, sub_obj)
        elif hasattr(sub_obj, "__mount__"):
            sub_obj.__mount__(app)
        else:
            self.mount(point.rstrip("/") + normalize_point(sub_point), sub_obj, sub_name)
