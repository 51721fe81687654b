"""`skitai.mount("/x", "@alias")`: the mount adapter of the reverse proxy. The plugin registers
it when it loads; the proxy itself (`reverseproxy`, with the forwarding and its connection pool)
is imported when a script mounts its first alias, so a worker that proxies nothing does not carry
it."""
from __future__ import annotations

from typing import Any

from skitai.mounting import MountError
from skitai.plugin import MountAdapter, RequestHandler, import_feature


class AliasAdapter(MountAdapter):
    """Takes `"@alias"` and `"@alias/base/path"` mount objects."""

    def accepts(self, obj: Any) -> bool:
        return isinstance(obj, str) and obj.startswith("@") and len(obj) > 1

    def create(self, point: str, obj: Any, pref: Any) -> RequestHandler:
        name, slash, base = obj.partition("/")
        if pref is not None:
            raise MountError(f"skitai.mount({point!r}, {obj!r}): a proxied alias takes no preference")
        reverseproxy = import_feature("skitai_gateway.reverseproxy", f"skitai.mount({point!r}, {obj!r})",
                                      "skitai-gateway")
        return reverseproxy.AliasMount(point, name, slash + base)
