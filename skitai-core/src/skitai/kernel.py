"""The process-wide state behind the `skitai.*` functions: settings, plugins and what they
registered, and the mount table. Created on first use, so `import skitai` stays cheap."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .backends import AliasTable, BackendRegistry
from .config import ServerConfig
from .mounting import MountError, MountResolver, MountTable, normalize_point, wsgi_point
from .paths import getswd
from .plugin import (
    AdapterRegistry,
    CommandRegistry,
    HandlerRegistry,
    ProtocolRegistry,
    ResponseFieldRegistry,
    SocketRegistry,
)
from .plugins import Plugins, call_hook
from .preference import Preference
from .processes import ProcessRegistry

MOUNT_TABLE_PRIORITY = 1000


class Kernel:
    """Plugins are loaded and mount adapters registered at creation, since a script mounts
    before `skitai.run()`; request handlers and connection protocols are registered by
    `configure()`, after `skitai_configure` (with the processes the master runs beside its
    workers), so a plugin registers only what its settings turn on. Handlers and protocols
    added to the registries before that (tests, scripts) stay."""

    def __init__(self, config: ServerConfig | None = None, entry_points: bool = True,
                 disabled: Iterable[str] = ()) -> None:
        self.config = config or ServerConfig()
        self.plugins = Plugins(entry_points, disabled)
        self.pm = self.plugins.manager
        self.mounts = MountTable()
        self.adapters = self._collect_adapters()
        self.backends = self._collect_backends()
        self.aliases = AliasTable(self.backends, getswd())
        self.handlers = HandlerRegistry()
        self.handlers.add(self.mounts, priority=MOUNT_TABLE_PRIORITY)
        self.protocols = ProtocolRegistry()
        self.processes = ProcessRegistry()  # what the master runs beside its workers
        self.sockets = SocketRegistry()        # plugins' own sockets, bound by the master
        self.response_fields = ResponseFieldRegistry()
        self.configured = False
        self.resolver = MountResolver(getswd())
        # the state the worker processes share (skitai.corequest.shared.SharedTable), allocated
        # by skitai.run() before it forks
        self.shared = None

    def _collect_adapters(self) -> AdapterRegistry:
        adapters = AdapterRegistry()
        call_hook(self.pm.hook.skitai_register_adapters, adapters=adapters)
        return adapters

    def _collect_backends(self) -> BackendRegistry:
        backends = BackendRegistry()
        call_hook(self.pm.hook.skitai_register_backends, backends=backends)
        return backends

    def disable_plugin(self, name: str) -> None:
        """Turn a plugin off by name (see `skitai.plugins`); its mount adapters and alias kinds
        go too, so call it before mounting and declaring aliases."""
        self.plugins.disable(name)
        self.adapters = self._collect_adapters()
        self.backends = self.aliases.backends = self._collect_backends()

    def configure(self) -> None:
        """Once: `skitai_configure`, then the registration of request handlers, connection
        protocols, plugin sockets and response fields with the final settings. A plugin that
        refuses raises a StartupError that names it; so does a configuration without a default
        protocol."""
        if self.configured:
            return
        call_hook(self.pm.hook.skitai_configure, config=self.config)
        call_hook(self.pm.hook.skitai_register_handlers, handlers=self.handlers, config=self.config)
        call_hook(self.pm.hook.skitai_register_protocols, protocols=self.protocols, config=self.config)
        call_hook(self.pm.hook.skitai_register_processes, processes=self.processes, config=self.config)
        call_hook(self.pm.hook.skitai_register_sockets, sockets=self.sockets, config=self.config)
        call_hook(self.pm.hook.skitai_register_response_fields, fields=self.response_fields,
                  config=self.config)
        self.protocols.default()  # raises when none is registered (the http1 plugin turned off)
        self.configured = True

    def commands(self) -> CommandRegistry:
        registry = CommandRegistry()
        call_hook(self.pm.hook.skitai_register_commands, commands=registry)
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
        adapter = self.adapters.adapter_for(obj)
        if adapter is None:
            obj = self.resolver.resolve(obj, app_name, pref)
            adapter = self.adapters.adapter_for(obj)
            if adapter is None:
                raise MountError(f"cannot mount {obj!r} at {point}: no mount adapter accepts it")
        else:
            obj = self.resolver.finish(obj, pref)
        handler = adapter.create(wsgi_point(point), obj, pref)
        self.mounts.add(point, adapter.kind, handler)
        if pref is not None:
            for sub_point, sub_obj, sub_name in pref.mounts:
                self._mount_extension(point, obj, sub_point, sub_obj, sub_name)
        return handler

    def _mount_extension(self, point: str, app: Any, sub_point: str, sub_obj: Any, sub_name: str) -> None:
        """`pref.mount()` inside a preference: the app's own `mount` when it has one (Atila-like
        frameworks), else the extension's `__mount__(app)`, else a plain mount under the app."""
        if hasattr(app, "mount") and callable(app.mount):
            app.mount(sub_point, sub_obj)
        elif hasattr(sub_obj, "__mount__"):
            sub_obj.__mount__(app)
        else:
            self.mount(point.rstrip("/") + normalize_point(sub_point), sub_obj, sub_name)
