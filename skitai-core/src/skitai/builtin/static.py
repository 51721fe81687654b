"""Static directories as mount objects: a directory path passed to `skitai.mount()`."""
from ..plugin import MountAdapter, hookimpl
from ..static.handler import StaticDirectory, StaticRoot


class StaticAdapter(MountAdapter):
    kind = "static"

    def accepts(self, obj) -> bool:
        return isinstance(obj, StaticRoot)

    def create(self, point, obj, pref):
        return StaticDirectory(point, obj)


@hookimpl
def skitai_register_adapters(adapters):
    adapters.add(StaticAdapter())
