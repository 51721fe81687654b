"""WSGI apps as mount objects: any callable passed to `skitai.mount()`."""
from ..plugin import MountAdapter, hookimpl
from ..wsgi.handler import WSGIApp


class WSGIAdapter(MountAdapter):
    kind = "app"

    def accepts(self, obj) -> bool:
        return callable(obj) and not isinstance(obj, (str, bytes, type))

    def create(self, point, obj, pref):
        return WSGIApp(point, obj)


@hookimpl
def skitai_register_adapters(adapters):
    adapters.add(WSGIAdapter())
