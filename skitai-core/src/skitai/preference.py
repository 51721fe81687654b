"""`skitai.preference()`: run-time settings for an app, applied when it is mounted."""
from __future__ import annotations

import sys
from typing import Any

from .paths import abspath


class AttrDict(dict):
    """A dict whose keys are also attributes (`pref.config.urlfile = ...`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class Preference:
    """Settings collected in a `with skitai.preference() as pref:` block.

    `config` entries go into the app's `config` (a Flask-style dict or attributes); `debug` and
    `use_reloader`, when set, become attributes of the app; `mount(point, obj)` adds extensions
    to the app (see `skitai.mount`). `path` is put first on sys.path for imports in the block.
    """

    def __init__(self, path: str | None = None) -> None:
        self.config = AttrDict()
        self.debug: bool | None = None
        self.use_reloader: bool | None = None
        self.mounts: list[tuple[str, Any, str]] = []
        self.path = abspath(path) if path is not None else None
        if self.path is not None:
            # First, as the manual warns: the block's imports must find this folder's modules.
            if self.path in sys.path:
                sys.path.remove(self.path)
            sys.path.insert(0, self.path)

    def mount(self, point: str, obj: Any, app_name: str = "app") -> None:
        """An extension of the app this preference is mounted with (see `Kernel.mount`)."""
        self.mounts.append((point, obj, app_name))

    def __enter__(self) -> "Preference":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        return None


def apply_preference(app: Any, pref: Preference) -> None:
    """Merge `pref` into the app; it overrides what the app's own `config` says."""
    if pref.config:
        config = getattr(app, "config", None)
        if config is None:
            _set(app, "config", AttrDict(pref.config))
        elif hasattr(config, "__setitem__"):
            config.update(pref.config)
        else:
            for key, value in pref.config.items():
                setattr(config, key, value)
    if pref.debug is not None:
        _set(app, "debug", pref.debug)
    if pref.use_reloader is not None:
        _set(app, "use_reloader", pref.use_reloader)


def _set(app: Any, name: str, value: Any) -> None:
    try:
        setattr(app, name, value)
    except (AttributeError, TypeError):
        raise TypeError(f"cannot set {name!r} on {app!r}; wrap it in a WSGI function") from None


__all__ = ["AttrDict", "Preference", "apply_preference"]
